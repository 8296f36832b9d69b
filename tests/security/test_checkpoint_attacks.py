"""Attacks on checkpoints and bundles, tried as an attacker would, with real keys and ledgers.

The issue's attack: a key added as an evidence signer at seq 3 and revoked at seq 8 builds its
own tree (the real genesis and key-add leaves, filler, a forged 16x claim at seq 14), leaves
the revocation out, signs a checkpoint itself, and hands the bundle to an auditor who pins the
real root key.
"""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger, init_ledger, prepare_input
from ledger.bundle import BundleRefused, assemble_bundle, build_bundle, import_bundle
from ledger.canonical import digest_bytes, digest_of
from ledger.chain import build_entry
from ledger.keys import generate_key, load_key, public_pem
from ledger.store import entry_path
from ledger.trust import TRUST_EXTENSION
from ledger.witness import cosign, init_witness

LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


def pem(name: str) -> bytes:
    return public_pem(load_key(name).public_key).encode()


def forged_bundle(led: Ledger, refs: list[str]) -> dict[str, Any]:
    """What a forger exports: `build_bundle` refuses a ledger that does not verify."""
    entries = list(led.entries())
    return assemble_bundle(led, entries, {int(r): entries[int(r)] for r in refs})


def write(doc: dict[str, Any], path: Path) -> Path:
    path.write_text(json.dumps(doc))
    return path


def _claim(ratio: float = 16.0) -> dict[str, Any]:
    statement = copy.deepcopy(prepare_input(LEGACY[0]).statement)
    statement["predicate"]["document"].setdefault("note", f"claims {ratio}x")
    return statement


def real_ledger(ledger: Ledger, roles: tuple[str, ...] = ("evidence",)) -> Ledger:
    """alice's ledger: evidence 1-2, mallory added at 3, evidence 4-7, mallory revoked at 8."""
    ledger.append_files(LEGACY, key_name="alice")
    generate_key("mallory")
    ledger.add_key(pem("mallory"), "mallory", key_name="alice", roles=roles)
    for _ in range(2):
        ledger.append_files(LEGACY, key_name="mallory")
    ledger.revoke_key(load_key("mallory").keyid, "laptop stolen", key_name="alice")
    ledger.append_files(LEGACY, key_name="alice")
    assert ledger.tip()[0] == 10  # type: ignore[index]
    ledger.checkpoint(key_name="alice")
    assert ledger.verify().ok
    return ledger


def forge(real: Ledger, tmp_path: Path) -> Ledger:
    """Mallory's fork: the real seq 0..3, filler 4..13, a 16x claim at 14, no revocation,
    a checkpoint signed by mallory that binds the (incomplete) key history correctly."""
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "--quiet", str(real.root), str(fork)], check=True)
    forged = Ledger(fork)
    at3 = next(
        line.split()[0]
        for line in subprocess.run(
            ["git", "log", "--format=%H %s"], cwd=fork, capture_output=True, text=True, check=True
        ).stdout.splitlines()
        if "seq 3)" in line
    )
    subprocess.run(["git", "reset", "--quiet", "--hard", at3], cwd=fork, check=True)
    mallory = load_key("mallory")
    seq, prev = forged.tip()  # type: ignore[misc]
    files: dict[str, bytes | None] = {}
    for s in range(seq + 1, 15):
        entry = build_entry(_claim(), kind="evidence", seq=s, prev=prev, keys=[mallory])
        files[entry_path(s)] = entry.raw
        prev = entry.digest
    with forged.store.lock():
        forged.store.commit_files(files, "filler and a 16x claim", forged.store.resolve())
    entries = list(forged.entries())
    frontier = merkle.Frontier()
    frontier.extend(merkle.leaf_hash(digest_bytes(e.digest)) for e in entries)
    history = [[e.seq, e.digest] for e in entries if e.kind in ("genesis", "key-add")]
    origin = entries[0].predicate.to_dict()["origin"]
    cp = notes.Checkpoint(
        origin, frontier.size, frontier.root(), (f"{TRUST_EXTENSION} {digest_of(history)}",)
    )
    note = notes.sign_note(cp, "mallory", mallory.private_key)
    with forged.store.lock():
        forged.store.commit_files(
            {f"checkpoints/{cp.size:09d}.note": note.encode()}, "cp", forged.store.resolve()
        )
    return forged


@pytest.fixture
def sink(home: Path, tmp_path: Path) -> Ledger:
    led, _ = init_ledger(tmp_path / "auditor", "bob")
    return led


