"""One flat metric view of any entry: runner evidence, legacy POC files, imports, reproductions."""

from __future__ import annotations

import re
from typing import Any

import orjson

from ledger.chain import Entry
from ledger.envelope import b64decode

Metric = float | int | bool
Metrics = dict[str, Metric]

#: legacy schema_id -> {our metric name: path into the original document}; the one place
#: where legacy POC field names are mapped to ours (gate, diff, audit and report all use it).
LEGACY_METRICS: dict[str, dict[str, tuple[str, ...]]] = {
    "evidence.v43.v1": {
        "go": ("summary", "go"),
        "cos_min": ("summary", "cos_min"),
        "ratio_fp16_effective": ("summary", "ratio_fp16_effective_min"),
        "pareto_vs_v39_high_ratio": ("summary", "pareto_vs_v39_high_ratio"),
        "pareto_vs_v39_high_cos": ("summary", "pareto_vs_v39_high_cos"),
        "seed_entropy_delta": ("summary", "seed_entropy_delta"),
        "crossblock_enabled": ("summary", "crossblock_enabled"),
        "colddust_enabled": ("summary", "colddust_enabled"),
        "bytes_total": ("summary", "bytes_total"),
        "bytes_field": ("summary", "bytes_field"),
        "determinism_delta": ("summary", "determinism_delta"),
        "entropy_before": ("phases", "seed", "entropy_before"),
        "entropy_after": ("phases", "seed", "entropy_after"),
        "cos_min_at_same_ratio": ("phases", "seed", "cos_min_at_same_ratio"),
        "cos_min_lift": ("phases", "crossblock", "cos_min_lift"),
        "effective_ratio": ("phases", "colddust", "effective_ratio"),
        "ppl_change": ("phases", "colddust", "ppl_change"),
    },
    "evidence.breakthrough.v1": {
        "go": ("summary", "go"),
        "entropy_gain_ok": ("summary", "entropy_gain_ok"),
        "determinism_delta": ("summary", "determinism_delta"),
        "bytes_total": ("summary", "bytes_total"),
        "bytes_field": ("summary", "bytes_field"),
        "bytes_patch": ("summary", "bytes_patch"),
        "bytes_entropy": ("summary", "bytes_entropy"),
        "determinism_checked": ("env", "determinism_checked"),
    },
    "evidence.v300.vajra.v1": {
        "ratio_fp16_effective": ("compression_results", "compression_ratio"),
        "cos_min": ("compression_results", "cosine_similarity"),
    },
    "evidence.v400.resonance.v1": {
        "ratio_fp16_effective": ("compression_results", "compression_ratio"),
        "cos_min": ("compression_results", "cosine_similarity"),
    },
}

#: legacy schema_id -> the runner of ours that measures the same thing (None: no counterpart)
LEGACY_RUNNERS: dict[str, str | None] = {
    "evidence.v43.v1": "proxy",
    "evidence.breakthrough.v1": "entropy",
    "evidence.v300.vajra.v1": None,
    "evidence.v400.resonance.v1": None,
}

#: metrics where a higher value is better; everything in LOWER_IS_BETTER is the other way
HIGHER_IS_BETTER = re.compile(
    r"(^|_)(cos|ratio|go|ok|feasible|gain|efficiency|frontier_points)(_|$)"
)
LOWER_IS_BETTER = re.compile(
    r"(^|_)(rss|delta|deltas|bytes|bits|ppl|time|seconds|error|err|mse|loss)(_|$)"
)

_BIG_INT = re.compile(r"-?[0-9]{16,}")


def _number(value: Any) -> Metric | None:
    """A metric value: bool, int, float, or a big integer stored as a decimal string."""
    if isinstance(value, bool | int | float):
        return value
    if isinstance(value, str) and _BIG_INT.fullmatch(value):
        return int(value)
    return None


def _flat(metrics: Any) -> Metrics:
    """Numeric/bool items of a metrics dict (other values are dropped)."""
    if not isinstance(metrics, dict):
        return {}
    out: Metrics = {}
    for key, value in metrics.items():
        num = _number(value)
        if num is not None:
            out[str(key)] = num
    return out


