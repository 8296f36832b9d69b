"""Tests for ledger.merkle: hashing, proofs, verification, Frontier."""

from __future__ import annotations

import base64
import hashlib
import json
import random
import time
from pathlib import Path

import pytest

from ledger.merkle import (
    EMPTY_ROOT,
    Frontier,
    ProofError,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    node_hash,
    root,
    verify_consistency,
    verify_inclusion,
)

VECTORS = Path(__file__).parents[1] / "vectors" / "rfc6962"

# transparency-dev/merkle testonly/constants.go: LeafInputs() and RootHashes().
LEAF_INPUTS = [
    bytes.fromhex(h)
    for h in [
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    ]
]
KNOWN_ROOTS = [
    bytes.fromhex(h)
    for h in [
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ]
]
KNOWN_LEAVES = [leaf_hash(d) for d in LEAF_INPUTS]


def _leaves(n: int, seed: int = 0) -> list[bytes]:
    """Return n distinct leaf hashes."""
    return [leaf_hash(hashlib.sha256(f"{seed}:{i}".encode()).digest()) for i in range(n)]


def _flip(h: bytes) -> bytes:
    """Return h with its lowest bit flipped."""
    return h[:-1] + bytes([h[-1] ^ 1])


def _ref_mth(leaves: list[bytes]) -> bytes:
    """Recursive textbook MTH, for cross-checking the iterative one."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(_ref_mth(leaves[:k]), _ref_mth(leaves[k:]))


# --- hashing -----------------------------------------------------------------


def test_empty_root() -> None:
    assert EMPTY_ROOT == hashlib.sha256(b"").digest() == KNOWN_ROOTS[0]
    assert root([]) == EMPTY_ROOT
    assert Frontier().root() == EMPTY_ROOT


def test_hash_leaf_known_answer() -> None:
    want = "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    assert leaf_hash(b"L123456").hex() == want


def test_hash_children_known_answer() -> None:
    want = "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    assert node_hash(b"N123", b"N456").hex() == want


def test_leaf_and_node_are_domain_separated() -> None:
    a, b = _leaves(2)
    assert leaf_hash(a + b) != node_hash(a, b)


@pytest.mark.parametrize("n", range(9))
def test_known_roots(n: int) -> None:
    assert root(KNOWN_LEAVES[:n]) == KNOWN_ROOTS[n]
    f = Frontier()
    f.extend(KNOWN_LEAVES[:n])
    assert f.root() == KNOWN_ROOTS[n]


def test_root_matches_recursive_reference() -> None:
    for n in range(1, 80):
        leaves = _leaves(n)
        assert root(leaves) == _ref_mth(leaves)


def test_root_rejects_wrong_length_leaf() -> None:
    with pytest.raises(ValueError, match="32-byte"):
        root([b"short"])


def test_root_100k_is_fast() -> None:
    leaves = _leaves(100_000)
    start = time.perf_counter()
    r = root(leaves)
    elapsed = time.perf_counter() - start
    f = Frontier()
    f.extend(leaves)
    assert f.root() == r
    assert elapsed < 1.0


# --- generated proofs against the golden happy paths ------------------------


def _happy(folder: str) -> list[dict]:
    """Return the happy-path cases of one vector kind."""
    out = []
    for p in sorted((VECTORS / folder).glob("*/happy-path.json")):
        out.append(json.loads(p.read_text(encoding="utf-8")))
    return out


def _b64(proof: list[str] | None) -> list[bytes]:
    """Decode a base64 proof list (None means empty)."""
    return [base64.b64decode(p) for p in proof or []]


def test_generated_inclusion_proofs_equal_golden_happy_paths() -> None:
    for case in _happy("inclusion"):
        leaves = KNOWN_LEAVES[: case["treeSize"]]
        assert root(leaves) == base64.b64decode(case["root"])
        assert leaves[case["leafIdx"]] == base64.b64decode(case["leafHash"])
        assert inclusion_proof(leaves, case["leafIdx"]) == _b64(case["proof"])


def test_generated_consistency_proofs_equal_golden_happy_paths() -> None:
    for case in _happy("consistency"):
        leaves = KNOWN_LEAVES[: case["size2"]]
        assert root(leaves[: case["size1"]]) == base64.b64decode(case["root1"])
        assert root(leaves) == base64.b64decode(case["root2"])
        assert consistency_proof(leaves, case["size1"]) == _b64(case["proof"])


# --- inclusion ---------------------------------------------------------------


def test_inclusion_proof_generation_bounds() -> None:
    leaves = _leaves(5)
    for bad in (-1, 5):
        with pytest.raises(ValueError, match="out of range"):
            inclusion_proof(leaves, bad)
    assert inclusion_proof(leaves[:1], 0) == []


def test_verify_inclusion_rejections() -> None:
    leaves = _leaves(7)
    r = root(leaves)
    proof = inclusion_proof(leaves, 3)
    verify_inclusion(leaves[3], 3, 7, proof, r)
    cases = [
        (leaves[3], 7, 7, proof, r, "index"),
        (leaves[3], -1, 7, proof, r, "index"),
        (leaves[3], 0, 0, [], r, "index"),
        (b"", 3, 7, proof, r, "leaf hash"),
        (leaves[3][:31], 3, 7, proof, r, "leaf hash"),
        (leaves[3], 3, 7, proof, b"", "empty"),
        (leaves[3], 3, 7, proof[:-1], r, "length"),
        (leaves[3], 3, 7, [*proof, r], r, "length"),
        (leaves[3], 3, 7, [proof[0][:31], *proof[1:]], r, "bytes"),
        (leaves[3], 3, 7, proof, _flip(r), "mismatch"),
        (leaves[4], 3, 7, proof, r, "mismatch"),
        (leaves[3], 3, 7, [_flip(proof[0]), *proof[1:]], r, "mismatch"),
        (leaves[3], 3, 4, proof, r, "length"),
    ]
    for leaf, idx, size, prf, rt, msg in cases:
        with pytest.raises(ProofError, match=msg):
            verify_inclusion(leaf, idx, size, prf, rt)


def test_proof_error_is_value_error() -> None:
    assert issubclass(ProofError, ValueError)


# --- consistency -------------------------------------------------------------


def test_consistency_proof_generation_bounds() -> None:
    leaves = _leaves(5)
    for bad in (0, -1, 6):
        with pytest.raises(ValueError, match="size1"):
            consistency_proof(leaves, bad)
    assert consistency_proof(leaves, 5) == []


def test_verify_consistency_rejections() -> None:
    leaves = _leaves(11)
    r1, r2 = root(leaves[:6]), root(leaves)
    proof = consistency_proof(leaves, 6)
    verify_consistency(6, 11, proof, r1, r2)
    verify_consistency(11, 11, [], r2, r2)
    cases = [
        (0, 11, proof, r1, r2, "size1"),
        (0, 0, [], EMPTY_ROOT, EMPTY_ROOT, "size1"),
        (12, 11, proof, r1, r2, "size1"),
        (6, 11, proof, b"", r2, "empty"),
        (6, 11, proof, r1, b"", "empty"),
        (11, 11, [r2], r2, r2, "not empty"),
        (11, 11, [], r2, r1, "mismatch"),
        (6, 11, [], r1, r2, "empty consistency proof"),
        (6, 11, proof[:-1], r1, r2, "length"),
        (6, 11, [*proof, r1], r1, r2, "length"),
        (6, 11, [proof[0][:16], *proof[1:]], r1, r2, "bytes"),
        (6, 11, proof, _flip(r1), r2, "root1 mismatch"),
        (6, 11, proof, r1, _flip(r2), "root2 mismatch"),
        (6, 11, proof, r2, r1, "mismatch"),
        (5, 11, proof, r1, r2, "length"),
        (6, 8, proof, r1, r2, "length"),
    ]
    for s1, s2, prf, a, b, msg in cases:
        with pytest.raises(ProofError, match=msg):
            verify_consistency(s1, s2, prf, a, b)
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = _flip(bad[i])
        with pytest.raises(ProofError, match="mismatch"):
            verify_consistency(6, 11, bad, r1, r2)


# --- Frontier ----------------------------------------------------------------


def test_frontier_hashes_are_the_perfect_subtrees() -> None:
    leaves = _leaves(13)  # 13 = 8 + 4 + 1
    f = Frontier()
    f.extend(leaves)
    assert f.size == 13
    assert f.hashes() == [root(leaves[:8]), root(leaves[8:12]), leaves[12]]
    f.hashes().clear()  # a copy, not the internal list
    assert len(f.hashes()) == 3


def test_frontier_from_hashes_validation() -> None:
    h = _leaves(3)
    with pytest.raises(ValueError, match="needs 2 hashes"):
        Frontier.from_hashes(3, h[:1])
    with pytest.raises(ValueError, match="needs 0 hashes"):
        Frontier.from_hashes(0, h[:1])
    with pytest.raises(ValueError, match="negative"):
        Frontier.from_hashes(-1, [])
    with pytest.raises(ValueError, match="32-byte"):
        Frontier.from_hashes(1, [b"x"])
    with pytest.raises(ValueError, match="32-byte"):
        Frontier().append(b"")


def test_frontier_resume_touches_only_new_leaves() -> None:
    leaves = _leaves(300, seed=7)
    old = Frontier()
    old.extend(leaves[:123])
    stored = (old.size, old.hashes())
    resumed = Frontier.from_hashes(*stored)
    resumed.extend(leaves[123:])
    assert resumed.root() == root(leaves)
    assert old.root() == root(leaves[:123])  # the original is untouched
    c = resumed.copy()
    c.append(leaves[0])
    assert resumed.size == 300 and c.size == 301


# --- property-style ----------------------------------------------------------


@pytest.mark.parametrize("seed", range(6))
def test_random_trees_all_proofs_verify(seed: int) -> None:
    rng = random.Random(seed)
    for _ in range(4):
        n = rng.randint(1, 70)
        leaves = _leaves(n, seed=rng.randrange(1 << 30))
        roots = [root(leaves[:m]) for m in range(n + 1)]
        assert roots[n] == _ref_mth(leaves)

        frontier = Frontier()
        for m in range(1, n + 1):
            frontier.append(leaves[m - 1])
            assert frontier.size == m
            assert frontier.root() == roots[m]
            again = Frontier.from_hashes(m, frontier.hashes())
            assert again.hashes() == frontier.hashes()
            assert again.root() == roots[m]

        for i in range(n):
            proof = inclusion_proof(leaves, i)
            verify_inclusion(leaves[i], i, n, proof, roots[n])
            if proof:
                with pytest.raises(ProofError):
                    verify_inclusion(leaves[i], i, n, [_flip(proof[0]), *proof[1:]], roots[n])

        for m in range(1, n + 1):
            proof = consistency_proof(leaves, m)
            verify_consistency(m, n, proof, roots[m], roots[n])
            if m < n:
                with pytest.raises(ProofError):
                    verify_consistency(m, n, proof, _flip(roots[m]), roots[n])
                with pytest.raises(ProofError):
                    verify_consistency(m, n, proof, roots[m], _flip(roots[n]))
