"""`evledger verify`."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import (
    anchor_from,
    emit_json,
    ledger_from,
    plural,
    progress_bar,
    say,
    trusted_keys_option,
    witness_options,
)
from ledger.errors import VerificationFailed
from ledger.files import MAX_KEY_BYTES, read_regular_file
from ledger.verify import CODES


@click.command("verify", epilog="Problem codes: " + ", ".join(CODES))
@trusted_keys_option("Pin a public key (PEM); the genesis must be signed by a pinned key.")
@click.option("--genesis", help="Pin the genesis entry digest (or a prefix of it).")
@click.option(
    "--since",
    "since",
    type=click.Path(path_type=Path, dir_okay=False),
    help="A checkpoint note kept earlier: prove the ledger only grew since.",
)
@click.option(
    "--reproduce",
    is_flag=True,
    help="Also re-run every runner claim here (appending nothing) and compare its figures.",
)
@click.option(
    "--model",
    "model_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="With --reproduce: the model file for claims not made on the default model.",
)
@witness_options
@click.option("--json", "as_json", is_flag=True, help="One JSON report on stdout.")
@click.pass_context
def verify_cmd(
    ctx: click.Context,
    trusted: tuple[Path, ...],
    genesis: str | None,
    since: Path | None,
    reproduce: bool,
    model_path: Path | None,
    as_json: bool,
) -> None:
    """Verify every entry: canonical bytes, digests, chain, DSSE signatures, trust at each seq,
    schemas, Merkle root against stored checkpoints. Exit 0 only if all hold."""
    anchor = anchor_from(trusted, genesis)
    since_text = None
    if since is not None:
        kept = read_regular_file(since, max_bytes=MAX_KEY_BYTES, what="checkpoint")
        since_text = kept.decode("utf-8", errors="replace")
    ledger = ledger_from(ctx)
    with progress_bar("verifying", enabled=not as_json) as update:
        report = ledger.verify(
            pinned_keys=list(anchor.pinned_keys),
            genesis=anchor.genesis,
            since_note=since_text,
            progress=update,
        )
    if anchor.quorum:
        from ledger.witness import apply_quorum

        apply_quorum(ledger.store, "HEAD", anchor.witnesses, anchor.quorum, report)
    if reproduce:
        from evledger.rerun import RunnerRerunner
        from ledger.reproduce import recheck_claims

        with progress_bar("re-running claims", enabled=not as_json) as update:
            recheck_claims(
                ledger,
                report,
                rerunner=RunnerRerunner(),
                model_path=model_path,
                progress=lambda _l, d, t: update(d, t),
            )
    if as_json:
        emit_json(report.to_json())
    else:
        say(f"trust anchor: {report.trust_anchor}")
        say(f"entries: {report.entries}  root: {report.root}  checkpoints: {report.checkpoints}")
        if report.reproduced is not None:
            r = report.reproduced
            say(f"re-ran {r['rerun']} of {plural(r['claims'], 'runner claim')}")
            for skip in r["skipped"]:
                say(f"  seq {skip['seq']:<6} skipped: {skip['reason']}")
        for p in report.problems:
            where = f"seq {p.seq}" if p.seq is not None else "ledger"
            say(f"  {where:<10} {p.code:<22} {p.message}")
        say(
            "OK: all entries verified"
            if report.ok
            else f"FAILED: {plural(len(report.problems), 'problem')}"
        )
    if not report.ok:
        raise click.exceptions.Exit(VerificationFailed.exit_code)


COMMANDS = [verify_cmd]
