"""Entropy-coded scalar quantization (ECSQ) of one matrix: uniform step, deadzone, contexts.

Codes q = sign(w)·floor(|w|/Δ + θ) (θ = ½ is plain rounding, θ < ½ a deadzone); the
reconstruction is sign(q)·(|q| − δ)·Δ with δ the least-squares shift toward zero (stored as
fp16). Rows are put into `classes` contexts by their RMS (the class of each row is side
information, packed 2 bits a row); each context has its own categorical model. Everything the
decoder needs is in the bytes: header (shape, Δ, δ, θ-free), row classes, models, and one ANS
stream.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from runners.coding import Reader, SymbolModel, decode_chunks, encode_chunks, put_uvarint
from runners.measure import CompressedMatrix, pack_bits, unpack_bits

MAGIC_ECSQ = b"E1"


def row_classes(w: torch.Tensor, n: int) -> np.ndarray:
    """Context of each row: its RMS rank split into `n` equal-count classes (uint8)."""
    rows = w.shape[0]
    if n <= 1:
        return np.zeros(rows, dtype=np.uint8)
    rms = w.to(torch.float64).pow(2).mean(dim=1).sqrt().numpy()
    order = np.argsort(rms, kind="stable")
    classes = np.empty(rows, dtype=np.uint8)
    classes[order] = (np.arange(rows) * n // rows).astype(np.uint8)
    return classes


def class_bits(n: int) -> int:
    """Bits per row for `n` classes (0 for one class)."""
    return 0 if n <= 1 else max(1, math.ceil(math.log2(n)))


def quantize(w: torch.Tensor, step: float, theta: float) -> torch.Tensor:
    """Integer codes sign(w)·floor(|w|/Δ + θ), int64."""
    a = torch.floor(w.abs() / step + theta)
    return (torch.sign(w) * a).to(torch.int64)


def best_shift(w: torch.Tensor, q: torch.Tensor, step: float) -> float:
    """Least-squares δ in [0, ½) for |ŵ| = (|q| − δ)·Δ, rounded to fp16."""
    nz = q != 0
    if not bool(nz.any()):
        return 0.0
    r = (w[nz].abs().to(torch.float64) / step) - q[nz].abs().to(torch.float64)
    d = float(min(max(-r.mean(), 0.0), 0.499))
    return float(np.float16(d))


def reconstruct(q: torch.Tensor, step: float, shift: float) -> torch.Tensor:
    """sign(q)·(|q| − δ)·Δ as float32."""
    qf = q.to(torch.float32)
    return (qf - torch.sign(qf) * shift) * step


def cos_of(w: torch.Tensor, w_hat: torch.Tensor) -> float:
    """Weight cosine, float64 accumulation."""
    x = w.reshape(-1).to(torch.float64)
    y = w_hat.reshape(-1).to(torch.float64)
    nx, ny = float(x.norm()), float(y.norm())
    if nx == 0 or ny == 0:
        return 1.0 if nx == ny else 0.0
    return float(torch.dot(x, y)) / (nx * ny)


def rate_bits(q: torch.Tensor, classes: np.ndarray, n_classes: int) -> float:
    """Order-0 code length of the codes with one model per row class (bits; no header)."""
    from runners.coding import entropy_bits_of

    qn = q.numpy()
    total = 0.0
    for c in range(max(1, n_classes)):
        sel = qn[classes == c] if n_classes > 1 else qn
        if sel.size:
            total += entropy_bits_of(np.bincount((sel - sel.min()).reshape(-1)))
    return total


def search_step(
    at: Callable[[float], tuple[float, Any]], target: float, start: float, iters: int = 9
) -> tuple[float, Any]:
    """Largest step Δ (float32) with cos(Δ) >= target, and `at`'s payload there.

    1 − cos grows like Δ² at a fixed shape, so the search runs on g = log(1 − cos) against
    log Δ: clamped secant steps until the target is bracketed, then regula falsi inside the
    bracket. If no tried step meets the target, the smallest is shrunk until one does.
    """
    tried: list[tuple[float, float, Any]] = []

    def g_at(logs: float) -> float:
        step = float(np.float32(math.exp(logs)))
        c, payload = at(step)
        tried.append((step, c, payload))
        return math.log(max(1.0 - c, 1e-30))

    goal = math.log(max(1.0 - target, 1e-30))
    a = math.log(start)
    pts = [(a, g_at(a))]
    pts.append((a + max(-0.7, min(0.7, 0.5 * (goal - pts[0][1]))), 0.0))
    pts[-1] = (pts[-1][0], g_at(pts[-1][0]))
    for _ in range(iters - 2):
        lo = [p for p in pts if p[1] <= goal]
        hi = [p for p in pts if p[1] > goal]
        if lo and hi:
            p0, p1 = max(lo), min(hi)
            if p1[0] - p0[0] < 2e-4 or goal - p0[1] < 2e-4:
                break
            t = (goal - p0[1]) / (p1[1] - p0[1])
            nxt = p0[0] + min(0.9, max(0.1, t)) * (p1[0] - p0[0])
        else:
            (x0, y0), (x1, y1) = pts[-2], pts[-1]
            slope = (y1 - y0) / (x1 - x0) if x1 != x0 and y1 != y0 else 2.0
            nxt = x1 + max(-0.7, min(0.7, (goal - y1) / min(4.0, max(0.5, slope))))
        pts.append((nxt, g_at(nxt)))
    ok = [t for t in tried if t[1] >= target]
    if ok:
        step, _c, payload = max(ok, key=lambda t: t[0])
        return step, payload
    s = min(t[0] for t in tried)
    for _ in range(400):
        s = float(np.float32(s * 0.97))
        c, payload = at(s)
        if c >= target:
            return s, payload
    raise RuntimeError("no step reaches the target cosine")


def _fast_cos(
    a_w: torch.Tensor, norm_w: float, step: float, theta: float
) -> tuple[float, float, torch.Tensor]:
    """(cos, δ, floor(|w|/Δ + θ)) without building signed codes: sign(q) = sign(w), so the
    cosine is that of the magnitudes."""
    a = a_w / step
    fq = torch.floor(a + theta)
    nz = fq > 0
    cnt = int(nz.sum())
    delta = 0.0
    if cnt:
        r = float(torch.where(nz, fq - a, 0.0).to(torch.float64).sum()) / cnt
        delta = float(np.float16(min(max(r, 0.0), 0.499)))
    mag = torch.where(nz, fq - delta, 0.0)
    dot = float((a_w * mag).to(torch.float64).sum())
    nm = float(mag.to(torch.float64).pow(2).sum().sqrt())
    return (dot / (norm_w * nm) if nm > 0 else 0.0), delta, fq


def _kernels() -> tuple[Any, Any, Any]:  # compiled on first use (the default path needs no numba)
    import numba

    @numba.njit(cache=True)
    def sums(a_w: np.ndarray, step: np.float32, theta: np.float32) -> tuple:
        cnt = 0
        r = sxf = sx = sff = sf = 0.0
        for i in range(a_w.size):
            a = a_w[i] / step  # float32 arithmetic, as torch's a_w / Δ
            fq = np.floor(a + theta)
            if fq > 0:
                cnt += 1
                r += np.float64(np.float32(fq - a))
                x = np.float64(a_w[i])
                f = np.float64(fq)
                sxf += x * f
                sx += x
                sff += f * f
                sf += f
        return cnt, r, sxf, sx, sff, sf

    @numba.njit(cache=True)
    def codes(w: np.ndarray, step: np.float32, theta: np.float32) -> np.ndarray:
        out = np.empty(w.size, dtype=np.int64)
        for i in range(w.size):
            f = np.int64(np.floor(abs(w[i]) / step + theta))  # as `quantize`, float32
            out[i] = f if w[i] > 0 else (-f if w[i] < 0 else 0)
        return out

    @numba.njit(cache=True)
    def rebuild(q: np.ndarray, step: np.float32, shift: np.float32) -> np.ndarray:
        out = np.empty(q.size, dtype=np.float32)
        for i in range(q.size):
            qf = np.float32(q[i])
            s = shift if q[i] > 0 else (-shift if q[i] < 0 else np.float32(0.0))
            out[i] = (qf - s) * step  # float32, one rounding per op: as `reconstruct`
        return out

    return sums, codes, rebuild


_KERNELS: Any = None
#: the fast path aims this far above the target cosine, far above its rounding (~1e-11)
FAST_MARGIN = 1e-9


class Prepared:
    """One matrix made ready for many step searches (a search over targets): |w|, ‖w‖ and
    the row classes computed once; every tried step costs one compiled pass."""

    def __init__(self, w: torch.Tensor, n_classes: int) -> None:
        """Keep the float32 matrix and what every search needs from it."""
        global _KERNELS
        if _KERNELS is None:
            _KERNELS = _kernels()
        self.w = w.to(torch.float32).contiguous()
        self.w_np = self.w.reshape(-1).numpy()
        self.a_np = np.abs(self.w_np)
        self.norm = float(np.sqrt(np.square(self.a_np, dtype=np.float64).sum())) or 1.0
        self.rms = self.norm / math.sqrt(max(1, self.w.numel()))
        self.classes = row_classes(self.w, n_classes)

    def cos(self, step: float, theta: float) -> tuple[float, float]:
        """`_fast_cos`'s (cos, δ), the cosine in closed form from Σ|w|·q, Σ|w|, Σq², Σq over
        the non-zero codes (float64 sums; it differs from the torch figure by ~1e-11)."""
        cnt, r, sxf, sx, sff, sf = _KERNELS[0](self.a_np, np.float32(step), np.float32(theta))
        delta = float(np.float16(min(max(r / cnt, 0.0), 0.499))) if cnt else 0.0
        dot = sxf - delta * sx
        nm2 = sff - 2.0 * delta * sf + delta * delta * cnt
        return (dot / (self.norm * math.sqrt(nm2)) if nm2 > 0 else 0.0), delta

    def codes(self, step: float, theta: float) -> torch.Tensor:
        """`quantize(w, step, theta)` (the same float32 operations), int64."""
        q = _KERNELS[1](self.w_np, np.float32(step), np.float32(theta))
        return torch.from_numpy(q).reshape(self.w.shape)

    def rebuild(self, codes: np.ndarray, step: float, shift: float) -> torch.Tensor:
        """`reconstruct(codes, step, shift)` in one compiled pass (the same float32 ops)."""
        q = np.ascontiguousarray(codes).reshape(-1)
        out = _KERNELS[2](q, np.float32(step), np.float32(shift))
        return torch.from_numpy(out).reshape(self.w.shape)

    def solve(
        self, target: float, theta: float, start: float | None = None
    ) -> tuple[float, float, torch.Tensor]:
        """`solve_step` on the prepared matrix, aiming FAST_MARGIN above the target."""
        if start is None:
            start = math.sqrt(12.0 * max(1.0 - target * target, 1e-12)) * self.rms
        step, delta = search_step(lambda s: self.cos(s, theta), target + FAST_MARGIN, start)
        return step, delta, self.codes(step, theta)


def solve_step(
    w: torch.Tensor,
    target: float,
    theta: float,
    start: float | None = None,
    prepared: Prepared | None = None,
) -> tuple[float, float, torch.Tensor]:
    """Largest step whose reconstruction has cos >= target; (Δ, δ, q).

    `prepared` (the same matrix, `Prepared`) takes the compiled path for searches that solve
    many targets; without it, the torch evaluation the runners have always used.
    """
    if prepared is not None:
        return prepared.solve(target, theta, start)
    w = w.to(torch.float32)
    a_w = w.abs()
    norm_w = float(a_w.to(torch.float64).pow(2).sum().sqrt()) or 1.0
    rms = norm_w / math.sqrt(max(1, w.numel()))

    def at(step: float) -> tuple[float, float]:
        c, d, _fq = _fast_cos(a_w, norm_w, step, theta)
        return c, d

    if start is None:
        start = math.sqrt(12.0 * max(1.0 - target * target, 1e-12)) * rms
    step, delta = search_step(at, target, start)
    q = quantize(w, step, theta)
    return step, delta, q


@dataclass
class EcsqCode:
    """What the bytes of one ECSQ matrix hold."""

    shape: tuple[int, int]
    step: float
    shift: float
    n_classes: int
    classes: np.ndarray
    codes: np.ndarray  # int64 [rows, cols]


def encode(code: EcsqCode) -> dict[str, bytes]:
    """Header (shape, Δ fp32, δ fp16, models), row classes, ANS stream: every byte counted."""
    rows, cols = code.shape
    head = bytearray(MAGIC_ECSQ)
    put_uvarint(head, rows)
    put_uvarint(head, cols)
    head += struct.pack("<fe", code.step, code.shift)
    put_uvarint(head, code.n_classes)
    chunks = []
    for c in range(code.n_classes):
        sym = code.codes[code.classes == c].reshape(-1)
        model = SymbolModel.fit(sym)
        model.to_bytes(head)
        chunks.append((sym, model))
    parts = {"header": bytes(head), "stream": encode_chunks(chunks)}
    if code.n_classes > 1:
        parts["contexts"] = pack_bits(code.classes, class_bits(code.n_classes))
    return parts


def decode(parts: dict[str, bytes]) -> tuple[EcsqCode, torch.Tensor]:
    """Inverse of `encode`: the code and the float32 reconstruction rebuilt from the bytes."""
    r = Reader(parts["header"])
    if r.take(2) != MAGIC_ECSQ:
        raise ValueError("not an ECSQ header")
    rows, cols = r.uvarint(), r.uvarint()
    step, shift = struct.unpack("<fe", r.take(6))
    n_classes = r.uvarint()
    if not 1 <= n_classes <= 256:
        raise ValueError("bad class count")
    models = [SymbolModel.read(r) for _ in range(n_classes)]
    r.done()
    if n_classes > 1:
        classes = unpack_bits(parts["contexts"], class_bits(n_classes), rows)
    else:
        classes = np.zeros(rows, dtype=np.uint8)
    counts = [int((classes == c).sum()) * cols for c in range(n_classes)]
    chunks = decode_chunks(parts["stream"], list(zip(counts, models, strict=True)))
    codes = np.empty((rows, cols), dtype=np.int64)
    for c, sym in enumerate(chunks):
        codes[classes == c] = sym.reshape(-1, cols)
    code = EcsqCode((rows, cols), float(step), float(shift), n_classes, classes, codes)
    w_hat = reconstruct(torch.from_numpy(codes), float(step), float(shift))
    return code, w_hat


def plan(
    w: torch.Tensor,
    target: float,
    n_classes: int,
    thetas: tuple[float, ...],
    starts: dict[float, float] | None = None,
    prepared: Prepared | None = None,
) -> tuple[EcsqCode, float]:
    """The codes `compress` encodes: best θ (fewest estimated bits) at cos >= target.

    `starts` (θ -> step) starts each step search there instead of the high-rate guess, and
    `prepared` takes the compiled path (see `solve_step`): a search over targets passes the
    steps it found before (the result is the code planned, encoded as it is).
    """
    w = w.to(torch.float32)
    classes = prepared.classes if prepared is not None else row_classes(w, n_classes)
    best = None
    for theta in thetas:
        start = starts.get(theta) if starts else None
        step, shift, q = solve_step(w, target, theta, start, prepared)
        bits = rate_bits(q, classes, n_classes)
        if best is None or bits < best[0]:
            best = (bits, theta, step, shift, q)
    assert best is not None
    _, theta, step, shift, q = best
    code = EcsqCode(tuple(w.shape), step, shift, n_classes, classes, q.numpy())  # type: ignore[arg-type]
    return code, theta


def planned_reconstruction(code: EcsqCode) -> torch.Tensor:
    """The float32 reconstruction `decode` rebuilds from the bytes of `code` (same op)."""
    return reconstruct(torch.from_numpy(code.codes), code.step, code.shift)


def encode_checked(code: EcsqCode, theta: float) -> CompressedMatrix:
    """Encode `code`, decode the bytes back and check them; the reconstruction is the decoded."""
    parts = encode(code)
    back, w_hat = decode(parts)
    if not np.array_equal(back.codes, code.codes):
        raise RuntimeError("ECSQ stream did not decode to the encoded codes")
    return CompressedMatrix(parts, w_hat, {"step": code.step, "shift": code.shift, "theta": theta})


def compress(
    w: torch.Tensor,
    target: float,
    n_classes: int,
    thetas: tuple[float, ...],
    planned: tuple[EcsqCode, float] | None = None,
) -> tuple[CompressedMatrix, EcsqCode]:
    """Best θ (fewest estimated bits) at cos >= target; encoded, decoded back, checked.

    `planned`: the (code, θ) `plan` already chose for this matrix and target (a search kept
    it); it is encoded as it is."""
    code, theta = planned if planned is not None else plan(w, target, n_classes, thetas)
    return encode_checked(code, theta), code


def rd_table(
    w: torch.Tensor, classes: np.ndarray, n_classes: int, steps: np.ndarray, theta: float = 0.5
) -> tuple[np.ndarray, np.ndarray]:
    """cos and estimated code bits (order-0 with the row contexts, no header) at each step."""
    w = w.to(torch.float32)
    a_w, sign = w.abs(), torch.sign(w).to(torch.int64)
    norm_w = float(a_w.to(torch.float64).pow(2).sum().sqrt()) or 1.0
    cos = np.empty(len(steps))
    bits = np.empty(len(steps))
    for i, step in enumerate(steps):
        c, _d, fq = _fast_cos(a_w, norm_w, float(step), theta)
        cos[i] = c
        bits[i] = rate_bits(sign * fq.to(torch.int64), classes, n_classes)
    return cos, bits


def compress_near(
    w: torch.Tensor, target: float, n_classes: int, start: float, classes: np.ndarray
) -> CompressedMatrix:
    """ECSQ (θ = ½) at cos >= target, the step search started at `start`; decoded back."""
    w = w.to(torch.float32)
    step, shift, q = solve_step(w, target, 0.5, start)
    code = EcsqCode(tuple(w.shape), step, shift, n_classes, classes, q.numpy())  # type: ignore[arg-type]
    parts = encode(code)
    back, w_hat = decode(parts)
    if not np.array_equal(back.codes, code.codes):
        raise RuntimeError("ECSQ stream did not decode to the encoded codes")
    return CompressedMatrix(parts, w_hat, {"step": step, "shift": shift, "theta": 0.5})


def feedback_codes(
    w: torch.Tensor, h: torch.Tensor, step: float, damp: float = 0.01
) -> torch.Tensor:
    """Integer codes on the uniform grid Δ·Z with GPTQ error feedback (Frantar et al. 2022).

    Columns are rounded in order; each column's rounding error, scaled by the upper Cholesky
    factor of (H + λI)⁻¹, is pushed onto the columns not yet rounded, so that ‖X(W − Ŵ)ᵀ‖
    shrinks rather than ‖W − Ŵ‖. No clamping: the grid is unbounded, the coder takes any code.
    Dead inputs (zero diagonal of H) are set to 1 first, as GPTQ does.
    """
    from runners.gptq import dead_fixed_hinv

    _dead, hinv = dead_fixed_hinv(h, damp)
    w = w.to(torch.float32).clone()
    rows, cols = w.shape
    q = torch.empty(rows, cols)
    block = 128
    prev = torch.get_num_threads()
    torch.set_num_threads(1)  # a long loop of small ops; the result does not depend on it
    try:
        for i1 in range(0, cols, block):
            i2 = min(i1 + block, cols)
            w1 = w[:, i1:i2].clone()
            err1 = torch.empty_like(w1)
            h1 = hinv[i1:i2, i1:i2]
            for i in range(i2 - i1):
                col = w1[:, i]
                qc = torch.round(col / step)
                q[:, i1 + i] = qc
                e = (col - qc * step) / h1[i, i]
                err1[:, i] = e
                if i + 1 < i2 - i1:
                    w1[:, i + 1 :].addr_(e, h1[i, i + 1 :], alpha=-1.0)
            w[:, i2:].addmm_(err1, hinv[i1:i2, i2:], alpha=-1.0)
    finally:
        torch.set_num_threads(prev)
    return q.to(torch.int64)


def compress_feedback(
    w: torch.Tensor, x: torch.Tensor, target: float, n_classes: int, damp: float = 0.01
) -> CompressedMatrix:
    """ECSQ step for `target` (weight cos, plain rounding), then GPTQ-feedback codes on that
    grid with H = 2·XᵀX; entropy-coded and decoded back like `compress`."""
    w = w.to(torch.float32)
    step, _shift, _q = solve_step(w, target, 0.5)
    x64 = x.to(torch.float64)
    q = feedback_codes(w, 2.0 * (x64.T @ x64), step, damp)
    code = EcsqCode(tuple(w.shape), step, 0.0, n_classes, row_classes(w, n_classes), q.numpy())  # type: ignore[arg-type]
    return encode_checked(code, 0.5)
