"""GPTQ-style quantization with error feedback (Frantar et al., 2022), group-wise asymmetric.

W is [out, in]; groups run along the input dimension (columns), `group_size` columns per
group and row, each with its own scale and zero point. With H = 2·XᵀX from calibration
inputs X [tokens, in], the columns are quantized one at a time in order and the rounding
error of each column is pushed onto the not-yet-quantized columns through the upper
Cholesky factor of H⁻¹, so that ‖XWᵀ - XŴᵀ‖ is reduced rather than ‖W - Ŵ‖. Work is
blocked (lazy batch updates) for speed. Everything is deterministic on one machine.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from scipy.linalg import lapack

from runners.measure import fp16_down, fp16_up

GridFn = Callable[[torch.Tensor, int], tuple[torch.Tensor, torch.Tensor]]


def minmax_grid(w: torch.Tensor, bits: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Asymmetric min/max grid of a block [rows, n]: (scale, offset), each [rows, 1].

    Same convention as `runners.measure.quantize`: the offset (value of code 0) is the
    group minimum rounded down to fp16 and the scale is rounded up to fp16, so both are
    stored exactly as fp16 and every value of the block lies inside the grid.
    """
    qmax = (1 << bits) - 1
    lo = fp16_down(w.amin(dim=1, keepdim=True)).to(torch.float32)
    span = (w.amax(dim=1, keepdim=True) - lo) / qmax
    scale = fp16_up(span).to(torch.float32)
    return scale, lo


def quantize_codes(
    w: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor, bits: int
) -> torch.Tensor:
    """Integer codes of `w` on the grid (scale, offset), clamped to [0, 2^bits - 1]."""
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    codes = torch.clamp(torch.round((w - offset) / safe), 0, (1 << bits) - 1)
    return torch.where(scale > 0, codes, torch.zeros_like(codes))


def dequantize(codes: torch.Tensor, scale: torch.Tensor, offset: torch.Tensor) -> torch.Tensor:
    """Reconstruct weights from codes and their grid: code·scale + offset."""
    return codes * scale + offset


@dataclass
class QuantResult:
    """Codes [out, in] (uint8), per-group scale/offset [out, groups], reconstruction [out, in]."""

    codes: torch.Tensor
    scale: torch.Tensor
    zero: torch.Tensor
    weight: torch.Tensor
    bits: int
    group_size: int


def _effective_group(group_size: int, cols: int) -> int:
    """Group size along the columns; ≤ 0 or ≥ cols means one group per row."""
    return cols if group_size <= 0 or group_size >= cols else group_size


def _expand(p: torch.Tensor, gs: int, cols: int) -> torch.Tensor:
    """Per-group parameters [rows, groups] expanded to per-column [rows, cols]."""
    return p.repeat_interleave(gs, dim=1)[:, :cols]


def rtn(w: torch.Tensor, bits: int, group_size: int, grid: GridFn = minmax_grid) -> QuantResult:
    """Plain round-to-nearest on the same group-wise grid (the GPTQ baseline)."""
    w = w.to(torch.float32)
    cols = w.shape[1]
    gs = _effective_group(group_size, cols)
    scales, zeros = [], []
    for c in range(0, cols, gs):
        s, z = grid(w[:, c : c + gs], bits)
        scales.append(s)
        zeros.append(z)
    scale, zero = torch.cat(scales, 1), torch.cat(zeros, 1)
    se, ze = _expand(scale, gs, cols), _expand(zero, gs, cols)
    codes = quantize_codes(w, se, ze, bits)
    return QuantResult(codes.to(torch.uint8), scale, zero, dequantize(codes, se, ze), bits, gs)


def _hinv_upper(h: torch.Tensor, damp: float) -> torch.Tensor:
    """Upper Cholesky factor of (H + λI)⁻¹, λ = damp·mean(diag H); retries with more damping."""
    h = h.to(torch.float64)
    n = h.shape[0]
    mean_diag = float(torch.diagonal(h).mean())
    lam = damp * (mean_diag if mean_diag > 0 else 1.0)
    eye = torch.eye(n, dtype=torch.float64)
    for _ in range(8):
        chol, info = torch.linalg.cholesky_ex(h + lam * eye)
        if int(info) == 0:
            hinv = torch.cholesky_solve(eye, chol)
            up, info2 = torch.linalg.cholesky_ex(hinv, upper=True)
            if int(info2) == 0:
                return up
        lam = lam * 10 if lam > 0 else 1e-6 * max(mean_diag, 1.0)
    raise ValueError("H is not positive definite even after heavy damping")


