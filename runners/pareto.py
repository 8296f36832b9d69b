"""pareto: cross-layer allocation, continuous (entropy-coded, per-matrix step) or on a grid.

`method=ecsq` (default): every matrix gets one R-D table, cos and estimated bits of its ECSQ
codes at 24 log-spaced steps, computed once and reused. A target cos t is met *exactly* per
matrix (the step is searched from the table's interpolation, then encoded with constriction
and decoded back); a byte budget is met by bisection on a common t over the tables, then
encoded for real. Giving every matrix the same cos is the Lagrangian (equal-slope) optimum
of the total relative distortion Σ n_i·(1 − c_i²) under a byte budget at high rate, since an
entropy-coded quantizer's rate is a − ½·log2(1 − c²) bits a weight there: its slope in the
distortion is the same for every matrix exactly when their cosines are equal.
`method=grid`: the original sweep of bits × group_size (× rank) with fixed-width codes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ledger.errors import UsageError
from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES, selected
from runners.measure import (
    Calibration,
    ReconstructionDigest,
    matrix_row,
    rate_distortion,
    scalar_compress,
    summarize,
)
from runners.model import ModelSource

TARGETS = (0.99, 0.94)


def _int_list(text: str, name: str, lo: int, hi: int) -> list[int]:
    """Parse "2,3,4" into sorted unique ints within [lo, hi]."""
    try:
        values = sorted({int(v) for v in str(text).replace(" ", "").split(",") if v})
    except ValueError as exc:
        raise UsageError(f"param {name}: {text!r} is not a comma-separated list of ints") from exc
    if not values or values[0] < lo or values[-1] > hi:
        raise UsageError(f"param {name}: values must lie in {lo}..{hi}")
    return values


@dataclass(frozen=True)
class Option:
    """One measured setting of one matrix: config, bytes produced, weight cosine."""

    bits: int
    group_size: int
    rank: int
    nbytes: int
    cos: float

    @property
    def label(self) -> str:
        """Short label like b4g64r0."""
        return f"b{self.bits}g{self.group_size}r{self.rank}"


def allocate(options: list[list[Option]], threshold: float) -> list[Option] | None:
    """Cheapest option per matrix with cos >= threshold (None if some matrix cannot reach it)."""
    chosen = []
    for opts in options:
        ok = [o for o in opts if o.cos >= threshold]
        if not ok:
            return None
        chosen.append(min(ok, key=lambda o: (o.nbytes, -o.cos)))
    return chosen


def frontier(options: list[list[Option]], fp16_bytes: int) -> list[dict[str, Any]]:
    """Non-dominated (ratio, cos_min) points of min-cos-constrained allocations."""
    thresholds = sorted({o.cos for opts in options for o in opts})
    points: dict[tuple[int, float], dict[str, Any]] = {}
    for t in thresholds:
        chosen = allocate(options, t)
        if chosen is None:
            continue
        total = sum(o.nbytes for o in chosen)
        cmin = min(o.cos for o in chosen)
        points[(total, cmin)] = {"bytes_total": total, "ratio": fp16_bytes / total, "cos_min": cmin}
    pts = sorted(points.values(), key=lambda p: (-p["ratio"], -p["cos_min"]))
    out: list[dict[str, Any]] = []
    best_cos = -2.0
    for p in pts:  # descending ratio: keep points that improve cos_min
        if p["cos_min"] > best_cos:
            out.append(p)
            best_cos = p["cos_min"]
    return sorted(out, key=lambda p: p["ratio"])


def thin(points: list[dict[str, Any]], keep: int) -> list[dict[str, Any]]:
    """At most `keep` points spread evenly along the frontier (both ends kept)."""
    if len(points) <= keep:
        return points
    step = (len(points) - 1) / (keep - 1)
    idx = sorted({round(i * step) for i in range(keep)})
    return [points[i] for i in idx]


class ParetoRunner:
    """Sweep per-matrix settings; best ratio at cos_min thresholds; allocation under a budget."""

    name = "pareto"
    version = "2.0.0"  # 2.0: continuous entropy-coded allocation (method=ecsq) by default
    description = (
        "cross-layer allocation: per-matrix entropy-coded step meeting each target exactly "
        "(method=ecsq, default) or a bits x group_size grid (method=grid); frontier of ratio "
        "vs cos_min; best ratio at cos_min >= 0.99 and >= 0.94; a byte budget met exactly"
    )
    params = (
        Param(
            "method",
            "ecsq",
            "ecsq (continuous, entropy-coded) or grid (fixed-width bits x group sweep)",
            "str",
            choices=("ecsq", "grid"),
        ),
        Param("contexts", 4, "row contexts for method=ecsq", "int", minimum=1, maximum=16),
        Param("functional", True, "measure held-out embedding cosine (method=ecsq)", "bool"),
        Param("bits_grid", "2,3,4,5,6,8", "comma-separated bits to try (2..8)", "str"),
        Param("group_grid", "32,128", "comma-separated group sizes to try", "str"),
        Param("rank_grid", "0", "comma-separated residual ranks to try (0 = none)", "str"),
        Param(
            "budget_ratio",
            4.0,
            "byte budget as a ratio vs fp16: maximize cos_min within it",
            "float",
            minimum=1.0,
            maximum=64.0,
        ),
        Param(
            "frontier_points",
            48,
            "most frontier points kept in the statement",
            "int",
            minimum=2,
            maximum=10000,
        ),
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Sweep, build the frontier, then re-compress the chosen allocations and measure them."""
        if params["method"] == "ecsq":
            from runners.allocation import continuous_measure

            return continuous_measure(model, params, progress)
        bits = _int_list(params["bits_grid"], "bits_grid", 2, 8)
        groups = _int_list(params["group_grid"], "group_grid", 1, 1 << 20)
        ranks = _int_list(params["rank_grid"], "rank_grid", 0, 4096)
        model = selected(model, params)
        infos = model.matrix_infos()
        configs = [(b, g, r) for b in bits for g in groups for r in ranks]
        options: list[list[Option]] = []
        fp16 = 0
        total_steps = len(infos) * 2
        for i, (info, w) in enumerate(model.iter_matrices()):
            fp16 += 2 * w.numel()
            opts = []
            for b, g, r in configs:
                cm = scalar_compress(w, b, g, r)
                opts.append(Option(b, g, r, cm.nbytes, _cos(w, cm.w_hat)))
            options.append(opts)
            progress(f"sweep {info.name}", i + 1, total_steps)
        front = frontier(options, fp16)
        picks = {t: allocate(options, t) for t in TARGETS}
        budget_bytes = fp16 / params["budget_ratio"]
        within = [p for p in front if p["bytes_total"] <= budget_bytes]
        budget_point = max(within, key=lambda p: p["cos_min"]) if within else None

        headline_t = next((t for t in TARGETS if picks[t] is not None), None)
        calib = Calibration(model, params["calibration"], params["calib_samples"], seed=0)
        digest = ReconstructionDigest()
        rows: list[dict[str, Any]] = []
        if headline_t is not None:
            chosen = picks[headline_t]
            assert chosen is not None
            for i, ((info, w), opt) in enumerate(zip(model.iter_matrices(), chosen, strict=True)):
                cm = scalar_compress(w, opt.bits, opt.group_size, opt.rank)
                row = matrix_row(info, w, cm, calib.inputs(info))
                row.update(
                    {
                        "bits": opt.bits,
                        "group_size": opt.group_size,
                        "rank": opt.rank,
                        "calibration": calib.sources[info.name],
                    }
                )
                for t in TARGETS:
                    pick = picks[t]
                    row[f"config_at_{_key(t)}"] = pick[i].label if pick else None
                rows.append(row)
                digest.update(cm.w_hat)
                progress(f"verify {info.name}", len(infos) + i + 1, total_steps)
            metrics = summarize(rows)
            if metrics["bytes_total"] != sum(o.nbytes for o in chosen):
                raise RuntimeError("re-compressed allocation produced different byte counts")
        else:
            metrics = {"ratio_fp16_effective": 0.0, "cos_min": 0.0, "bytes_fp16": fp16}
        for t in TARGETS:
            pick = picks[t]
            k = _key(t)
            metrics[f"ratio_at_cos_{k}"] = fp16 / sum(o.nbytes for o in pick) if pick else 0.0
            metrics[f"feasible_at_cos_{k}"] = pick is not None
            if pick:
                metrics[f"cos_min_at_cos_{k}"] = min(o.cos for o in pick)
        metrics["budget_ratio"] = params["budget_ratio"]
        metrics["cos_min_at_budget"] = budget_point["cos_min"] if budget_point else 0.0
        metrics["ratio_at_budget"] = budget_point["ratio"] if budget_point else 0.0
        metrics["frontier_points"] = len(front)
        metrics["candidates"] = len(configs) * len(infos)
        rd_points = []
        for t in TARGETS:
            pick = picks[t]
            if pick:
                rd = rate_distortion(min(o.cos for o in pick), fp16 / sum(o.nbytes for o in pick))
                rd["target"] = t
                rd_points.append(rd)
        rd_main = dict(rd_points[0]) if rd_points else rate_distortion(0.0, 0.0)
        rd_main["points"] = rd_points
        extra = {
            "subjects": calib.subjects(),
            "calibration": calib.describe(),
            "frontier": thin(front, params["frontier_points"]),
            "rate_distortion": rd_main,
            "headline_target": headline_t,
            "grid": {"bits": bits, "group_size": groups, "rank": ranks},
        }
        return Measurement(metrics, rows, digest.hexdigest(), extra)


def _key(t: float) -> str:
    """0.99 -> '099'."""
    return f"{t:.2f}".replace(".", "")


def _cos(a: Any, b: Any) -> float:
    """Weight cosine (imported lazily to keep the module header short)."""
    from runners.measure import cosine

    return cosine(a, b)


RUNNER = ParetoRunner()
