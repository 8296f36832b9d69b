"""C2SP tlog-checkpoint bodies in C2SP signed-note envelopes, signed with Ed25519."""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

__all__ = [
    "MAX_SIGNATURES",
    "Checkpoint",
    "CheckpointError",
    "Cosignature",
    "NoteSignature",
    "add_cosignature",
    "add_signature",
    "cosign_line",
    "cosignature_key_id",
    "cosigned_message",
    "merge_signatures",
    "note_key_id",
    "parse_note",
    "parse_vkey",
    "sign_note",
    "sign_text",
    "split_note",
    "verify_cosignatures",
    "verify_note",
    "vkey",
]

ROOT_SIZE = 32
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_TYPE = b"\x01"
_COSIGNATURE_TYPE = b"\x04"  # C2SP tlog-cosignature: timestamped Ed25519 cosignature/v1
_COSIGNATURE_HEADER = b"cosignature/v1\n"
_COSIGNATURE_BYTES = 8 + 64  # u64 big-endian timestamp || Ed25519 signature
_MAX_TIMESTAMP = (1 << 63) - 1
_MAX_SIZE = (1 << 64) - 1
_DECIMAL = re.compile(r"0|[1-9][0-9]*", re.ASCII)
_CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f]")


class CheckpointError(ValueError):
    """A checkpoint or signed note is malformed or does not verify."""


@dataclass(frozen=True)
class NoteSignature:
    """One signature line of a signed note: key name, 4-byte key id, raw signature."""

    name: str
    key_id: bytes
    signature: bytes

    def line(self) -> str:
        """Return the signature line, including its newline."""
        blob = base64.b64encode(self.key_id + self.signature).decode("ascii")
        return f"{_SIG_PREFIX}{self.name} {blob}\n"


@dataclass(frozen=True)
class Checkpoint:
    """A tlog-checkpoint: origin, tree size, RFC 6962 root and optional extension lines."""

    origin: str
    size: int
    root: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate every field so that an invalid checkpoint cannot exist."""
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not isinstance(self.size, int):
            raise CheckpointError("checkpoint size must be an int")
        if not 0 <= self.size <= _MAX_SIZE:
            raise CheckpointError(f"checkpoint size {self.size} out of range")
        if not isinstance(self.root, bytes) or len(self.root) != ROOT_SIZE:
            raise CheckpointError(f"checkpoint root must be {ROOT_SIZE} bytes")
        if not isinstance(self.extensions, tuple):
            raise CheckpointError("checkpoint extensions must be a tuple of str")
        for ext in self.extensions:
            _check_line(ext, "extension line")

    def body(self) -> bytes:
        """Return the note text (the signed bytes), ending in a newline."""
        root_b64 = base64.b64encode(self.root).decode("ascii")
        lines = [self.origin, str(self.size), root_b64, *self.extensions]
        return "".join(f"{line}\n" for line in lines).encode("utf-8")


def _check_line(line: object, what: str) -> None:
    """Raise CheckpointError unless line is a non-empty str without newline or control chars."""
    if not isinstance(line, str) or not line:
        raise CheckpointError(f"{what} must be a non-empty string")
    if "\n" in line or _CONTROL.search(line):
        raise CheckpointError(f"{what} contains a newline or control character")


def _check_text(text: str) -> None:
    """Raise CheckpointError unless text is valid UTF-8 with no control chars but newline."""
    if not isinstance(text, str):
        raise CheckpointError("note must be a str")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise CheckpointError("note is not valid UTF-8") from None
    if _CONTROL.search(text):
        raise CheckpointError("note contains a control character other than newline")


def _check_name(name: object) -> None:
    """Raise CheckpointError unless name is a valid note key name."""
    if not isinstance(name, str) or not name:
        raise CheckpointError("key name must be a non-empty string")
    if "+" in name or any(ch.isspace() for ch in name):
        raise CheckpointError(f"key name {name!r} contains a space or '+'")
    _check_text(name)


def _b64decode(s: str, what: str) -> bytes:
    """Decode canonical standard base64 (padding required, no stray bits), strictly."""
    try:
        raw = base64.b64decode(s.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CheckpointError(f"{what} is not valid base64") from None
    if base64.b64encode(raw).decode("ascii") != s:
        raise CheckpointError(f"{what} is not canonical base64")
    return raw


def note_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte signed-note key id SHA-256(name || 0x0A || 0x01 || pubkey)[:4]."""
    _check_name(name)
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return hashlib.sha256(name.encode("utf-8") + b"\n" + _ED25519_TYPE + raw).digest()[:4]


def _signature_for(text: str, name: str, private_key: Ed25519PrivateKey) -> NoteSignature:
    """Sign note text with one Ed25519 key."""
    key_id = note_key_id(name, private_key.public_key())
    return NoteSignature(name, key_id, private_key.sign(text.encode("utf-8")))


def _check_note_text(text: str) -> None:
    """Raise CheckpointError unless text is a valid, non-empty note text ending in newline."""
    _check_text(text)
    if not text.endswith("\n"):
        raise CheckpointError("note text must end with a newline")


