"""`evledger export REF... -o BUNDLE` and `evledger import BUNDLE [--trusted-key PUB]...`."""

from __future__ import annotations

from pathlib import Path

import click

from evledger.cli.output import (
    anchor_from,
    anchor_options,
    emit_json,
    ledger_from,
    plural,
    progress_bar,
    say,
    signing_key_option,
    trusted_keys_option,
)
from evledger.cli.witness import quorum_options, trust_policy_from
from ledger.bundle import export_bundle, import_bundle
from ledger.verify import check_genesis_pin


@click.command("export")
@click.argument("refs", nargs=-1, required=True)
@click.option(
    "-o",
    "--output",
    required=True,
    type=click.Path(path_type=Path, dir_okay=False),
    help="Bundle file to write.",
)
@click.option("--json", "as_json", is_flag=True, help="Print a summary as JSON.")
@anchor_options
@click.pass_context
def export_cmd(
    ctx: click.Context,
    refs: tuple[str, ...],
    output: Path,
    as_json: bool,
    trusted: tuple[Path, ...],
    genesis: str | None,
) -> None:
    """Write entries REF... with inclusion proofs against the newest checkpoint, the checkpoint
    note, the genesis and key entries and the public keys into one JSON bundle (the ledger
    must verify first, under the pins given)."""
    anchor = anchor_from(trusted, genesis)
    with progress_bar("exporting", enabled=not as_json):
        bundle = export_bundle(ledger_from(ctx), list(refs), output, anchor)
    summary = {
        "bundle": str(output),
        "origin": bundle["origin"],
        "checkpoint_size": bundle["checkpoint"]["size"],
        "entries": [{"seq": e["seq"], "digest": e["digest"]} for e in bundle["entries"]],
        "keys": [k["keyid"] for k in bundle["keys"]],
    }
    if as_json:
        emit_json(summary)
        return
    n = len(bundle["entries"])
    say(
        f"wrote {output}: {plural(n, 'entry', 'entries')}"
        f" proven against checkpoint {bundle['checkpoint']['size']} of {bundle['origin']}"
    )


@click.command("import")
@click.argument("bundle", type=click.Path(path_type=Path, dir_okay=False))
@trusted_keys_option(
    "Public key (PEM) that must anchor the bundle (its genesis root or checkpoint signer)."
)
@click.option("--genesis", help="Pin the bundle's genesis digest (sha256:<hex> or a prefix).")
@quorum_options
@signing_key_option
@click.option("--json", "as_json", is_flag=True, help="One JSON document on stdout.")
@click.pass_context
def import_cmd(
    ctx: click.Context,
    bundle: Path,
    trusted: tuple[Path, ...],
    genesis: str | None,
    witness_keys: tuple[Path, ...],
    quorum: int | None,
    trust_policy: Path | None,
    key_name: str | None,
    as_json: bool,
) -> None:
    """Verify a bundle offline (checkpoint signature, inclusion proofs, entry signatures by keys
    trusted at their seq, digests) and append its entries as `import` entries; a bundle that
    fails any check is refused whole (exit 2) and nothing is appended. With --witness and
    --quorum K the checkpoint must carry K valid cosignatures by the named witnesses; a bundle
    of an origin imported before must be consistent with it (else split-view)."""
    policy = trust_policy_from(trusted, witness_keys, quorum, trust_policy, genesis)
    check_genesis_pin(policy.genesis)
    with progress_bar("importing", enabled=not as_json):
        result = import_bundle(
            ledger_from(ctx),
            bundle,
            pinned=list(policy.pinned_keys),
            witnesses=list(policy.witnesses),
            quorum=policy.quorum,
            genesis_pin=policy.genesis,
            key_name=key_name,
        )
    if as_json:
        emit_json(result.to_json())
        return
    say(
        f"verified bundle from {result.bundle.origin} "
        f"(checkpoint {result.bundle.checkpoint.size}, trust: {result.bundle.anchor})"
    )
    for e in result.appended:
        src = e.document["predicate"]["source"]
        say(f"appended seq {e.seq} import {e.digest} <- {src['origin']}#{src['seq']}")
    for seq, reason in result.skipped:
        say(f"skipped foreign seq {seq}: {reason}")


COMMANDS = [export_cmd, import_cmd]
