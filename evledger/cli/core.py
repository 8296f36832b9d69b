"""`evledger init | append | log | show | checkpoint`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.table import Table

from evledger.cli.output import emit_json, ledger_from, signing_key_option, stdout
from ledger.api import init_ledger
from ledger.chain import Entry
from ledger.files import PUBLIC_FILE_MODE, check_output_path, write_atomic


@click.command("init")
@click.argument("path", required=False, type=click.Path(path_type=Path, file_okay=False))
@click.option(
    "--key", "key_name", help="Signing key name (created if missing; default $EVLEDGER_KEY)."
)
@click.option("--json", "as_json", is_flag=True, help="Print the genesis entry as JSON.")
@click.pass_context
def init_cmd(ctx: click.Context, path: Path | None, key_name: str | None, as_json: bool) -> None:
    """Create a ledger: git repository, genesis entry naming the root key, keys/, evidence/."""
    target = path or ctx.obj.get("ledger") or Path.cwd()
    ledger, genesis = init_ledger(target, key_name)
    if as_json:
        emit_json(
            {
                "ledger": str(ledger.root),
                "genesis": genesis.digest,
                "origin": genesis.predicate["origin"],
            }
        )
        return
    click.echo(f"initialised ledger {ledger.root}")
    click.echo(f"genesis {genesis.digest}")
    click.echo("pin it: evledger verify --genesis " + genesis.digest[:23])


@click.command("append")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@signing_key_option
@click.option("--json", "as_json", is_flag=True, help="Print the new entries as JSON.")
@click.pass_context
def append_cmd(
    ctx: click.Context, files: tuple[Path, ...], key_name: str | None, as_json: bool
) -> None:
    """Validate, sign and append evidence JSON (in-toto statements, legacy POC files, DSSE
    envelopes); all files in one commit, or none of them if any is bad."""
    ledger = ledger_from(ctx)
    entries = ledger.append_files(list(files), key_name=key_name)
    if as_json:
        emit_json([_summary(e) for e in entries])
        return
    for entry in entries:
        click.echo(f"appended seq {entry.seq} {entry.kind:<12} {entry.digest}")


def _summary(entry: Entry) -> dict[str, object]:
    return {
        "seq": entry.seq,
        "digest": entry.digest,
        "kind": entry.kind,
        "predicate_type": entry.predicate_type,
        "runner": entry.runner,
        "signer": entry.signer_keyids[0] if entry.signer_keyids else None,
        "time": entry.time,
        "prev": entry.prev,
    }


@click.command("log")
@click.option("--runner", help="Only entries of this runner (or legacy schema_id).")
@click.option("--kind", help="Only entries of this kind.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.pass_context
def log_cmd(ctx: click.Context, runner: str | None, kind: str | None, as_json: bool) -> None:
    """List entries: seq, digest, kind, predicate type, signer, time."""
    ledger = ledger_from(ctx)
    rows = [
        _summary(e)
        for e in ledger.entries()
        if (runner is None or e.runner == runner) and (kind is None or e.kind == kind)
    ]
    if as_json:
        emit_json(rows)
        return
    table = Table("seq", "time", "kind", "runner", "digest", "signer", box=None)
    for r in rows:
        table.add_row(
            str(r["seq"]),
            str(r["time"]),
            str(r["kind"]),
            str(r["runner"] or ""),
            str(r["digest"])[:19],
            str(r["signer"] or "")[:12],
        )
    stdout().print(table)


@click.command("show")
@click.argument("ref")
@click.option("--json", "as_json", is_flag=True, help="The entry and its statement as JSON.")
@click.pass_context
def show_cmd(ctx: click.Context, ref: str, as_json: bool) -> None:
    """Show one entry (REF: seq, digest prefix, `latest` or `RUNNER@latest`)."""
    entry = ledger_from(ctx).resolve(ref)
    doc = {**_summary(entry), "envelope": entry.envelope, "statement": entry.statement}
    if as_json:
        emit_json(doc)
        return
    from rich.syntax import Syntax

    console = stdout()
    console.print(f"[bold]seq {entry.seq}[/] {entry.kind} {entry.digest}")
    console.print(f"predicateType {entry.predicate_type}  time {entry.time}")
    console.print(Syntax(json.dumps(entry.statement, indent=2, sort_keys=True), "json"))


@click.command("checkpoint")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Also write the note here.",
)
@signing_key_option
@click.option(
    "--json", "as_json", is_flag=True, help="Print size, root (hex) and the note as JSON."
)
@click.pass_context
def checkpoint_cmd(
    ctx: click.Context, output: Path | None, key_name: str | None, as_json: bool
) -> None:
    """Sign a tree head (C2SP checkpoint) over all entries and store it in the ledger."""
    if output is not None:
        check_output_path(output, "checkpoint")
    text, cp = ledger_from(ctx).checkpoint(key_name=key_name)
    if output is not None:
        write_atomic(output, text.encode(), mode=PUBLIC_FILE_MODE)
    if as_json:
        emit_json({"size": cp.size, "root": cp.root.hex(), "origin": cp.origin, "note": text})
        return
    click.echo(text, nl=False)


COMMANDS = [init_cmd, append_cmd, log_cmd, show_cmd, checkpoint_cmd]
