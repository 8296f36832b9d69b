"""`evledger init | append | log | show | checkpoint`."""

from __future__ import annotations

import json
from pathlib import Path

import click

from evledger.cli import output as cli_output
from evledger.cli.output import (
    anchor_options,
    cell,
    emit_json,
    exit_unless_verified,
    ledger_from,
    open_view,
    plural,
    print_out,
    progress_bar,
    say,
    signing_key_option,
    table,
)
from ledger.api import init_ledger
from ledger.chain import Entry
from ledger.evidence import predicate_type_of, runner_of
from ledger.files import (
    MAX_KEY_BYTES,
    PUBLIC_FILE_MODE,
    check_output_path,
    read_regular_file,
    write_atomic,
)
from ledger.textsafe import visible_lines
from ledger.view import Excluded, VerifiedView


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
                "origin": genesis.document["predicate"]["origin"],
            }
        )
        return
    say(f"initialised ledger {ledger.root}")
    say(f"genesis {genesis.digest}")
    say("pin it: evledger verify --genesis " + genesis.digest[:23])


@click.command("append")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@signing_key_option
@click.option(
    "--signer-key",
    "signer_keys",
    multiple=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Public key (PEM) a foreign DSSE envelope must verify under; repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the new entries as JSON.")
@click.pass_context
def append_cmd(
    ctx: click.Context,
    files: tuple[Path, ...],
    key_name: str | None,
    signer_keys: tuple[Path, ...],
    as_json: bool,
) -> None:
    """Validate, sign and append evidence JSON (in-toto statements, legacy POC files, DSSE
    envelopes); all files in one commit, or none of them if any is bad. A foreign DSSE
    envelope must carry a signature that verifies under a --signer-key or a key this ledger
    trusts; the import records which."""
    ledger = ledger_from(ctx)
    pems = [read_regular_file(p, max_bytes=MAX_KEY_BYTES, what="signer key") for p in signer_keys]
    entries = ledger.append_files(list(files), key_name=key_name, signer_keys=pems)
    if as_json:
        emit_json([_summary(e) for e in entries])
        return
    for entry in entries:
        say(f"appended seq {entry.seq} {entry.kind:<12} {entry.digest}")


def _summary(entry: Entry) -> dict[str, object]:
    """One verified entry as `log`/`append` show it: the signer is the key that verified."""
    return {
        "seq": entry.seq,
        "digest": entry.digest,
        "kind": entry.kind,
        "predicate_type": predicate_type_of(entry),
        "runner": runner_of(entry),
        "signer": entry.signer,
        "time": entry.time,
        "prev": entry.prev,
        "verified": entry.signer is not None,
    }


def _excluded_row(view: VerifiedView, x: Excluded) -> dict[str, object]:
    digests = view.report.digests
    return {
        "seq": x.seq,
        "digest": digests[x.seq] if x.seq < len(digests) else None,
        "verified": False,
        "codes": list(x.codes),
        "message": x.message,
    }


@click.command("log")
@click.option("--runner", help="Only entries of this runner (or legacy schema_id).")
@click.option("--kind", help="Only entries of this kind.")
@anchor_options
@click.option("--json", "as_json", is_flag=True, help="One JSON array on stdout.")
@click.pass_context
def log_cmd(
    ctx: click.Context,
    runner: str | None,
    kind: str | None,
    trusted: tuple[Path, ...],
    genesis: str | None,
    as_json: bool,
) -> None:
    """List entries after the trust line, one per line: seq, time (as signed), kind, runner,
    digest (first 19 characters), signer (first 12 characters of the keyid whose signature
    verified), then ✓ or EXCLUDED and the problem codes of an entry that does not verify
    (exit 1). `--json` adds the predicate type and the previous entry's digest, in full."""
    _, view = open_view(ctx, trusted, genesis, quiet=as_json)
    rows = [
        _summary(e)
        for e in view.entries
        if (runner is None or runner_of(e) == runner) and (kind is None or e.kind == kind)
    ]
    if runner is None and kind is None:
        rows += [_excluded_row(view, x) for x in view.excluded]
        rows.sort(key=lambda r: int(str(r["seq"])))
    if as_json:
        emit_json(rows)
        exit_unless_verified(view)
        return
    say(view.trust_line())
    grid = table("seq", "time", "kind", "runner", "digest", "signer", "")
    for r in rows:
        ok = bool(r["verified"])
        codes = "/".join(str(c) for c in r.get("codes", []))  # type: ignore[attr-defined]
        grid.add_row(
            cell(r["seq"]),
            cell(r.get("time", "")),
            cell(r.get("kind", "")),
            cell(r.get("runner") or ""),
            cell(str(r["digest"] or "")[:19]),
            cell(str(r.get("signer") or "")[:12]),
            cell("✓" if ok else f"EXCLUDED {codes}"),
        )
    print_out(grid)
    exit_unless_verified(view)


@click.command("show")
@click.argument("ref")
@anchor_options
@click.option("--json", "as_json", is_flag=True, help="The entry and its statement as JSON.")
@click.pass_context
def show_cmd(
    ctx: click.Context, ref: str, trusted: tuple[Path, ...], genesis: str | None, as_json: bool
) -> None:
    """Show one verified entry (REF: seq, digest prefix, `latest` or `RUNNER@latest`)."""
    _, view = open_view(ctx, trusted, genesis, quiet=as_json)
    entry = view.resolve(ref)
    doc = {**_summary(entry), "envelope": entry.envelope, "statement": entry.document}
    if as_json:
        emit_json(doc)
        return
    say(f"seq {entry.seq} {entry.kind} {entry.digest}")
    say(f"predicateType {entry.predicate_type}")
    say(f"time {entry.time}  signer {doc['signer'] or '-'}")
    _print_json(entry.document)


def _print_json(value: object) -> None:
    """Indented JSON, control and bidi characters shown escaped; highlighted and folded on a
    terminal (never cropped), plain lines when piped."""
    text = visible_lines(json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False))
    if not cli_output.stdout_is_tty():
        click.echo(text)
        return
    from rich.syntax import Syntax

    print_out(Syntax(text, "json", word_wrap=True, background_color="default"))


