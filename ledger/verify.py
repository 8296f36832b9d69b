"""Offline verification of a whole ledger: bytes, digests, chain, signatures, trust, schema,
Merkle root against the stored checkpoints, and (with `since`) append-only growth.

Findings are data: `verify()` returns a `Report` whose `problems` each name a seq and a
stable code; it raises only when the ledger cannot be read at all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import orjson

import schemas
from ledger import checkpoint as notes
from ledger import merkle
from ledger.canonical import is_canonical
from ledger.chain import Entry, entry_from_doc, parse_entry
from ledger.envelope import b64decode_canonical, pae, verify_foreign
from ledger.errors import UsageError
from ledger.keys import keyid_of, load_public_pem, verify_signature
from ledger.statement import Genesis, Import
from ledger.store import ENTRY_DIR, Store, UnreadableObject, entry_path, seq_from_path
from ledger.trust import (
    TRUST_EXTENSION,
    TrustError,
    TrustState,
    apply_trust_entry,
    check_trust_binding,
    checkpoint_signers,
    genesis_trust,
    valid_signers,
)

ProgressFn = Callable[[int, int], None]
CHECKPOINT_DIR = "checkpoints"
STATE_EXTENSION = "evledger-state"

#: stable problem codes and what they mean (shown by `verify --help` and the TUI)
CODES = {
    "bad-entry": "the entry file is not a well-formed entry",
    "unreadable-object": "the entry's git object is missing or corrupt (run `git fsck`)",
    "not-canonical": "the entry bytes are not RFC 8785 canonical JSON",
    "schema": "the entry, statement or predicate does not match its JSON Schema",
    "out-of-order": "the entry's own seq differs from its position in the ledger",
    "missing-entry": "an entry is missing from the sequence",
    "stray-file": "a file under evidence/ is not an entry",
    "chain-break": "prev is not the digest of the entry before",
    "binding-mismatch": "the signed statement names another seq, prev or kind than the entry",
    "bad-signature": "a trusted key's signature does not verify",
    "unverifiable-signature": "a signature could not be checked (malformed)",
    "untrusted-key": "signed by a key not trusted at that seq",
    "revoked-key": "signed by a key revoked before that seq",
    "no-genesis": "the ledger does not start with a genesis entry",
    "genesis-mismatch": "the genesis entry is not the pinned one",
    "bad-trust-entry": "a key-add or key-revoke entry could not be applied",
    "checkpoint-mismatch": "a stored checkpoint's tree does not match the entries",
    "bad-checkpoint": "a checkpoint note is malformed or its signature does not verify",
    "not-append-only": "the ledger is not an extension of the checkpoint the reviewer kept",
    "not-reproduced": "re-running the claim's runner gave other figures (verify --reproduce)",
    "extra-signature": "a signature beside the valid one is not a valid signature of a trusted key",
    "unverified-import": "an import entry names no foreign key its envelope was verified with",
    "bad-import-signature": "the imported envelope does not verify under the key recorded for it",
    "wrong-role": "signed by a key that does not hold the role this entry or checkpoint needs",
    "threshold-not-met": "a trust change has fewer distinct root signatures than the threshold",
    "trust-mismatch": "a checkpoint binds another key-entry history than the ledger holds",
    "quorum-not-met": "the checkpoint has fewer valid witness cosignatures than the quorum",
    "split-view": "two checkpoints of one origin that are not consistent with each other",
    "not-witnessed": "the entry is past the newest checkpoint with the witness quorum",
}

#: codes that condemn the entry they name: such an entry is excluded from every verdict.
#: (The others describe the ledger: a stray file, a gap, a checkpoint that does not match.)
ENTRY_CODES = frozenset(CODES) - {
    "missing-entry",
    "stray-file",
    "checkpoint-mismatch",
    "bad-checkpoint",
    "not-reproduced",
    "trust-mismatch",
    "quorum-not-met",
    "split-view",
    "not-witnessed",
}


@dataclass(frozen=True)
class Problem:
    """One finding: which entry, a stable code, a human message."""

    seq: int | None
    code: str
    message: str


@dataclass
class Report:
    """The outcome of verifying a ledger."""

    entries: int = 0
    problems: list[Problem] = field(default_factory=list)
    trusted_keys: list[dict[str, Any]] = field(default_factory=list)
    root: str = ""
    genesis: str | None = None
    origin: str | None = None
    """The origin the genesis entry names (every checkpoint must carry it)."""
    trust_anchor: str = "ledger genesis (unpinned)"
    checkpoints: int = 0
    since: dict[str, Any] | None = None
    reproduced: dict[str, Any] | None = None
    verified_entries: int = 0
    digests: list[str] = field(default_factory=list, repr=False)
    frontier: list[str] = field(default_factory=list, repr=False)
    signers: dict[int, str] = field(default_factory=dict, repr=False)
    trust: TrustState | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """True when no problem was found."""
        return not self.problems

    def add(self, seq: int | None, code: str, message: str) -> None:
        """Record a problem."""
        self.problems.append(Problem(seq, code, message))

    def to_json(self) -> dict[str, Any]:
        """The `verify --json` document."""
        return {
            "ok": self.ok,
            "entries": self.entries,
            "verified_entries": self.verified_entries,
            "root": self.root,
            "genesis": self.genesis,
            "trust_anchor": self.trust_anchor,
            "trusted_keys": self.trusted_keys,
            "checkpoints": self.checkpoints,
            "since": self.since,
            "reproduced": self.reproduced,
            "problems": [asdict(p) for p in self.problems],
        }


@dataclass
class _State:
    """What the verifier carries from one entry to the next."""

    trust: TrustState
    frontier: merkle.Frontier
    prev_digest: str | None
    expected_seq: int
    roots: dict[int, bytes] = field(default_factory=dict)


class Verifier:
    """Checks entries in seq order; usable for a whole ledger or for a suffix of it."""

    def __init__(
        self,
        report: Report,
        *,
        pinned: list[Any] | None = None,
        genesis: str | None = None,
        watch_sizes: set[int] | None = None,
    ) -> None:
        self.report = report
        self.pinned = {k for k in (pinned or [])}
        self.pinned_genesis = genesis
        self.watch_sizes = watch_sizes or set()
        self._decoded: tuple[Entry, bytes] | None = None
        """The entry whose payload was just decoded, and its bytes (decoded once per entry)."""

    # ------------------------------------------------------------ per entry
    def check(self, raw: bytes, path_seq: int, state: _State) -> Entry | None:
        """Verify one entry's bytes at position `path_seq` and advance the state.

        Returns the parsed entry (statement decoded, `signer` set) when it verified without a
        problem of its own, else None.
        """
        report = self.report
        before = len(report.problems)
        if isinstance(raw, UnreadableObject):
            report.add(path_seq, "unreadable-object", f"git object {raw.sha}: {raw.reason}")
        digest = "sha256:" + hashlib.sha256(raw).hexdigest()
        report.digests.append(digest)
        state.frontier.append(merkle.leaf_hash(bytes.fromhex(digest[7:])))
        if state.frontier.size in self.watch_sizes:
            state.roots[state.frontier.size] = state.frontier.root()
        prev_digest, state.prev_digest = state.prev_digest, digest
        try:
            doc = orjson.loads(raw)
            entry = entry_from_doc(doc, raw, digest, entry_path(path_seq))
        except (ValueError, orjson.JSONDecodeError) as e:
            report.add(path_seq, "bad-entry", f"unreadable entry: {e}")
            return None
        if not is_canonical(raw, doc):
            report.add(path_seq, "not-canonical", "entry bytes are not RFC 8785 canonical JSON")
        if not schemas.is_valid("entry.v1.schema.json", doc):
            msg = "; ".join(schemas.errors("entry.v1.schema.json", doc)[:3])
            report.add(path_seq, "schema", f"entry: {msg}")
        if entry.seq != path_seq:
            report.add(
                path_seq, "out-of-order", f"entry says seq {entry.seq} but sits at {path_seq}"
            )
        if entry.prev != prev_digest:
            report.add(path_seq, "chain-break", f"prev {entry.prev} ≠ digest of seq {path_seq - 1}")
        statement = self._decode_statement(entry, path_seq)
        if statement is None:
            return None
        self._check_statement(entry, statement, path_seq)
        signed_ok = self._check_signature(entry, path_seq, state)
        if path_seq == 0:
            self._genesis(entry, signed_ok, state)
        elif entry.kind in ("key-add", "key-revoke") and signed_ok:
            self._apply_trust(entry, path_seq, state)
        elif signed_ok and not self._has_evidence_signer(entry, path_seq, state):
            report.add(path_seq, "wrong-role", "not signed by a key with the evidence role")
        report.verified_entries += 1
        if any(p.code in ENTRY_CODES for p in report.problems[before:]):
            return None
        entry.signer = report.signers.get(path_seq)
        return entry

    def _decode_statement(self, entry: Entry, seq: int) -> dict[str, Any] | None:
        """The signed statement, from canonical base64 of canonical JSON (else a problem)."""
        report = self.report
        try:
            payload = b64decode_canonical(entry.envelope.get("payload"))
            statement = orjson.loads(payload)
        except (ValueError, orjson.JSONDecodeError) as e:
            report.add(seq, "bad-entry", f"payload is not a JSON statement: {e}")
            return None
        if not isinstance(statement, dict):
            report.add(seq, "bad-entry", "payload is not a JSON object")
            return None
        try:
            canonical = is_canonical(payload, statement)
        except TypeError:  # orjson re-serialises 255 levels at most; no statement nests so deep
            report.add(seq, "bad-entry", "payload nests too deeply to be a statement")
            return None
        if not canonical:
            report.add(
                seq,
                "not-canonical",
                "signed payload is not RFC 8785 canonical JSON (or holds a duplicate key)",
            )
        entry.set_document(statement)
        self._decoded = (entry, payload)  # the signature check reuses the bytes
        return statement

    def _check_statement(self, entry: Entry, statement: dict[str, Any], seq: int) -> None:
        report = self.report
        if not schemas.is_valid("statement.v1.schema.json", statement):
            msg = "; ".join(schemas.errors("statement.v1.schema.json", statement)[:3])
            report.add(seq, "schema", f"statement: {msg}")
            return
        binding = statement["predicate"]["ledger"]
        if (binding["seq"], binding["prev"], binding["kind"]) != (
            entry.seq,
            entry.prev,
            entry.kind,
        ):
            report.add(seq, "binding-mismatch", "signed seq/prev/kind differ from the entry's")
        if not is_rfc3339(binding["time"]):  # the schema's "format": "date-time", enforced
            report.add(seq, "schema", "statement: ledger.time is not an RFC 3339 date-time")
        ptype = str(statement.get("predicateType", ""))
        rel = schemas.predicate_schema_path(ptype)
        if rel is None:
            report.add(seq, "schema", f"no schema for predicateType {ptype}")
        elif not schemas.is_valid(rel, statement["predicate"]):
            msg = "; ".join(schemas.errors(rel, statement["predicate"])[:3])
            report.add(seq, "schema", f"predicate: {msg}")
        if ptype == _LEGACY_TYPE:  # the schema-valid predicate read as is: verify is hot
            schema_id = str(statement["predicate"].get("schema_id"))
            legacy = schemas.legacy_schema_path(schema_id)
            document = statement["predicate"].get("document")
            if legacy is None:
                report.add(seq, "schema", f"unknown legacy schema_id {schema_id!r}")
            elif not schemas.is_valid(legacy, document):
                msg = "; ".join(schemas.errors(legacy, document)[:3])
                report.add(seq, "schema", f"legacy document: {msg}")
        if entry.kind == "import" and isinstance(entry.predicate, Import):
            self._check_import(entry.predicate, seq)

    def _check_import(self, pred: Import, seq: int) -> None:
        """The foreign envelope must verify under a key the import recorded (and signed)."""
        keys: dict[str, Any] = {}
        for doc in pred.foreign_keys:
            try:
                public = load_public_pem(doc.public_key)
            except (TypeError, ValueError):
                continue
            if keyid_of(public) == doc.keyid:
                keys[doc.keyid] = public
        if not keys:
            self.report.add(
                seq, "unverified-import", "no foreign key is recorded for the imported envelope"
            )
            return
        try:
            verify_foreign(pred.raw.get("envelope"), keys)
        except ValueError as e:
            self.report.add(seq, "bad-import-signature", f"imported envelope: {e}")

    def _check_signature(self, entry: Entry, seq: int, state: _State) -> bool:
        """True if every signature is a valid one by a distinct key trusted at `seq`.

        An entry carries only signatures that verify: any other (a junk signature, one by an
        unknown key, a second copy) would let its bytes change while it still verified.
        """
        report = self.report
        env = entry.envelope
        decoded, self._decoded = self._decoded, None
        try:
            payload = (
                decoded[1]
                if decoded is not None and decoded[0] is entry
                else b64decode_canonical(env["payload"])
            )
            message = pae(env["payloadType"], payload)
            sigs = env["signatures"]
            if not isinstance(sigs, list) or not sigs:
                raise ValueError("no signatures")
        except (KeyError, TypeError, ValueError) as e:
            report.add(seq, "unverifiable-signature", f"envelope unreadable: {e}")
            return False
        trust = self._genesis_trust(entry) if seq == 0 else state.trust
        valid: list[str] = []
        failures: list[tuple[str, str]] = []
        for item in sigs:
            keyid = item.get("keyid", "") if isinstance(item, dict) else ""
            keyid = keyid if isinstance(keyid, str) else ""
            status = trust.status(keyid, seq)
            if status != "trusted":
                failures.append((status, keyid))
                continue
            try:
                sig = b64decode_canonical(item["sig"])
            except (KeyError, TypeError, ValueError):
                failures.append(("malformed", keyid))
                continue
            if keyid in valid:
                failures.append(("duplicate", keyid))
            elif verify_signature(trust.keys[keyid].public_key, sig, message):
                valid.append(keyid)
            else:
                failures.append(("bad", keyid))
        if valid and not failures:
            report.signers[seq] = valid[0]
            return True
        statuses = {s for s, _ in failures}
        keyid = failures[0][1] if failures else ""
        short = f"{keyid[:16]}…" if keyid else "(no keyid)"
        if valid:
            report.add(
                seq,
                "extra-signature",
                f"besides a valid signature, one by {short} ({failures[0][0]})",
            )
        elif "bad" in statuses:
            report.add(seq, "bad-signature", f"signature by {short} does not verify")
        elif "malformed" in statuses:
            report.add(seq, "unverifiable-signature", "signature is not canonical base64")
        elif "revoked" in statuses:
            report.add(seq, "revoked-key", f"signed by revoked key {short}")
        else:
            report.add(seq, "untrusted-key", f"signed by untrusted key {short}")
        return False

    def _has_evidence_signer(self, entry: Entry, seq: int, state: _State) -> bool:
        """True if a key with the evidence role at `seq` signed (rechecks only when needed)."""
        if state.trust.has_role(self.report.signers.get(seq, ""), "evidence", seq):
            return True
        return bool(valid_signers(entry.envelope, state.trust, seq, "evidence"))

    def _genesis_trust(self, entry: Entry) -> TrustState:
        """The trust a genesis entry is checked against: its own root key (self-signed)."""
        try:
            return genesis_trust(entry.predicate.to_dict(), entry.digest)
        except (KeyError, TypeError, ValueError):
            return TrustState()

    def _genesis(self, entry: Entry, signed_ok: bool, state: _State) -> None:
        report = self.report
        report.genesis = entry.digest
        pred = entry.predicate
        report.origin = pred.origin if isinstance(pred, Genesis) else None
        if entry.kind != "genesis" or not isinstance(pred, Genesis):
            report.add(0, "no-genesis", f"seq 0 is a {entry.kind!r} entry, not genesis")
            return
        pinned_ok = True
        if self.pinned_genesis and not entry.digest.startswith(self.pinned_genesis):
            report.add(
                0, "genesis-mismatch", f"genesis is {entry.digest}, pinned {self.pinned_genesis}"
            )
            pinned_ok = False
        root = pred.root_key.keyid if pred.root_key is not None else None
        if self.pinned and root not in self.pinned:
            report.add(0, "untrusted-key", "genesis root key is not one of the pinned keys")
            pinned_ok = False
        if signed_ok and pinned_ok:  # a genesis that is not the pinned one vouches for nothing
            state.trust = self._genesis_trust(entry)

    def _apply_trust(self, entry: Entry, seq: int, state: _State) -> None:
        try:
            apply_trust_entry(
                state.trust, entry.kind, entry.predicate.to_dict(), entry.envelope, seq
            )
        except TrustError as e:
            self.report.add(seq, e.code, str(e))
            return
        state.trust.history.append((seq, entry.digest))


_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})", re.ASCII
)


def is_rfc3339(text: object) -> bool:
    """True for an RFC 3339 `date-time` with real calendar values (leap seconds aside)."""
    if not isinstance(text, str) or not _RFC3339.fullmatch(text):
        return False
    try:
        datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def entry_problems(entry: Entry) -> list[Problem]:
    """What `verify` would say of this entry on its own (bytes, schemas, statement, import),
    without the chain or trust: `append` runs it on every entry before committing it."""
    report = Report()
    verifier = Verifier(report)
    doc = orjson.loads(entry.raw)
    if not is_canonical(entry.raw, doc):
        report.add(entry.seq, "not-canonical", "entry bytes are not RFC 8785 canonical JSON")
    if not schemas.is_valid("entry.v1.schema.json", doc):
        msg = "; ".join(schemas.errors("entry.v1.schema.json", doc)[:3])
        report.add(entry.seq, "schema", f"entry: {msg}")
    statement = verifier._decode_statement(entry, entry.seq)
    if statement is not None:
        verifier._check_statement(entry, statement, entry.seq)
    return report.problems


def _list_entries(store: Store, rev: str, report: Report) -> list[tuple[int, str]]:
    """(seq, blob sha) in seq order; stray files and gaps become problems."""
    found: dict[int, str] = {}
    for item in store.list_tree(rev, ENTRY_DIR):
        seq = seq_from_path(item.path)
        if seq is None or item.mode != "100644":
            report.add(None, "stray-file", f"{item.path} is not an entry file")
            continue
        found[seq] = item.sha
    ordered = sorted(found.items())
    expected = 0
    for seq, _ in ordered:
        for missing in range(expected, seq):
            report.add(missing, "missing-entry", f"entry {missing} is missing")
        expected = seq + 1
    return ordered


def stored_checkpoints(store: Store, rev: str) -> list[tuple[int, str]]:
    """(size, note text) of every checkpoint stored in the ledger at `rev`, by size."""
    out = []
    items = [i for i in store.list_tree(rev, CHECKPOINT_DIR) if i.path.endswith(".note")]
    for item, data in zip(items, store.read_blobs(i.sha for i in items), strict=True):
        stem = item.path.rsplit("/", 1)[-1][:-5]
        if stem.isdigit():
            out.append((int(stem), data.decode("utf-8", errors="replace")))
    return sorted(out)


def note_keys(trust: TrustState) -> dict[str, Any]:
    """Public keys by name, as checkpoint notes name their signers."""
    return {r.name: r.public_key for r in trust.keys.values() if r.revoked_seq is None}


def verify_ledger(
    store: Store,
    *,
    rev: str = "HEAD",
    pinned_keys: list[bytes] | None = None,
    genesis: str | None = None,
    since_note: str | None = None,
    progress: ProgressFn | None = None,
    keep: list[Entry] | None = None,
) -> Report:
    """Verify every entry of the ledger at `rev` (see module docstring).

    With `keep`, every entry that verified without a problem of its own is appended to it
    (statement decoded, `signer` set): the verified view's entries (`ledger.view`).
    """
    check_genesis_pin(genesis)
    report = Report()
    pinned = [_keyid_of_pem(p) for p in pinned_keys or []]
    if pinned:
        report.trust_anchor = f"pinned keys ({len(pinned)})"
    if genesis:
        report.trust_anchor = f"pinned genesis {genesis[:23]}"
    if store.resolve(rev) is None:
        report.add(None, "no-genesis", "the ledger has no commits")
        return report
    kept = _parse_kept(since_note, report)
    if (
        kept
        and keep is None
        and (fast := _verify_since_fast(store, rev, kept, pinned, genesis, progress))
    ):
        return fast
    checkpoints = stored_checkpoints(store, rev)
    watch = {size for size, _ in checkpoints} | ({kept[0].size} if kept else set())
    verifier = Verifier(report, pinned=pinned, genesis=genesis, watch_sizes=watch)
    ordered = _list_entries(store, rev, report)
    report.entries = len(ordered)
    state = _State(TrustState(), merkle.Frontier(), None, 0)
    trust_at: dict[int, TrustState] = {}
    total = len(ordered)
    for i, (raw, (seq, _sha)) in enumerate(
        zip(store.read_blobs((s for _, s in ordered), mark_unreadable=True), ordered, strict=True)
    ):
        entry = verifier.check(raw, seq, state)
        if keep is not None and entry is not None:
            keep.append(entry)
        if seq + 1 in watch:
            trust_at[seq + 1] = state.trust.copy()
        if progress and (i % 256 == 0 or i + 1 == total):
            progress(i + 1, total)
    _finish(report, state)
    _check_checkpoints(report, checkpoints, state, trust_at)
    if kept:
        _check_since(report, kept, state, trust_at, ordered)
    return report


#: the one predicate type whose content verify checks beyond its own schema (imports, by kind)
_LEGACY_TYPE = schemas.predicate_type("legacy")

_GENESIS_PIN = re.compile(r"(sha256:)?[0-9a-f]{16,64}")


def check_genesis_pin(genesis: str | None) -> None:
    """Refuse a genesis pin too short to pin anything (16 hex digits at least)."""
    if genesis is not None and not _GENESIS_PIN.fullmatch(genesis):
        raise UsageError(
            f"--genesis {genesis!r}: give the genesis digest (sha256:<hex>, 16 hex digits at least)"
        )


def _keyid_of_pem(pem: bytes) -> str:
    return keyid_of(load_public_pem(pem))


def _parse_kept(since_note: str | None, report: Report) -> tuple[notes.Checkpoint, str] | None:
    if since_note is None:
        return None
    try:
        cp, _ = notes.parse_note(since_note)
    except notes.CheckpointError as e:
        report.add(None, "bad-checkpoint", f"kept checkpoint: {e}")
        return None
    return cp, since_note


def _check_checkpoints(
    report: Report,
    checkpoints: list[tuple[int, str]],
    state: _State,
    trust_at: dict[int, TrustState],
) -> None:
    report.checkpoints = len(checkpoints)
    for size, text in checkpoints:
        last = size - 1
        trust = trust_at.get(size, state.trust)
        try:
            cp, _ = notes.parse_note(text)
            checkpoint_signers(text, trust, cp.size)
            if any(x.startswith(TRUST_EXTENSION + " ") for x in cp.extensions):
                check_trust_binding(cp, trust)
        except notes.CheckpointError as e:
            report.add(last, "bad-checkpoint", f"checkpoint {size}: {e}")
            continue
        except TrustError as e:  # a note problem must not condemn the entry at size - 1
            report.add(None if e.code in ENTRY_CODES else last, e.code, f"checkpoint {size}: {e}")
            continue
        if cp.size != size:
            report.add(last, "bad-checkpoint", f"checkpoint file {size} holds size {cp.size}")
        elif cp.origin != report.origin:
            report.add(
                last,
                "bad-checkpoint",
                f"checkpoint {size} is for origin {cp.origin!r}, the ledger's is {report.origin!r}",
            )
        elif size not in state.roots:
            report.add(
                len(report.digests),
                "checkpoint-mismatch",
                f"checkpoint covers {size} entries, ledger has fewer",
            )
        elif state.roots[size] != cp.root:
            report.add(
                last, "checkpoint-mismatch", f"root of the first {size} entries ≠ checkpoint {size}"
            )


def _check_since(
    report: Report,
    kept: tuple[notes.Checkpoint, str],
    state: _State,
    trust_at: dict[int, TrustState],
    ordered: list[tuple[int, str]],
) -> None:
    cp, text = kept
    report.since = {"size": cp.size, "root": cp.root.hex()}
    try:
        checkpoint_signers(text, trust_at.get(cp.size, state.trust), cp.size)
    except TrustError as e:
        report.add(None, e.code, f"kept checkpoint: {e}")
        return
    if report.origin is not None and cp.origin != report.origin:
        report.add(
            None,
            "bad-checkpoint",
            f"kept checkpoint is for origin {cp.origin!r}, this ledger's is {report.origin!r}",
        )
        return
    if cp.size > len(report.digests):
        report.add(
            len(report.digests),
            "not-append-only",
            f"ledger has fewer than the {cp.size} kept entries",
        )
        return
    leaves = [merkle.leaf_hash(bytes.fromhex(d[7:])) for d in report.digests]
    try:
        proof = merkle.consistency_proof(leaves, cp.size)
        merkle.verify_consistency(cp.size, len(leaves), proof, cp.root, state.frontier.root())
    except merkle.ProofError as e:
        first = _first_divergence(report, cp.size)
        where = "" if first is not None else f" (rewritten somewhere in seq 0..{cp.size - 1})"
        report.add(
            first if first is not None else cp.size - 1,
            "not-append-only",
            f"not an extension of the kept checkpoint ({cp.size}): {e}{where}",
        )


def _first_divergence(report: Report, size: int) -> int | None:
    """Best guess of where history was rewritten: the first problem below `size`, if any."""
    seqs = [p.seq for p in report.problems if p.seq is not None and p.seq < size]
    return min(seqs) if seqs else None


def iter_entries(store: Store, rev: str = "HEAD") -> Iterator[Entry]:
    """Every entry in seq order (unverified), for log/show/gates."""
    ordered = store.entry_blobs(rev)
    for (seq, _), raw in zip(ordered, store.read_blobs(s for _, s in ordered), strict=True):
        yield parse_entry(raw, entry_path(seq))


def _finish(report: Report, state: _State) -> None:
    report.root = state.frontier.root().hex()
    report.frontier = [h.hex() for h in state.frontier.hashes()]
    report.trusted_keys = [r.to_json() for r in state.trust.keys.values()]
    report.trust = state.trust


def checkpoint_state(report: Report, commit: str) -> dict[str, Any]:
    """What `verify --since` resumes from: bound into the checkpoint note by its digest."""
    return {
        "size": report.entries,
        "commit": commit,
        "frontier": report.frontier,
        "tip": report.digests[-1] if report.digests else None,
        "trust": report.trusted_keys,
        "root_threshold": report.trust.root_threshold if report.trust else 1,
        "trust_history": [[s, d] for s, d in report.trust.history] if report.trust else [],
        "genesis": report.genesis,
    }


def _verify_since_fast(
    store: Store,
    rev: str,
    kept: tuple[notes.Checkpoint, str],
    pinned: list[str],
    genesis: str | None,
    progress: ProgressFn | None,
) -> Report | None:
    """Verify only the entries after a kept checkpoint; None if its state can't be used."""
    cp, text = kept
    ext = [e for e in cp.extensions if e.startswith(STATE_EXTENSION + " ")]
    raw_state = store.read_path(rev, f"{CHECKPOINT_DIR}/{cp.size:09d}.state.json")
    if len(ext) != 1 or raw_state is None:
        return None
    from ledger.canonical import sha256_digest

    if sha256_digest(raw_state) != ext[0].split(" ", 1)[1]:
        return None
    state_doc = orjson.loads(raw_state)
    if "trust_history" not in state_doc:
        return None  # a state from before roles: the full path decides
    trust = TrustState.from_doc(
        {
            "keys": state_doc["trust"],
            "root_threshold": state_doc.get("root_threshold", 1),
            "history": state_doc["trust_history"],
        }
    )
    frontier = merkle.Frontier.from_hashes(
        cp.size, [bytes.fromhex(h) for h in state_doc["frontier"]]
    )
    if frontier.root() != cp.root or state_doc["size"] != cp.size:
        return None
    if genesis and not str(state_doc.get("genesis", "")).startswith(genesis):
        return None
    if pinned and not any(k in trust.keys and trust.keys[k].added_seq == 0 for k in pinned):
        return None
    raw_genesis = store.read_path(rev, entry_path(0))
    genesis_pred = parse_entry(raw_genesis).predicate if raw_genesis else None
    origin = genesis_pred.origin if isinstance(genesis_pred, Genesis) else None
    if cp.origin != origin:
        return None  # the full path reports the foreign origin
    report = Report(since={"size": cp.size, "root": cp.root.hex(), "mode": "incremental"})
    report.genesis, report.origin = state_doc.get("genesis"), origin
    try:
        checkpoint_signers(text, trust, cp.size)
    except TrustError as e:
        report.add(None, e.code, f"kept checkpoint: {e}")
        return report
    base = state_doc["commit"]
    if store.resolve(base) is None or not store.is_ancestor(base, rev):
        return None  # history rewritten or commit unknown: the full path decides
    changed = store.changed_paths(base, rev, ENTRY_DIR)
    new: list[tuple[int, str]] = []
    for status, path, sha in changed:
        seq = seq_from_path(path)
        if status != "A" or seq is None or seq < cp.size:
            where = seq if seq is not None else None
            report.add(
                where,
                "not-append-only",
                f"{path} was {_STATUS.get(status, status)} after checkpoint {cp.size}",
            )
            continue
        new.append((seq, sha))
    if report.problems:
        return report
    new.sort()
    checkpoints = [(s, t) for s, t in stored_checkpoints(store, rev) if s > cp.size]
    watch = {size for size, _ in checkpoints}
    verifier = Verifier(report, watch_sizes=watch)
    vstate = _State(trust, frontier, state_doc["tip"], cp.size)
    expected = cp.size
    trust_at: dict[int, TrustState] = {}
    blobs = store.read_blobs((s for _, s in new), mark_unreadable=True)
    for i, (raw, (seq, _)) in enumerate(zip(blobs, new, strict=True)):
        for missing in range(expected, seq):
            report.add(missing, "missing-entry", f"entry {missing} is missing")
        expected = seq + 1
        verifier.check(raw, seq, vstate)
        if seq + 1 in watch:
            trust_at[seq + 1] = vstate.trust.copy()
        if progress and (i % 256 == 0 or i + 1 == len(new)):
            progress(i + 1, len(new))
    report.entries = cp.size + len(new)
    report.digests = []  # only the new ones were read
    _finish(report, vstate)
    _check_checkpoints(report, checkpoints, vstate, trust_at)
    report.checkpoints += 1
    report.trust_anchor = "kept checkpoint " + str(cp.size)
    return report


_STATUS = {"D": "deleted", "M": "modified", "T": "changed in type", "R": "renamed"}
