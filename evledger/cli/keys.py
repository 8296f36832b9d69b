"""`evledger keys generate | list | export | trust | revoke`."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import emit_json, ledger_from, say
from ledger import keys as keystore
from ledger.errors import InputError
from ledger.files import MAX_KEY_BYTES, read_regular_file
from ledger.trust import ROLES


@click.group("keys")
def keys_group() -> None:
    """Manage signing keys ($EVLEDGER_HOME/keys) and the ledger's trusted key set."""


@keys_group.command("generate")
@click.argument("name")
@click.option("--json", "as_json", is_flag=True)
def generate_cmd(name: str, as_json: bool) -> None:
    """Create an Ed25519 key pair (mode 0600; encrypted if EVLEDGER_PASSPHRASE is set)."""
    key = keystore.generate_key(name)
    if as_json:
        emit_json({"name": key.name, "keyid": key.keyid, "dir": str(keystore.keys_dir())})
        return
    say(f"{key.name} {key.keyid}")


@keys_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@click.pass_context
def list_cmd(ctx: click.Context, as_json: bool) -> None:
    """Local private keys, and (inside a ledger) the keys it trusts."""
    local = [{"name": n, "keyid": k} for n, k in keystore.list_keys()]
    trusted = None
    try:
        trusted = ledger_from(ctx).verify().trusted_keys
    except Exception:
        trusted = None
    if as_json:
        emit_json({"local": local, "ledger": trusted})
        return
    for k in local:
        say(f"local   {k['name']:<20} {k['keyid']}")
    for t in trusted or []:
        state = f"revoked at {t['revoked_seq']}" if t["revoked_seq"] is not None else "trusted"
        roles = ",".join(t.get("roles", []))
        say(f"ledger  {t['name']:<20} {t['keyid']}  since {t['added_seq']}  {state}  {roles}")


@keys_group.command("export")
@click.argument("name")
def export_cmd(name: str) -> None:
    """Print a key's public PEM (never the private key)."""
    path = keystore.keys_dir() / f"{keystore.check_name(name)}.pub"
    if not path.is_file():
        raise InputError("no such public key", path=path)
    click.echo(path.read_text(), nl=False)


@keys_group.command("trust")
@click.argument("pubfile", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--name", help="Name for the key (default: the file's stem).")
@click.option("--key", "key_name", help="Root key that signs the key-add entry.")
@click.option(
    "--role",
    "roles",
    multiple=True,
    type=click.Choice(ROLES),
    help="Role of the new key (repeatable; default evidence).",
)
@click.option(
    "--also-sign",
    multiple=True,
    metavar="NAME",
    help="Another root key that signs too (repeatable; for a root threshold above one).",
)
@click.option(
    "--root-threshold",
    type=click.IntRange(min=1),
    help="From the next entry on, trust changes need this many distinct root signatures.",
)
@click.pass_context
def trust_cmd(
    ctx: click.Context,
    pubfile: Path,
    name: str | None,
    key_name: str | None,
    roles: tuple[str, ...],
    also_sign: tuple[str, ...],
    root_threshold: int | None,
) -> None:
    """Append a key-add entry: the key holds its roles from the next entry on."""
    pem = read_regular_file(pubfile, max_bytes=MAX_KEY_BYTES, what="public key")
    entry = ledger_from(ctx).add_key(
        pem,
        name or pubfile.stem,
        key_name=key_name,
        roles=roles or ("evidence",),
        also_sign=also_sign,
        root_threshold=root_threshold,
    )
    shown = ",".join(entry.predicate.to_dict()["key"]["roles"])
    say(f"trusted {name or pubfile.stem} ({shown}) at seq {entry.seq} ({entry.digest})")


@keys_group.command("revoke")
@click.argument("keyid")
@click.option("--reason", required=True, help="Why the key is revoked (recorded in the entry).")
@click.option("--key", "key_name", help="Root key that signs the key-revoke entry.")
@click.option("--also-sign", multiple=True, metavar="NAME", help="Another root key that signs.")
@click.pass_context
def revoke_cmd(
    ctx: click.Context, keyid: str, reason: str, key_name: str | None, also_sign: tuple[str, ...]
) -> None:
    """Append a key-revoke entry: later signatures by KEYID (or a unique prefix) are rejected."""
    entry = ledger_from(ctx).revoke_key(keyid, reason, key_name=key_name, also_sign=also_sign)
    say(f"revoked {keyid} at seq {entry.seq} ({entry.digest})")


COMMANDS = [keys_group]
