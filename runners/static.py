"""static: group-wise int2..int8 quantization with an optional low-rank residual correction."""

from __future__ import annotations

from typing import Any

from runners.base import Measurement, Param, ProgressFn
from runners.common import (
    CALIB_SAMPLES,
    CALIBRATION,
    MATRICES,
    bits_param,
    group_param,
    scalar_measure,
)
from runners.model import ModelSource


class StaticRunner:
    """Round-to-nearest group quantization (+ fp16 rank-r SVD of the residual)."""

    name = "static"
    version = "1.1.0"  # 1.1: held-out embedding cosine, layer_out_cos_min, ratio_model
    description = (
        "group-wise asymmetric int2..int8 quantization with fp16 scale/zero and an "
        "optional fp16 low-rank residual correction; real packed bytes"
    )
    params = (
        bits_param(4),
        group_param(64),
        Param(
            "rank",
            0,
            "rank of the fp16 SVD residual correction (0 = none)",
            "int",
            minimum=0,
            maximum=4096,
        ),
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Quantize every counted matrix once and summarize."""
        m, _ = scalar_measure(model, params, progress, rank=params["rank"], keep=False)
        return m


RUNNER = StaticRunner()
