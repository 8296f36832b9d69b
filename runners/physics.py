"""A data-dependent rate-distortion bound of one matrix, from the weights themselves.

Scale model: w_ij = σ_ij·z_ij with σ_ij = r_i·c_j (row RMS, then column RMS of the
row-normalised matrix). The Shannon lower bound (SLB) of a memoryless source with known
per-element scales is R(D) ≥ h(Z) + mean log2 σ_ij − ½·log2(2πe·D); for a cosine c the
distortion of the best-scaled reconstruction is D = (1 − c²)·P with P = mean w². Against the
Gaussian reference R_G = ½·log2(1/(1 − c²)) this lowers the rate by the *gap*
½·log2(2πe·P) − h(Z) − mean log2 σ_ij ≥ 0 (the Gaussian has the largest entropy at a given
power). h(Z) is estimated by Vasicek's m-spacing estimator (m = √n); its error is stated as
the spread of the estimate over 8 disjoint subsets (2 standard errors) plus the shift between
the full-sample and the subset estimates (the estimator's small-sample bias). Scales are
treated as free side information, which only lowers the bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

SUBSETS = 8
LOG2E = 1.0 / math.log(2.0)


@dataclass(frozen=True)
class DataBound:
    """Bits a weight below the Gaussian reference that the scale-model SLB allows."""

    gap_bits: float  # row-wise entropy estimate (used)
    error_bits: float
    pooled_gap_bits: float  # one pooled entropy estimate of z (reported beside it)
    n: int


def _vasicek_bits(z: np.ndarray) -> float:
    """m-spacing estimate of the differential entropy (bits) of samples `z`."""
    x = np.sort(z.astype(np.float64))
    n = x.size
    m = max(1, round(math.sqrt(n)))
    hi = x[np.minimum(np.arange(n) + m, n - 1)]
    lo = x[np.maximum(np.arange(n) - m, 0)]
    spacing = np.maximum(hi - lo, 1e-300)
    return float(np.mean(np.log(n / (2.0 * m) * spacing))) * LOG2E


def data_bound(w: torch.Tensor, seed: int = 0) -> DataBound:
    """The SLB gap below the Gaussian reference for matrix `w`, and its estimation error.

    h(W) is estimated row by row on the column-normalised rows (each row its own law, so a
    row's scale and shape both count; the mean of per-row entropies is at most the pooled
    one, which keeps the bound low), plus mean log2 of the column scales. The error is twice
    the standard error over 8 disjoint groups of rows.
    """
    a = w.detach().to(torch.float64).reshape(w.shape[0], -1)
    rows = a.shape[0]
    power = float(a.pow(2).mean())
    r = a.pow(2).mean(dim=1, keepdim=True).sqrt().clamp_min(1e-300)
    c = (a / r).pow(2).mean(dim=0, keepdim=True).sqrt().clamp_min(1e-300)
    zc = (a / c).numpy()
    log_c = float(torch.log2(c).mean())
    h_rows = np.array([_vasicek_bits(zc[i]) for i in range(rows)])
    h_gauss = 0.5 * math.log2(2 * math.pi * math.e * power)
    gap = h_gauss - (float(h_rows.mean()) + log_c)
    perm = np.random.default_rng(seed).permutation(rows)
    groups = [h_rows[idx].mean() for idx in np.array_split(perm, min(SUBSETS, rows)) if idx.size]
    err = 2.0 * float(np.std(groups, ddof=1)) / math.sqrt(len(groups)) if len(groups) > 1 else 1.0
    z = (a / (r * c)).numpy().reshape(-1)
    pooled = h_gauss - (_vasicek_bits(z) + float(torch.log2(r * c).mean()))
    return DataBound(gap_bits=gap, error_bits=err, pooled_gap_bits=pooled, n=a.numel())
