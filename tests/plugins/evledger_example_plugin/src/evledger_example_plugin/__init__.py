"""An example evledger runner plug-in: 1-bit sign quantization with one scale per row.

Ŵ[o, :] = mean(|W[o, :]|) · sign(W[o, :]); bytes = 1 bit per weight + one fp16 per row.
"""

from __future__ import annotations

import hashlib
from typing import Any

import torch

from runners.base import Measurement, Param
from runners.measure import cosine


class SignFlipRunner:
    """Row-wise sign quantization (the protocol: name, version, description, params, measure)."""

    name = "signflip"
    version = "0.3.1"
    description = "example plug-in: 1-bit sign codes with an fp16 mean-|w| scale per row"
    params = (
        Param("scale", "mean", "row scale: mean or max of |w|", "str", choices=("mean", "max")),
    )

    def measure(self, model: Any, params: dict[str, Any], progress: Any) -> Measurement:
        """Quantize every counted matrix and report cos and the effective ratio."""
        rows = []
        h = hashlib.sha256()
        infos = model.matrix_infos()
        for k, info in enumerate(infos):
            w = model.load(info)
            a = w.abs()
            s = (a.mean(1) if params["scale"] == "mean" else a.amax(1)).half().float()
            w_hat = torch.sign(w) * s[:, None]
            h.update(w_hat.numpy().tobytes())
            nbytes = -(-w.numel() // 8) + 2 * w.shape[0]
            rows.append(
                {"name": info.name, "cos": cosine(w, w_hat), "bytes": nbytes, "fp16": 2 * w.numel()}
            )
            progress(info.name, k + 1, len(infos))
        metrics = {
            "cos_min": min(r["cos"] for r in rows),
            "ratio_fp16_effective": sum(r["fp16"] for r in rows) / sum(r["bytes"] for r in rows),
        }
        return Measurement(metrics, rows, "sha256:" + h.hexdigest())


RUNNER = SignFlipRunner()
