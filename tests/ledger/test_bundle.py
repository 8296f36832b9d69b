"""Bundles: a good bundle from another ledger imports; any tampering refuses it whole."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

import ledger.files
from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger, init_ledger
from ledger.bundle import (
    BundleRefused,
    assemble_bundle,
    build_bundle,
    export_bundle,
    foreign_entry_bytes,
    import_bundle,
)
from ledger.canonical import digest_bytes, sha256_digest
from ledger.chain import build_entry
from ledger.errors import UsageError, VerificationFailed
from ledger.evidence import metrics_of
from ledger.keys import generate_key, load_key, public_pem
from ledger.store import entry_path

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc"


@pytest.fixture
def source(ledger: Ledger) -> Ledger:
    """Alice's ledger: legacy samples at seq 1..2, a second key, a checkpoint."""
    ledger.append_files(sorted(LEGACY.glob("*.json")), key_name="alice")
    generate_key("carol")
    ledger.add_key(public_pem(load_key("carol").public_key).encode(), "carol", key_name="alice")
    ledger.checkpoint(key_name="alice")
    return ledger


@pytest.fixture
def sink(home: Path, tmp_path: Path) -> Ledger:
    """Bob's ledger (another key, another origin)."""
    led, _ = init_ledger(tmp_path / "bob-ledger", "bob")
    return led


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def refused(sink: Ledger, path: Path, match: str, **kw: Any) -> None:
    tip = sink.tip()
    with pytest.raises(BundleRefused, match=match):
        import_bundle(sink, path, key_name="bob", **kw)
    assert sink.tip() == tip


def test_good_bundle_imports_byte_for_byte(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    bundle = export_bundle(source, ["1", "2"], path)
    assert [e["seq"] for e in bundle["entries"]] == [1, 2]
    assert [e["seq"] for e in bundle["trust_entries"]] == [3]
    result = import_bundle(sink, path, key_name="bob")
    assert [e.kind for e in result.appended] == ["import", "import"]
    for imported, seq in zip(result.appended, (1, 2), strict=True):
        original = source.resolve(str(seq))
        assert imported.predicate.envelope == original.envelope
        assert foreign_entry_bytes(imported) == original.raw
        assert imported.predicate.source_digest == original.digest
        assert metrics_of(imported) == metrics_of(original)
    assert sink.verify().ok
    again = import_bundle(sink, path, key_name="bob")
    assert again.appended == [] and len(again.skipped) == 2


def test_pinned_key_must_anchor(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    export_bundle(source, ["1"], path)
    alice = public_pem(load_key("alice").public_key).encode()
    assert import_bundle(sink, path, pinned=[alice], key_name="bob").appended
    stranger = public_pem(generate_key("dave").public_key).encode()
    refused(sink, path, "trusted-key", pinned=[stranger])


def test_one_changed_byte_is_refused(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    bundle = build_bundle(source, ["1"])
    raw = bytearray(base64.b64decode(bundle["entries"][0]["raw"]))
    j = raw.index(b'"payload":"') + 20
    raw[j] = ord("A") if raw[j] != ord("A") else ord("B")
    bundle["entries"][0]["raw"] = base64.b64encode(bytes(raw)).decode()
    refused(sink, write(bundle, tmp_path / "b.json"), "digest")
    # with the digest "fixed" too, the inclusion proof no longer holds
    bundle["entries"][0]["digest"] = sha256_digest(bytes(raw))
    refused(sink, write(bundle, tmp_path / "c.json"), "inclusion proof fails")


def test_changed_byte_in_the_file_is_refused(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    export_bundle(source, ["1"], path)
    data = bytearray(path.read_bytes())
    k = data.index(b'"note":"') + 12  # a byte of the checkpoint's origin line
    data[k] = ord("x") if data[k] != ord("x") else ord("y")
    path.write_bytes(bytes(data))
    refused(sink, path, "refused")


def test_missing_proof_is_refused(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    bundle = build_bundle(source, ["1"])
    del bundle["entries"][0]["proof"]
    refused(sink, write(bundle, tmp_path / "b.json"), "no inclusion proof")


def test_unknown_key_listed_is_refused(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    bundle = build_bundle(source, ["1"])
    eve = generate_key("eve")
    bundle["keys"].append(
        {"keyid": eve.keyid, "name": "eve", "public_key": public_pem(eve.public_key)}
    )
    refused(sink, write(bundle, tmp_path / "b.json"), "unknown key")


def test_entry_signed_by_unknown_key_is_refused(
    source: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    mallory = generate_key("mallory")
    seq, prev = source.tip()  # type: ignore[misc]
    statement = source.resolve("1").document
    entry = build_entry(statement, kind="evidence", seq=seq + 1, prev=prev, keys=[mallory])
    with source.store.lock():
        source.store.commit_files(
            {entry_path(entry.seq): entry.raw}, "forged", source.store.resolve()
        )
    # `evledger checkpoint` refuses to sign over such a ledger; a forger signs one by hand
    frontier = merkle.Frontier()
    for e in source.entries():
        frontier.append(merkle.leaf_hash(digest_bytes(e.digest)))
    origin = source.resolve("0").document["predicate"]["origin"]
    cp = notes.Checkpoint(origin, frontier.size, frontier.root())
    note = notes.sign_note(cp, "alice", load_key("alice").private_key)
    with source.store.lock():
        source.store.commit_files(
            {f"checkpoints/{cp.size:09d}.note": note.encode()}, "cp", source.store.resolve()
        )
    with pytest.raises(VerificationFailed, match=r"seq 4 \(untrusted-key\)"):
        build_bundle(source, [str(entry.seq)])  # export vouches only for a clean ledger
    forged = list(source.entries())  # the forger assembles the bundle by hand
    bundle = assemble_bundle(source, forged, {entry.seq: forged[-1]})
    refused(sink, write(bundle, tmp_path / "b.json"), "not signed by a key trusted")


def test_proof_for_another_tree_is_refused(source: Ledger, sink: Ledger, tmp_path: Path) -> None:
    bundle = build_bundle(source, ["1"])
    source.append_files([sorted(LEGACY.glob("*.json"))[0]], key_name="alice")
    text, _ = source.checkpoint(key_name="alice")
    bundle["checkpoint"] = {"size": bundle["checkpoint"]["size"] + 1, "note": text}
    refused(sink, write(bundle, tmp_path / "b.json"), "inclusion proof fails")


def test_export_needs_a_covering_checkpoint(source: Ledger, tmp_path: Path) -> None:
    [entry] = source.append_files([sorted(LEGACY.glob("*.json"))[0]], key_name="alice")
    with pytest.raises(UsageError, match="evledger checkpoint"):
        export_bundle(source, [str(entry.seq)], tmp_path / "b.json")
    assert not (tmp_path / "b.json").exists()


def test_symlink_and_oversize_bundles_are_refused(
    source: Ledger, sink: Ledger, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "b.json"
    export_bundle(source, ["1"], path)
    link = tmp_path / "link.json"
    link.symlink_to(path)
    with pytest.raises(Exception, match="symlink"):
        import_bundle(sink, link, key_name="bob")
    monkeypatch.setattr(ledger.files, "MAX_INPUT_BYTES", 10)
    with pytest.raises(Exception, match="larger than"):
        import_bundle(sink, path, key_name="bob")


def test_non_finite_numbers_are_refused(sink: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text('{"format": NaN}')
    with pytest.raises(Exception, match="NaN"):
        import_bundle(sink, path, key_name="bob")
