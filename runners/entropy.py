"""entropy: quantize, then entropy-code the codes for real with zstandard."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import zstandard

from runners.base import Measurement, Param, ProgressFn
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


class EntropyRunner:
    """Fixed-width packed codes vs zstd-coded codes; Shannon entropy of the codes beside them."""

    name = "entropy"
    version = "1.1.0"  # 1.1: held-out embedding cosine, layer_out_cos_min, ratio_model
    description = (
        "group-wise quantization whose packed codes are entropy-coded with zstd; "
        "bytes_entropy vs bytes_fixed_width, Shannon entropy, entropy_gain_ok"
    )
    params = (
        bits_param(4),
        group_param(128),
        Param("level", 19, "zstd compression level", "int", minimum=1, maximum=22),
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Quantize, zstd every matrix's packed codes, verify the round trip, summarize."""
        bits = params["bits"]
        compressor = zstandard.ZstdCompressor(
            level=params["level"], write_checksum=False, write_content_size=True
        )
        decompressor = zstandard.ZstdDecompressor()
        counts = np.zeros(1 << bits, dtype=np.int64)
        fixed_total = 0

        def recode(
            info: Any, w: torch.Tensor, cm: CompressedMatrix
        ) -> tuple[CompressedMatrix, dict[str, Any]]:
            nonlocal fixed_total
            fixed = cm.parts["codes"]
            coded = compressor.compress(fixed)
            if decompressor.decompress(coded) != fixed:
                raise RuntimeError(f"zstd round trip failed for {info.name}")
            codes = cm.info["q"].codes
            counts[:] += np.bincount(codes, minlength=1 << bits)
            h = entropy_bits(codes, 1 << bits)
            fixed_total += len(fixed)
            parts = {"entropy": coded, "scales": cm.parts["scales"], "zeros": cm.parts["zeros"]}
            new = CompressedMatrix(parts, cm.w_hat, cm.info)
            return new, {
                "bytes_fixed_width": len(fixed),
                "shannon_entropy_bits": h,
                "bytes_shannon": int(np.ceil(codes.size * h / 8)),
            }

        m, _ = scalar_measure(model, params, progress, recode=recode)
        p = counts[counts > 0] / counts.sum()
        metrics = m.metrics
        metrics["bytes_fixed_width"] = fixed_total
        metrics["bytes_shannon"] = sum(r["bytes_shannon"] for r in m.rows)
        metrics["shannon_entropy_bits"] = float(-(p * np.log2(p)).sum())
        metrics["entropy_gain_ok"] = bool(metrics["bytes_entropy"] < fixed_total)
        fixed_all = fixed_total + metrics["bytes_scales"] + metrics["bytes_zeros"]
        metrics["ratio_fixed_width"] = metrics["bytes_fp16"] / fixed_all
        metrics["entropy_gain"] = fixed_total / metrics["bytes_entropy"]
        m.extra["coder"] = {
            "name": "zstandard",
            "version": zstandard.__version__,
            "level": params["level"],
            "input": "fixed-width packed codes",
        }
        return m


RUNNER = EntropyRunner()