def refused(sink: Ledger, path: Path, code: str, **kw: Any) -> BundleRefused:
    tip = sink.tip()
    with pytest.raises(BundleRefused) as info:
        import_bundle(sink, path, key_name="bob", **kw)
    assert info.value.code == code, str(info.value)
    assert sink.tip() == tip
    return info.value


def test_the_issues_forged_bundle_is_refused(ledger: Ledger, sink: Ledger, tmp_path: Path) -> None:
    real = real_ledger(ledger)
    forged = forge(real, tmp_path)
    bundle = forged_bundle(forged, ["14"])
    assert [e["seq"] for e in bundle["trust_entries"]] == [3]  # the revocation left out
    error = refused(
        sink, write(bundle, tmp_path / "forged.json"), "wrong-role", pinned=[pem("alice")]
    )
    assert "mallory" in str(error) and "checkpoint role" in str(error)
    refused(sink, tmp_path / "forged.json", "wrong-role")  # unpinned too


def test_a_pinned_genesis_keeps_an_impostor_origin_out(
    ledger: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    """A made-up ledger (its own genesis and keys) is refused when the auditor pins the real
    genesis; unpinned, the first bundle of an origin binds it (README threat model)."""
    ledger.append_files(LEGACY, key_name="alice")
    ledger.checkpoint(key_name="alice")
    real_genesis = ledger.resolve("0").digest
    generate_key("eve")
    impostor, _ = init_ledger(tmp_path / "impostor", "eve")
    genesis = impostor.resolve("0")
    assert genesis.digest != real_genesis
    impostor.append_files(LEGACY, key_name="eve")
    impostor.checkpoint(key_name="eve")
    fake = write(build_bundle(impostor, ["1"]), tmp_path / "fake.json")
    refused(sink, fake, "genesis-mismatch", genesis_pin=real_genesis[:23])
    honest = write(build_bundle(ledger, ["1"]), tmp_path / "honest.json")
    assert import_bundle(sink, honest, key_name="bob", genesis_pin=real_genesis[:23]).appended


def test_a_bundle_that_drops_a_revocation_no_longer_matches_its_note(
    ledger: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    real = real_ledger(ledger)
    bundle = build_bundle(real, ["1"])
    assert [e["seq"] for e in bundle["trust_entries"]] == [3, 8]
    bundle["trust_entries"] = bundle["trust_entries"][:1]
    refused(sink, write(bundle, tmp_path / "b.json"), "trust-mismatch", pinned=[pem("alice")])


def test_a_fork_by_a_revoked_checkpoint_key_needs_witnesses_to_be_caught(
    ledger: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    """With the checkpoint role, mallory's fork is consistent with itself: a pinned root key
    cannot tell (the README's threat model says so). A witness that cosigned the real ledger
    never cosigns the fork, so `--quorum 1` refuses it; so does an auditor who imported the
    real ledger before (split-view)."""
    real = real_ledger(ledger, roles=("evidence", "checkpoint"))
    w = init_witness("w1")
    cosigned = cosign(w, str(real.root)).note
    (tmp_path / "c.note").write_text(cosigned)
    real.attach_cosignatures([tmp_path / "c.note"])
    forged = forge(real, tmp_path)
    fake = write(forged_bundle(forged, ["14"]), tmp_path / "forged.json")
    witnesses = [w.key.public_key]
    refused(sink, fake, "quorum-not-met", pinned=[pem("alice")], witnesses=witnesses, quorum=1)
    honest = write(build_bundle(real, ["1"]), tmp_path / "honest.json")
    got = import_bundle(sink, honest, key_name="bob", witnesses=witnesses, quorum=1)
    assert got.bundle.cosigners == ["w1"]
    refused(sink, fake, "split-view", pinned=[pem("alice")])
    with pytest.raises(Exception, match=r"not-append-only|split-view"):
        cosign(w, str(forged.root))


def test_revoked_checkpoint_key_later_note_is_refused(
    ledger: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    ledger.append_files(LEGACY, key_name="alice")
    generate_key("cp")
    ledger.add_key(pem("cp"), "cp", key_name="alice", roles=("checkpoint",))
    ledger.checkpoint(key_name="cp")  # size 4: cp may sign
    ledger.revoke_key(load_key("cp").keyid, "rotated", key_name="alice")
    ledger.append_files(LEGACY, key_name="alice")
    with pytest.raises(Exception, match=r"not trusted|checkpoint role"):
        ledger.checkpoint(key_name="cp")  # refused when made
    assert ledger.verify().ok
    # signed by hand and committed anyway: verify reports it, import refuses it
    entries = list(ledger.entries())
    frontier = merkle.Frontier()
    frontier.extend(merkle.leaf_hash(digest_bytes(e.digest)) for e in entries)
    history = [[e.seq, e.digest] for e in entries if e.kind in ("genesis", "key-add", "key-revoke")]
    origin = entries[0].predicate.to_dict()["origin"]
    cp = notes.Checkpoint(
        origin, frontier.size, frontier.root(), (f"{TRUST_EXTENSION} {digest_of(history)}",)
    )
    note = notes.sign_note(cp, "cp", load_key("cp").private_key)
    with ledger.store.lock():
        ledger.store.commit_files(
            {f"checkpoints/{cp.size:09d}.note": note.encode()}, "cp", ledger.store.resolve()
        )
    codes = {(p.seq, p.code) for p in ledger.verify().problems}
    assert codes == {(None, "revoked-key")}
    assert ledger.view().entries[-1].seq == cp.size - 1  # the entries themselves still count
    refused(sink, write(forged_bundle(ledger, ["1"]), tmp_path / "b.json"), "revoked-key")


def test_two_inconsistent_checkpoints_of_one_origin_are_a_split_view(
    ledger: Ledger, sink: Ledger, tmp_path: Path
) -> None:
    ledger.append_files(LEGACY, key_name="alice")
    ledger.checkpoint(key_name="alice")
    first = write(build_bundle(ledger, ["1"]), tmp_path / "first.json")
    # the same origin, rewritten by its own root key after the first bundle went out
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "--quiet", str(ledger.root), str(fork)], check=True)
    other = Ledger(fork)
    subprocess.run(["git", "reset", "--quiet", "--hard", "HEAD~2"], cwd=fork, check=True)
    other.append_files([LEGACY[1], LEGACY[0], LEGACY[0]], key_name="alice")
    other.checkpoint(key_name="alice")
    second = write(build_bundle(other, ["2"]), tmp_path / "second.json")
    ledger.append_files([LEGACY[0]], key_name="alice")
    ledger.checkpoint(key_name="alice")
    grown = write(build_bundle(ledger, ["3"]), tmp_path / "grown.json")
    assert import_bundle(sink, first, key_name="bob").appended
    refused(sink, second, "split-view")
    doc = json.loads(grown.read_text())  # honest growth, but a consistency proof that lies
    doc["consistency"][0]["proof"][0] = "00" * 32
    refused(sink, write(doc, tmp_path / "lying.json"), "split-view")
    del doc["consistency"]
    refused(sink, write(doc, tmp_path / "unproven.json"), "split-view")
    assert import_bundle(sink, grown, key_name="bob").appended  # honest growth is consistent
    refused(sink, second, "split-view")


def test_root_threshold_two_of_three_is_honoured(ledger: Ledger, tmp_path: Path) -> None:
    for name in ("r2", "r3", "e1", "e2"):
        generate_key(name)
    ledger.add_key(pem("r2"), "r2", key_name="alice", roles=("root",))
    ledger.add_key(pem("r3"), "r3", key_name="alice", roles=("root",), root_threshold=2)
    with pytest.raises(Exception, match="threshold-not-met"):
        ledger.add_key(pem("e1"), "e1", key_name="alice")  # one root signature of two
    ledger.add_key(pem("e1"), "e1", key_name="alice", also_sign=["r3"])
    assert ledger.verify().ok
    # a key entry with one root signature, committed by hand, is reported by verify
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "key:e2", "digest": {"sha256": load_key("e2").keyid}}],
        "predicateType": next(e for e in ledger.entries() if e.kind == "key-add").predicate_type,
        "predicate": {
            "key": {
                "keyid": load_key("e2").keyid,
                "name": "e2",
                "public_key": public_pem(load_key("e2").public_key),
                "roles": ["evidence"],
            }
        },
    }
    seq, prev = ledger.tip()  # type: ignore[misc]
    entry = build_entry(statement, kind="key-add", seq=seq + 1, prev=prev, keys=[load_key("r2")])
    with ledger.store.lock():
        ledger.store.commit_files({entry_path(entry.seq): entry.raw}, "x", ledger.store.resolve())
    assert {p.code for p in ledger.verify().problems} == {"threshold-not-met"}
