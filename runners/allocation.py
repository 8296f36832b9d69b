"""pareto method=ecsq: continuous cross-layer allocation over entropy-coded matrices.

See runners/pareto.py for what is measured; this module holds the work: one R-D table per
matrix (computed once), interpolation on log(1 − cos) against log Δ, exact per-matrix solves
started from the interpolation, and real encodes (decoded back) of every reported allocation.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from runners.base import Measurement, ProgressFn
from runners.common import selected
from runners.ecsq_core import class_bits, compress_near, rd_table, row_classes
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

TARGETS = (0.99, 0.94)
TABLE_STEPS = 24
#: the tables span weight cos of about 0.85 .. 0.9995 (√(1 − c²) from 0.02 to 0.55)
SPAN = (0.02, 0.55)
#: header bytes assumed per matrix for estimates only (models, shape, step); real bytes decide
HEADER_ESTIMATE = 48


@dataclass
class Table:
    """One matrix's R-D table: log Δ, g = log(1 − cos) and estimated bytes at each step."""

    log_step: np.ndarray
    g: np.ndarray
    nbytes: np.ndarray

    def at(self, target: float) -> tuple[float, float]:
        """(log Δ, estimated bytes) where cos = target, interpolated (clamped to the table)."""
        goal = math.log(max(1.0 - target, 1e-30))
        order = np.argsort(self.g)
        g, ls, nb = self.g[order], self.log_step[order], self.nbytes[order]
        return float(np.interp(goal, g, ls)), float(np.interp(goal, g, nb))


