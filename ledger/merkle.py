"""RFC 6962 / RFC 9162 Merkle tree: hashing, proofs, verification and a compact frontier."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "Frontier",
    "ProofError",
    "consistency_proof",
    "consistency_proof_from_frontier",
    "inclusion_proof",
    "leaf_hash",
    "node_hash",
    "root",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = hashlib.sha256(b"").digest()

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


class ProofError(ValueError):
    """An inclusion or consistency proof does not verify."""


def leaf_hash(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash SHA-256(0x00 || data)."""
    return hashlib.sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash SHA-256(0x01 || left || right)."""
    return hashlib.sha256(_NODE_PREFIX + left + right).digest()


def _check_hashes(hashes: Iterable[bytes], what: str) -> None:
    """Raise ValueError unless every hash is HASH_SIZE bytes."""
    for i, h in enumerate(hashes):
        if not isinstance(h, bytes | bytearray) or len(h) != HASH_SIZE:
            raise ValueError(f"{what}[{i}] is not a {HASH_SIZE}-byte hash")


def _split(n: int) -> int:
    """Return the largest power of two strictly smaller than n (n >= 2)."""
    return 1 << ((n - 1).bit_length() - 1)


def _mth(leaves: Sequence[bytes], lo: int, hi: int) -> bytes:
    """Return MTH(leaves[lo:hi]) iteratively, pairing left to right and promoting odd nodes."""
    if hi <= lo:
        return EMPTY_ROOT
    level = list(leaves[lo:hi])
    while len(level) > 1:
        nxt = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            nxt.append(level[-1])
        level = nxt
    return bytes(level[0])


def root(leaf_hashes: Sequence[bytes]) -> bytes:
    """Return the Merkle tree hash MTH of the given leaf hashes (EMPTY_ROOT for none)."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    return _mth(leaf_hashes, 0, len(leaf_hashes))


def _path(leaves: Sequence[bytes], m: int, lo: int, hi: int) -> list[bytes]:
    """Return RFC 9162 PATH(m, D[lo:hi]), ordered from the leaf upward."""
    if hi - lo <= 1:
        return []
    k = _split(hi - lo)
    if m < k:
        return [*_path(leaves, m, lo, lo + k), _mth(leaves, lo + k, hi)]
    return [*_path(leaves, m - k, lo + k, hi), _mth(leaves, lo, lo + k)]


