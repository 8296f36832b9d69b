"""tcq: entropy-coded trellis-coded quantization with a real ANS coder, one step per matrix."""

from __future__ import annotations

import math
from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES
from runners.ecsq_core import Prepared
from runners.limit import (
    ALLOCATION,
    CONTEXTS,
    FUNCTIONAL,
    TARGET_COS,
    TARGET_EMBEDDING_COS,
    limit_measure,
    warm_start,
)
from runners.measure import CompressedMatrix
from runners.model import ModelSource
from runners.tcq_core import TAPS, compress

#: TCQ step / RMS·√(1 − c²) seen on the first matrices; a start for the step search only
START_FACTOR = 1.95


class TcqRunner:
    """S-state TCQ per matrix (step searched to the target cos), contexts, ANS."""

    name = "tcq"
    # 1.1.0: target_embedding_cos (the weight-cos target searched to an in-sample embedding
    # cosine, ECSQ stand-ins in the search) and allocation; unset, bytes as in 1.0.0
    version = "1.1.0"
    description = (
        "entropy-coded trellis-coded quantization (Viterbi over an S-state trellis per row, "
        "optionally entropy-constrained), one step per matrix searched to a target weight "
        "cos, indices ANS-coded with constriction per (row context, union); decoded back"
    )
    params = (
        TARGET_COS,
        TARGET_EMBEDDING_COS,
        ALLOCATION,
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

        def one(w: torch.Tensor, state: dict[str, Any]) -> tuple[CompressedMatrix, dict[str, Any]]:
            target = state["target"]
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

        def planner(
            _i: int, w: torch.Tensor, st: dict[str, Any], target: float
        ) -> tuple[Any, torch.Tensor]:
            """Stand-in for the search: plain ECSQ at the same weight cos (no trellis run)."""
            if "prepared" not in st:
                st["prepared"] = Prepared(w, 1)
            step, shift, q = st["prepared"].solve(target, 0.5, warm_start(st, target, 0.5))
            st["steps"] = {0.5: (target, step)}
            return None, st["prepared"].rebuild(q.numpy(), step, shift)

        proxy = "plain ECSQ reconstructions at the same per-matrix weight cos stand in for "
        proxy += "the trellis in the search steps; the trellis runs on the result, whose "
        proxy += "in-sample cosine is measured again (and the target lowered if it missed)"
        return limit_measure(model, params, progress, one, method, planner, proxy)


RUNNER = TcqRunner()
