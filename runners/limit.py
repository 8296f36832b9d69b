"""The measurement loop shared by the entropy-coded runners (`ecsq`, `tcq`).

Each selected matrix is compressed to a per-matrix target, its bytes are decoded back and
the reconstruction is rebuilt *from the decoded bytes*; rows carry bytes by part (header,
contexts, stream), weight cos, per-layer output cos, the Gaussian reference and the
data-dependent bound of that matrix; the model-level metric is measured on the model with
every selected matrix replaced by its decoded reconstruction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ledger.ratedistortion import bound_bits, combine_bounds, slb_bits
from runners.base import Measurement, Param, ProgressFn
from runners.coding import version as coder_version
from runners.common import selected
from runners.functional import FunctionalProbe
from runners.measure import (
    Calibration,
    CompressedMatrix,
    ReconstructionDigest,
    matrix_row,
    rate_distortion,
    summarize,
)
from runners.model import ModelSource
from runners.physics import data_bound

TARGET_COS = Param(
    "target_cos",
    0.99,
    "weight cosine every matrix is brought to (the step is searched per matrix)",
    "float",
    minimum=0.5,
    maximum=0.999999,
)
CONTEXTS = Param(
    "contexts",
    4,
    "row contexts by row RMS, each with its own categorical model (1 = one model)",
    "int",
    minimum=1,
    maximum=16,
)
FUNCTIONAL = Param(
    "functional",
    True,
    "measure the model-level metric (held-out embedding cosine / perplexity)",
    "bool",
)

Compress = Callable[[torch.Tensor, dict[str, Any]], tuple[CompressedMatrix, dict[str, Any]]]


def limit_measure(
    model: ModelSource,
    params: dict[str, Any],
    progress: ProgressFn,
    compress: Compress,
    method: dict[str, Any],
) -> Measurement:
    """Compress, decode back and measure every selected matrix; summary and functional metric."""
    model = selected(model, params)
    calib = Calibration(model, params["calibration"], params["calib_samples"], seed=0)
    probe = FunctionalProbe(model) if params["functional"] else None
    digest = ReconstructionDigest()
    rows: list[dict[str, Any]] = []
    recon: dict[str, torch.Tensor] = {}
    state: dict[str, Any] = {}
    bounds: list[tuple[int, float, float]] = []
    infos = model.matrix_infos()
    for i, (info, w) in enumerate(model.iter_matrices()):
        w2 = w.to(torch.float32).reshape(w.shape[0], -1)
        state["inputs"] = calib.inputs(info)
        cm, more = compress(w2, state)
        cm.w_hat = cm.w_hat.reshape(w.shape)
        row = matrix_row(info, w, cm, calib.inputs(info))
        row.update(more)
        row["calibration"] = calib.sources[info.name]
        db = data_bound(w2)
        slb = slb_bits(row["cos"], db.gap_bits)
        row["rd_gaussian_bits"] = bound_bits(row["cos"])
        row["rd_data_bound_bits"] = slb
        row["rd_data_bound_error_bits"] = db.error_bits
        row["rd_data_gap_bits"] = db.gap_bits
        row["above_gaussian_reference"] = bool(
            row["rd_gaussian_ratio"] is not None and row["ratio"] > row["rd_gaussian_ratio"]
        )
        bounds.append((w.numel(), slb, db.error_bits))
        rows.append(row)
        digest.update(cm.w_hat)
        recon[info.name] = cm.w_hat
        progress(info.name, i + 1, len(infos))
    metrics = summarize(rows)
    metrics["target_cos"] = params["target_cos"]
    metrics["matrices_above_gaussian_reference"] = sum(r["above_gaussian_reference"] for r in rows)
    combined = combine_bounds(bounds)
    metrics["rd_data_bound_ratio"] = combined.ratio
    extra: dict[str, Any] = {"subjects": calib.subjects(), "calibration": calib.describe()}
    if probe is not None:
        metrics.update(probe.evaluate(recon))
        extra["functional"] = probe.describe(len(probe._names(recon)))
        extra["subjects"] += probe.subjects()
    else:
        extra["functional"] = {"metric": None, "reason": "functional=false"}
    rd = rate_distortion(float(metrics["cos_min"]), float(metrics["ratio_fp16_effective"]))
    rd["model"] = "gaussian-reference"
    rd["note"] = "the i.i.d. Gaussian reference, not a bound for real weights"
    rd["data_bound"] = {
        "model": "Shannon lower bound, per-row/column scale model, each matrix at its own cos",
        "estimator": "Vasicek m-spacing entropy per row; error = 2 standard errors over "
        "8 groups of rows",
        "bits_per_weight": combined.bits_per_weight,
        "error_bits": combined.error_bits,
        "ratio": combined.ratio,
        "ratio_with_error": combined.ratio_with_error,
    }
    extra["rate_distortion"] = rd
    extra["method"] = method | {"coder": {"name": "constriction", "version": coder_version()}}
    return Measurement(metrics, rows, digest.hexdigest(), extra)