def _tables(
    mats: list[tuple[Any, torch.Tensor]], contexts: int, progress: ProgressFn
) -> tuple[list[Table], list[np.ndarray]]:
    """R-D table and row classes of every matrix (the only sweep; everything reuses it)."""
    tables, classes = [], []
    rel = np.geomspace(SPAN[0], SPAN[1], TABLE_STEPS)
    for i, (info, w) in enumerate(mats):
        rms = float(w.pow(2).mean().sqrt()) or 1.0
        steps = (math.sqrt(12.0) * rms * rel).astype(np.float32)
        cls = row_classes(w, contexts)
        cos, bits = rd_table(w, cls, contexts, steps)
        side = HEADER_ESTIMATE + -(-w.shape[0] * class_bits(contexts) // 8)
        g = np.log(np.maximum(1.0 - cos, 1e-30))
        tables.append(Table(np.log(steps.astype(np.float64)), g, bits / 8.0 + side))
        classes.append(cls)
        progress(f"table {info.name}", i + 1, len(mats))
    return tables, classes


def _encode_all(
    mats: list[tuple[Any, torch.Tensor]],
    tables: list[Table],
    classes: list[np.ndarray],
    target: float,
    contexts: int,
) -> list[CompressedMatrix]:
    """Every matrix at cos >= target exactly (search started from its table), decoded back."""
    out = []
    for (_info, w), tab, cls in zip(mats, tables, classes, strict=True):
        start = math.exp(tab.at(target)[0])
        out.append(compress_near(w, target, contexts, start, cls))
    return out


def _estimate(tables: list[Table], target: float) -> float:
    """Estimated total bytes with every matrix at `target`."""
    return sum(t.at(target)[1] for t in tables)


def _budget(
    mats: list[tuple[Any, torch.Tensor]],
    tables: list[Table],
    classes: list[np.ndarray],
    budget_bytes: float,
    contexts: int,
) -> tuple[float, list[CompressedMatrix] | None]:
    """Highest common cos whose real bytes fit the budget: bisection on the tables, then up to
    four real encodes corrected by the tables' slope; (cos, matrices) or (0, None)."""
    lo, hi = 1.0 - SPAN[1] ** 2 / 1.0, 1.0 - SPAN[0] ** 2 / 4.0
    lo, hi = max(0.5, lo), min(0.999999, hi)
    if _estimate(tables, lo) > budget_bytes:
        return 0.0, None
    a, b = lo, hi
    for _ in range(50):  # bytes grow with the target cos
        mid = 0.5 * (a + b)
        if _estimate(tables, mid) <= budget_bytes:
            a = mid
        else:
            b = mid
    t = a
    best: tuple[float, list[CompressedMatrix]] | None = None
    for _ in range(4):
        cms = _encode_all(mats, tables, classes, t, contexts)
        real = sum(c.nbytes for c in cms)
        if real <= budget_bytes and (best is None or t > best[0]):
            best = (t, cms)
        if real <= budget_bytes and budget_bytes - real < 0.002 * budget_bytes:
            break
        # move t by the relative byte error through the table's slope d(bytes)/d(g)
        g = math.log(1.0 - t)
        eps = 1e-3
        slope = (_estimate(tables, 1.0 - math.exp(g - eps)) - _estimate(tables, t)) / -eps
        want = budget_bytes * (0.999 if real > budget_bytes else 1.0)
        g_new = g + (want - real) / slope if slope else g
        t = min(hi, max(lo, 1.0 - math.exp(g_new)))
    if best is None:
        return 0.0, None
    return best


def continuous_measure(
    model: ModelSource, params: dict[str, Any], progress: ProgressFn
) -> Measurement:
    """The continuous allocation (see runners/pareto.py)."""
    model = selected(model, params)
    contexts = params["contexts"]
    mats = [
        (info, w.to(torch.float32).reshape(w.shape[0], -1)) for info, w in model.iter_matrices()
    ]
    fp16 = sum(2 * w.numel() for _, w in mats)
    tables, classes = _tables(mats, contexts, progress)
    picks = {t: _encode_all(mats, tables, classes, t, contexts) for t in TARGETS}
    budget_bytes = fp16 / params["budget_ratio"]
    t_budget, at_budget = _budget(mats, tables, classes, budget_bytes, contexts)

    head = picks[TARGETS[0]]
    calib = Calibration(model, params["calibration"], params["calib_samples"], seed=0)
    digest = ReconstructionDigest()
    rows: list[dict[str, Any]] = []
    recon: dict[str, torch.Tensor] = {}
    for i, ((info, w), cm) in enumerate(zip(mats, head, strict=True)):
        w_orig = w.reshape(info.shape)
        cm.w_hat = cm.w_hat.reshape(info.shape)
        row = matrix_row(info, w_orig, cm, calib.inputs(info))
        row["step"] = cm.info["step"]
        row["calibration"] = calib.sources[info.name]
        for t in TARGETS:
            row[f"bytes_at_cos_{_key(t)}"] = picks[t][i].nbytes
        if at_budget is not None:
            row["bytes_at_budget"] = at_budget[i].nbytes
        rows.append(row)
        digest.update(cm.w_hat)
        recon[info.name] = cm.w_hat
    metrics: dict[str, Any] = summarize(rows)
    for t in TARGETS:
        k = _key(t)
        total = sum(c.nbytes for c in picks[t])
        metrics[f"ratio_at_cos_{k}"] = fp16 / total
        metrics[f"feasible_at_cos_{k}"] = True
        metrics[f"cos_min_at_cos_{k}"] = min(
            _cos(w, c.w_hat) for (_i, w), c in zip(mats, picks[t], strict=True)
        )
    metrics["budget_ratio"] = params["budget_ratio"]
    if at_budget is not None:
        metrics["ratio_at_budget"] = fp16 / sum(c.nbytes for c in at_budget)
        metrics["cos_min_at_budget"] = min(
            _cos(w, c.w_hat) for (_i, w), c in zip(mats, at_budget, strict=True)
        )
    else:
        metrics["ratio_at_budget"] = 0.0
        metrics["cos_min_at_budget"] = 0.0
    extra: dict[str, Any] = {"subjects": calib.subjects(), "calibration": calib.describe()}
    if params["functional"]:
        probe = FunctionalProbe(model)
        if probe.available:
            metrics.update(probe.evaluate(recon))
            if at_budget is not None:
                got = probe.evaluate(
                    {
                        info.name: c.w_hat.reshape(info.shape)
                        for (info, _w), c in zip(mats, at_budget, strict=True)
                    }
                )
                metrics.update({f"{k}_at_budget": v for k, v in got.items()})
        extra["functional"] = probe.describe(len(probe._names(recon)))
        extra["subjects"] += probe.subjects()
    front = []
    for t in np.linspace(0.86, 0.999, 48):
        est = _estimate(tables, float(t))
        front.append(
            {"ratio": fp16 / est, "cos_min": float(t), "bytes_total": round(est), "estimated": True}
        )
    metrics["frontier_points"] = len(front)
    metrics["candidates"] = TABLE_STEPS * len(mats)
    rd_points = []
    for t in TARGETS:
        rd = rate_distortion(
            float(metrics[f"cos_min_at_cos_{_key(t)}"]), metrics[f"ratio_at_cos_{_key(t)}"]
        )
        rd["target"] = t
        rd_points.append(rd)
    rd_main = dict(rd_points[0])
    rd_main["model"] = "gaussian-reference"
    rd_main["points"] = rd_points
    extra.update(
        {
            "frontier": front,
            "frontier_note": "estimated from the per-matrix tables (order-0 code bits + a "
            f"{HEADER_ESTIMATE}-byte header guess); the ratio_at_* metrics are real encodes",
            "rate_distortion": rd_main,
            "headline_target": TARGETS[0],
            "budget_target_cos": t_budget,
            "method": {
                "algorithm": "ecsq per matrix, equal-cos (Lagrangian at high rate) allocation",
                "tables": f"{TABLE_STEPS} steps per matrix, computed once",
                "contexts": contexts,
            },
        }
    )
    return Measurement(metrics, rows, digest.hexdigest(), extra)


def _key(t: float) -> str:
    """0.99 -> '099'."""
    return f"{t:.2f}".replace(".", "")


def _cos(a: torch.Tensor, b: torch.Tensor) -> float:
    from runners.measure import cosine

    return cosine(a, b.reshape(a.shape))