SOLVE_COLS = 256  # identity columns solved at a time in `_inverse_from_cholesky`


def _inverse_from_cholesky(chol: torch.Tensor) -> torch.Tensor:
    """`torch.cholesky_solve(eye, chol)` (L·Lᵀ·X = I) a block of identity columns at a time,
    as its two triangular solves (L·Y = I, then Lᵀ·X = Y: what LAPACK's potrs does; equal
    bit for bit here, tested). Each call of cholesky_solve copies the n×n factor;
    solve_triangular uses it in place, so only [n, SOLVE_COLS] blocks exist beside X."""
    n = chol.shape[0]
    out = torch.empty(n, n, dtype=chol.dtype)
    for j0 in range(0, n, SOLVE_COLS):
        j1 = min(j0 + SOLVE_COLS, n)
        eye = torch.zeros(n, j1 - j0, dtype=chol.dtype)
        eye[torch.arange(j0, j1), torch.arange(j1 - j0)] = 1.0
        y = torch.linalg.solve_triangular(chol, eye, upper=False)
        out[:, j0:j1] = torch.linalg.solve_triangular(chol.mT, y, upper=True)
    return out


def hinv_upper_lean(
    build: Callable[[], torch.Tensor], damp: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """(H's dead-column mask, `_hinv_upper` of the dead-fixed H as float32), as `gptq`
    computes them, in less memory and with the same numbers.

    `build()` returns a fresh H [in, in]; it is damped in place and dropped once factored
    (a retry with more damping builds it again), and H⁻¹ is solved a block of identity
    columns at a time. Peak: about two in×in float64 arrays (H and its Cholesky factor, then
    the factor and H⁻¹, then H⁻¹ and its factor) where `gptq` holds about six (its copy of
    H, the identity, H + λI, both factors and H⁻¹).
    """
    h = build().to(torch.float64)
    dead = torch.diagonal(h) == 0
    n = h.shape[0]
    lam = mean_diag = 0.0
    for attempt in range(8):
        if attempt:
            h = build().to(torch.float64)
        h[dead, dead] = 1.0
        if attempt == 0:
            mean_diag = float(torch.diagonal(h).mean())
            lam = damp * (mean_diag if mean_diag > 0 else 1.0)
        torch.diagonal(h).add_(lam)  # == h + λI: off-diagonal entries gain an exact 0.0
        chol, info = torch.linalg.cholesky_ex(h)
        if int(info) == 0:
            del h
            hinv = _inverse_from_cholesky(chol)
            del chol
            up, info2 = torch.linalg.cholesky_ex(hinv, upper=True)
            del hinv
            if int(info2) == 0:
                return dead, up.to(torch.float32)
            del up
        else:
            del h, chol
        lam = lam * 10 if lam > 0 else 1e-6 * max(mean_diag, 1.0)
    raise ValueError(f"H ({n}x{n}) is not positive definite even after heavy damping")


GRAM_COLS = 256  # H = 2·XᵀX is formed by `gram_f32` in tiles of GRAM_COLS² (float64 sums)
MIRROR_COLS = 256  # columns mirrored at a time when symmetrising H⁻¹ in place


def gram_f32(x: torch.Tensor, out: np.ndarray | None = None) -> np.ndarray:
    """H = 2·XᵀX [in, in] as a C-contiguous float32 array, from X [tokens, in].

    Tiles of `GRAM_COLS`×`GRAM_COLS` on and above the diagonal are summed in float64 (from
    float64 copies of two [tokens, GRAM_COLS] column blocks of X), rounded once to float32
    and mirrored, so nothing of in×in size exists besides H. `out` (an [in, in] float32
    C-contiguous array) is filled instead of a new one."""
    n = x.shape[1]
    h = np.empty((n, n), dtype=np.float32) if out is None else out
    ht = torch.from_numpy(h)
    for j0 in range(0, n, GRAM_COLS):
        j1 = min(j0 + GRAM_COLS, n)
        xj = x[:, j0:j1].to(torch.float64)
        for i0 in range(0, j1, GRAM_COLS):
            i1 = min(i0 + GRAM_COLS, n)
            xi = xj if i0 == j0 else x[:, i0:i1].to(torch.float64)
            tile = (xi.T @ xj).mul_(2.0).to(torch.float32)
            ht[i0:i1, j0:j1] = tile
            if i0 != j0:
                ht[j0:j1, i0:i1] = tile.T
    return h


def _same(a: np.ndarray, b: np.ndarray, what: str) -> None:
    """LAPACK must have worked on `a` itself (f2py copies a wrongly laid-out array)."""
    if not np.shares_memory(a, b):
        raise RuntimeError(f"scipy {what} copied its n×n input (expected in place)")


def hinv_upper_inplace(h: np.ndarray, lam: float) -> int:
    """Overwrite the symmetric C-contiguous float32 H [n, n] with the upper Cholesky factor U
    of (H + λI)⁻¹ (H⁻¹ = UᵀU, strict lower triangle zeroed), with no second n×n array.

    Only H's upper triangle is read. LAPACK works column-major, so it is given `h.T`
    (Fortran-contiguous, the same matrix since H is symmetric; its lower triangle is h's
    upper one): spotrf (lower) → L, spotri (lower) → lower triangle of H⁻¹, mirrored in
    place a block of columns at a time, then spotrf (lower) of H⁻¹ = L'·L'ᵀ, whose L' in
    `h.T`'s lower triangle is U = L'ᵀ in h's upper one. Returns 0, or LAPACK's info (not
    positive definite / singular; h is then garbage).
    """
    if h.dtype != np.float32 or not h.flags.c_contiguous or h.shape[0] != h.shape[1]:
        raise ValueError("h must be a square C-contiguous float32 array")
    n = h.shape[0]
    a = h.T  # Fortran-contiguous view
    np.einsum("ii->i", h)[:] += np.float32(lam)  # == H + λI (off-diagonal unchanged)
    c, info = lapack.spotrf(a, lower=1, overwrite_a=1, clean=0)
    _same(c, h, "spotrf")
    if info != 0:
        return int(info)
    c, info = lapack.spotri(c, lower=1, overwrite_c=1)
    _same(c, h, "spotri")
    if info != 0:
        return int(info)
    # H⁻¹ is in h's upper triangle; copy it onto the lower one, MIRROR_COLS columns at a time.
    for j0 in range(0, n, MIRROR_COLS):
        j1 = min(j0 + MIRROR_COLS, n)
        d = h[j0:j1, j0:j1]
        il = np.tril_indices(j1 - j0, -1)
        d[il] = d.T[il]
        if j1 < n:
            h[j1:, j0:j1] = h[j0:j1, j1:].T
    c, info = lapack.spotrf(a, lower=1, overwrite_a=1, clean=0)
    _same(c, h, "spotrf")
    if info != 0:
        return int(info)
    for j0 in range(0, n, MIRROR_COLS):  # zero the strict lower triangle (unused by GPTQ)
        j1 = min(j0 + MIRROR_COLS, n)
        d = h[j0:j1, j0:j1]
        d[np.tril_indices(j1 - j0, -1)] = 0.0
        h[j1:, j0:j1] = 0.0
    return 0


def hinv_upper_f32(x: torch.Tensor, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(H's dead-column mask, float32 upper Cholesky factor of (H + λI)⁻¹), H = 2·XᵀX from
    X [tokens, in]: H in float32 (`gram_f32`) factored in place with LAPACK
    (`hinv_upper_inplace`), so the peak is about one in×in float32 array — half of one
    float64 array, a quarter of `hinv_upper_lean`'s. Dead columns and λ as in `gptq`
    (λ = damp·mean(diag H), taken in float64); a retry (not positive definite in float32)
    rebuilds H into the same array with λ·10. AutoGPTQ also factors in float32.
    """
    h = gram_f32(x)
    dead_np = np.diagonal(h) == 0
    n = h.shape[0]
    lam = mean_diag = 0.0
    for attempt in range(8):
        if attempt:
            gram_f32(x, out=h)
        np.einsum("ii->i", h)[dead_np] = 1.0
        if attempt == 0:
            mean_diag = float(np.diagonal(h).astype(np.float64).mean())
            lam = damp * (mean_diag if mean_diag > 0 else 1.0)
        if hinv_upper_inplace(h, lam) == 0:
            return torch.from_numpy(dead_np.copy()), torch.from_numpy(h)
        lam = lam * 10 if lam > 0 else 1e-6 * max(mean_diag, 1.0)
    raise ValueError(f"H ({n}x{n}) is not positive definite even after heavy damping")


def gptq(
    w: torch.Tensor,
    h: torch.Tensor,
    bits: int,
    group_size: int,
    *,
    damp: float = 0.01,
    block_size: int = 128,
    grid: GridFn = minmax_grid,
) -> QuantResult:
    """Quantize W [out, in] given H [in, in] (= 2·XᵀX) with GPTQ error feedback."""
    cols = w.shape[1]
    if h.shape != (cols, cols):
        raise ValueError(f"H has shape {tuple(h.shape)}, expected {(cols, cols)}")
    dead, hinv = dead_fixed_hinv(h, damp)
    return gptq_rows(w, hinv, dead, bits, group_size, block_size=block_size, grid=grid)


def dead_fixed_hinv(h: torch.Tensor, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
    """(H's dead-column mask, float32 upper Cholesky factor of (H + λI)⁻¹), dead inputs
    (zero diagonal) set to 1 first; `h` is not modified."""
    h = h.to(torch.float64).clone()
    dead = torch.diagonal(h) == 0
    h[dead, dead] = 1.0
    return dead, _hinv_upper(h, damp).to(torch.float32)


def gptq_rows(
    w: torch.Tensor,
    hinv: torch.Tensor,
    dead: torch.Tensor,
    bits: int,
    group_size: int,
    *,
    block_size: int = 128,
    grid: GridFn = minmax_grid,
) -> QuantResult:
    """GPTQ of W [rows, in] given the float32 upper Cholesky factor of H⁻¹ and H's dead
    columns. Rows are independent given H⁻¹, so a block of rows gives those rows' result."""
    w = w.to(torch.float32).clone()
    rows, cols = w.shape
    gs = _effective_group(group_size, cols)
    w[:, dead] = 0.0
    # Block boundaries aligned with group starts, so each group's grid is taken from
    # fully error-updated weights.
    if gs <= block_size:
        bs = gs * max(1, block_size // gs)
    else:
        bs = block_size if gs % block_size == 0 else gs
    n_groups = -(-cols // gs)
    scale = torch.empty(rows, n_groups)
    zero = torch.empty(rows, n_groups)
    codes = torch.empty(rows, cols)
    # The column loop is many small ops: one thread avoids intra-op sync (2-3x faster on a
    # busy 2-core host); every op is elementwise or a per-element product, so the result
    # does not depend on the thread count.
    prev_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _columns(w, hinv, codes, scale, zero, bits, gs, bs, grid)
    finally:
        torch.set_num_threads(prev_threads)
    se, ze = _expand(scale, gs, cols), _expand(zero, gs, cols)
    q_all = dequantize(codes, se, ze)
    return QuantResult(codes.to(torch.uint8), scale, zero, q_all, bits, gs)


def _columns(
    w: torch.Tensor,
    hinv: torch.Tensor,
    codes: torch.Tensor,
    scale: torch.Tensor,
    zero: torch.Tensor,
    bits: int,
    gs: int,
    bs: int,
    grid: GridFn,
) -> None:
    """The blocked GPTQ column loop; fills codes, scale and zero in place."""
    cols = w.shape[1]
    maxq = float((1 << bits) - 1)
    s_col = z_col = d_col = torch.empty(0)
    for i1 in range(0, cols, bs):
        i2 = min(i1 + bs, cols)
        w1 = w[:, i1:i2].clone()
        q1 = torch.empty_like(w1)
        err1 = torch.empty_like(w1)
        hinv1 = hinv[i1:i2, i1:i2]
        for i in range(i2 - i1):
            c = i1 + i
            if c % gs == 0:
                g_end = min(c + gs, cols)
                blk = torch.cat([w1[:, i : min(g_end, i2) - i1], w[:, i2:g_end]], dim=1)
                s2, z2 = grid(blk, bits)
                scale[:, c // gs] = s2[:, 0]
                zero[:, c // gs] = z2[:, 0]
                s_col, z_col = s2[:, 0], z2[:, 0]
                d_col = torch.where(s_col > 0, s_col, torch.ones_like(s_col))
            col = w1[:, i]
            q = torch.round((col - z_col) / d_col).clamp_(0.0, maxq)
            q1[:, i] = q
            e = (col - torch.addcmul(z_col, q, s_col)) / hinv1[i, i]
            err1[:, i] = e
            if i + 1 < i2 - i1:
                w1[:, i + 1 :].addr_(e, hinv1[i, i + 1 :], alpha=-1.0)
        codes[:, i1:i2] = q1
        w[:, i2:].addmm_(err1, hinv[i1:i2, i2:], alpha=-1.0)


def output_error(x: torch.Tensor, w: torch.Tensor, w_hat: torch.Tensor) -> float:
    """‖X Wᵀ - X Ŵᵀ‖_F in float64."""
    x64 = x.to(torch.float64)
    return float(torch.linalg.norm(x64 @ (w.to(torch.float64) - w_hat.to(torch.float64)).T))
