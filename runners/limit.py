"""The measurement loop shared by the entropy-coded runners (`ecsq`, `tcq`).

Each selected matrix is compressed to a per-matrix target, its bytes are decoded back and
the reconstruction is rebuilt *from the decoded bytes*; rows carry bytes by part (header,
contexts, stream), weight cos, per-layer output cos, the Gaussian reference and the
data-dependent bound of that matrix; the model-level metric is measured on the model with
every selected matrix replaced by its decoded reconstruction.

`target_embedding_cos` (a model-level target) replaces the fixed `target_cos`: the weight-cos
target of every matrix is searched (secant, then regula falsi on log(1 − cos)) until the
*minimum* sentence-embedding cosine on the calibration texts (in-sample, `runners.texts.TEXTS`)
reaches it; each search step compresses every matrix without coding it (the runner's
`planner`, warm-started from the step found before) and runs the encoder once. The codes of
the chosen step are then encoded, decoded back and measured as always, and the held-out
embedding cosine stays the reported `embedding_cos_min/mean`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from ledger.errors import UsageError
from ledger.ratedistortion import bound_bits
from runners.base import Measurement, Param, ProgressFn
from runners.coding import version as coder_version
from runners.common import selected
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
from runners.physics import data_bound_block

TARGET_COS = Param(
    "target_cos",
    0.99,
    "weight cosine every matrix is brought to (the step is searched per matrix)",
    "float",
    minimum=0.5,
    maximum=0.999999,
)
CONTEXTS = Param(
    "contexts",
    4,
    "row contexts by row RMS, each with its own categorical model (1 = one model)",
    "int",
    minimum=1,
    maximum=16,
)
FUNCTIONAL = Param(
    "functional",
    True,
    "measure the model-level metric (held-out embedding cosine / perplexity)",
    "bool",
)

TARGET_EMBEDDING_COS = Param(
    "target_embedding_cos",
    0.0,
    "model-level target (0 = off): the weight-cos target is searched until the min "
    "sentence-embedding cosine on the calibration texts (in-sample) reaches this; "
    "target_cos is then unused; the held-out cosine is what is reported",
    "float",
    minimum=0.0,
    maximum=0.999999,
)
ALLOCATION = Param(
    "allocation",
    "shared",
    "with target_embedding_cos: shared (one weight-cos target for every matrix) or slope "
    "(per-matrix targets at equal rate-distortion slope from each matrix's measured "
    "embedding sensitivity)",
    "str",
    choices=("shared", "slope"),
)

Compress = Callable[[torch.Tensor, dict[str, Any]], tuple[CompressedMatrix, dict[str, Any]]]
#: planner(index, w, per-matrix state, target weight cos) -> (plan for `Compress`, or None;
#: the reconstruction the plan decodes to, or a stand-in for it)
Planner = Callable[[int, torch.Tensor, dict[str, Any], float], tuple[Any, torch.Tensor]]

#: weight-cos deficits 1 − t a search may use per matrix (t from 0.5 to 0.999999)
DEFICITS = (1e-6, 0.5)
#: the first search step: weight-cos deficit = embedding deficit / this (MiniLM-L6, ecsq at
#: embedding cos 0.985: ≈ 11)
START_RATIO = 10.0
#: most encoder runs of a search; it stops once the bracket on x, or the in-sample log(1 − cos)
#: below the goal, is within SEARCH_TOL (the min over the texts is not smooth at finer scale)
SEARCH_STEPS = 8
SEARCH_TOL = 0.02
#: slope allocation: a matrix's deficit stays within this factor of the common scale
SLOPE_CLAMP = 16.0
#: re-compressions allowed when a stand-in planner's result misses the goal
MAX_CORRECTIONS = 2

Built = tuple[ReconstructionDigest, list[dict[str, Any]], dict[str, torch.Tensor]]


def warm_start(state: dict[str, Any], target: float, key: Any) -> float | None:
    """Start of a step search at `target` from the step found before for the same matrix
    (`state["steps"][key]` = (target, step)): Δ ∝ √(1 − t²) at high rate."""
    prev = state.get("steps", {}).get(key)
    if prev is None:
        return None
    t0, step0 = prev
    return float(step0 * math.sqrt(max(1.0 - target * target, 1e-12) / max(1.0 - t0 * t0, 1e-12)))


def refuse_target(model: ModelSource) -> None:
    """`target_embedding_cos` needs a sentence-embedding model; one line naming it if not."""
    from runners.minilm import folder_kind, model_folder

    folder = model_folder(model.paths[0]) if model.paths else None
    kind = folder_kind(folder) if folder is not None else "bare"
    name = model.paths[0].name if model.paths else str(model.requested)
    if kind == "bert":
        return
    if kind == "causal-lm":
        raise UsageError(
            "param target_embedding_cos: the model is a causal LM, whose model-level metric "
            "is perplexity, not an embedding cosine (use target_cos)"
        )
    why = "no config.json/tokenizer.json beside it" if kind == "bare" else f"architecture {kind}"
    raise UsageError(
        f"param target_embedding_cos: {name} has no sentence-embedding model to run "
        f"({why}); use target_cos"
    )


class TargetSearch:
    """The weight-cos targets that bring the in-sample embedding cosine to a goal.

    One scalar x = log(deficit scale) sets every matrix's target t_i = 1 − s_i·e^x (s_i = 1
    for `shared`; for `slope`, s_i ∝ n_i / u_i with u_i the measured embedding deficit per
    unit weight deficit of matrix i alone: the equal-slope point of Σ rate under a linear
    model of the embedding deficit, rate ≈ a_i − ½·log2(1 − t_i) bits a weight).
    """

    def __init__(
        self,
        mats: list[tuple[Any, torch.Tensor]],
        states: list[dict[str, Any]],
        probe: FunctionalProbe,
        planner: Planner,
        goal: float,
        allocation: str,
        progress: ProgressFn,
    ) -> None:
        """Matrices (info, 2-D float32 w), their planner states and the probe to run."""
        self.mats, self.states, self.probe, self.planner = mats, states, probe, planner
        self.goal, self.allocation, self.progress = goal, allocation, progress
        self.scale = [1.0] * len(mats)
        self.steps: list[dict[str, Any]] = []
        self.best: tuple[float, list[Any], dict[str, float]] | None = None
        self.sensitivity: list[float] | None = None

    def targets(self, x: float) -> list[float]:
        """Per-matrix weight-cos targets at scale x."""
        lo, hi = DEFICITS
        return [1.0 - min(max(math.exp(x) * s, lo), hi) for s in self.scale]

    def evaluate(self, x: float) -> float:
        """In-sample embedding cosine (min) with every matrix planned at its target."""
        plans, recon = [], {}
        for i, ((info, w), t) in enumerate(zip(self.mats, self.targets(x), strict=True)):
            plan, w_hat = self.planner(i, w, self.states[i], t)
            plans.append(plan)
            recon[info.name] = w_hat.reshape(info.shape)
        got = self.probe.calibration_cos(recon)
        cmin = got["embedding_cos_min_calib"]
        self.steps.append({"target_cos": 1.0 - math.exp(x), **got})
        if cmin >= self.goal and (self.best is None or x > self.best[0]):
            self.best = (x, plans, got)  # only the best plans are kept (memory)
        self.progress(f"target search {len(self.steps)}", len(self.steps), SEARCH_STEPS)
        return cmin

    def measure_slopes(self, x: float) -> None:
        """`slope`: each matrix alone at deficit e^x, its in-sample embedding deficit."""
        t = 1.0 - math.exp(x)
        u = []
        for i, (info, w) in enumerate(self.mats):
            _plan, w_hat = self.planner(i, w, self.states[i], t)
            got = self.probe.calibration_cos({info.name: w_hat.reshape(info.shape)})
            u.append(max(1.0 - got["embedding_cos_mean_calib"], 0.0))
            self.progress(f"sensitivity {info.name}", i + 1, len(self.mats))
        self.sensitivity = [v / math.exp(x) for v in u]
        n = [float(w.numel()) for _i, w in self.mats]
        floor = 1e-6 * max(max(u), 1e-30)
        logs = [math.log(ni / max(ui, floor)) for ni, ui in zip(n, u, strict=True)]
        mean = sum(ni * li for ni, li in zip(n, logs, strict=True)) / sum(n)
        c = math.log(SLOPE_CLAMP)
        self.scale = [math.exp(min(max(li - mean, -c), c)) for li in logs]

    def run(self) -> float:
        """The largest x (most compression) whose in-sample embedding cos meets the goal."""
        lo, hi = (math.log(d) for d in DEFICITS)
        goal = math.log(max(1.0 - self.goal, 1e-30))
        x0 = min(max(goal - math.log(START_RATIO), lo), hi)
        if self.allocation == "slope":
            self.measure_slopes(x0)

        def f(x: float) -> float:
            return math.log(max(1.0 - self.evaluate(x), 1e-30))

        pts = [(x0, f(x0))]
        while len(pts) < SEARCH_STEPS:
            ok = [p for p in pts if p[1] <= goal]
            bad = [p for p in pts if p[1] > goal]
            if ok and bad:
                p0, p1 = max(ok), min(bad)
                if p1[0] - p0[0] < SEARCH_TOL or goal - p0[1] < SEARCH_TOL:
                    break
                r = (goal - p0[1]) / (p1[1] - p0[1])
                nxt = p0[0] + min(0.9, max(0.1, r)) * (p1[0] - p0[0])
            else:
                if len(pts) == 1:
                    slope = 1.0  # the embedding deficit grows about like the weight deficit
                    x1, y1 = pts[0]
                else:
                    (x0_, y0_), (x1, y1) = pts[-2], pts[-1]
                    slope = (y1 - y0_) / (x1 - x0_) if x1 != x0_ else 1.0
                    slope = min(3.0, max(0.3, slope))
                aim = goal - SEARCH_TOL  # just inside: a point that meets it ends the secant phase
                nxt = min(max(x1 + max(-1.5, min(1.5, (aim - y1) / slope)), lo), hi)
                if nxt == x1:
                    break  # at the end of the range
            pts.append((nxt, f(nxt)))
        if self.best is None:
            raise UsageError(
                f"param target_embedding_cos: {self.goal} not reached on the calibration "
                f"texts (best {max(s['embedding_cos_min_calib'] for s in self.steps):.6f} "
                f"at weight cos {1.0 - DEFICITS[0]})"
            )
        return self.best[0]

    def describe(self, x: float, final: dict[str, float], proxy: str) -> dict[str, Any]:
        """The statement's `method.target_search` block."""
        from runners.texts import TEXTS

        out: dict[str, Any] = {
            "target": "min sentence-embedding cosine on the calibration texts (in-sample) "
            ">= target_embedding_cos",
            "target_embedding_cos": self.goal,
            "texts": f"{len(TEXTS)} calibration texts (runners.texts.TEXTS, in-sample); the "
            "reported embedding_cos_min/mean are on the held-out texts",
            "allocation": self.allocation,
            "variable": "x = log(1 − weight-cos target); secant steps, then regula falsi "
            f"inside the bracket, at most {SEARCH_STEPS} encoder runs, tolerance "
            f"{SEARCH_TOL} in log(1 − cos)",
            "searched_target_cos": 1.0 - math.exp(x),
            "steps": self.steps,
            "embedding_cos_min_calib": final["embedding_cos_min_calib"],
            "embedding_cos_mean_calib": final["embedding_cos_mean_calib"],
            "proxy": proxy,
        }
        if self.allocation == "slope":
            out["slope"] = (
                f"target_i = 1 − s_i·(1 − searched_target_cos), s_i ∝ n_i / u_i "
                f"(parameter-weighted geometric mean 1, clamped to 1/{SLOPE_CLAMP:g}.."
                f"{SLOPE_CLAMP:g}); u_i = in-sample embedding deficit (mean) per unit weight "
                "deficit, matrix i alone at the first step"
            )
            out["sensitivity"] = self.sensitivity
        return out


