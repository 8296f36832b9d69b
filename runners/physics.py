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
from typing import Any

import numpy as np
import torch

from ledger.ratedistortion import DataBound as Bound
from ledger.ratedistortion import combine_bounds, slb_bits

SUBSETS = 8
LOG2E = 1.0 / math.log(2.0)
MAX_WEIGHTS = 1 << 20  # a larger matrix is estimated on evenly spaced rows (sample_rows)


@dataclass(frozen=True)
class DataBound:
    """Bits a weight below the Gaussian reference that the scale-model SLB allows."""

    gap_bits: float  # row-wise entropy estimate (used)
    error_bits: float
    pooled_gap_bits: float  # one pooled entropy estimate of z (reported beside it)
    n: int


def _vasicek_rows(z: np.ndarray) -> np.ndarray:
    """m-spacing estimates of the differential entropy (bits), one per row of `z`."""
    x = np.sort(z.astype(np.float64), axis=-1)
    n = x.shape[-1]
    m = max(1, round(math.sqrt(n)))
    idx = np.arange(n)
    spacing = np.maximum(x[:, np.minimum(idx + m, n - 1)] - x[:, np.maximum(idx - m, 0)], 1e-300)
    return np.mean(np.log(n / (2.0 * m) * spacing), axis=-1) * LOG2E


def _vasicek_bits(z: np.ndarray) -> float:
    """m-spacing estimate of the differential entropy (bits) of samples `z`."""
    return float(_vasicek_rows(z.reshape(1, -1))[0])


def sample_index(rows: int, cols: int, max_weights: int = MAX_WEIGHTS) -> torch.Tensor | None:
    """Evenly spaced row indices of a rows×cols matrix holding at most `max_weights` weights,
    or None for a matrix small enough to be estimated whole."""
    keep = max(SUBSETS, max_weights // max(1, cols))
    return None if rows <= keep else torch.linspace(0, rows - 1, keep).round().long()


def sample_rows(w: torch.Tensor, max_weights: int = MAX_WEIGHTS) -> torch.Tensor:
    """The rows of a 2-D `w` at `sample_index` (all of a smaller matrix): the estimate of a
    large matrix stays cheap and bounded in memory."""
    index = sample_index(w.shape[0], w.shape[1], max_weights)
    return w if index is None else w[index]


def data_bound(w: torch.Tensor, seed: int = 0) -> DataBound:
    """The SLB gap below the Gaussian reference for matrix `w`, and its estimation error.

    h(W) is estimated row by row on the column-normalised rows (each row its own law, so a
    row's scale and shape both count; the mean of per-row entropies is at most the pooled
    one, which keeps the bound low), plus mean log2 of the column scales. The error is twice
    the standard error over 8 disjoint groups of rows.
    """
    # numpy, one thread: the same figures whatever torch's thread count or earlier work
    a = w.detach().to(torch.float64).reshape(w.shape[0], -1).numpy()
    rows = a.shape[0]
    power = float(np.mean(a * a))
    r = np.maximum(np.sqrt(np.mean(a * a, axis=1, keepdims=True)), 1e-300)
    c = np.maximum(np.sqrt(np.mean((a / r) ** 2, axis=0, keepdims=True)), 1e-300)
    zc = a / c
    log_c = float(np.mean(np.log2(c)))
    h_rows = _vasicek_rows(zc)
    h_gauss = 0.5 * math.log2(2 * math.pi * math.e * power)
    gap = h_gauss - (float(h_rows.mean()) + log_c)
    perm = np.random.default_rng(seed).permutation(rows)
    groups = [h_rows[idx].mean() for idx in np.array_split(perm, min(SUBSETS, rows)) if idx.size]
    err = 2.0 * float(np.std(groups, ddof=1)) / math.sqrt(len(groups)) if len(groups) > 1 else 1.0
    z = (a / (r * c)).reshape(-1)
    pooled = h_gauss - (_vasicek_bits(z) + float(np.mean(np.log2(r * c))))
    return DataBound(gap_bits=gap, error_bits=err, pooled_gap_bits=pooled, n=a.size)


def add_data_bound(row: dict[str, Any], w: torch.Tensor) -> None:
    """Put matrix `w`'s data-dependent bound at the row's own `cos` into `row` (bits a weight,
    the estimate's error, the gap below the Gaussian reference, rows estimated on)."""
    w2 = w.detach().reshape(w.shape[0], -1)
    add_sampled_bound(row, sample_rows(w2), w2.shape[0])


def add_sampled_bound(row: dict[str, Any], sample: torch.Tensor, rows: int) -> None:
    """`add_data_bound` from the `sample_rows` of a matrix of `rows` rows (gathered by a
    caller that streams the matrix in blocks)."""
    db = data_bound(sample)
    row["rd_data_bound_bits"] = slb_bits(float(row["cos"]), db.gap_bits)
    row["rd_data_bound_error_bits"] = db.error_bits
    row["rd_data_gap_bits"] = db.gap_bits
    if sample.shape[0] != rows:
        row["rd_data_bound_rows"] = int(sample.shape[0])


def combined_bound(rows: list[dict[str, Any]]) -> Bound | None:
    """One bound over every matrix of a claim, or None when a row has none (a claim's bound
    must cover all the bytes it counts)."""
    keys = ("params", "rd_data_bound_bits", "rd_data_bound_error_bits")
    if not rows or not all(all(k in r for k in keys) for r in rows):
        return None
    return combine_bounds(
        [
            (int(r["params"]), float(r["rd_data_bound_bits"]), float(r["rd_data_bound_error_bits"]))
            for r in rows
        ]
    )


def data_bound_block(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The statement's `rate_distortion.data_bound` block from the rows, or None."""
    combined = combined_bound(rows)
    if combined is None:
        return None
    return {
        "model": "Shannon lower bound, per-row/column scale model, each matrix at its own cos",
        "estimator": "Vasicek m-spacing entropy per row; error = 2 standard errors over "
        f"8 groups of rows; matrices above {MAX_WEIGHTS} weights estimated on evenly spaced rows",
        "bits_per_weight": combined.bits_per_weight,
        "error_bits": combined.error_bits,
        "ratio": _finite(combined.ratio),
        "ratio_with_error": _finite(combined.ratio_with_error),
    }


def _finite(ratio: float) -> float | None:
    """A ratio, or None where the bound allows any ratio (0 bits a weight)."""
    return ratio if math.isfinite(ratio) else None
