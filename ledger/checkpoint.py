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
    "NoteSignature",
    "add_signature",
    "note_key_id",
    "parse_note",
    "sign_note",
    "sign_text",
    "split_note",
    "verify_note",
]

ROOT_SIZE = 32
MAX_SIGNATURES = 100  # the spec asks verifiers to accept at least 16
_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_TYPE = b"\x01"
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