def limit_measure(
    model: ModelSource,
    params: dict[str, Any],
    progress: ProgressFn,
    compress: Compress,
    method: dict[str, Any],
    planner: Planner | None = None,
    proxy: str = "",
) -> Measurement:
    """Compress, decode back and measure every selected matrix; summary and functional metric.

    With `target_embedding_cos` set, `planner` makes the search steps (see `TargetSearch`)
    and `proxy` says in the statement what its reconstructions are.
    """
    goal = float(params.get("target_embedding_cos") or 0.0)
    model = selected(model, params)
    if goal:
        refuse_target(model)
    calib = Calibration(model, params["calibration"], params["calib_samples"], seed=0)
    probe = FunctionalProbe(model) if params["functional"] or goal else None
    search: TargetSearch | None = None
    mats: list[tuple[Any, torch.Tensor]] | None = None
    targets: list[float] | None = None
    plans: list[Any] | None = None
    x = 0.0
    if goal:
        assert probe is not None and planner is not None
        mats = [
            (info, w.to(torch.float32).reshape(w.shape[0], -1)) for info, w in model.iter_matrices()
        ]
        states = [{"inputs": calib.inputs(info)} for info, _w in mats]
        search = TargetSearch(
            mats, states, probe, planner, goal, params.get("allocation", "shared"), progress
        )
        x = search.run()
        assert search.best is not None
        targets, plans = search.targets(x), search.best[1]

    def build(targets: list[float] | None, plans: list[Any] | None) -> Built:
        """Every matrix compressed (to `targets`, from `plans`), decoded back, measured."""
        digest = ReconstructionDigest()
        rows: list[dict[str, Any]] = []
        recon: dict[str, torch.Tensor] = {}
        state: dict[str, Any] = {}
        infos = model.matrix_infos()
        source = mats if mats is not None else model.iter_matrices()
        for i, (info, w) in enumerate(source):
            w2 = w.to(torch.float32).reshape(w.shape[0], -1)
            state["inputs"] = calib.inputs(info)
            state["target"] = targets[i] if targets is not None else params["target_cos"]
            state["plan"] = plans[i] if plans is not None else None
            cm, more = compress(w2, state)
            cm.w_hat = cm.w_hat.reshape(info.shape)
            w = w.reshape(info.shape)
            row = matrix_row(info, w, cm, calib.inputs(info))
            row.update(more)
            if targets is not None:
                row["target_cos"] = targets[i]
            row["calibration"] = calib.sources[info.name]
            row["rd_gaussian_bits"] = bound_bits(row["cos"])  # the data bound: matrix_row
            row["above_gaussian_reference"] = bool(
                row["rd_gaussian_ratio"] is not None and row["ratio"] > row["rd_gaussian_ratio"]
            )
            rows.append(row)
            digest.update(cm.w_hat)
            recon[info.name] = cm.w_hat
            progress(info.name, i + 1, len(infos))
        return digest, rows, recon

    digest, rows, recon = build(targets, plans)
    final_calib: dict[str, float] = {}
    corrections = 0
    if search is not None and probe is not None:
        assert targets is not None
        final_calib = probe.calibration_cos(recon)  # of the decoded reconstructions
        # a runner whose planner is a stand-in (tcq) may land below the goal: step x down by
        # the miss in log(1 − cos) and compress again (a planner of the real codes never does)
        while final_calib["embedding_cos_min_calib"] < goal and corrections < MAX_CORRECTIONS:
            corrections += 1
            miss = math.log(1.0 - final_calib["embedding_cos_min_calib"]) - math.log(1.0 - goal)
            x -= miss + SEARCH_TOL
            targets = search.targets(x)
            digest, rows, recon = build(targets, None)
            final_calib = probe.calibration_cos(recon)
            search.steps.append({"target_cos": 1.0 - math.exp(x), "final": True, **final_calib})
    metrics = summarize(rows)
    metrics["target_cos"] = params["target_cos"]
    if search is not None:
        metrics["target_cos"] = 1.0 - math.exp(x)  # slope: the common scale of the targets
        if search.allocation == "slope":
            metrics["target_cos_min"] = min(targets)  # the per-matrix targets, as in the rows
            metrics["target_cos_max"] = max(targets)
        metrics["target_embedding_cos"] = goal
        metrics.update(final_calib)
        metrics["target_search_steps"] = len(search.steps)
        metrics["target_search_corrections"] = corrections
    metrics["matrices_above_gaussian_reference"] = sum(r["above_gaussian_reference"] for r in rows)
    extra: dict[str, Any] = {"subjects": calib.subjects(), "calibration": calib.describe()}
    if probe is not None and params["functional"]:
        metrics.update(probe.evaluate(recon))
        extra["functional"] = probe.describe(len(probe._names(recon)))
        extra["subjects"] += probe.subjects()
    else:
        extra["functional"] = {"metric": None, "reason": "functional=false"}
    rd = rate_distortion(float(metrics["cos_min"]), float(metrics["ratio_fp16_effective"]))
    rd["model"] = "gaussian-reference"
    rd["note"] = "the i.i.d. Gaussian reference, not a bound for real weights"
    rd["data_bound"] = data_bound_block(rows)  # every row has its matrix's bound
    extra["rate_distortion"] = rd
    extra["method"] = method | {"coder": {"name": "constriction", "version": coder_version()}}
    if search is not None:
        from runners import texts

        extra["method"]["target_search"] = search.describe(x, final_calib, proxy)
        if texts.subject() not in extra["subjects"]:
            extra["subjects"].append(texts.subject())
    return Measurement(metrics, rows, digest.hexdigest(), extra)
