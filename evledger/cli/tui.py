"""`evledger tui`: the reviewer's terminal UI (Textual is imported only when it runs)."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import anchor_from, anchor_options, ledger_from


@click.command("tui")
@click.option("--no-verify", is_flag=True, help="Do not verify in the background on start.")
@click.option("--no-cache", is_flag=True, help="Rebuild the listing index (ignore the cache).")
@click.option(
    "--ledger",
    "ledger_path",
    type=click.Path(path_type=Path, file_okay=False),
    help="Ledger folder (the same as `evledger --ledger PATH tui`).",
)
@anchor_options
@click.pass_context
def tui(
    ctx: click.Context,
    no_verify: bool,
    no_cache: bool,
    ledger_path: Path | None,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """Browse, verify, diff, gate and audit the ledger in a terminal UI (verdicts from
    verified entries only, under the same pins as `verify`)."""
    anchor = anchor_from(trusted, genesis)
    if ledger_path is not None:
        ctx.obj["ledger"] = ledger_path
    ledger = ledger_from(ctx)
    from tui.app import EvledgerApp  # lazy: `evledger verify` never imports textual

    EvledgerApp(ledger, verify_on_start=not no_verify, use_cache=not no_cache, anchor=anchor).run()


COMMANDS = [tui]