@click.group("checkpoint", invoke_without_command=True)
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
    """Sign a tree head (C2SP checkpoint) over all entries and store it in the ledger; with no
    entry since the last checkpoint, print that one and commit nothing."""
    if ctx.invoked_subcommand is not None:
        return
    if output is not None:
        check_output_path(output, "checkpoint")
    ledger = ledger_from(ctx)
    before = ledger.store.resolve()
    with progress_bar("verifying before signing", enabled=not as_json):
        text, cp = ledger.checkpoint(key_name=key_name)
    created = ledger.store.resolve() != before
    if output is not None:
        write_atomic(output, text.encode(), mode=PUBLIC_FILE_MODE)
    if as_json:
        emit_json(
            {
                "size": cp.size,
                "root": cp.root.hex(),
                "origin": cp.origin,
                "note": text,
                "created": created,
            }
        )
        return
    if not created:
        say(
            f"no new entries since checkpoint {cp.size} "
            f"({plural(cp.size, 'entry', 'entries')}); nothing committed",
            err=True,
        )
    click.echo(visible_lines(text.rstrip("\n")))


@checkpoint_cmd.command("cosign")
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path, dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the cosigned note as JSON.")
@click.pass_context
def checkpoint_cosign_cmd(ctx: click.Context, files: tuple[Path, ...], as_json: bool) -> None:
    """Attach witness cosignatures (cosigned notes or bare signature lines) to the newest
    stored checkpoint note."""
    note, added = ledger_from(ctx).attach_cosignatures(list(files))
    if as_json:
        emit_json({"added": added, "note": note})
        return
    note_line = f"attached {plural(added, 'signature line')}"
    cli_output.note(note_line)
    click.echo(visible_lines(note.rstrip("\n")))


COMMANDS = [init_cmd, append_cmd, log_cmd, show_cmd, checkpoint_cmd]
