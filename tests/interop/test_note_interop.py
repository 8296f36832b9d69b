"""Cosigned notes against an independent reading of the C2SP texts (signed-note,
tlog-checkpoint, tlog-cosignature) with golang.org/x/mod/sumdb/note's Open semantics.

Nothing here imports evledger's note code for the verifier side: the re-implementation below
is written from the specs only (key IDs SHA-256(name || 0x0A || type || key)[:4] with type
0x01 for Ed25519 note signatures and 0x04 for timestamped cosignature/v1; the cosigned
message "cosignature/v1\\ntime <ts>\\n" || note text; the blob u64-be ts || signature).
"""

from __future__ import annotations

import base64
import hashlib
import struct
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger import checkpoint as notes
from ledger.api import Ledger
from ledger.witness import cosign, init_witness

LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


# ------------------------------------------------------------ independent re-implementation


class MalformedNoteError(Exception):
    """errMalformedNote."""


class InvalidSignatureError(Exception):
    """A known key's signature does not verify."""


class UnverifiedNoteError(Exception):
    """No known key signed the note."""


@dataclass(frozen=True)
class Verifier:
    """A verifier for (name, key hash): Ed25519 note key (0x01) or cosigner key (0x04)."""

    name: str
    kind: int
    public: bytes

    @property
    def key_hash(self) -> int:
        data = self.name.encode() + b"\n" + bytes([self.kind]) + self.public
        return struct.unpack(">I", hashlib.sha256(data).digest()[:4])[0]

    def verify(self, text: bytes, sig: bytes) -> tuple[bool, int | None]:
        key = Ed25519PublicKey.from_public_bytes(self.public)
        if self.kind == 0x01:
            message, signature, ts = text, sig, None
        else:
            if len(sig) != 8 + 64:
                return False, None
            (ts,) = struct.unpack(">Q", sig[:8])
            message = b"cosignature/v1\n" + b"time %d\n" % ts + text
            signature = sig[8:]
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False, ts
        return True, ts


def valid_name(name: str) -> bool:
    return bool(name) and not any(c.isspace() for c in name) and "+" not in name


def go_open(msg: bytes, known: list[Verifier]) -> tuple[str, list[tuple[str, int | None]]]:
    """Open(msg, known) as sumdb/note does: returns (text, verified (name, timestamp))."""
    try:
        decoded = msg.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedNoteError from None
    if any(ord(c) < 0x20 and c != "\n" for c in decoded):
        raise MalformedNoteError
    split = msg.rfind(b"\n\n")
    if split < 0:
        raise MalformedNoteError
    text, sigs = msg[: split + 1], msg[split + 2 :]
    if not sigs or not sigs.endswith(b"\n"):
        raise MalformedNoteError
    by_id = {(v.name, v.key_hash): v for v in known}
    seen: set[tuple[str, int]] = set()
    verified: list[tuple[str, int | None]] = []
    for n, line in enumerate(sigs[:-1].split(b"\n")):
        if n >= 100 or not line.startswith("— ".encode()):
            raise MalformedNoteError
        name, _, b64 = line[len("— ".encode()) :].decode().partition(" ")
        try:
            raw = base64.b64decode(b64, validate=True)
        except ValueError:
            raise MalformedNoteError from None
        if not valid_name(name) or not b64 or len(raw) < 5:
            raise MalformedNoteError
        (key_hash,) = struct.unpack(">I", raw[:4])
        v = by_id.get((name, key_hash))
        if v is None or (name, key_hash) in seen:
            continue
        seen.add((name, key_hash))
        good, ts = v.verify(text, raw[4:])
        if not good:
            raise InvalidSignatureError(name)
        verified.append((name, ts))
    if not verified:
        raise UnverifiedNoteError
    return text.decode(), verified


def raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


# ------------------------------------------------------------------------------ the tests


@pytest.fixture
def cosigned(filled: Ledger) -> tuple[str, Ed25519PublicKey, Ed25519PublicKey]:
    """A real checkpoint of a real ledger, cosigned by a real witness."""
    filled.checkpoint(key_name="alice")
    w = init_witness("witness.example")
    note = cosign(w, str(filled.root), now=1679315147).note
    from ledger.keys import load_key

    return note, load_key("alice").public_key, w.key.public_key


