"""Run a runner repeatedly in fresh state and build its in-toto Statement v1."""

from __future__ import annotations

import json
import math
import os
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ledger.statement import runner_statement
from runners.base import Measurement, ProgressFn, Runner, no_progress, resolve_params
from runners.common import selected
from runners.measure import model_scope, rate_distortion
from runners.model import ModelSource
from runners.physics import data_bound_block

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_BASE = "https://evledger.dev/predicates"
MAX_SAFE_INT = 2**53 - 1
SEED = 0
RESERVED = {
    "runner",
    "params",
    "metrics",
    "rows",
    "determinism",
    "environment",
    "rate_distortion",
    "ledger",
}


def predicate_type(runner_name: str) -> str:
    """The predicateType URI of a runner."""
    return f"{PREDICATE_BASE}/{runner_name}/v1"


def default_threads() -> int:
    """Fixed thread count used for measurements (at most 2, so results match across hosts)."""
    return max(1, min(2, os.cpu_count() or 1))


def to_json_safe(value: Any, where: str = "$") -> Any:
    """Deep copy with finite numbers only (raise on NaN/inf) and big integers as strings."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, str):
        return str(value)  # plain str, also for subclasses such as torch's TorchVersion
    if isinstance(value, (int, np.integer)):
        v = int(value)
        return str(v) if abs(v) > MAX_SAFE_INT else v
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            raise ValueError(f"non-finite number at {where}: {v}")
        return v
    if isinstance(value, dict):
        return {str(k): to_json_safe(v, f"{where}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json_safe(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return to_json_safe(value.item(), where)
    raise TypeError(f"value at {where} is not JSON-serialisable: {type(value).__name__}")


def _numeric(v: Any) -> float | None:
    """A metric as float for delta computation (bools count as 0/1), else None."""
    if isinstance(v, bool):
        return float(v)
    if isinstance(v, (int, float)):
        return float(v)
    return None


def determinism_block(
    runs: list[Measurement], physical: frozenset[str] = frozenset()
) -> dict[str, Any]:
    """max |Δ| over numeric metrics across runs, per-metric deltas, digests equal or not.

    `physical` metrics (peak RSS and the like) vary with the machine's state by nature: their
    spread is reported apart and left out of `delta`, which is about the method's results.
    """
    deltas: dict[str, float] = {}
    first = runs[0].metrics
    for key in first:
        values = [_numeric(r.metrics.get(key)) for r in runs]
        if any(v is None for v in values):
            continue
        nums = [v for v in values if v is not None]
        deltas[key] = max(nums) - min(nums)
    digests = [r.reconstruction_digest for r in runs]
    keys_equal = all(set(r.metrics) == set(first) for r in runs)
    logical = {k: v for k, v in deltas.items() if k not in physical}
    block: dict[str, Any] = {
        "runs": len(runs),
        "delta": max(logical.values(), default=0.0),
        "deltas": logical,
        "reconstruction_digest": digests[0],
        "digests_equal": all(d == digests[0] for d in digests) and keys_equal,
    }
    if spread := {k: v for k, v in deltas.items() if k in physical}:
        block["physical_spread"] = spread
    return block


def environment(threads: int, seeds: dict[str, int]) -> dict[str, Any]:
    """Python, torch, numpy, platform, threads and seeds of this measurement."""
    return {
        "python": platform.python_version(),
        "implementation": sys.implementation.name,
        "torch": str(torch.__version__),
        "numpy": str(np.__version__),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "threads": threads,
        "deterministic_algorithms": True,
        "seeds": seeds,
    }


def measure_once(
    runner: Runner,
    model: ModelSource,
    params: dict[str, Any],
    progress: ProgressFn,
    threads: int,
    seed: int,
) -> Measurement:
    """One measurement in fresh, seeded, deterministic torch state (settings restored after)."""
    prev_threads = torch.get_num_threads()
    prev_det = torch.are_deterministic_algorithms_enabled()
    try:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(True)
        torch.manual_seed(seed)
        m = runner.measure(model, dict(params), progress)
        if "ratio_model" not in m.metrics:  # honest scope: the whole file beside the selection
            scoped = selected(model, params) if "matrices" in params else model
            m.metrics.update(model_scope(scoped, m.metrics))
        return m
    finally:
        torch.set_num_threads(prev_threads)
        torch.use_deterministic_algorithms(prev_det)


def run_runner(
    runner: Runner,
    model: ModelSource,
    params: dict[str, Any] | None = None,
    repeat: int = 2,
    progress: ProgressFn | None = None,
    threads: int | None = None,
    seed: int = SEED,
    device: str = "cpu",
) -> dict[str, Any]:
    """Measure `repeat` (>= 2) times in fresh state and return the in-toto Statement v1 dict.

    `device` (cpu, cuda or auto) is where runners that use `runners.device.current()` do
    their heavy math; it is recorded with its name and determinism settings.
    """
    from runners import device as devices
    from runners.registry import plugin_of

    if repeat < 2:
        raise ValueError("repeat must be >= 2 (determinism needs two measurements)")
    resolved_device = devices.resolve(device)
    resolved = resolve_params(runner, params)
    progress = progress or no_progress
    threads = threads or default_threads()
    runs: list[Measurement] = []
    for i in range(repeat):

        def report(label: str, done: int, total: int, _i: int = i) -> None:
            progress(f"run {_i + 1}/{repeat}: {label}", done, total)

        with devices.using(resolved_device):
            runs.append(measure_once(runner, model, resolved, report, threads, seed))
    first = runs[0]
    # a runner may name `physical_metrics` (e.g. peak RSS) whose spread is not non-determinism
    det = determinism_block(runs, getattr(runner, "physical_metrics", frozenset()))
    metrics = dict(first.metrics)
    metrics["determinism_delta"] = det["delta"]
    subjects = [{"name": f.name, "digest": {"sha256": f.sha256}} for f in model.files()]
    subjects.extend(getattr(model, "source_subjects", []))  # e.g. the GGUF behind smollm2
    subjects.extend(first.extra.get("subjects", []))
    plugin = plugin_of(runner.name)
    runner_block: dict[str, Any] = {"name": runner.name, "version": runner.version}
    if plugin is not None:
        runner_block["plugin"] = plugin.describe()
    env = environment(threads, {"torch": seed, **first.extra.get("seeds", {})})
    env["device"] = devices.describe(device, resolved_device)
    predicate: dict[str, Any] = {
        "runner": runner_block,
        "params": resolved,
        "metrics": metrics,
        "rows": first.rows,
        "determinism": det,
        "environment": env,
    }
    if "rate_distortion" in first.extra:
        predicate["rate_distortion"] = dict(first.extra["rate_distortion"])
    elif "cos_min" in metrics and "ratio_fp16_effective" in metrics:
        predicate["rate_distortion"] = rate_distortion(
            float(metrics["cos_min"]), float(metrics["ratio_fp16_effective"])
        )
    rd = predicate.get("rate_distortion")
    if rd is not None and "data_bound" not in rd and (block := data_bound_block(first.rows)):
        rd["data_bound"] = block  # the weights were at hand: the physics check can use them
    predicate["model"] = {
        "path": model.requested.name,
        "default": model.is_default,
        "matrices": model.matrices,
        "tensors": model.summary(),
    }
    if getattr(model, "reference_note", None):
        predicate["model"]["reference"] = model.reference_note
    for key, value in first.extra.items():
        if key not in ("subjects", "seeds", "rate_distortion") and key not in RESERVED:
            predicate[key] = value
    safe = to_json_safe(predicate)
    return runner_statement(  # through the typed model: it reads back as this runner's evidence
        runner=runner.name,
        version=safe["runner"]["version"],
        subjects=to_json_safe(subjects),
        predicate=safe,
        predicate_type=predicate_type("plugin" if plugin is not None else runner.name),
    )


SCHEMA_DIR = Path(__file__).resolve().parent.parent / "schemas" / "predicates"


def schema_path(runner_name: str) -> Path:
    """The JSON Schema file of a runner's predicate."""
    return SCHEMA_DIR / f"{runner_name}.v1.schema.json"