def sign_text(text: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Return a signed note for arbitrary note text (which must end in a newline)."""
    _check_note_text(text)
    return text + "\n" + _signature_for(text, name, private_key).line()


def sign_note(cp: Checkpoint, name: str, private_key: Ed25519PrivateKey) -> str:
    """Return the whole signed note text for a checkpoint, with one signature."""
    return sign_text(cp.body().decode("utf-8"), name, private_key)


def split_note(note: str) -> tuple[str, list[NoteSignature]]:
    """Split a signed note into its text and its signature lines, checking the syntax."""
    _check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise CheckpointError("note has no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block or not block.endswith("\n"):
        raise CheckpointError("note has no signature lines or does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise CheckpointError(f"note has more than {MAX_SIGNATURES} signatures")
    return text, [_parse_signature_line(line) for line in lines]


def _parse_signature_line(line: str) -> NoteSignature:
    """Parse one `— <name> <base64>` line."""
    if not line.startswith(_SIG_PREFIX):
        raise CheckpointError("signature line does not start with an em dash and a space")
    name, sep, blob = line[len(_SIG_PREFIX) :].partition(" ")
    if not sep:
        raise CheckpointError("signature line has no space between name and signature")
    _check_name(name)
    raw = _b64decode(blob, f"signature of {name!r}")
    if len(raw) < 5:
        raise CheckpointError(f"signature of {name!r} is too short")
    return NoteSignature(name, raw[:4], raw[4:])


def _parse_body(text: str) -> Checkpoint:
    """Parse checkpoint note text strictly into a Checkpoint."""
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs origin, size and root lines")
    origin, size_s, root_s, *extensions = lines
    if not _DECIMAL.fullmatch(size_s):
        raise CheckpointError(f"checkpoint size {size_s!r} is not a canonical decimal")
    root = _b64decode(root_s, "checkpoint root")
    if len(root) != ROOT_SIZE:
        raise CheckpointError(f"checkpoint root has {len(root)} bytes, want {ROOT_SIZE}")
    return Checkpoint(origin, int(size_s), root, tuple(extensions))


def parse_note(text: str) -> tuple[Checkpoint, list[NoteSignature]]:
    """Parse a signed checkpoint note without verifying any signature."""
    body, signatures = split_note(text)
    return _parse_body(body), signatures


def add_signature(note: str, name: str, private_key: Ed25519PrivateKey) -> str:
    """Return the note with one more signature (a cosignature) over the same text."""
    text, signatures = split_note(note)
    new = _signature_for(text, name, private_key)
    if any(s.name == new.name and s.key_id == new.key_id for s in signatures):
        raise CheckpointError(f"note is already signed by {name!r}")
    return note + new.line()


def verify_note(text: str, keys: Mapping[str, Ed25519PublicKey]) -> Checkpoint:
    """Verify a signed checkpoint note against trusted keys (by name) and return it."""
    body_text, signatures = split_note(text)
    cp = _parse_body(body_text)
    body = body_text.encode("utf-8")
    key_ids = {name: note_key_id(name, key) for name, key in keys.items()}
    verified = 0
    for sig in signatures:
        if key_ids.get(sig.name) != sig.key_id:
            continue  # unknown key: the spec says ignore it
        try:
            keys[sig.name].verify(sig.signature, body)
        except InvalidSignature:
            raise CheckpointError(f"signature by known key {sig.name!r} does not verify") from None
        verified += 1
    if verified == 0:
        raise CheckpointError("no signature from a trusted key")
    return cp


# ----------------------------------------------------------------------------- cosignatures
# C2SP tlog-cosignature, Ed25519 cosignature/v1: key ID = SHA-256(name || 0x0A || 0x04 ||
# pubkey)[:4]; the signature blob is u64-be timestamp || Ed25519 signature over
# "cosignature/v1\ntime <decimal>\n" || the whole note text (extension lines included).


@dataclass(frozen=True)
class Cosignature:
    """A cosignature that verified: who (name, public key bytes) and when (POSIX seconds)."""

    name: str
    public_key: bytes
    timestamp: int


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def cosignature_key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """Return the 4-byte cosignature key id SHA-256(name || 0x0A || 0x04 || pubkey)[:4]."""
    _check_name(name)
    return hashlib.sha256(
        name.encode("utf-8") + b"\n" + _COSIGNATURE_TYPE + _raw(public_key)
    ).digest()[:4]


def cosigned_message(text: str, timestamp: int) -> bytes:
    """Return the bytes a cosignature/v1 signs for note text at a timestamp."""
    if isinstance(timestamp, bool) or not 0 <= timestamp <= _MAX_TIMESTAMP:
        raise CheckpointError(f"cosignature timestamp {timestamp!r} out of range")
    return _COSIGNATURE_HEADER + f"time {timestamp}\n".encode("ascii") + text.encode("utf-8")


def cosign_line(note: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """Return one cosignature/v1 signature line (with newline) over the note's text."""
    text, _ = split_note(note)
    key_id = cosignature_key_id(name, private_key.public_key())
    sig = private_key.sign(cosigned_message(text, timestamp))
    return NoteSignature(name, key_id, timestamp.to_bytes(8, "big") + sig).line()


def add_cosignature(note: str, name: str, private_key: Ed25519PrivateKey, timestamp: int) -> str:
    """Return the note with one cosignature/v1 line appended (replacing an older one by it)."""
    key_id = cosignature_key_id(name, private_key.public_key())
    kept = [s for s in split_note(note)[1] if (s.name, s.key_id) != (name, key_id)]
    text = split_note(note)[0]
    return (
        text
        + "\n"
        + "".join(s.line() for s in kept)
        + cosign_line(note, name, private_key, timestamp)
    )


def merge_signatures(note: str, other: str) -> str:
    """Add to `note` the signature lines of `other` that it lacks.

    `other` is either a signed note over the same text or bare signature lines (the body of a
    C2SP tlog-witness add-checkpoint response). Nothing is verified here.
    """
    text, sigs = split_note(note)
    if other.startswith(_SIG_PREFIX):
        other_sigs = split_note(text + "\n" + other)[1]
    else:
        other_text, other_sigs = split_note(other)
        if other_text != text:
            raise CheckpointError("the other note signs a different checkpoint text")
    have = {s.line() for s in sigs}
    new = [s for s in other_sigs if s.line() not in have]
    if len(sigs) + len(new) > MAX_SIGNATURES:
        raise CheckpointError(f"note would have more than {MAX_SIGNATURES} signatures")
    return note + "".join(s.line() for s in new)


def verify_cosignatures(
    note: str, witnesses: Mapping[str, Ed25519PublicKey] | list[Ed25519PublicKey]
) -> list[Cosignature]:
    """Return the valid cosignatures by the given witness keys, one per distinct key.

    A witness key is matched to a signature line through the line's name (the cosignature
    key id commits to name and key), so a bare list of public keys works too. As in
    golang.org/x/mod/sumdb/note: lines of unknown keys are ignored, repeated lines of one key
    are ignored, and a line of a known key that does not verify rejects the whole note.
    """
    text, sigs = split_note(note)
    keys = list(witnesses.values()) if isinstance(witnesses, Mapping) else list(witnesses)
    names = set(witnesses) if isinstance(witnesses, Mapping) else None
    found: dict[bytes, Cosignature] = {}
    seen: set[tuple[str, bytes]] = set()
    for sig in sigs:
        if names is not None and sig.name not in names:
            continue
        match = [k for k in keys if cosignature_key_id(sig.name, k) == sig.key_id]
        if not match or (sig.name, sig.key_id) in seen:
            continue
        seen.add((sig.name, sig.key_id))
        key = match[0]
        blob = sig.signature
        if len(blob) != _COSIGNATURE_BYTES:
            raise CheckpointError(f"cosignature by known witness {sig.name!r} does not verify")
        timestamp = int.from_bytes(blob[:8], "big")
        try:
            key.verify(blob[8:], cosigned_message(text, timestamp))
        except (InvalidSignature, CheckpointError):
            raise CheckpointError(
                f"cosignature by known witness {sig.name!r} does not verify"
            ) from None
        found.setdefault(_raw(key), Cosignature(sig.name, _raw(key), timestamp))
    return list(found.values())


def vkey(name: str, public_key: Ed25519PublicKey, *, cosigner: bool = False) -> str:
    """Return the C2SP signed-note verifier key `name+hex(keyid)+base64(type || pubkey)`."""
    kind = _COSIGNATURE_TYPE if cosigner else _ED25519_TYPE
    key_id = cosignature_key_id(name, public_key) if cosigner else note_key_id(name, public_key)
    blob = base64.b64encode(kind + _raw(public_key)).decode("ascii")
    return f"{name}+{key_id.hex()}+{blob}"


def parse_vkey(text: str) -> tuple[str, Ed25519PublicKey, bool]:
    """Parse a verifier key; return (name, public key, is_cosigner). Checks the key id."""
    name, sep, rest = text.strip().partition("+")
    hash_hex, sep2, blob = rest.partition("+")
    if not sep or not sep2 or len(hash_hex) != 8:
        raise CheckpointError("not a verifier key (name+keyid+base64)")
    raw = _b64decode(blob, "verifier key")
    if len(raw) != 33 or raw[:1] not in (_ED25519_TYPE, _COSIGNATURE_TYPE):
        raise CheckpointError("verifier key is not an Ed25519 note or cosignature key")
    public_key = Ed25519PublicKey.from_public_bytes(raw[1:])
    cosigner = raw[:1] == _COSIGNATURE_TYPE
    expected = vkey(name, public_key, cosigner=cosigner).split("+")[1]
    if expected != hash_hex:
        raise CheckpointError("verifier key id does not match its name and key")
    return name, public_key, cosigner