def _dig(doc: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(part)
    return doc


def legacy_metrics(schema_id: str, document: dict[str, Any]) -> Metrics:
    """Our metric view of a legacy POC document (via LEGACY_METRICS)."""
    out: Metrics = {}
    for name, path in LEGACY_METRICS.get(schema_id, {}).items():
        num = _number(_dig(document, path))
        if num is not None:
            out[name] = num
    return out


def inner_statement(entry: Entry) -> dict[str, Any] | None:
    """For an import entry, the foreign statement inside its envelope (None if unreadable)."""
    env = entry.predicate.get("envelope")
    if not isinstance(env, dict) or not isinstance(env.get("payload"), str):
        return None
    try:
        doc = orjson.loads(b64decode(env["payload"]))
    except (ValueError, TypeError):
        return None
    return doc if isinstance(doc, dict) else None


def predicate_metrics(predicate: dict[str, Any]) -> Metrics:
    """Metric view of a predicate: runner metrics, legacy mapping, or a reproduction's re-run."""
    schema_id = predicate.get("schema_id")
    if isinstance(schema_id, str) and isinstance(predicate.get("document"), dict):
        return legacy_metrics(schema_id, predicate["document"])
    if isinstance(predicate.get("metrics"), dict):
        return _flat(predicate["metrics"])
    for key in ("rerun", "reproduction", "result", "observed"):
        sub = predicate.get(key)
        if isinstance(sub, dict) and isinstance(sub.get("metrics"), dict):
            return _flat(sub["metrics"])
    return {}


def metrics_of(entry: Entry) -> Metrics:
    """One flat {metric: number|bool} view of any entry (empty if it has no metrics)."""
    if entry.kind == "import":
        inner = inner_statement(entry)
        pred = inner.get("predicate") if inner else None
        return predicate_metrics(pred) if isinstance(pred, dict) else {}
    return predicate_metrics(entry.predicate)


def predicate_of(entry: Entry) -> dict[str, Any]:
    """The predicate that carries the entry's evidence (the foreign one for imports)."""
    if entry.kind == "import":
        inner = inner_statement(entry)
        pred = inner.get("predicate") if inner else None
        return pred if isinstance(pred, dict) else {}
    return entry.predicate


def predicate_type_of(entry: Entry) -> str:
    """predicateType of the evidence (the foreign statement's for imports)."""
    if entry.kind == "import":
        inner = inner_statement(entry)
        return str(inner.get("predicateType", "")) if inner else ""
    return entry.predicate_type


def runner_of(entry: Entry) -> str | None:
    """Runner name, or the legacy schema_id, of the evidence (looks inside imports)."""
    pred = predicate_of(entry)
    runner = pred.get("runner")
    if isinstance(runner, dict) and isinstance(runner.get("name"), str):
        return str(runner["name"])
    if isinstance(runner, str):
        return runner
    schema_id = pred.get("schema_id")
    return schema_id if isinstance(schema_id, str) else None


def runner_family(entry: Entry) -> str | None:
    """Our runner name for the evidence; legacy schema_ids map to their counterpart runner."""
    name = runner_of(entry)
    if name in LEGACY_RUNNERS:
        return LEGACY_RUNNERS[name]
    return name


def is_legacy(entry: Entry) -> bool:
    """True for legacy POC evidence (kept verbatim under `document`)."""
    pred = predicate_of(entry)
    return isinstance(pred.get("schema_id"), str) and isinstance(pred.get("document"), dict)


def is_compression_claim(entry: Entry) -> bool:
    """True if the entry claims a compression ratio at a cosine (both metrics present)."""
    if entry.kind not in ("evidence", "import"):
        return False
    m = metrics_of(entry)
    ratio, cos = m.get("ratio_fp16_effective"), m.get("cos_min")
    return (
        isinstance(ratio, int | float)
        and not isinstance(ratio, bool)
        and isinstance(cos, int | float)
        and not isinstance(cos, bool)
    )


def direction(metric: str) -> int:
    """+1 if higher is better, -1 if lower is better, 0 if unknown."""
    if LOWER_IS_BETTER.search(metric):
        return -1
    if HIGHER_IS_BETTER.search(metric):
        return 1
    return 0


__all__ = [
    "LEGACY_METRICS",
    "LEGACY_RUNNERS",
    "direction",
    "is_compression_claim",
    "is_legacy",
    "legacy_metrics",
    "metrics_of",
    "predicate_of",
    "predicate_type_of",
    "runner_family",
    "runner_of",
]


def fmt_metric(value: Any, missing: str = "absent") -> str:
    """A metric value for humans: booleans lower-case, floats to 6 significant digits."""
    if value is None:
        return missing
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)