def validate_statement(statement: dict[str, Any]) -> None:
    """Check the Statement shape and the predicate against its runner schema (ValueError)."""
    import jsonschema

    if statement.get("_type") != STATEMENT_TYPE:
        raise ValueError(f"_type must be {STATEMENT_TYPE}")
    subjects = statement.get("subject")
    if not isinstance(subjects, list) or not subjects:
        raise ValueError("subject must be a non-empty list")
    for s in subjects:
        digest = s.get("digest", {}).get("sha256", "") if isinstance(s, dict) else ""
        if not isinstance(s.get("name"), str) or len(digest) != 64:
            raise ValueError(f"bad subject {s!r}")
    ptype = str(statement.get("predicateType", ""))
    if not ptype.startswith(PREDICATE_BASE + "/"):
        raise ValueError(f"predicateType {ptype!r} is not an evledger runner predicate")
    name = ptype.removeprefix(PREDICATE_BASE + "/").split("/")[0]
    path = schema_path(name)
    if not path.is_file():
        raise ValueError(f"no schema for runner {name!r} at {path}")
    schema = json.loads(path.read_text("utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(statement["predicate"]), key=lambda e: list(e.path))
    if errors:
        e = errors[0]
        where = "/".join(str(p) for p in e.path) or "(root)"
        raise ValueError(f"predicate does not match {path.name} at {where}: {e.message}")
