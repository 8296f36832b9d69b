"""Proofs as text a reviewer can check without evledger (see docs/proofs.md).

Inclusion proofs follow C2SP tlog-proof (`c2sp.org/tlog-proof@v1`): an `extra` line with
the base64 SHA-256 digest of the entry file's bytes (the leaf is SHA-256(0x00 || digest)),
an `index` line, the audit path (one base64 hash per line, leaf sibling first), a blank line
and the checkpoint note verbatim, cosignatures included.

Consistency proofs use the body of a C2SP tlog-witness add-checkpoint request: an
`old <size>` line, the RFC 6962 consistency proof (one base64 hash per line), a blank line
and the newer checkpoint note verbatim.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger
from ledger.canonical import digest_bytes
from ledger.errors import InputError, UsageError
from ledger.verify import stored_checkpoints

TLOG_PROOF_HEADER = "c2sp.org/tlog-proof@v1"


@dataclass(frozen=True)
class InclusionProof:
    """A parsed tlog-proof: entry digest, index, audit path and the checkpoint note."""

    digest: bytes
    index: int
    path: list[bytes]
    note: str

    def text(self) -> str:
        """The tlog-proof text."""
        lines = [TLOG_PROOF_HEADER, f"extra {_b64(self.digest)}", f"index {self.index}"]
        lines += [_b64(h) for h in self.path]
        return "\n".join(lines) + "\n\n" + self.note


@dataclass(frozen=True)
class ConsistencyProof:
    """A parsed consistency proof: old size, RFC 6962 proof, the newer checkpoint note."""

    old_size: int
    proof: list[bytes]
    note: str

    def text(self) -> str:
        """The tlog-witness add-checkpoint body."""
        return (
            "".join(
                f"{line}\n" for line in [f"old {self.old_size}"] + [_b64(h) for h in self.proof]
            )
            + "\n"
            + self.note
        )


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        raw = base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as e:
        raise InputError(f"{what} is not base64") from e
    if len(raw) != merkle.HASH_SIZE:
        raise InputError(f"{what} is not a 32-byte hash")
    return raw


def _leaves(ledger: Ledger, size: int) -> list[bytes]:
    leaves = []
    for e in ledger.entries():
        if e.seq >= size:
            break
        leaves.append(merkle.leaf_hash(digest_bytes(e.digest)))
    if len(leaves) != size:
        raise UsageError(f"the ledger has fewer than {size} entries")
    return leaves


def prove_inclusion(ledger: Ledger, ref: str) -> InclusionProof:
    """The inclusion proof of entry REF in the newest stored checkpoint (cosignatures kept)."""
    entry = ledger.resolve(ref)
    stored = stored_checkpoints(ledger.store, "HEAD")
    if not stored or stored[-1][0] <= entry.seq:
        raise UsageError(f"no checkpoint covers seq {entry.seq}; run `evledger checkpoint`")
    size, note = stored[-1]
    cp, _ = notes.parse_note(note)
    leaves = _leaves(ledger, size)
    if merkle.root(leaves) != cp.root:
        raise UsageError(f"checkpoint {size} does not match the entries; run `evledger verify`")
    path = merkle.inclusion_proof(leaves, entry.seq)
    return InclusionProof(digest_bytes(entry.digest), entry.seq, path, note)


def prove_consistency(ledger: Ledger, old_note: str, new_note: str | None) -> ConsistencyProof:
    """The consistency proof from OLD_NOTE's tree to NEW_NOTE's (default: the newest stored)."""
    try:
        old, _ = notes.parse_note(old_note)
        if new_note is None:
            stored = stored_checkpoints(ledger.store, "HEAD")
            if not stored:
                raise UsageError("the ledger has no checkpoint; run `evledger checkpoint`")
            new_note = stored[-1][1]
        new, _ = notes.parse_note(new_note)
    except notes.CheckpointError as e:
        raise InputError(f"not a checkpoint note: {e}") from e
    if old.origin != new.origin:
        raise UsageError(f"the notes are of two origins ({old.origin}, {new.origin})")
    if not 0 < old.size <= new.size:
        raise UsageError(f"need 0 < old size ({old.size}) <= new size ({new.size})")
    leaves = _leaves(ledger, new.size)
    if merkle.root(leaves) != new.root:
        raise UsageError(f"this ledger's first {new.size} entries do not have the new root")
    proof = merkle.consistency_proof(leaves, old.size)
    try:
        merkle.verify_consistency(old.size, new.size, proof, old.root, new.root)
    except merkle.ProofError as e:
        raise UsageError(
            f"not-append-only: the old checkpoint is not a prefix of this ledger ({e})"
        ) from e
    return ConsistencyProof(old.size, proof, new_note)


def parse_inclusion(text: str) -> InclusionProof:
    """Parse tlog-proof text (raises InputError)."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or lines[0] != TLOG_PROOF_HEADER:
        raise InputError(f"not a {TLOG_PROOF_HEADER} proof")
    extra = lines[1].removeprefix("extra ") if lines[1].startswith("extra ") else None
    rest = lines[2:] if extra is not None else lines[1:]
    if extra is None or not rest or not rest[0].startswith("index "):
        raise InputError("the proof lacks its extra (entry digest) or index line")
    index_s = rest[0][len("index ") :]
    if not index_s.isdigit() or (index_s != "0" and index_s.startswith("0")):
        raise InputError("the index is not a canonical decimal")
    path = [_unb64(h, f"proof line {i}") for i, h in enumerate(rest[1:])]
    return InclusionProof(_unb64(extra, "extra"), int(index_s), path, note)


def parse_consistency(text: str) -> ConsistencyProof:
    """Parse an `old N` + proof + note body (raises InputError)."""
    head, sep, note = text.partition("\n\n")
    lines = head.split("\n")
    if not sep or not lines[0].startswith("old "):
        raise InputError("not a consistency proof (no `old N` line)")
    size_s = lines[0][4:]
    if not size_s.isdigit() or (size_s != "0" and size_s.startswith("0")):
        raise InputError("the old size is not a canonical decimal")
    proof = [_unb64(h, f"proof line {i}") for i, h in enumerate(lines[1:])]
    return ConsistencyProof(int(size_s), proof, note)


def check_inclusion(proof: InclusionProof) -> notes.Checkpoint:
    """Check the audit path against the note's root (not the note's signatures)."""
    cp, _ = notes.parse_note(proof.note)
    merkle.verify_inclusion(
        merkle.leaf_hash(proof.digest), proof.index, cp.size, proof.path, cp.root
    )
    return cp


def check_consistency(proof: ConsistencyProof, old_note: str) -> notes.Checkpoint:
    """Check that the proof's note extends OLD_NOTE's tree (not the notes' signatures)."""
    old, _ = notes.parse_note(old_note)
    new, _ = notes.parse_note(proof.note)
    if old.size != proof.old_size or old.origin != new.origin:
        raise merkle.ProofError("the proof starts from another checkpoint")
    merkle.verify_consistency(old.size, new.size, proof.proof, old.root, new.root)
    return new


__all__ = [
    "TLOG_PROOF_HEADER",
    "ConsistencyProof",
    "InclusionProof",
    "check_consistency",
    "check_inclusion",
    "parse_consistency",
    "parse_inclusion",
    "prove_consistency",
    "prove_inclusion",
]
