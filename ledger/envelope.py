"""DSSE envelopes (payloadType application/vnd.in-toto+json) signed with Ed25519."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.keys import SigningKey, verify_signature

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE v1 pre-authentication encoding; LEN is the byte length."""
    type_bytes = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(type_bytes), type_bytes, len(payload), payload)


def b64decode(text: str) -> bytes:
    """Decode standard or URL-safe base64 (DSSE verifiers must accept both), strictly."""
    if not isinstance(text, str):
        raise ValueError("base64 field is not a string")
    padded = text + "=" * (-len(text) % 4)
    if "-" in text or "_" in text:
        return base64.urlsafe_b64decode(padded)
    try:
        return base64.b64decode(padded, validate=True)
    except binascii.Error as e:
        raise ValueError(f"bad base64: {e}") from e


def b64decode_canonical(text: Any) -> bytes:
    """Decode base64 that must be exactly what `b64encode` writes (standard alphabet, padded,
    nothing after the padding): one byte string has one encoding, so entries are unmalleable."""
    if not isinstance(text, str):
        raise ValueError("base64 field is not a string")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error as e:
        raise ValueError(f"bad base64: {e}") from e
    if base64.b64encode(data).decode("ascii") != text:
        raise ValueError("base64 is not in its canonical form (padding or trailing bits)")
    return data


def b64encode(data: bytes) -> str:
    """Standard base64 text."""
    return base64.b64encode(data).decode("ascii")


def sign_envelope(
    payload: bytes, keys: list[SigningKey], payload_type: str = PAYLOAD_TYPE
) -> dict[str, Any]:
    """A DSSE envelope dict over exact payload bytes, one signature per key."""
    if not payload_type.isascii():
        raise ValueError("payloadType must be ASCII")
    message = pae(payload_type, payload)
    return {
        "payload": b64encode(payload),
        "payloadType": payload_type,
        "signatures": [{"keyid": k.keyid, "sig": b64encode(k.sign(message))} for k in keys],
    }


@dataclass(frozen=True)
class ParsedEnvelope:
    """An envelope's decoded parts; signatures as (keyid, raw signature or None if undecodable)."""

    payload: bytes
    payload_type: str
    signatures: tuple[tuple[str, bytes | None], ...]

    def message(self) -> bytes:
        """The bytes the signatures cover."""
        return pae(self.payload_type, self.payload)


def verify_foreign(envelope: Any, keys: dict[str, Ed25519PublicKey]) -> str:
    """The keyid (of `keys`) whose signature on a foreign DSSE envelope verifies.

    DSSE keyids are unauthenticated hints (other tools compute them differently): a signature
    naming a known keyid is tried with that key, any other with each key. Raises ValueError if
    no signature verifies.
    """
    parsed = parse_envelope(envelope)
    message = parsed.message()
    for hint, sig in parsed.signatures:
        if sig is None:
            continue
        candidates = [hint] if hint in keys else list(keys)
        for keyid in candidates:
            if verify_signature(keys[keyid], sig, message):
                return keyid
    named = ", ".join(k[:16] + "…" for k, _ in parsed.signatures if k) or "no keyid"
    raise ValueError(f"no signature verifies under the given key(s) (envelope names {named})")


def parse_envelope(envelope: Any) -> ParsedEnvelope:
    """Decode a DSSE envelope dict; raises ValueError on structural problems."""
    if not isinstance(envelope, dict):
        raise ValueError("envelope is not an object")
    payload_type = envelope.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise ValueError("envelope has no payloadType")
    payload = b64decode(envelope.get("payload", ""))
    raw_sigs = envelope.get("signatures")
    if not isinstance(raw_sigs, list) or not raw_sigs:
        raise ValueError("envelope has no signatures")
    sigs: list[tuple[str, bytes | None]] = []
    for item in raw_sigs:
        if not isinstance(item, dict):
            raise ValueError("signature is not an object")
        keyid = item.get("keyid", "")
        try:
            sig: bytes | None = b64decode(item.get("sig", ""))
        except ValueError:
            sig = None
        sigs.append((keyid if isinstance(keyid, str) else "", sig))
    return ParsedEnvelope(payload, payload_type, tuple(sigs))
