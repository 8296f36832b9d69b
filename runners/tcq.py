"""tcq: entropy-coded trellis-coded quantization with a real ANS coder, one step per matrix."""

from __future__ import annotations

import math
from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES
from runners.limit import CONTEXTS, FUNCTIONAL, TARGET_COS, limit_measure
from runners.measure import CompressedMatrix
from runners.model import ModelSource
from runners.tcq_core import TAPS, compress

#: TCQ step / RMS·√(1 − c²) seen on the first matrices; a start for the step search only
START_FACTOR = 1.95


class TcqRunner:
    """S-state TCQ per matrix (step searched to the target cos), contexts, ANS."""

    name = "tcq"
    version = "1.0.0"
    description = (
        "entropy-coded trellis-coded quantization (Viterbi over an S-state trellis per row, "
        "optionally entropy-constrained), one step per matrix searched to a target weight "
        "cos, indices ANS-coded with constriction per (row context, union); decoded back"
    )
    params = (
        TARGET_COS,
        Param("states", 8, "trellis states", "int", choices=tuple(sorted(TAPS))),
        CONTEXTS,
        Param(
            "lam",
            0.0,
            "rate weight λ in units of Δ² in the Viterbi cost (0 = plain TCQ; ECTCQ above)",
            "float",
            minimum=0.0,
            maximum=10.0,
        ),
        FUNCTIONAL,
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Compress every selected matrix to the target, decode back, summarize."""
        target = params["target_cos"]

        def one(w: torch.Tensor, state: dict[str, Any]) -> tuple[CompressedMatrix, dict[str, Any]]:
            rms = float(w.pow(2).mean().sqrt()) or 1.0
            scale = rms * math.sqrt(max(1.0 - target * target, 1e-12))
            start = state.get("factor", START_FACTOR) * scale
            cm, _code = compress(
                w, target, params["contexts"], params["states"], params["lam"], start
            )
            state["factor"] = cm.info["step"] / scale  # the next matrix starts from this one's
            return cm, {"step": cm.info["step"], "states": params["states"]}

        method = {
            "algorithm": "tcq" if params["lam"] == 0 else "ectcq",
            "reference": "Marcellin & Fischer 1990 (TCQ); Fischer & Wang 1992 (ECTCQ)",
            "trellis": f"{params['states']}-state shift register, taps "
            f"{bin(TAPS[params['states']])}, union A_(s&1), one path per row from state 0",
            "step": "secant / regula-falsi search on log Δ per matrix to the target weight cos",
            "contexts": f"{params['contexts']} row classes by row RMS x 2 unions",
            "model": "one categorical model per context, integer frequencies in the header",
        }
        return limit_measure(model, params, progress, one, method)


RUNNER = TcqRunner()
