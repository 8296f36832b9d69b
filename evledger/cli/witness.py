"""`evledger witness init NAME | cosign LEDGER [-o FILE]`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from evledger.cli.output import emit_json, progress_bar, say
from ledger.errors import UsageError
from ledger.files import (
    MAX_KEY_BYTES,
    PUBLIC_FILE_MODE,
    check_output_path,
    read_regular_file,
    write_atomic,
)
from ledger.keys import keys_dir
from ledger.textsafe import visible_lines
from ledger.trust import TrustPolicy, load_trust_policy, load_witness_key
from ledger.witness import cosign, init_witness, load_witness


@click.group("witness")
def witness_group() -> None:
    """Cosign other ledgers' checkpoints after checking they only grew (C2SP tlog-cosignature)."""


@witness_group.command("init")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def init_cmd(name: str, as_json: bool) -> None:
    """Create witness NAME: a key NAME in the key store (share it with `keys export NAME`) and a
    state folder under $EVLEDGER_HOME/witness/NAME."""
    witness = init_witness(name)
    doc = {
        "name": witness.name,
        "keyid": witness.key.keyid,
        "vkey": witness.vkey,
        "public_key": str(keys_dir() / f"{name}.pub"),
        "state": str(witness.folder),
    }
    if as_json:
        emit_json(doc)
        return
    say(f"witness {name} {witness.key.keyid}")
    click.echo(f"verifier key {witness.vkey}")
    click.echo(f"share the public key: evledger keys export {name} > {name}.pub")


@witness_group.command("cosign")
@click.argument("ledger")
@click.option(
    "-o",
    "--output",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Write the cosigned note here (default: stdout).",
)
@click.option("--key", "key_name", help="Witness name (default: the only witness).")
@click.option("--genesis", help="The genesis digest (prefix) expected on first contact.")
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
def cosign_cmd(
    ledger: str, output: Path | None, key_name: str | None, genesis: str | None, as_json: bool
) -> None:
    """Cosign LEDGER's newest checkpoint (LEDGER: a folder, a bare repository or a git URL).

    The first time an origin is seen every entry is verified; later only the new entries are,
    and an RFC 6962 consistency proof from the last cosigned checkpoint must hold. Otherwise
    the witness refuses (exit 1) with a code: not-append-only, split-view, or a verify code.
    """
    if output is not None:
        check_output_path(output, "cosigned note")
    witness = load_witness(key_name)
    with progress_bar("witness", enabled=not as_json) as update:
        result = cosign(witness, ledger, genesis_pin=genesis, progress=update)
    if output is not None:
        write_atomic(output, result.note.encode(), mode=PUBLIC_FILE_MODE)
    if as_json:
        emit_json(result.to_json())
        return
    cp = result.checkpoint
    say(  # the origin and the note come from the ledger being witnessed: hostile
        f"cosigned {cp.origin} size {cp.size} ({result.mode}: {result.entries_checked} entries "
        f"checked, consistent with {result.old_size})",
        err=True,
    )
    if output is None:
        click.echo(visible_lines(result.note.rstrip("\n")))


COMMANDS = [witness_group]


def quorum_options(func: Any) -> Any:
    """`--witness PUB` (repeatable), `--quorum K` and `--trust-policy FILE` on a reading command."""
    func = click.option(
        "--trust-policy",
        type=click.Path(path_type=Path, dir_okay=False),
        help="TOML file naming trusted_keys, genesis, witnesses and quorum.",
    )(func)
    func = click.option(
        "--quorum",
        type=click.IntRange(min=0),
        help="Valid cosignatures needed from the --witness keys (default 1 if any are named).",
    )(func)
    return click.option(
        "--witness",
        "witness_keys",
        multiple=True,
        type=click.Path(path_type=Path, dir_okay=False),
        help="Witness public key (PEM or verifier-key file; repeatable).",
    )(func)


def trust_policy_from(
    trusted: tuple[Path, ...],
    witness_keys: tuple[Path, ...],
    quorum: int | None,
    trust_policy: Path | None,
    genesis: str | None = None,
) -> TrustPolicy:
    """Merge command-line pins and witnesses with an optional trust policy file."""
    base = load_trust_policy(trust_policy) if trust_policy else TrustPolicy()
    pinned = base.pinned_keys + tuple(
        read_regular_file(p, max_bytes=MAX_KEY_BYTES, what="trusted key") for p in trusted
    )
    witnesses = base.witnesses + tuple(
        load_witness_key(read_regular_file(p, max_bytes=MAX_KEY_BYTES, what="witness"), path=p)
        for p in witness_keys
    )
    if quorum is None:
        quorum = base.quorum if base.quorum or not witness_keys else 1
    if quorum > len(witnesses):
        raise UsageError(f"--quorum {quorum} needs at least {quorum} --witness keys")
    return TrustPolicy(pinned, genesis or base.genesis, witnesses, quorum)
