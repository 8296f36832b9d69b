"""Portable evidence bundles: export entries with Merkle inclusion proofs against a signed
checkpoint, and import them after verifying everything offline.

A bundle is one JSON document (`FORMAT`): the origin, the newest checkpoint note covering the
entries (with the witness cosignatures the ledger holds), the genesis entry and every
key-add/key-revoke entry below the checkpoint size (the complete trust history), the exported
entries (raw canonical bytes, base64), each with its inclusion proof, consistency proofs from
every earlier stored checkpoint to this one, and the public keys. Import checks all of it and
refuses the whole bundle on the first problem (`BundleRefused.code` names it); only then are
the exported entries appended as `import` entries (envelope verbatim).

The checkpoint note binds the digest of the key-entry history below its size (its
`evledger-trust` line), so a bundle that leaves a revocation out no longer matches the note;
the note must be signed by a key holding the checkpoint role at that size. A key that could
sign checkpoints can still sign a forked tree: only witness cosignatures (`--witness ...
--quorum K`) stop that. An origin, once imported, is bound to its genesis and checkpoints: a
later bundle must be consistent with the newest one imported, else `split-view`.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import schemas
from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger, Prepared
from ledger.canonical import canonical_bytes, digest_bytes, is_canonical, loads_strict
from ledger.chain import Entry, parse_entry
from ledger.envelope import b64decode, pae
from ledger.errors import InputError, UsageError, VerificationFailed
from ledger.files import PUBLIC_FILE_MODE, check_output_path, read_json_file, write_atomic
from ledger.keys import keyid_of, load_public_pem, verify_signature
from ledger.statement import Import
from ledger.trust import (
    TrustError,
    TrustState,
    apply_trust_entry,
    check_trust_binding,
    checkpoint_signers,
    genesis_trust,
    valid_signers,
)
from ledger.verify import stored_checkpoints
from ledger.view import TrustAnchor

FORMAT = "https://evledger.dev/bundle/v1"
TRUST_KINDS = ("key-add", "key-revoke")
IMPORTABLE_KINDS = ("evidence", "reproduction", "import", "policy")


# ----------------------------------------------------------------------------- export


def _item(entry: Entry, leaves: list[bytes]) -> dict[str, Any]:
    proof = merkle.inclusion_proof(leaves, entry.seq)
    return {
        "seq": entry.seq,
        "digest": entry.digest,
        "raw": base64.b64encode(entry.raw).decode("ascii"),
        "proof": [h.hex() for h in proof],
    }


def build_bundle(
    ledger: Ledger, refs: list[str], anchor: TrustAnchor | None = None
) -> dict[str, Any]:
    """The bundle for entries `refs`, proven against the newest stored checkpoint; the ledger
    must verify under `anchor` (the exporter's pins)."""
    if not refs:
        raise UsageError("name at least one entry to export")
    view = ledger.view(anchor)
    if not view.ok:  # a bundle vouches for the ledger it comes from: only a clean one
        raise VerificationFailed(f"refusing to export: {view.trust_line()}")
    chosen = {e.seq: e for e in (view.resolve(r) for r in refs)}
    return assemble_bundle(ledger, view.entries, chosen)


def assemble_bundle(
    ledger: Ledger, entries: list[Entry], chosen: dict[int, Entry]
) -> dict[str, Any]:
    """The bundle document for `chosen` among `entries`, proven against the newest stored
    checkpoint (`build_bundle` passes verified entries only; tests play forgers with it)."""
    checkpoints = stored_checkpoints(ledger.store, "HEAD")
    if not checkpoints:
        raise UsageError("the ledger has no checkpoint; run `evledger checkpoint` first")
    size, note = checkpoints[-1]
    late = sorted(s for s in chosen if s >= size)
    if late:
        raise UsageError(
            f"seq {late[0]} is not covered by the newest checkpoint (size {size}); "
            "run `evledger checkpoint` first"
        )
    cp, _ = notes.parse_note(note)
    entries = [e for e in entries if e.seq < size]
    leaves = [merkle.leaf_hash(digest_bytes(e.digest)) for e in entries]
    if len(leaves) != size or merkle.root(leaves) != cp.root:
        raise UsageError(f"checkpoint {size} does not match the entries; run `evledger verify`")
    genesis = entries[0]
    trust_entries = [e for e in entries if e.kind in TRUST_KINDS]
    keys = [_public(genesis.predicate.to_dict()["root_key"])]
    keys += [_public(e.predicate.to_dict()["key"]) for e in trust_entries if e.kind == "key-add"]
    consistency = []
    for old_size, old_note in checkpoints[:-1]:
        try:
            old_cp, _ = notes.parse_note(old_note)
        except notes.CheckpointError:
            continue
        if 0 < old_size < size and old_cp.size == old_size:
            proof = merkle.consistency_proof(leaves, old_size)
            consistency.append(
                {"size": old_size, "root": old_cp.root.hex(), "proof": [h.hex() for h in proof]}
            )
    return {
        "format": FORMAT,
        "origin": cp.origin,
        "checkpoint": {"size": size, "note": note},
        "genesis": _item(genesis, leaves),
        "trust_entries": [_item(e, leaves) for e in trust_entries],
        "entries": [_item(chosen[s], leaves) for s in sorted(chosen)],
        "consistency": consistency,
        "keys": sorted(keys, key=lambda k: k["keyid"]),
    }


def _public(key_doc: dict[str, Any]) -> dict[str, Any]:
    return {k: key_doc[k] for k in ("keyid", "name", "public_key")}


def export_bundle(
    ledger: Ledger, refs: list[str], output: Path, anchor: TrustAnchor | None = None
) -> dict[str, Any]:
    """Write the bundle for `refs` to `output` (atomically); return it."""
    check_output_path(output, "bundle")
    bundle = build_bundle(ledger, refs, anchor)
    write_atomic(output, canonical_bytes(bundle), mode=PUBLIC_FILE_MODE)
    return bundle


# ----------------------------------------------------------------------------- verify


class BundleRefused(InputError):  # noqa: N818 - an outcome with a reason, exit 2
    """The bundle failed a check; nothing was appended. `code` is a stable problem code."""

    def __init__(self, message: str, *, code: str = "bad-bundle", path: Path | None = None) -> None:
        super().__init__(message, path=path)
        self.code = code


@dataclass
class VerifiedBundle:
    """A bundle that passed every check."""

    origin: str
    checkpoint: notes.Checkpoint
    genesis: Entry
    entries: list[Entry]
    trust: TrustState
    signers: dict[int, str] = field(default_factory=dict)
    anchor: str = "bundle genesis (unpinned)"
    note: str = ""
    cosigners: list[str] = field(default_factory=list)
    consistency: dict[int, tuple[bytes, list[bytes]]] = field(default_factory=dict)


def read_bundle(path: Path) -> dict[str, Any]:
    """Read a bundle file: no symlinks, at most 64 MiB, strict JSON."""
    doc = read_json_file(path, what="bundle")
    if not isinstance(doc, dict):
        raise InputError("not a bundle (not a JSON object)", path=path)
    return doc


def _refuse(message: str, path: Path | None, code: str = "bad-bundle") -> BundleRefused:
    return BundleRefused(f"bundle refused ({code}): {message}", code=code, path=path)


def _entry(item: Any, what: str, size: int, root: bytes, path: Path | None) -> Entry:
    """Decode one bundle item and check its bytes, digest, seq and inclusion proof."""
    if not isinstance(item, dict):
        raise _refuse(f"{what} is not an object", path)
    raw_b64, proof = item.get("raw"), item.get("proof")
    if not isinstance(raw_b64, str):
        raise _refuse(f"{what} has no raw entry bytes", path)
    if not isinstance(proof, list):
        raise _refuse(f"{what} has no inclusion proof", path)
    try:
        raw = base64.b64decode(raw_b64.encode("ascii"), validate=True)
        hashes = [bytes.fromhex(h) for h in proof]
    except (binascii.Error, ValueError, TypeError, UnicodeEncodeError) as e:
        raise _refuse(f"{what}: undecodable raw bytes or proof ({e})", path) from e
    try:
        entry = parse_entry(raw)
        doc = loads_strict(raw)
    except (ValueError, InputError) as e:
        raise _refuse(f"{what} is not an entry: {e}", path) from e
    if item.get("digest") != entry.digest:
        raise _refuse(f"{what}: digest {item.get('digest')} ≠ sha256 of its bytes", path)
    if item.get("seq") != entry.seq:
        raise _refuse(f"{what}: says seq {item.get('seq')}, entry holds seq {entry.seq}", path)
    if not is_canonical(raw, doc) or not schemas.is_valid("entry.v1.schema.json", doc):
        raise _refuse(f"{what} (seq {entry.seq}) is not a canonical, well-formed entry", path)
    try:
        merkle.verify_inclusion(
            merkle.leaf_hash(digest_bytes(entry.digest)), entry.seq, size, hashes, root
        )
    except merkle.ProofError as e:
        raise _refuse(f"{what} (seq {entry.seq}): inclusion proof fails: {e}", path) from e
    try:
        binding = entry.predicate.binding
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(f"{what} (seq {entry.seq}): unreadable statement", path) from e
    if binding is None or (binding.seq, binding.prev, binding.kind) != (
        entry.seq,
        entry.prev,
        entry.kind,
    ):
        raise _refuse(f"seq {entry.seq}: signed seq/prev/kind differ from the entry's", path)
    return entry


def _signed_by(entry: Entry, trust: TrustState, path: Path | None) -> str:
    """Keyid of an evidence key trusted at the entry's seq whose signature verifies, or refuse."""
    env = entry.envelope
    try:
        message = pae(env["payloadType"], b64decode(env["payload"]))
        sigs = list(env["signatures"])
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(f"seq {entry.seq}: unreadable envelope ({e})", path) from e
    seen = []
    for sig in sigs:
        keyid = sig.get("keyid", "") if isinstance(sig, dict) else ""
        status = trust.status(keyid, entry.seq)
        seen.append(f"{keyid[:16] or '(none)'}… {status}")
        if status != "trusted":
            continue
        try:
            raw = b64decode(sig["sig"])
        except (KeyError, TypeError, ValueError):
            continue
        if not verify_signature(trust.keys[keyid].public_key, raw, message):
            raise _refuse(
                f"seq {entry.seq}: signature by {keyid[:16]}… does not verify",
                path,
                "bad-signature",
            )
        if entry.seq == 0 or trust.has_role(keyid, "evidence", entry.seq):
            return str(keyid)
        seen[-1] += " without the evidence role"
    code = "wrong-role" if any("role" in s for s in seen) else "untrusted-key"
    if any(s.endswith("revoked") for s in seen):
        code = "revoked-key"
    raise _refuse(
        f"seq {entry.seq}: not signed by a key trusted at that seq ({', '.join(seen)})", path, code
    )


def verify_bundle(
    doc: dict[str, Any],
    *,
    pinned: list[bytes] | None = None,
    witnesses: list[Any] | None = None,
    quorum: int = 0,
    genesis_pin: str | None = None,
    path: Path | None = None,
) -> VerifiedBundle:
    """Check a bundle completely (see module docstring); raise BundleRefused on any problem.

    `witnesses` (Ed25519 public keys) and `quorum`: the note must carry valid cosignatures
    by at least `quorum` distinct ones of them.
    """
    if doc.get("format") != FORMAT:
        raise _refuse(f"unknown format {doc.get('format')!r} (want {FORMAT})", path)
    cp_doc = doc.get("checkpoint")
    if not isinstance(cp_doc, dict) or not isinstance(cp_doc.get("note"), str):
        raise _refuse("no checkpoint note", path)
    note = cp_doc["note"]
    try:
        cp, _ = notes.parse_note(note)
    except notes.CheckpointError as e:
        raise _refuse(f"checkpoint note: {e}", path, "bad-checkpoint") from e
    if cp_doc.get("size") != cp.size:
        raise _refuse(f"checkpoint says size {cp_doc.get('size')}, note holds {cp.size}", path)
    genesis = _entry(doc.get("genesis"), "genesis", cp.size, cp.root, path)
    if genesis.seq != 0 or genesis.kind != "genesis":
        raise _refuse("the genesis item is not a seq-0 genesis entry", path, "no-genesis")
    if genesis_pin and not genesis.digest.startswith(genesis_pin):
        raise _refuse(
            f"genesis is {genesis.digest}, pinned {genesis_pin}", path, "genesis-mismatch"
        )
    origin = genesis.predicate.to_dict().get("origin")
    if origin != cp.origin or doc.get("origin") != cp.origin:
        raise _refuse(f"origin {doc.get('origin')!r} ≠ genesis/checkpoint origin", path)
    try:
        trust = genesis_trust(genesis.predicate.to_dict(), genesis.digest)
    except (KeyError, TypeError, ValueError) as e:
        raise _refuse(f"genesis root key unusable: {e}", path) from e
    _signed_by(genesis, trust, path)
    signers: dict[int, str] = {}
    trust_items = doc.get("trust_entries", [])
    if not isinstance(trust_items, list):
        raise _refuse("trust_entries is not a list", path)
    last = 0
    for i, item in enumerate(trust_items):
        entry = _entry(item, f"trust entry {i}", cp.size, cp.root, path)
        if entry.kind not in TRUST_KINDS or entry.seq <= last:
            raise _refuse(f"trust entry {i} is not a key entry in seq order", path)
        last = entry.seq
        root_signers = sorted(valid_signers(entry.envelope, trust, entry.seq, "root"))
        try:
            apply_trust_entry(
                trust, entry.kind, entry.predicate.to_dict(), entry.envelope, entry.seq
            )
        except TrustError as e:
            raise _refuse(str(e), path, e.code) from e
        trust.history.append((entry.seq, entry.digest))
        signers[entry.seq] = root_signers[0]
    _check_keys(doc.get("keys"), trust, path)
    anchor = _check_note(note, cp, trust, genesis, pinned or [], path)
    cosigners = _check_quorum(note, witnesses or [], quorum, path)
    if quorum:
        anchor += f", {len(cosigners)} of quorum {quorum} witnesses"
    items = doc.get("entries")
    if not isinstance(items, list) or not items:
        raise _refuse("no entries", path)
    entries = []
    for i, item in enumerate(items):
        entry = _entry(item, f"entry {i}", cp.size, cp.root, path)
        signers[entry.seq] = _signed_by(entry, trust, path)
        entries.append(entry)
    try:
        check_trust_binding(cp, trust)
    except TrustError as e:
        raise _refuse(str(e), path, e.code) from e
    bundle = VerifiedBundle(str(origin), cp, genesis, entries, trust, signers, anchor, note)
    bundle.cosigners = cosigners
    bundle.consistency = _consistency_items(doc.get("consistency", []), path)
    return bundle


def _consistency_items(items: Any, path: Path | None) -> dict[int, tuple[bytes, list[bytes]]]:
    """{old size: (old root, proof)} from the bundle (checked on import against what it knows)."""
    if not isinstance(items, list):
        raise _refuse("consistency is not a list", path)
    out: dict[int, tuple[bytes, list[bytes]]] = {}
    for item in items:
        try:
            size, root = int(item["size"]), bytes.fromhex(item["root"])
            out[size] = (root, [bytes.fromhex(h) for h in item["proof"]])
        except (KeyError, TypeError, ValueError) as e:
            raise _refuse(f"unreadable consistency proof: {e}", path) from e
    return out


def _check_quorum(note: str, witnesses: list[Any], quorum: int, path: Path | None) -> list[str]:
    """Names of the distinct named witnesses whose cosignature verifies; refuse below quorum."""
    if quorum > len(witnesses):
        raise UsageError(f"--quorum {quorum} needs at least {quorum} --witness keys")
    try:
        found = notes.verify_cosignatures(note, witnesses) if witnesses else []
    except notes.CheckpointError as e:
        raise _refuse(str(e), path, "bad-checkpoint") from e
    if len(found) < quorum:
        raise _refuse(
            f"checkpoint has {len(found)} valid cosignatures by the named witnesses, "
            f"quorum is {quorum}",
            path,
            "quorum-not-met",
        )
    return [c.name for c in found]


def _check_keys(keys: Any, trust: TrustState, path: Path | None) -> None:
    """Every public key the bundle lists must be one its trust entries establish."""
    if not isinstance(keys, list):
        raise _refuse("keys is not a list", path)
    for k in keys:
        try:
            keyid = keyid_of(load_public_pem(k["public_key"]))
        except (KeyError, TypeError, InputError, ValueError) as e:
            raise _refuse(f"unusable public key in keys: {e}", path) from e
        if keyid != k.get("keyid") or keyid not in trust.keys:
            raise _refuse(
                f"unknown key {str(k.get('keyid'))[:16]}…: not established by the bundle's "
                "genesis and key entries",
                path,
            )


def _check_note(
    note: str,
    cp: notes.Checkpoint,
    trust: TrustState,
    genesis: Entry,
    pinned: list[bytes],
    path: Path | None,
) -> str:
    """Verify the checkpoint signature by a checkpoint-role key; return the trust anchor."""
    try:
        signers = checkpoint_signers(note, trust, cp.size)
    except TrustError as e:
        raise _refuse(f"checkpoint signature: {e}", path, e.code) from e
    if not pinned:
        return "bundle genesis (unpinned)"
    pinned_ids = {keyid_of(load_public_pem(p)) for p in pinned}
    if genesis.predicate.to_dict()["root_key"]["keyid"] in pinned_ids:
        return "pinned genesis root key"
    if any(r.keyid in pinned_ids for r in signers):
        return "checkpoint signed by a pinned key"
    raise _refuse(
        "neither the checkpoint signer nor the genesis root key is a --trusted-key",
        path,
        "untrusted-key",
    )


# ----------------------------------------------------------------------------- import


@dataclass
class ImportResult:
    """What `import` appended and what it skipped."""

    bundle: VerifiedBundle
    appended: list[Entry]
    skipped: list[tuple[int, str]]

    def to_json(self) -> dict[str, Any]:
        """The `import --json` document."""
        return {
            "origin": self.bundle.origin,
            "checkpoint": {
                "size": self.bundle.checkpoint.size,
                "root": self.bundle.checkpoint.root.hex(),
            },
            "trust_anchor": self.bundle.anchor,
            "appended": [
                {"seq": e.seq, "digest": e.digest, "source": e.document["predicate"]["source"]}
                for e in self.appended
            ],
            "skipped": [{"seq": s, "reason": r} for s, r in self.skipped],
        }


def import_statement(bundle: VerifiedBundle, entry: Entry) -> dict[str, Any]:
    """The `import` statement carrying one foreign entry's envelope verbatim."""
    signer = bundle.trust.keys[bundle.signers[entry.seq]]
    subject = [s.to_dict() for s in entry.subjects] or [
        {"name": f"{bundle.origin}#{entry.seq}", "digest": {"sha256": entry.digest[7:]}}
    ]
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": subject,
        "predicateType": schemas.predicate_type("import"),
        "predicate": {
            "envelope": entry.envelope,
            "source": {
                "origin": bundle.origin,
                "seq": entry.seq,
                "prev": entry.prev,
                "kind": entry.kind,
                "digest": entry.digest,
                "genesis": bundle.genesis.digest,
                "checkpoint_size": bundle.checkpoint.size,
                "checkpoint_root": bundle.checkpoint.root.hex(),
                "trust_anchor": bundle.anchor,
            },
            "foreign_keys": [
                {"keyid": signer.keyid, "name": signer.name, "public_key": signer.pem}
            ],
        },
    }


