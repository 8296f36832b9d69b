"""proxy: per-matrix weight-proxy metrics and code entropy before/after a reversible transform."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from runners.base import Measurement, ProgressFn
from runners.common import (
    CALIB_SAMPLES,
    CALIBRATION,
    MATRICES,
    bits_param,
    group_param,
    scalar_measure,
)
from runners.measure import CompressedMatrix, entropy_bits
from runners.model import ModelSource


def delta_encode(codes: np.ndarray, bits: int) -> np.ndarray:
    """Row-wise difference of neighbouring codes modulo 2**bits (first column kept)."""
    c = codes.astype(np.int32)
    d = c.copy()
    d[:, 1:] = (c[:, 1:] - c[:, :-1]) % (1 << bits)
    return d.astype(np.uint8)


def delta_decode(deltas: np.ndarray, bits: int) -> np.ndarray:
    """Inverse of `delta_encode`."""
    return (np.cumsum(deltas.astype(np.int64), axis=1) % (1 << bits)).astype(np.uint8)


class ProxyRunner:
    """cos_min, effective ratio and bytes breakdown per matrix, with code entropy before/after."""

    name = "proxy"
    version = "1.1.0"  # 1.1: held-out embedding cosine, layer_out_cos_min, ratio_model
    description = (
        "per-matrix weight proxy: cos, effective ratio, bytes breakdown, order-0 "
        "code entropy before/after a reversible row-delta transform"
    )
    params = (bits_param(4), group_param(128), MATRICES, CALIBRATION, CALIB_SAMPLES)

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Quantize every counted matrix, measure entropies, check the transform inverts."""
        bits = params["bits"]
        totals = {"n": 0, "before": 0.0, "after": 0.0}

        def recode(
            info: Any, w: torch.Tensor, cm: CompressedMatrix
        ) -> tuple[CompressedMatrix, dict[str, Any]]:
            codes = cm.info["q"].codes
            grid = codes.reshape(w.shape[0], -1)
            deltas = delta_encode(grid, bits)
            if not np.array_equal(delta_decode(deltas, bits), grid):
                raise RuntimeError(f"delta transform did not invert for {info.name}")
            before = entropy_bits(codes, 1 << bits)
            after = entropy_bits(deltas, 1 << bits)
            totals["n"] += codes.size
            totals["before"] += before * codes.size
            totals["after"] += after * codes.size
            return cm, {"code_entropy_before": before, "code_entropy_after": after}

        m, _ = scalar_measure(model, params, progress, recode=recode)
        metrics = m.metrics
        metrics["code_entropy_before"] = totals["before"] / totals["n"]
        metrics["code_entropy_after"] = totals["after"] / totals["n"]
        metrics["transform_gain_ok"] = bool(
            metrics["code_entropy_after"] < metrics["code_entropy_before"]
        )
        metrics["bytes_overhead"] = metrics["bytes_scales"] + metrics["bytes_zeros"]
        m.extra["transform"] = {"name": "row-delta mod 2^bits", "reversible": True}
        return m


RUNNER = ProxyRunner()
