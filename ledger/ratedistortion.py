"""The Gaussian rate-distortion reference every compression figure is held against.

For Gaussian weights, reaching cosine c between original and reconstruction needs at least
R(c) = ½·log2(1/(1−c²)) bits per weight, so no method can beat a ratio of 16 / R(c) against
fp16 at that cosine (≈ 5.66x at 0.99, ≈ 10.3x at 0.94). Real weights are close to Gaussian;
a claim above the bound needs structured data to explain it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ledger.chain import Entry
from ledger.evidence import metrics_of, predicate_of

SOURCE_BITS = 16
#: numeric slack so a ratio equal to the bound is not flagged by float rounding
BOUND_SLACK = 1e-9
#: a cosine this close to 1 is (numerically) lossless: judged against the lossless limit
LOSSLESS_COS = 1 - 1e-9
#: lossless coding of fp16 weights: their bit patterns carry well over 8 bits of entropy per
#: weight (sign, exponent and mantissa of trained weights are far from constant), so more
#: than 2x without loss is implausible for weights that are not structured
LOSSLESS_RATIO_LIMIT = 2.0
#: statuses that make a claim fail a gate and an audit
FAILING = frozenset({"implausible", "contradictory"})


def bound_bits(cos: float) -> float:
    """Fewest bits per weight that reach cosine `cos` for Gaussian weights (inf at |c| ≥ 1)."""
    c = abs(cos)
    if c >= 1.0:
        return math.inf
    return 0.5 * math.log2(1.0 / (1.0 - c * c))


def bound_ratio(cos: float, source_bits: int = SOURCE_BITS) -> float | None:
    """Largest ratio vs `source_bits` that can reach `cos`; None where no finite bound applies
    (c = 0 needs no bits; |c| ≥ 1 is lossless, outside a Gaussian-distortion reference)."""
    bits = bound_bits(cos)
    if bits == 0.0 or math.isinf(bits):
        return None
    return source_bits / bits


@dataclass
class Physics:
    """The rate-distortion check of one claim."""

    status: str  # within-bound | implausible | contradictory | structured | not-applicable
    ratio: float | None = None
    cos: float | None = None
    bound_ratio: float | None = None
    bound_bits: float | None = None
    note: str = ""


STRUCTURED_KEYS = ("structured", "synthetic")


def structured_marker(entry: Entry) -> str | None:
    """Where the evidence says its data is structured/synthetic (None if it does not)."""
    pred = predicate_of(entry).raw  # the marker may sit in any block a runner writes
    places: list[tuple[str, Any]] = [
        ("rate_distortion", pred.get("rate_distortion")),
        ("environment", pred.get("environment")),
        ("data", pred.get("data")),
    ]
    doc = pred.get("document")
    if isinstance(doc, dict):
        places += [("document.env", doc.get("env")), ("document", doc)]
    for where, block in places:
        if not isinstance(block, dict):
            continue
        for key in STRUCTURED_KEYS:
            if block.get(key) is True:
                return f"{where}.{key} = true"
        for key in ("data", "data_kind", "source_kind"):
            value = block.get(key)
            if isinstance(value, str) and value.lower() in STRUCTURED_KEYS:
                return f"{where}.{key} = {value!r}"
    return None


def physics_of(entry: Entry) -> Physics:
    """The rate-distortion check of one claim."""
    m = metrics_of(entry)
    ratio, cos = m.get("ratio_fp16_effective"), m.get("cos_min")
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (ratio, cos)):
        return Physics("not-applicable", note="")
    ratio, cos = float(ratio), float(cos)  # type: ignore[arg-type]
    mean = m.get("cos_mean")
    if isinstance(mean, int | float) and not isinstance(mean, bool) and cos > float(mean) + 1e-12:
        return Physics(
            "contradictory",
            ratio,
            cos,
            note=f"cos_min {cos:g} exceeds cos_mean {float(mean):g}: the figures contradict "
            "each other",
        )
    if cos >= LOSSLESS_COS:
        return _lossless(entry, ratio, cos)
    bits = bound_bits(cos)
    bound = bound_ratio(cos)
    physics = Physics(
        "within-bound", ratio, cos, bound, None if math.isinf(bits) else bits, note=""
    )
    if bound is None:
        physics.status = "not-applicable"
        physics.note = f"cos {cos:g}: the Gaussian bound gives no finite ratio to compare with"
        return physics
    if ratio <= bound * (1 + BOUND_SLACK):
        return physics
    excess = f"ratio {ratio:g} at cos {cos:g} exceeds the Gaussian bound {bound:.3f}x"
    marker = structured_marker(entry)
    if marker:
        physics.status = "structured"
        physics.note = f"{excess}; the evidence marks its data as structured ({marker})"
    else:
        physics.status = "implausible"
        physics.note = f"{excess} ({bits:.3f} bits/weight needed); implausible"
    return physics


def _lossless(entry: Entry, ratio: float, cos: float) -> Physics:
    """A (numerically) lossless claim, judged against the lossless limit for fp16 weights."""
    physics = Physics("within-bound", ratio, cos, LOSSLESS_RATIO_LIMIT, None)
    if ratio <= LOSSLESS_RATIO_LIMIT:
        return physics
    excess = (
        f"ratio {ratio:g} at cos {cos:g} (lossless) exceeds the lossless limit "
        f"{LOSSLESS_RATIO_LIMIT:g}x for fp16 weights"
    )
    marker = structured_marker(entry)
    if marker:
        physics.status, physics.note = "structured", f"{excess}; marked structured ({marker})"
    else:
        physics.status, physics.note = "implausible", f"{excess}; implausible"
    return physics
