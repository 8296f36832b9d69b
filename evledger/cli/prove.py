"""`evledger prove inclusion REF | consistency OLD_NOTE [NEW_NOTE]` (docs/proofs.md)."""

from __future__ import annotations

import base64
from pathlib import Path

import click

from evledger.cli.output import emit_json, ledger_from
from ledger.files import read_regular_file
from ledger.proof import prove_consistency, prove_inclusion


@click.group("prove")
def prove_group() -> None:
    """Print proofs a reviewer can check without evledger (docs/proofs.md)."""


def _note(path: Path) -> str:
    return read_regular_file(path, max_bytes=1 << 20, what="checkpoint note").decode(
        "utf-8", errors="replace"
    )


@prove_group.command("inclusion")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def inclusion_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Inclusion proof of entry REF in the newest checkpoint (C2SP tlog-proof text)."""
    proof = prove_inclusion(ledger_from(ctx), ref)
    if as_json:
        emit_json(
            {
                "index": proof.index,
                "digest": "sha256:" + proof.digest.hex(),
                "proof": [base64.b64encode(h).decode() for h in proof.path],
                "note": proof.note,
                "text": proof.text(),
            }
        )
        return
    click.echo(proof.text(), nl=False)


@prove_group.command("consistency")
@click.argument("old_note", type=click.Path(path_type=Path, dir_okay=False))
@click.argument("new_note", required=False, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def consistency_cmd(
    ctx: click.Context, old_note: Path, new_note: Path | None, as_json: bool
) -> None:
    """Consistency proof from OLD_NOTE's tree to NEW_NOTE's (default: the newest checkpoint),
    as the body of a C2SP tlog-witness add-checkpoint request."""
    new = _note(new_note) if new_note is not None else None
    proof = prove_consistency(ledger_from(ctx), _note(old_note), new)
    if as_json:
        emit_json(
            {
                "old_size": proof.old_size,
                "proof": [base64.b64encode(h).decode() for h in proof.proof],
                "note": proof.note,
                "text": proof.text(),
            }
        )
        return
    click.echo(proof.text(), nl=False)


COMMANDS = [prove_group]