def test_our_cosigned_note_opens_with_go_semantics(
    cosigned: tuple[str, Ed25519PublicKey, Ed25519PublicKey],
) -> None:
    note, log_key, witness_key = cosigned
    log = Verifier("alice", 0x01, raw(log_key))
    wit = Verifier("witness.example", 0x04, raw(witness_key))
    text, verified = go_open(note.encode(), [log, wit])
    assert verified == [("alice", None), ("witness.example", 1679315147)]
    lines = text.split("\n")
    assert lines[1].isdigit() and len(base64.b64decode(lines[2])) == 32  # tlog-checkpoint body
    # the witness alone, or the log alone, is also enough for Open (unknown lines ignored)
    assert go_open(note.encode(), [wit])[1] == [("witness.example", 1679315147)]
    assert go_open(note.encode(), [log])[1] == [("alice", None)]
    # the cosigner key used as a note key (type 0x01) matches no line: unverified
    with pytest.raises(UnverifiedNoteError):
        go_open(note.encode(), [Verifier("witness.example", 0x01, raw(witness_key))])


def test_a_changed_timestamp_or_text_is_an_invalid_signature(
    cosigned: tuple[str, Ed25519PublicKey, Ed25519PublicKey],
) -> None:
    note, _, witness_key = cosigned
    wit = Verifier("witness.example", 0x04, raw(witness_key))
    line = note.rstrip("\n").split("\n")[-1]
    blob = bytearray(base64.b64decode(line.split(" ")[2]))
    blob[4 + 7] ^= 1  # the last byte of the timestamp
    bad = note.replace(
        line, line.split(" ")[0] + " witness.example " + base64.b64encode(blob).decode()
    )
    with pytest.raises(InvalidSignatureError):
        go_open(bad.encode(), [wit])
    with pytest.raises(notes.CheckpointError, match="does not verify"):
        notes.verify_cosignatures(bad, [witness_key])
    other_text = note.replace("\n\n", "\nextension\n\n", 1)
    with pytest.raises(InvalidSignatureError):
        go_open(other_text.encode(), [wit])


def test_a_cosignature_written_from_the_spec_verifies_in_evledger(
    cosigned: tuple[str, Ed25519PublicKey, Ed25519PublicKey],
) -> None:
    note, _, _ = cosigned
    key = Ed25519PrivateKey.generate()
    v = Verifier("w2.example/w", 0x04, raw(key.public_key()))
    text = note[: note.rfind("\n\n") + 1].encode()
    ts = 1700000000
    sig = key.sign(b"cosignature/v1\ntime %d\n" % ts + text)
    blob = struct.pack(">I", v.key_hash) + struct.pack(">Q", ts) + sig
    line = f"— w2.example/w {base64.b64encode(blob).decode()}\n"
    both = note + line
    found = notes.verify_cosignatures(both, [key.public_key()])
    assert [(c.name, c.timestamp) for c in found] == [("w2.example/w", ts)]
    assert notes.cosignature_key_id("w2.example/w", key.public_key()) == blob[:4]
    vk = notes.vkey("w2.example/w", key.public_key(), cosigner=True)
    assert vk.split("+", 2)[1] == f"{v.key_hash:08x}"
    assert base64.b64decode(vk.split("+", 2)[2])[:1] == b"\x04"
    assert notes.parse_vkey(vk)[2] is True


def test_repeated_and_unknown_lines_are_ignored_like_go(
    cosigned: tuple[str, Ed25519PublicKey, Ed25519PublicKey],
) -> None:
    note, _, witness_key = cosigned
    last = note.rstrip("\n").split("\n")[-1] + "\n"
    stranger = Ed25519PrivateKey.generate()
    junk = notes.cosign_line(note, "stranger", stranger, 5)
    noisy = note + last + junk
    wit = Verifier("witness.example", 0x04, raw(witness_key))
    assert go_open(noisy.encode(), [wit])[1] == [("witness.example", 1679315147)]
    assert len(notes.verify_cosignatures(noisy, [witness_key])) == 1
    # the same key under a second name counts once toward a quorum (Ed25519 cosignatures
    # do not commit to the name)
    renamed = notes.add_cosignature(note, "alias", stranger, 9)
    assert len(notes.verify_cosignatures(renamed, [stranger.public_key()])) == 1
