"""Entropy-constrained trellis-coded quantization (ECTCQ) of one matrix, numba kernels.

Reproduction points are Δ·n for integers n, split into four subsets D_j = {n ≡ j mod 4}.
A state s of the S-state trellis (S a power of two, shift register s' = (2s + b) mod S)
allows the union A_u = D_u ∪ D_{u+2} with u = s & 1; a point n = 2k + u of A_u is coded as
its index k, and the parity of k with the tap parity of s picks the branch bit b. Each row
of the matrix is one trellis path from state 0. Viterbi minimises Σ (w/Δ − n)² + λ·bits(k)
with bits(k) = −log2 p(k | u, row class) from the current context models (Fischer & Wang's
ECTCQ); the models are refitted and the search repeated. The decoder walks the trellis,
taking each index from the stream of its context (row class, union), so the bytes decode
back without any search.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numba
import numpy as np
import torch

from runners.coding import Reader, SymbolModel, decode_chunks, encode_chunks, put_uvarint
from runners.ecsq_core import class_bits, cos_of, row_classes, search_step
from runners.measure import CompressedMatrix, pack_bits, unpack_bits

MAGIC_TCQ = b"T1"
#: tap masks (top bit included, as Ungerboeck's rules need) found best by a search on
#: Gaussian data at λ = 0 (granular MSE at a fixed step); see tests/runners/test_tcq.py
TAPS: dict[int, int] = {4: 0b10, 8: 0b111, 16: 0b1101, 32: 0b10110, 64: 0b110101}
ESCAPE_BITS = 40.0


@numba.njit(cache=True, inline="always")
def _parity(x: int) -> int:
    p = 0
    while x:
        p ^= x & 1
        x >>= 1
    return p


@numba.njit(parallel=True, cache=True)
def viterbi(
    x: np.ndarray,  # float64 [rows, cols]: w / Δ
    row_ctx: np.ndarray,  # int64 [rows]
    bits: np.ndarray,  # float64 [contexts * 2, K]: −log2 p of index k − kmin
    kmin: int,
    lam: float,
    n_states: int,
    taps: int,
) -> np.ndarray:
    """Indices k [rows, cols] (int64) of the least-cost path of every row.

    The branch metric depends only on the sample and the subset D_j (j = u + 2p), so the
    four subset metrics are computed once per sample; the trellis is then add-compare-select
    per next state ns, whose two predecessors are ns >> 1 and (ns >> 1) + S/2.
    """
    rows, cols = x.shape
    n_k = bits.shape[1]
    out = np.empty((rows, cols), dtype=np.int64)
    par = np.empty(n_states, dtype=np.int64)
    for s in range(n_states):
        par[s] = _parity(s & taps)
    half = n_states // 2
    for r in numba.prange(rows):
        cost = np.full(n_states, np.inf)
        cost[0] = 0.0
        new = np.empty(n_states)
        back = np.empty((cols, n_states), dtype=np.uint8)
        kj = np.empty((cols, 4), dtype=np.int64)
        metric = np.empty(4)
        ctx = row_ctx[r] * 2
        for c in range(cols):
            v = x[r, c]
            for u in range(2):
                t = (v - u) * 0.5  # continuous index in A_u
                tbl = ctx + u
                for p in range(2):
                    kf = 2 * math.floor((t - p) * 0.5) + p
                    e0 = v - (2 * kf + u)
                    e1 = e0 - 4.0
                    j0 = kf - kmin
                    b0 = bits[tbl, j0] if 0 <= j0 < n_k else 40.0
                    b1 = bits[tbl, j0 + 2] if 0 <= j0 + 2 < n_k else 40.0
                    c0 = e0 * e0 + lam * b0
                    c1 = e1 * e1 + lam * b1
                    j = u + 2 * p
                    if c0 <= c1:
                        metric[j] = c0
                        kj[c, j] = kf
                    else:
                        metric[j] = c1
                        kj[c, j] = kf + 2
            for ns in range(n_states):
                b = ns & 1
                s1 = ns >> 1
                s2 = s1 + half
                # both predecessors share the union u = s & 1 (S >= 4)
                m1 = cost[s1] + metric[(s1 & 1) + 2 * (b ^ par[s1])]
                m2 = cost[s2] + metric[(s2 & 1) + 2 * (b ^ par[s2])]
                if m1 <= m2:
                    new[ns] = m1
                    back[c, ns] = 0
                else:
                    new[ns] = m2
                    back[c, ns] = 1
            for s in range(n_states):
                cost[s] = new[s]
        s = 0
        best = np.inf
        for t in range(n_states):
            if cost[t] < best:
                best = cost[t]
                s = t
        for c in range(cols - 1, -1, -1):
            prev = (s >> 1) + half * back[c, s]
            out[r, c] = kj[c, (prev & 1) + 2 * ((s & 1) ^ par[prev])]
            s = prev
    return out


@numba.njit(cache=True)
def walk(k: np.ndarray, n_states: int, taps: int) -> tuple[np.ndarray, np.ndarray]:
    """Union u [rows, cols] (int64) and reproduction n = 2k + u of index paths k."""
    rows, cols = k.shape
    u_out = np.empty((rows, cols), dtype=np.int64)
    n_out = np.empty((rows, cols), dtype=np.int64)
    for r in range(rows):
        s = 0
        for c in range(cols):
            u = s & 1
            kv = k[r, c]
            u_out[r, c] = u
            n_out[r, c] = 2 * kv + u
            s = ((s << 1) | ((kv & 1) ^ _parity(s & taps))) & (n_states - 1)
    return u_out, n_out


@numba.njit(cache=True)
def unwalk(
    streams: numba.typed.List,  # type: ignore[name-defined]
    row_ctx: np.ndarray,
    cols: int,
    n_states: int,
    taps: int,
) -> np.ndarray:
    """Decoder: indices k [rows, cols], each taken from the stream of its (class, union)."""
    rows = row_ctx.shape[0]
    pos = np.zeros(len(streams), dtype=np.int64)
    k = np.empty((rows, cols), dtype=np.int64)
    for r in range(rows):
        s = 0
        for c in range(cols):
            ch = row_ctx[r] * 2 + (s & 1)
            kv = streams[ch][pos[ch]]
            pos[ch] += 1
            k[r, c] = kv
            s = ((s << 1) | ((kv & 1) ^ _parity(s & taps))) & (n_states - 1)
    return k


def _fit_tables(k: np.ndarray, u: np.ndarray, row_ctx: np.ndarray, n_ctx: int, kmin: int, n_k: int):
    """−log2 p tables [n_ctx·2, n_k] from the current paths (add-½ smoothing)."""
    tables = np.empty((n_ctx * 2, n_k))
    ctx = (row_ctx[:, None] * 2 + u).reshape(-1)
    idx = (k - kmin).reshape(-1)
    counts = np.zeros((n_ctx * 2, n_k))
    np.add.at(counts, (ctx, idx), 1.0)
    for t in range(n_ctx * 2):
        c = counts[t] + 0.5
        tables[t] = -np.log2(c / c.sum())
    return tables


def search(
    w: torch.Tensor,
    step: float,
    kappa: float,
    row_ctx: np.ndarray,
    n_ctx: int,
    n_states: int,
    passes: int = 2,
) -> np.ndarray:
    """ECTCQ indices at step Δ with λ = κ (in units of Δ²), models refitted between passes."""
    x = (w.to(torch.float64) / step).numpy()
    taps = TAPS[n_states]
    lim = int(np.ceil(np.abs(x).max() / 2)) + 2
    kmin, n_k = -lim - 1, 2 * lim + 3
    # start from the scalar rounding of each union, a fair first model
    k0 = np.floor(x * 0.5 + 0.5).astype(np.int64)
    u0 = np.zeros_like(k0)
    tables = _fit_tables(k0, u0, row_ctx, n_ctx, kmin, n_k)
    tables[1::2] = tables[0::2]
    k = viterbi(x, row_ctx.astype(np.int64), tables, kmin, 0.0, n_states, taps)
    for _ in range(passes if kappa > 0 else 0):
        u, _n = walk(k, n_states, taps)
        tables = _fit_tables(k, u, row_ctx, n_ctx, kmin, n_k)
        k = viterbi(x, row_ctx.astype(np.int64), tables, kmin, kappa, n_states, taps)
    return k


def reconstruct(k: np.ndarray, step: float, n_states: int) -> torch.Tensor:
    """Δ·n (float32) of index paths."""
    _u, n = walk(k, n_states, TAPS[n_states])
    return torch.from_numpy(n.astype(np.float32) * np.float32(step))


@dataclass
class TcqCode:
    """What the bytes of one TCQ matrix hold."""

    shape: tuple[int, int]
    step: float
    n_states: int
    n_classes: int
    classes: np.ndarray
    k: np.ndarray  # int64 [rows, cols]


def encode(code: TcqCode) -> dict[str, bytes]:
    """Header (shape, Δ fp32, trellis, per-context counts and models), contexts, ANS stream."""
    rows, cols = code.shape
    u, _n = walk(code.k, code.n_states, TAPS[code.n_states])
    head = bytearray(MAGIC_TCQ)
    put_uvarint(head, rows)
    put_uvarint(head, cols)
    head += struct.pack("<f", code.step)
    put_uvarint(head, code.n_states)
    put_uvarint(head, code.n_classes)
    ctx = (code.classes[:, None].astype(np.int64) * 2 + u).reshape(-1)
    flat = code.k.reshape(-1)
    chunks = []
    for t in range(code.n_classes * 2):
        sym = flat[ctx == t]
        if t % 2 == 0:
            put_uvarint(head, int(sym.size))
        model = SymbolModel.fit(sym)
        model.to_bytes(head)
        chunks.append((sym, model))
    parts = {"header": bytes(head), "stream": encode_chunks(chunks)}
    if code.n_classes > 1:
        parts["contexts"] = pack_bits(code.classes, class_bits(code.n_classes))
    return parts


def decode(parts: dict[str, bytes]) -> tuple[TcqCode, torch.Tensor]:
    """Inverse of `encode`: the code and Δ·n rebuilt from the bytes alone."""
    r = Reader(parts["header"])
    if r.take(2) != MAGIC_TCQ:
        raise ValueError("not a TCQ header")
    rows, cols = r.uvarint(), r.uvarint()
    (step,) = struct.unpack("<f", r.take(4))
    n_states, n_classes = r.uvarint(), r.uvarint()
    if n_states not in TAPS or not 1 <= n_classes <= 256:
        raise ValueError("bad trellis or class count")
    if n_classes > 1:
        classes = unpack_bits(parts["contexts"], class_bits(n_classes), rows)
    else:
        classes = np.zeros(rows, dtype=np.uint8)
    specs = []
    for t in range(n_classes * 2):
        if t % 2 == 0:
            n0 = r.uvarint()
            count = n0
        else:
            count = int((classes == t // 2).sum()) * cols - n0
            if count < 0:
                raise ValueError("bad context count")
        specs.append((count, SymbolModel.read(r)))
    r.done()
    streams = decode_chunks(parts["stream"], specs)
    typed = numba.typed.List()
    for s in streams:
        typed.append(np.ascontiguousarray(s, dtype=np.int64))
    k = unwalk(typed, classes.astype(np.int64), cols, n_states, TAPS[n_states])
    code = TcqCode((rows, cols), float(step), n_states, n_classes, classes, k)
    return code, reconstruct(k, float(step), n_states)


def solve_step(
    w: torch.Tensor,
    target: float,
    kappa: float,
    row_ctx: np.ndarray,
    n_ctx: int,
    n_states: int,
    start: float,
) -> tuple[float, np.ndarray]:
    """Largest Δ with cos >= target (see `runners.ecsq_core.search_step`) and its indices."""
    w = w.to(torch.float32)

    def at(step: float) -> tuple[float, np.ndarray]:
        k = search(w, step, kappa, row_ctx, n_ctx, n_states)
        return cos_of(w, reconstruct(k, step, n_states)), k

    return search_step(at, target, start)


def compress(
    w: torch.Tensor,
    target: float,
    n_classes: int,
    n_states: int,
    kappa: float,
    start: float,
) -> tuple[CompressedMatrix, TcqCode]:
    """ECTCQ at cos >= target; encoded, decoded back and checked."""
    w = w.to(torch.float32)
    classes = row_classes(w, n_classes)
    step, k = solve_step(w, target, kappa, classes.astype(np.int64), n_classes, n_states, start)
    code = TcqCode(tuple(w.shape), step, n_states, n_classes, classes, k)  # type: ignore[arg-type]
    parts = encode(code)
    back, w_hat = decode(parts)
    if not np.array_equal(back.k, k):
        raise RuntimeError("TCQ stream did not decode to the encoded indices")
    return CompressedMatrix(parts, w_hat, {"step": step, "states": n_states}), code