@dataclass
class _Known:
    """What earlier imports of one origin established: its genesis and checkpoints seen."""

    genesis: str
    newest: tuple[int, bytes]
    seen: set[tuple[int, bytes]] = field(default_factory=set)


def _known_origins(ledger: Ledger) -> tuple[dict[str, _Known], set[str]]:
    """Origins imported before (genesis, checkpoints) and the foreign digests already held."""
    known: dict[str, _Known] = {}
    digests: set[str] = set()
    for e in ledger.view().entries:  # only imports that verify here vouch for an origin
        if e.kind != "import":
            continue
        src = e.predicate.to_dict().get("source", {})
        if not isinstance(src, dict) or not isinstance(src.get("digest"), str):
            continue
        digests.add(src["digest"])
        origin, genesis = src.get("origin"), src.get("genesis")
        size, root = src.get("checkpoint_size"), src.get("checkpoint_root")
        if not (isinstance(origin, str) and isinstance(genesis, str)):
            continue
        if not (isinstance(size, int) and isinstance(root, str)):
            continue
        head = (size, bytes.fromhex(root))
        k = known.setdefault(origin, _Known(genesis, head))
        k.seen.add(head)
        if size > k.newest[0]:
            k.newest = head
    return known, digests


def check_origin(bundle: VerifiedBundle, known: _Known | None, path: Path | None) -> None:
    """Refuse (`split-view`) a bundle that is not consistent with what its origin showed before."""
    if known is None:
        return
    cp, origin = bundle.checkpoint, bundle.origin
    if known.genesis != bundle.genesis.digest:
        raise _refuse(
            f"origin {origin} was imported before with another genesis ({known.genesis[:23]})",
            path,
            "split-view",
        )
    size, root = known.newest
    if cp.size == size and cp.root != root:
        raise _refuse(f"origin {origin}: a second root for checkpoint {size}", path, "split-view")
    if cp.size < size:
        if (cp.size, cp.root) not in known.seen:
            raise _refuse(
                f"origin {origin}: checkpoint {cp.size} is older than the imported {size} and "
                "was never seen; its consistency cannot be shown",
                path,
                "split-view",
            )
        return
    if cp.size > size:
        item = bundle.consistency.get(size)
        if item is None or item[0] != root:
            raise _refuse(
                f"origin {origin}: no consistency proof from the imported checkpoint {size}",
                path,
                "split-view",
            )
        try:
            merkle.verify_consistency(size, cp.size, item[1], root, cp.root)
        except merkle.ProofError as e:
            raise _refuse(
                f"origin {origin}: checkpoint {cp.size} is not consistent with the imported "
                f"checkpoint {size}: {e}",
                path,
                "split-view",
            ) from e


