"""Shared CLI output helpers: JSON to stdout, progress on stderr only when it is a terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ledger.api import Ledger, open_ledger
from ledger.verify import check_genesis_pin
from ledger.view import TrustAnchor, VerifiedView


def emit_json(obj: Any) -> None:
    """The only thing `--json` writes to stdout."""
    click.echo(json.dumps(obj, sort_keys=True, ensure_ascii=False))


def stdout() -> Console:
    """Console for human results."""
    # piped output is read by scripts and logs: don't squeeze tables into 80 columns
    width = None if sys.stdout.isatty() else 200
    return Console(highlight=False, soft_wrap=True, width=width)


def ledger_from(ctx: click.Context) -> Ledger:
    """The ledger named by --ledger / EVLEDGER_LEDGER / the current git root."""
    path: Path | None = ctx.obj.get("ledger") if ctx.obj else None
    return open_ledger(path)


@contextmanager
def progress_bar(label: str, enabled: bool = True) -> Iterator[Callable[[int, int], None]]:
    """A rich progress bar on stderr (only on a TTY); yields update(done, total)."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total: None
        return
    columns = (TextColumn(label), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


#: `--key NAME`, the same on every command that signs
signing_key_option = click.option(
    "--key", "key_name", help="Signing key name (default $EVLEDGER_KEY, else the only key)."
)


def trusted_keys_option(help_text: str) -> Callable[[Any], Any]:
    """`--trusted-key PUB` (repeatable): public keys the reviewer pins."""
    return click.option(
        "--trusted-key",
        "trusted",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help=help_text,
    )


def _to_meta(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    ctx.meta[f"evledger.{param.name}"] = value
    return value


def witness_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--witness PUB`..., `--quorum K`, `--trust-policy FILE`: a checkpoint counts only with K
    valid witness cosignatures. They reach `anchor_from` through the click context, so a
    command's own signature does not change."""
    command = click.option(
        "--trust-policy",
        type=click.Path(path_type=Path, dir_okay=False),
        expose_value=False,
        callback=_to_meta,
        help="TOML file naming trusted_keys, genesis, witnesses and quorum.",
    )(command)
    command = click.option(
        "--quorum",
        type=click.IntRange(min=0),
        expose_value=False,
        callback=_to_meta,
        help="Valid cosignatures needed from the --witness keys (default 1 if any are named).",
    )(command)
    return click.option(
        "--witness",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        expose_value=False,
        callback=_to_meta,
        help="Witness public key (PEM or verifier-key file; repeatable).",
    )(command)


def anchor_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """`--trusted-key PUB`... and `--genesis DIGEST`: the reviewer's pins, the same as verify's
    (every command that decides reads through them), plus the witness options."""
    command = witness_options(command)
    command = click.option(
        "--genesis", help="Pin the genesis entry digest (sha256:<hex>, 16 hex digits at least)."
    )(command)
    return trusted_keys_option(
        "Pin a public key (PEM); the genesis must be signed by a pinned key."
    )(command)


def anchor_from(trusted: tuple[Path, ...], genesis: str | None) -> TrustAnchor:
    """The TrustAnchor of `--trusted-key`/`--genesis` (key files read with the usual limits)."""
    from evledger.cli.witness import trust_policy_from

    ctx = click.get_current_context(silent=True)
    meta = ctx.meta if ctx is not None else {}
    policy = trust_policy_from(
        trusted,
        tuple(meta.get("evledger.witness") or ()),
        meta.get("evledger.quorum"),
        meta.get("evledger.trust_policy"),
        genesis,
    )
    check_genesis_pin(policy.genesis)
    return TrustAnchor(policy.pinned_keys, policy.genesis, policy.witnesses, policy.quorum)


def open_view(
    ctx: click.Context,
    trusted: tuple[Path, ...] = (),
    genesis: str | None = None,
    *,
    rev: str = "HEAD",
    quiet: bool = False,
) -> tuple[Ledger, VerifiedView]:
    """The ledger and its verified view under the reviewer's pins (progress on a TTY)."""
    anchor = anchor_from(trusted, genesis)
    ledger = ledger_from(ctx)
    with progress_bar("verifying", enabled=not quiet) as update:
        view = ledger.view(anchor, rev=rev, progress=update)
    return ledger, view


def exit_unless_verified(view: VerifiedView) -> None:
    """Exit 1 (after the output) when anything did not verify: a verdict over a partly
    verified ledger must not look like a clean one to a script."""
    if not view.ok:
        raise click.exceptions.Exit(1)
