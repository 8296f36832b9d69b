"""ecsq: entropy-coded scalar quantization with a real ANS coder, one step per matrix."""

from __future__ import annotations

from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES
from runners.ecsq_core import (
    Prepared,
    compress,
    compress_feedback,
    plan,
)
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
    # 1.1.0: target_embedding_cos (the weight-cos target searched to an in-sample embedding
    # cosine) and allocation; unset, the codes and bytes are those of 1.0.0
    version = "1.1.0"
    description = (
        "entropy-coded scalar quantization: one uniform step per matrix searched to a target "
        "weight cos, row-RMS contexts, codes ANS-coded with constriction; every header byte "
        "counted, the stream decoded back; held-out embedding cosine on the rebuilt model"
    )
    params = (
        TARGET_COS,
        TARGET_EMBEDDING_COS,
        ALLOCATION,
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

        gptq = params["feedback"] == "gptq"

        def one(w: torch.Tensor, state: dict[str, Any]) -> tuple[CompressedMatrix, dict[str, Any]]:
            target, planned = state["target"], state.get("plan")
            if gptq:
                x = state["inputs"]
                cm = compress_feedback(w, x, target, params["contexts"], params["damp"])
            else:
                cm, _code = compress(w, target, params["contexts"], thetas, planned=planned)
            return cm, {k: cm.info[k] for k in ("step", "shift", "theta")}

        def prepared(st: dict[str, Any], w: torch.Tensor) -> Prepared:
            if "prepared" not in st:
                st["prepared"] = Prepared(w, params["contexts"])
            return st["prepared"]

        def planner(
            _i: int, w: torch.Tensor, st: dict[str, Any], target: float
        ) -> tuple[Any, torch.Tensor]:
            """The codes `one` would encode at `target` (kept for it), and their reconstruction."""
            if gptq:  # stand-in: plain rounding on the grid GPTQ will use (see `proxy`)
                p = prepared(st, w)
                step, shift, q = p.solve(target, 0.5, warm_start(st, target, 0.5))
                st["steps"] = {0.5: (target, step)}
                return None, p.rebuild(q.numpy(), step, shift)
            starts = {th: warm_start(st, target, th) for th in thetas}
            code, theta = plan(
                w, target, params["contexts"], thetas, starts, prepared=prepared(st, w)
            )
            st.setdefault("steps", {})[theta] = (target, code.step)
            return (code, theta), st["prepared"].rebuild(code.codes, code.step, code.shift)

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
        proxy = "the codes themselves: each search step plans every matrix's codes as the "
        proxy += "final encode does, and the chosen step's codes are the ones encoded"
        if gptq:  # GPTQ fits the calibration texts: its own in-sample cosine would overstate
            proxy = "plain rounding on the same grid (theta 0.5) stands in for GPTQ in the "
            proxy += "search steps, since GPTQ is fitted to the calibration texts the search "
            proxy += "is measured on; the GPTQ codes of the result are measured again"
        return limit_measure(model, params, progress, one, method, planner, proxy)


RUNNER = EcsqRunner()
