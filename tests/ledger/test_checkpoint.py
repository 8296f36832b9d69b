"""Tests for ledger.checkpoint: C2SP tlog-checkpoint signed notes with Ed25519."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ledger.checkpoint import (
    MAX_SIGNATURES,
    Checkpoint,
    CheckpointError,
    NoteSignature,
    add_signature,
    note_key_id,
    parse_note,
    sign_note,
    sign_text,
    split_note,
    verify_note,
)

ROOT = hashlib.sha256(b"root").digest()
ROOT_B64 = base64.b64encode(ROOT).decode()
ORIGIN = "evledger.example/log"

# golang.org/x/mod/sumdb/note known-answer vector (note_test.go / package doc).
GO_SIGNER = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
GO_VERIFIER = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
GO_NOTE = (
    GO_TEXT + "\n— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)


@pytest.fixture(scope="module")
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


@pytest.fixture(scope="module")
def key2() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(bytes(range(32, 64)))


def _cp(**kw: object) -> Checkpoint:
    """Return a sample checkpoint, with fields overridden."""
    fields: dict[str, object] = {"origin": ORIGIN, "size": 42, "root": ROOT}
    fields.update(kw)
    return Checkpoint(**fields)  # type: ignore[arg-type]


def _note(text: str, key: Ed25519PrivateKey, name: str = "log") -> str:
    """Sign raw note text (bypassing Checkpoint validation) for parser tests."""
    return sign_text(text, name, key)


# --- format ------------------------------------------------------------------


def test_body_format() -> None:
    cp = _cp(extensions=("ext one", "ext two"))
    assert cp.body() == f"{ORIGIN}\n42\n{ROOT_B64}\next one\next two\n".encode()


def test_sign_note_layout(key: Ed25519PrivateKey) -> None:
    note = sign_note(_cp(), "log", key)
    body, sigline = note.split("\n\n")
    assert body + "\n" == _cp().body().decode()
    assert sigline.startswith("\u2014 log ")
    assert sigline.endswith("\n") and sigline.count("\n") == 1
    blob = base64.b64decode(sigline.split(" ")[2])
    assert len(blob) == 4 + 64
    assert blob[:4] == note_key_id("log", key.public_key())


def test_round_trip(key: Ed25519PrivateKey) -> None:
    cp = _cp(size=0, extensions=("ext",))
    note = sign_note(cp, "log", key)
    parsed, sigs = parse_note(note)
    assert parsed == cp
    assert [s.name for s in sigs] == ["log"]
    assert verify_note(note, {"log": key.public_key()}) == cp


def test_key_id_definition(key: Ed25519PrivateKey) -> None:
    raw = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    want = hashlib.sha256(b"log\n\x01" + raw).digest()[:4]
    assert note_key_id("log", key.public_key()) == want


# --- Go sumdb/note interop ---------------------------------------------------


def _go_keys() -> tuple[Ed25519PrivateKey, Ed25519PublicKey]:
    """Decode the Go example signer and verifier keys (type byte 0x01 + 32 bytes)."""
    seed = base64.b64decode(GO_SIGNER.split("+")[4] + "+" + GO_SIGNER.split("+")[5])
    pub = base64.b64decode(GO_VERIFIER.split("+", 2)[2])
    assert seed[0] == 1 and pub[0] == 1
    return (
        Ed25519PrivateKey.from_private_bytes(seed[1:]),
        Ed25519PublicKey.from_public_bytes(pub[1:]),
    )


def test_go_known_answer() -> None:
    priv, pub = _go_keys()
    assert priv.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw) == pub.public_bytes(
        Encoding.Raw, PublicFormat.Raw
    )
    assert note_key_id("PeterNeumann", pub).hex() == "c74f20a3"
    assert sign_text(GO_TEXT, "PeterNeumann", priv) == GO_NOTE
    text, sigs = split_note(GO_NOTE)
    assert text == GO_TEXT
    assert sigs[0].key_id.hex() == "c74f20a3"
    pub.verify(sigs[0].signature, text.encode())


# --- strict parsing ----------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        (f"{ORIGIN}\n042\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n00\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n+42\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n-1\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n4_2\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n\u0664\u0662\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n 42\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n\n{ROOT_B64}\n", "canonical decimal"),
        (f"{ORIGIN}\n{1 << 64}\n{ROOT_B64}\n", "out of range"),
        (f"{ORIGIN}\n42\n{ROOT_B64[:-1]}\n", "base64"),
        (f"{ORIGIN}\n42\n{ROOT_B64.rstrip('=')}\n", "base64"),
        (f"{ORIGIN}\n42\n{ROOT_B64[:10]}*{ROOT_B64[11:]}\n", "base64"),
        (f"{ORIGIN}\n42\n{base64.b64encode(ROOT[:31]).decode()}\n", "32"),
        (f"{ORIGIN}\n42\n{base64.b64encode(ROOT + b'x').decode()}\n", "32"),
        (f"{ORIGIN}\n42\n", "origin, size and root"),
        (f"\n42\n{ROOT_B64}\n", "origin"),
        (f"{ORIGIN}\n42\n{ROOT_B64}\n\next\n", "extension line"),
    ],
)
def test_parse_rejects_bad_body(key: Ed25519PrivateKey, text: str, msg: str) -> None:
    note = _note(text, key)
    with pytest.raises(CheckpointError, match=msg):
        parse_note(note)
    with pytest.raises(CheckpointError):
        verify_note(note, {"log": key.public_key()})


def test_non_canonical_base64_root_rejected(key: Ed25519PrivateKey) -> None:
    # 32 bytes -> 44 chars with one '='; the last data char carries 2 unused bits.
    last = ROOT_B64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    tweaked = alphabet[alphabet.index(last) ^ 1]
    bad = ROOT_B64[:-2] + tweaked + "="
    assert base64.b64decode(bad) == ROOT
    with pytest.raises(CheckpointError, match="canonical base64"):
        parse_note(_note(f"{ORIGIN}\n42\n{bad}\n", key))


@pytest.mark.parametrize("char", ["\x00", "\t", "\r", "\x1b", "\x1f"])
def test_control_characters_rejected(key: Ed25519PrivateKey, char: str) -> None:
    good = sign_note(_cp(), "log", key)
    for bad in (char + good, good.replace(ORIGIN, ORIGIN + char), good[:-1] + char + "\n"):
        with pytest.raises(CheckpointError, match="control character"):
            parse_note(bad)
    with pytest.raises(CheckpointError, match="control character"):
        _cp(origin=ORIGIN + char)
    with pytest.raises(CheckpointError, match="control character"):
        _cp(extensions=("a" + char,))


def test_lone_surrogate_rejected(key: Ed25519PrivateKey) -> None:
    good = sign_note(_cp(), "log", key)
    with pytest.raises(CheckpointError, match="UTF-8"):
        parse_note(good.replace(ORIGIN, ORIGIN + "\ud800"))


def test_missing_blank_line_rejected(key: Ed25519PrivateKey) -> None:
    good = sign_note(_cp(), "log", key)
    with pytest.raises(CheckpointError, match="blank line"):
        parse_note(good.replace("\n\n", "\n"))


@pytest.mark.parametrize(
    "mutate",
    [
        lambda n: n[:-1],  # no final newline
        lambda n: n + "\n",  # trailing blank line: last blank line has no signatures after it
        lambda n: n.split("\n\n")[0] + "\n\n",  # no signature lines at all
        lambda n: n.replace("\u2014 ", "- "),  # ASCII dash
        lambda n: n.replace("\u2014 ", "\u2014"),  # no space after the dash
        lambda n: n.replace("\u2014 log ", "\u2014 log  "),  # double space
        lambda n: n.replace("\u2014 log ", "\u2014 log"),  # no space before the blob
        lambda n: n.replace("\u2014 log ", "\u2014  "),  # empty name
        lambda n: n.replace("\u2014 log ", "\u2014 lo+g "),  # '+' in name
        lambda n: n.replace("\u2014 log ", "\u2014 l\u00a0g "),  # Unicode space in name
        lambda n: n[:-3] + "\n",  # truncated base64
        lambda n: n[:-2] + "!\n",  # bad base64 character
        lambda n: n.rsplit(" ", 1)[0] + " AAAA\n",  # signature shorter than 5 bytes
        lambda n: n.rsplit(" ", 1)[0] + " \n",  # empty signature
    ],
)
def test_bad_signature_lines_rejected(key: Ed25519PrivateKey, mutate: Callable[[str], str]) -> None:
    bad = mutate(sign_note(_cp(), "log", key))
    with pytest.raises(CheckpointError):
        parse_note(bad)
    with pytest.raises(CheckpointError):
        verify_note(bad, {"log": key.public_key()})


def test_bad_key_names_rejected_when_signing(key: Ed25519PrivateKey) -> None:
    for name in ("", "a b", "a+b", "a\tb", "a\u2003b"):
        with pytest.raises(CheckpointError, match="key name"):
            sign_note(_cp(), name, key)
        with pytest.raises(CheckpointError, match="key name"):
            note_key_id(name, key.public_key())


def test_checkpoint_constructor_validation() -> None:
    with pytest.raises(CheckpointError, match="32 bytes"):
        _cp(root=ROOT[:31])
    with pytest.raises(CheckpointError, match="out of range"):
        _cp(size=-1)
    with pytest.raises(CheckpointError, match="int"):
        _cp(size=True)
    with pytest.raises(CheckpointError, match="origin"):
        _cp(origin="")
    with pytest.raises(CheckpointError, match="newline"):
        _cp(origin="a\nb")
    with pytest.raises(CheckpointError, match="extension"):
        _cp(extensions=("",))
    with pytest.raises(CheckpointError, match="tuple"):
        _cp(extensions=["x"])


def test_too_many_signatures_rejected(key: Ed25519PrivateKey) -> None:
    note = sign_note(_cp(), "log", key)
    line = note.split("\n\n")[1]
    assert len(split_note(note + line * (MAX_SIGNATURES - 1))[1]) == MAX_SIGNATURES
    with pytest.raises(CheckpointError, match="more than"):
        split_note(note + line * MAX_SIGNATURES)


def test_error_is_value_error_with_one_line_message(key: Ed25519PrivateKey) -> None:
    assert issubclass(CheckpointError, ValueError)
    with pytest.raises(CheckpointError) as info:
        verify_note(sign_note(_cp(), "log", key), {})
    assert "\n" not in str(info.value)


# --- verification ------------------------------------------------------------


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("\n42\n", "\n43\n"),
        (ROOT_B64, base64.b64encode(hashlib.sha256(b"other").digest()).decode()),
        ("ext line", "ext lime"),
        (ORIGIN, ORIGIN + "x"),
    ],
)
def test_tampered_note_fails(key: Ed25519PrivateKey, old: str, new: str) -> None:
    note = sign_note(_cp(extensions=("ext line",)), "log", key)
    tampered = note.replace(old, new, 1)
    assert tampered != note
    parse_note(tampered)  # still well-formed
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(tampered, {"log": key.public_key()})


def test_added_or_removed_extension_fails(key: Ed25519PrivateKey) -> None:
    note = sign_note(_cp(extensions=("ext line",)), "log", key)
    for tampered in (
        note.replace("ext line\n", ""),
        note.replace("ext line\n", "ext line\nmore\n"),
    ):
        with pytest.raises(CheckpointError, match="does not verify"):
            verify_note(tampered, {"log": key.public_key()})


def test_tampered_signature_fails(key: Ed25519PrivateKey) -> None:
    note = sign_note(_cp(), "log", key)
    body, line = note.split("\n\n")
    name, blob = line[2:-1].split(" ")
    raw = bytearray(base64.b64decode(blob))
    raw[-1] ^= 1
    bad = f"{body}\n\n\u2014 {name} {base64.b64encode(bytes(raw)).decode()}\n"
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(bad, {"log": key.public_key()})


def test_wrong_length_signature_from_known_key_fails(key: Ed25519PrivateKey) -> None:
    kid = note_key_id("log", key.public_key())
    body = _cp().body().decode()
    short = NoteSignature("log", kid, b"\x00" * 10).line()
    with pytest.raises(CheckpointError, match="does not verify"):
        verify_note(body + "\n" + short, {"log": key.public_key()})


def test_unknown_signer_alone_rejected(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    note = sign_note(_cp(), "stranger", key2)
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        verify_note(note, {"log": key.public_key()})
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        verify_note(note, {})


def test_unknown_signer_ignored_next_to_known(
    key: Ed25519PrivateKey, key2: Ed25519PrivateKey
) -> None:
    note = add_signature(sign_note(_cp(), "stranger", key2), "log", key)
    assert verify_note(note, {"log": key.public_key()}) == _cp()
    # A garbage signature from an unknown key is ignored too.
    junk = NoteSignature("stranger2", b"\x00\x01\x02\x03", b"\xff" * 64).line()
    assert verify_note(note + junk, {"log": key.public_key()}) == _cp()


def test_same_name_other_key_id_is_ignored(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    # key2 signs under the name "log", but the trusted "log" key is key: ids differ -> unknown.
    impostor = sign_note(_cp(), "log", key2)
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        verify_note(impostor, {"log": key.public_key()})
    both = add_signature(impostor, "log", key)
    assert verify_note(both, {"log": key.public_key()}) == _cp()


def test_same_key_id_other_name_is_ignored(key: Ed25519PrivateKey) -> None:
    kid = note_key_id("log", key.public_key())
    body = _cp().body().decode()
    sig = NoteSignature("other", kid, key.sign(body.encode())).line()
    with pytest.raises(CheckpointError, match="no signature from a trusted key"):
        verify_note(body + "\n" + sig, {"log": key.public_key()})


def test_two_signers(key: Ed25519PrivateKey, key2: Ed25519PrivateKey) -> None:
    note = add_signature(sign_note(_cp(), "log", key), "witness.example/w1", key2)
    _, sigs = parse_note(note)
    assert [s.name for s in sigs] == ["log", "witness.example/w1"]
    pub1, pub2 = key.public_key(), key2.public_key()
    for keys in (
        {"log": pub1},
        {"witness.example/w1": pub2},
        {"log": pub1, "witness.example/w1": pub2},
    ):
        assert verify_note(note, keys) == _cp()
    # One of two known signatures failing rejects the whole note.
    body, block = note.split("\n\n")
    first, _second = block.splitlines()
    forged = NoteSignature(
        "witness.example/w1", note_key_id("witness.example/w1", pub2), b"\0" * 64
    )
    bad = f"{body}\n\n{first}\n{forged.line()}"
    with pytest.raises(CheckpointError, match=r"witness\.example/w1"):
        verify_note(bad, {"log": pub1, "witness.example/w1": pub2})
    assert verify_note(bad, {"log": pub1}) == _cp()
    with pytest.raises(CheckpointError, match="already signed"):
        add_signature(note, "log", key)
