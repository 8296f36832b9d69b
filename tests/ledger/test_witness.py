"""The witness core: full verify the first time, then only the new entries and an RFC 6962
consistency proof from its own record; refusals leave the record untouched."""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path

import pytest
from attacker import commit_raw

from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger
from ledger.canonical import digest_bytes
from ledger.store import entry_path
from ledger.witness import WitnessRefused, cosign, init_witness, load_state, load_witness

LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


def origin_of(ledger: Ledger) -> str:
    return str(ledger.resolve("0").predicate.to_dict()["origin"])


def test_frontier_consistency_proofs_equal_full_ones() -> None:
    leaves = [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(70)]
    for n in range(1, 70):
        for m in range(1, n + 1):
            old = merkle.Frontier()
            old.extend(leaves[:m])
            proof = merkle.consistency_proof_from_frontier(old, leaves[m:n])
            assert proof == merkle.consistency_proof(leaves[:n], m)
            merkle.verify_consistency(m, n, proof, old.root(), merkle.root(leaves[:n]))


def test_first_full_then_only_the_new_entries(filled: Ledger) -> None:
    filled.checkpoint(key_name="alice")
    w = init_witness("w1")
    first = cosign(w, str(filled.root), now=100)
    assert (first.mode, first.old_size, first.entries_checked) == ("full", 0, 5)
    assert notes.verify_cosignatures(first.note, [w.key.public_key])[0].timestamp == 100
    filled.append_files(LEGACY, key_name="alice")
    filled.checkpoint(key_name="alice")
    second = cosign(w, str(filled.root), now=200)
    assert (second.mode, second.old_size, second.entries_checked) == ("incremental", 5, 2)
    cp = second.checkpoint
    merkle.verify_consistency(5, 7, second.proof, first.checkpoint.root, cp.root)
    state = load_state(load_witness("w1"), origin_of(filled))
    assert state is not None and (state.size, state.root, state.cosigned_at) == (
        7,
        cp.root.hex(),
        200,
    )
    log = next((w.folder / "logs").glob("*.jsonl")).read_text().splitlines()
    assert [json.loads(r)["old_size"] for r in log] == [0, 5]
    again = cosign(w, str(filled.root), now=300)  # nothing new: cosigned again, fresh time
    assert (again.old_size, again.entries_checked, again.proof) == (7, 0, [])


def test_rewritten_rolled_back_and_split_ledgers_are_refused(
    filled: Ledger, tmp_path: Path
) -> None:
    filled.checkpoint(key_name="alice")
    w = init_witness("w1")
    cosign(w, str(filled.root))
    before = load_state(w, origin_of(filled))
    fork = tmp_path / "fork"
    subprocess.run(["git", "clone", "--quiet", str(filled.root), str(fork)], check=True)
    other = Ledger(fork)
    subprocess.run(["git", "reset", "--quiet", "--hard", "HEAD~2"], cwd=fork, check=True)
    other.append_files([LEGACY[1], LEGACY[0]], key_name="alice")
    other.checkpoint(key_name="alice")  # same size 5, another root
    with pytest.raises(WitnessRefused) as info:
        cosign(w, str(fork))
    assert info.value.code == "split-view"
    other.append_files(LEGACY, key_name="alice")
    other.checkpoint(key_name="alice")  # size 7, not an extension of the cosigned 5
    with pytest.raises(WitnessRefused) as info:
        cosign(w, str(fork))
    assert info.value.code == "not-append-only"
    subprocess.run(["git", "reset", "--quiet", "--hard", "HEAD~4"], cwd=fork, check=True)
    Ledger(fork).checkpoint(key_name="alice")  # size 3 < 5: rolled back
    with pytest.raises(WitnessRefused) as info:
        cosign(w, str(fork))
    assert info.value.code == "not-append-only" and "rolled back" in str(info.value)
    assert load_state(w, origin_of(filled)) == before


def test_a_bad_new_entry_is_refused_with_its_verify_code(filled: Ledger) -> None:
    filled.checkpoint(key_name="alice")
    w = init_witness("w1")
    cosign(w, str(filled.root))
    before = load_state(w, origin_of(filled))
    [entry] = filled.append_files(LEGACY[:1], key_name="alice")
    raw = entry.raw.replace(b'"sig":"', b'"sig":"AAAA', 1)
    commit_raw(filled.root, {entry_path(entry.seq): raw})  # the store refuses overwrites
    frontier = merkle.Frontier()
    frontier.extend(merkle.leaf_hash(digest_bytes(e.digest)) for e in filled.entries())
    cp = notes.Checkpoint(origin_of(filled), frontier.size, frontier.root())
    from ledger.keys import load_key

    note = notes.sign_note(cp, "alice", load_key("alice").private_key)
    with filled.store.lock():
        filled.store.commit_files(
            {f"checkpoints/{cp.size:09d}.note": note.encode()}, "cp", filled.store.resolve()
        )
    with pytest.raises(WitnessRefused) as info:
        cosign(w, str(filled.root))
    assert info.value.code in {"bad-signature", "unverifiable-signature", "not-canonical"}
    assert load_state(w, origin_of(filled)) == before


def test_a_genesis_pin_guards_the_first_contact(filled: Ledger, tmp_path: Path) -> None:
    filled.checkpoint(key_name="alice")
    w = init_witness("w1")
    with pytest.raises(WitnessRefused) as info:
        cosign(w, str(filled.root), genesis_pin="sha256:" + "0" * 16)
    assert info.value.code == "genesis-mismatch"
    assert load_state(w, origin_of(filled)) is None
    assert cosign(w, str(filled.root), genesis_pin=filled.resolve("0").digest[:23]).line