def import_bundle(
    ledger: Ledger,
    path: Path,
    *,
    pinned: list[bytes] | None = None,
    witnesses: list[Any] | None = None,
    quorum: int = 0,
    genesis_pin: str | None = None,
    key_name: str | None = None,
) -> ImportResult:
    """Verify a bundle offline, then append its entries as `import` entries (all or none)."""
    bundle = verify_bundle(
        read_bundle(path),
        pinned=pinned,
        witnesses=witnesses,
        quorum=quorum,
        genesis_pin=genesis_pin,
        path=path,
    )
    known, seen = _known_origins(ledger)
    check_origin(bundle, known.get(bundle.origin), path)
    prepared, skipped = [], []
    for entry in bundle.entries:
        if entry.kind not in IMPORTABLE_KINDS:
            skipped.append((entry.seq, f"{entry.kind} entries are not imported"))
        elif entry.digest in seen:
            skipped.append((entry.seq, "already imported"))
        else:
            seen.add(entry.digest)
            prepared.append(Prepared(import_statement(bundle, entry), "import", str(path)))
    for p in prepared:
        probe = {**p.statement["predicate"], "ledger": {}}
        if errs := schemas.errors("predicates/import.v1.schema.json", probe):
            raise _refuse(f"import predicate: {errs[0]}", path)
    appended = ledger.append_prepared(prepared, key_name=key_name) if prepared else []
    return ImportResult(bundle, appended, skipped)


def foreign_entry_bytes(import_entry: Entry) -> bytes | None:
    """Rebuild the foreign entry's canonical bytes from an import predicate (None if unable)."""
    pred = import_entry.predicate
    if not isinstance(pred, Import) or "kind" not in pred.source or "seq" not in pred.source:
        return None
    src = pred.source
    return canonical_bytes(
        {
            "seq": src["seq"],
            "prev": src.get("prev"),
            "kind": src["kind"],
            "envelope": dict(pred.envelope),
        }
    )


__all__ = [
    "FORMAT",
    "BundleRefused",
    "ImportResult",
    "VerifiedBundle",
    "build_bundle",
    "export_bundle",
    "foreign_entry_bytes",
    "import_bundle",
    "read_bundle",
    "verify_bundle",
]
