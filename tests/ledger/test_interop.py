"""Interop: our DSSE envelopes verify with securesystemslib, and theirs append as imports."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey

from ledger.api import Ledger
from ledger.envelope import pae
from ledger.errors import InputError
from ledger.keys import keyid_of, load_public_pem, public_pem


def sslib_key(pem: bytes) -> SSlibKey:
    public = load_public_pem(pem)
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SSlibKey(keyid_of(public), "ed25519", "ed25519", {"public": raw.hex()})


def test_our_envelope_verifies_with_securesystemslib(filled: Ledger, home: Path) -> None:
    exported = (home / "keys" / "alice.pub").read_bytes()
    key = sslib_key(exported)
    for entry in filled.entries():
        envelope = Envelope.from_dict(entry.envelope)
        accepted = envelope.verify([key], threshold=1)
        assert list(accepted) == [key.keyid]
        assert envelope.payload_type == "application/vnd.in-toto+json"


def test_securesystemslib_envelope_appends_as_import(ledger: Ledger, tmp_path: Path) -> None:
    signer = CryptoSigner.generate_ed25519()
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://example.org/their-predicate/v1",
        "predicate": {"ratio": 3.9, "cos": 0.995},
    }
    envelope = Envelope(json.dumps(statement).encode(), "application/vnd.in-toto+json", {})
    envelope.sign(signer)
    path = tmp_path / "foreign.dsse.json"
    path.write_text(json.dumps(envelope.to_dict()))
    with pytest.raises(InputError, match="--signer-key"):  # unverified: refused, nothing written
        ledger.append_files([path], key_name="alice")
    assert ledger.tip() is not None and ledger.tip()[0] == 0
    pem = signer.public_key.keyval["public"]
    [entry] = ledger.append_files([path], key_name="alice", signer_keys=[_pem(pem)])
    assert entry.kind == "import"
    assert entry.predicate.signer == keyid_of(_load(pem))
    kept = entry.document["predicate"]["envelope"]
    assert kept == envelope.to_dict()  # the foreign envelope is kept verbatim
    assert Envelope.from_dict(kept).verify([signer.public_key], threshold=1)
    assert ledger.verify().ok


def test_pae_known_answer() -> None:
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )
    assert pae("application/vnd.in-toto+json", b"") == b"DSSEv1 28 application/vnd.in-toto+json 0 "


def test_rfc8032_test1_signature_vector(home: Path) -> None:
    """Our envelope signing reproduces the DSSE single-signature vector with RFC 8032 TEST 1."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from ledger.envelope import sign_envelope
    from ledger.keys import SigningKey

    seed = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
    key = SigningKey("a", Ed25519PrivateKey.from_private_bytes(seed))
    env = sign_envelope(b'{"_type":"https://in-toto.io/Statement/v1"}', [key])
    assert env["signatures"][0]["sig"] == (
        "2WAfaHm5jluo0w+0rk8uVkluELJYWjSmU9x7EUzx+AyteDGJ4/nqyJXfmAUVFIAoQafWm7AxBZNw5M9ixNHiCA=="
    )
    assert orjson.loads(orjson.dumps(env))["payloadType"] == "application/vnd.in-toto+json"


def _load(raw_hex: str) -> Any:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(bytes.fromhex(raw_hex))


def _pem(raw_hex: str) -> bytes:
    return public_pem(_load(raw_hex)).encode()
