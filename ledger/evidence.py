"""The evidence view of an entry over the typed statement model (`ledger.statement`): its
metrics, runner and predicate type, looking inside imports; plus metric direction and format."""

from __future__ import annotations

import re
from typing import Any

from ledger.chain import Entry
from ledger.statement import (
    LEGACY_METRICS,
    LEGACY_RUNNERS,
    Legacy,
    Metric,
    Metrics,
    Predicate,
    Statement,
)

#: metrics where a higher value is better; everything in LOWER_IS_BETTER is the other way
HIGHER_IS_BETTER = re.compile(
    r"(^|_)(cos|ratio|go|ok|feasible|gain|efficiency|frontier_points)(_|$)"
)
LOWER_IS_BETTER = re.compile(
    r"(^|_)(rss|delta|deltas|bytes|bits|ppl|time|seconds|error|err|mse|loss)(_|$)"
)


def evidence_statement(entry: Entry) -> Statement:
    """The statement that carries the entry's evidence (the foreign one for an import)."""
    return entry.statement.evidence


def predicate_of(entry: Entry) -> Predicate:
    """The typed predicate that carries the entry's evidence (the foreign one for imports)."""
    return evidence_statement(entry).predicate


def metrics_of(entry: Entry) -> Metrics:
    """One flat {metric: number|bool} view of any entry (empty if it has no metrics)."""
    return predicate_of(entry).metrics


def predicate_type_of(entry: Entry) -> str:
    """predicateType of the evidence (the foreign statement's for imports)."""
    return evidence_statement(entry).predicate_type


def runner_of(entry: Entry) -> str | None:
    """Runner name, or the legacy schema_id, of the evidence (looks inside imports)."""
    ref = predicate_of(entry).runner
    return ref.name if ref is not None else None


def runner_family(entry: Entry) -> str | None:
    """Our runner name for the evidence; legacy schema_ids map to their counterpart runner."""
    pred = predicate_of(entry)
    if isinstance(pred, Legacy):
        return pred.family
    return runner_of(entry)


def is_legacy(entry: Entry) -> bool:
    """True for legacy POC evidence (kept verbatim under `document`)."""
    return isinstance(predicate_of(entry), Legacy)


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
    "Metric",
    "direction",
    "evidence_statement",
    "is_compression_claim",
    "is_legacy",
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