def inclusion_proof(leaf_hashes: Sequence[bytes], index: int) -> list[bytes]:
    """Return the inclusion proof (audit path) for leaf `index` in the tree of all leaves."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    if not 0 <= index < len(leaf_hashes):
        raise ValueError(f"index {index} out of range for tree size {len(leaf_hashes)}")
    return _path(leaf_hashes, index, 0, len(leaf_hashes))


def _subproof(leaves: Sequence[bytes], m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
    """Return RFC 9162 SUBPROOF(m, D[lo:hi], b)."""
    n = hi - lo
    if m == n:
        return [] if complete else [_mth(leaves, lo, hi)]
    k = _split(n)
    if m <= k:
        return [*_subproof(leaves, m, lo, lo + k, complete), _mth(leaves, lo + k, hi)]
    return [*_subproof(leaves, m - k, lo + k, hi, False), _mth(leaves, lo, lo + k)]


def consistency_proof(leaf_hashes: Sequence[bytes], size1: int) -> list[bytes]:
    """Return the consistency proof from the prefix of size1 leaves to all leaves."""
    _check_hashes(leaf_hashes, "leaf_hashes")
    size2 = len(leaf_hashes)
    if not 0 < size1 <= size2:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {size1}, {size2}")
    if size1 == size2:
        return []
    return _subproof(leaf_hashes, size1, 0, size2, True)


def consistency_proof_from_frontier(old: Frontier, new_leaves: Sequence[bytes]) -> list[bytes]:
    """The consistency proof from the tree `old` to `old` + `new_leaves`, without old leaves.

    Every hash of an RFC 6962 consistency proof is either a perfect subtree of the old tree
    on its right edge (one of the frontier's hashes) or a subtree of new leaves only, so the
    cost is O(len(new_leaves) + log n): what a witness needs when a log grew a little.
    """
    _check_hashes(new_leaves, "new_leaves")
    m, n = old.size, old.size + len(new_leaves)
    if not 0 < m <= n:
        raise ValueError(f"consistency proof needs 0 < size1 <= size2, got {m}, {n}")
    if m == n:
        return []
    known: dict[tuple[int, int], bytes] = {}
    lo = 0
    for bit in reversed(range(m.bit_length())):
        if m >> bit & 1:
            known[(lo, lo + (1 << bit))] = old.hashes()[len(known)]
            lo += 1 << bit

    def mth(lo: int, hi: int) -> bytes:
        if lo >= m:
            return _mth(new_leaves, lo - m, hi - m)
        if (lo, hi) not in known:
            raise ValueError(f"subtree [{lo}, {hi}) is not on the old tree's frontier")
        return known[(lo, hi)]

    def sub(k_m: int, lo: int, hi: int, complete: bool) -> list[bytes]:
        size = hi - lo
        if k_m == size:
            return [] if complete else [mth(lo, hi)]
        k = _split(size)
        if k_m <= k:
            return [*sub(k_m, lo, lo + k, complete), mth(lo + k, hi)]
        return [*sub(k_m - k, lo + k, hi, False), mth(lo, lo + k)]

    return sub(m, 0, n, True)


def _check_proof(proof: Sequence[bytes]) -> None:
    """Raise ProofError unless every proof element is a HASH_SIZE-byte hash."""
    for i, h in enumerate(proof):
        if len(h) != HASH_SIZE:
            raise ProofError(f"proof[{i}] has {len(h)} bytes, want {HASH_SIZE}")


def _decomp(index: int, size: int) -> tuple[int, int]:
    """Split an inclusion proof for index in a tree of size into (inner, border) lengths."""
    inner = (index ^ (size - 1)).bit_length()
    border = (index >> inner).bit_count()
    return inner, border


def _chain_inner(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Hash seed up through proof, taking the side from the bits of index."""
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: Sequence[bytes], index: int) -> bytes:
    """Like _chain_inner but only folds in left-side siblings (the older subtree)."""
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: Sequence[bytes]) -> bytes:
    """Fold the right-border proof hashes, which are all left siblings."""
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _match(calculated: bytes, expected: bytes, what: str) -> None:
    """Raise ProofError if the calculated hash differs from the expected one."""
    if calculated != expected:
        raise ProofError(
            f"{what} mismatch: calculated {calculated.hex()}, expected {expected.hex()}"
        )


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf_hash sits at index in the tree of the given size and root."""
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in [0, size {size})")
    if len(leaf_hash) != HASH_SIZE:
        raise ProofError(f"leaf hash has {len(leaf_hash)} bytes, want {HASH_SIZE}")
    if len(root) == 0:
        raise ProofError("root hash is empty")
    inner, border = _decomp(index, size)
    if len(proof) != inner + border:
        raise ProofError(f"wrong inclusion proof length {len(proof)}, want {inner + border}")
    _check_proof(proof)
    calculated = _chain_inner(leaf_hash, proof[:inner], index)
    calculated = _chain_border_right(calculated, proof[inner:])
    _match(calculated, root, "root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Check that the tree (size2, root2) extends the tree (size1, root1); needs 0 < size1."""
    if not 0 < size1 <= size2:
        raise ProofError(f"consistency needs 0 < size1 <= size2, got size1={size1} size2={size2}")
    if len(root1) == 0 or len(root2) == 0:
        raise ProofError("root hash is empty")
    if size1 == size2:
        if len(proof) != 0:
            raise ProofError("size1 == size2 but the proof is not empty")
        _match(root1, root2, "root2")
        return
    if len(proof) == 0:
        raise ProofError("empty consistency proof for size1 < size2")
    _check_proof(proof)
    inner, border = _decomp(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1
    inner -= shift
    if size1 == 1 << shift:
        seed, rest = root1, proof
    else:
        seed, rest = proof[0], proof[1:]
    if len(rest) != inner + border:
        want = inner + border + len(proof) - len(rest)
        raise ProofError(f"wrong consistency proof length {len(proof)}, want {want}")
    mask = (size1 - 1) >> shift
    hash1 = _chain_border_right(_chain_inner_right(seed, rest[:inner], mask), rest[inner:])
    _match(hash1, root1, "root1")
    hash2 = _chain_border_right(_chain_inner(seed, rest[:inner], mask), rest[inner:])
    _match(hash2, root2, "root2")


class Frontier:
    """Compact range over leaves [0, size): the perfect-subtree roots, left to right."""

    __slots__ = ("_hashes", "_size")

    def __init__(self) -> None:
        """Start an empty frontier."""
        self._size = 0
        self._hashes: list[bytes] = []

    @classmethod
    def from_hashes(cls, size: int, hashes: Sequence[bytes]) -> Frontier:
        """Resume from a stored size and its subtree roots (one per set bit of size)."""
        if size < 0:
            raise ValueError(f"negative frontier size {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(f"frontier of size {size} needs {size.bit_count()} hashes")
        _check_hashes(hashes, "hashes")
        frontier = cls()
        frontier._size = size
        frontier._hashes = [bytes(h) for h in hashes]
        return frontier

    @property
    def size(self) -> int:
        """Return the number of leaves appended so far."""
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        """Append one leaf hash, merging equal-size subtrees."""
        _check_hashes([leaf_hash], "leaf_hash")
        self._hashes.append(bytes(leaf_hash))
        n = self._size
        while n & 1:
            right = self._hashes.pop()
            left = self._hashes.pop()
            self._hashes.append(node_hash(left, right))
            n >>= 1
        self._size += 1

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        """Append several leaf hashes in order."""
        for h in leaf_hashes:
            self.append(h)

    def hashes(self) -> list[bytes]:
        """Return a copy of the subtree roots, largest (leftmost) first."""
        return list(self._hashes)

    def root(self) -> bytes:
        """Return the Merkle tree hash of the leaves so far."""
        if not self._hashes:
            return EMPTY_ROOT
        acc = self._hashes[-1]
        for h in reversed(self._hashes[:-1]):
            acc = node_hash(h, acc)
        return acc

    def copy(self) -> Frontier:
        """Return an independent copy."""
        return Frontier.from_hashes(self._size, self._hashes)

    def __repr__(self) -> str:
        """Return a short debug representation."""
        return f"Frontier(size={self._size}, hashes={len(self._hashes)})"
