"""ecsq: entropy-coded scalar quantization with a real ANS coder, one step per matrix."""

from __future__ import annotations

from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES
from runners.ecsq_core import compress, compress_feedback
from runners.limit import CONTEXTS, FUNCTIONAL, TARGET_COS, limit_measure
from runners.measure import CompressedMatrix
from runners.model import ModelSource


def _thetas(text: str) -> tuple[float, ...]:
    """Parse the rounding offsets "0.5,0.4" (each in (0, 0.5])."""
    from ledger.errors import UsageError

    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError as exc:
        raise UsageError(f"param rounding: {text!r} is not a list of numbers") from exc
    if not values or any(not 0.0 < v <= 0.5 for v in values):
        raise UsageError("param rounding: every offset must lie in (0, 0.5]")
    return values


class EcsqRunner:
    """Uniform step per matrix (searched to the target cos), deadzone, row contexts, ANS."""

    name = "ecsq"
    version = "1.0.0"  # feedback=gptq: entropy-coded GPTQ
    description = (
        "entropy-coded scalar quantization: one uniform step per matrix searched to a target "
        "weight cos, row-RMS contexts, codes ANS-coded with constriction; every header byte "
        "counted, the stream decoded back; held-out embedding cosine on the rebuilt model"
    )
    params = (
        TARGET_COS,
        CONTEXTS,
        Param(
            "rounding",
            "0.5",
            "rounding offsets θ to try, q = sign(w)·floor(|w|/Δ + θ) (0.5 = nearest)",
            "str",
        ),
        Param(
            "feedback",
            "none",
            "none, or gptq: codes on the same uniform grid with GPTQ error feedback "
            "(H = 2·XᵀX from the calibration inputs), then entropy-coded",
            "str",
            choices=("none", "gptq"),
        ),
        Param("damp", 0.01, "GPTQ damping λ / mean(diag H)", "float", minimum=0.0, maximum=10.0),
        FUNCTIONAL,
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Compress every selected matrix to the target, decode back, summarize."""
        thetas = _thetas(params["rounding"])

        def one(w: torch.Tensor, state: dict[str, Any]) -> tuple[CompressedMatrix, dict[str, Any]]:
            if params["feedback"] == "gptq":
                x = state["inputs"]
                cm = compress_feedback(
                    w, x, params["target_cos"], params["contexts"], params["damp"]
                )
            else:
                cm, _code = compress(w, params["target_cos"], params["contexts"], thetas)
            return cm, {k: cm.info[k] for k in ("step", "shift", "theta")}

        method = {
            "algorithm": "ecsq",
            "quantizer": "uniform, q = sign(w)·floor(|w|/Δ + θ), reconstruction "
            "sign(q)·(|q| − δ)·Δ with least-squares δ (fp16)",
            "step": "bisection on log Δ per matrix to the target weight cos",
            "contexts": f"{params['contexts']} row classes by row RMS (packed per row)",
            "model": "one categorical model per context, integer frequencies in the header",
        }
        if params["feedback"] == "gptq":
            method["feedback"] = (
                "gptq error feedback on the ECSQ grid of the target (Frantar et al. 2022, "
                "arXiv:2210.17323); H = 2·XᵀX from the calibration inputs of each matrix "
                "(original model, not sequential); weight cos falls below the target"
            )
        return limit_measure(model, params, progress, one, method)


RUNNER = EcsqRunner()
