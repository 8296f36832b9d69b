"""The rate-distortion physics check: a Gaussian *reference* and a data-dependent bound.

For i.i.d. Gaussian weights, reaching cosine c between original and reconstruction needs
R(c) = ½·log2(1/(1−c²)) bits per weight, a ratio of 16 / R(c) against fp16 (≈ 5.66x at 0.99,
≈ 10.3x at 0.94). That is a *reference*, not a limit for real weights: among sources of equal
variance the Gaussian is the hardest to compress, and heavy tails or unequal row/column
scales allow fewer bits (an honest trellis coder beat it on 13 of MiniLM's 37 matrices).

So a claim is judged as follows (`physics_of`):
- at or below the Gaussian reference: `within-bound`, unless it beats a recorded
  data-dependent bound (below) by more than its error: `implausible` (each matrix's bound at
  its own cosine can be tighter than the reference at the claim's cos_min);
- above it, with a data-dependent bound recorded by a runner that had the weights at hand
  (`rate_distortion.data_bound`: the Shannon lower bound under a per-row/column scale
  model, with the entropy estimator's error, see runners/physics.py): `within-data-bound`
  if the ratio does not beat that bound by more than its error, else `implausible`;
- above it without such a bound: `needs-reproduction` (not `implausible`); a verified
  reproduction signed by another key settles it (`settle`);
- evidence that marks its data as structured/synthetic: `structured`;
- figures that contradict each other (cos_min above cos_mean): `contradictory`; a
  (numerically) lossless claim is held against the lossless limit for fp16 weights.
See docs/physics.md for the reasoning and the measured figures.
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
#: statuses that make a claim fail a gate and an audit (needs-reproduction until settled)
FAILING = frozenset({"implausible", "contradictory", "needs-reproduction"})


def bound_bits(cos: float) -> float:
    """Gaussian reference: bits per weight that reach cosine `cos` for i.i.d. Gaussian
    weights (inf at |c| ≥ 1). A reference, not a bound on real weights."""
    c = abs(cos)
    if c >= 1.0:
        return math.inf
    return 0.5 * math.log2(1.0 / (1.0 - c * c))


def bound_ratio(cos: float, source_bits: int = SOURCE_BITS) -> float | None:
    """Gaussian reference ratio vs `source_bits` at `cos`; None where no finite figure applies
    (c = 0 needs no bits; |c| ≥ 1 is lossless, outside a Gaussian-distortion reference)."""
    bits = bound_bits(cos)
    if bits == 0.0 or math.isinf(bits):
        return None
    return source_bits / bits


gaussian_bits = bound_bits
gaussian_ratio = bound_ratio

STATUSES = (
    "within-bound",
    "contradictory",
    "within-data-bound",
    "needs-reproduction",
    "reproduced",
    "implausible",
    "structured",
    "not-applicable",
)


@dataclass
class Physics:
    """The rate-distortion check of one claim (`bound_*` are the Gaussian reference)."""

    status: str  # one of STATUSES
    ratio: float | None = None
    cos: float | None = None
    bound_ratio: float | None = None
    bound_bits: float | None = None
    note: str = ""
    data_bound_ratio: float | None = None  # the data-dependent bound, error allowed for


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


@dataclass(frozen=True)
class DataBound:
    """A data-dependent rate bound recorded with a claim: bits/weight and the estimate's error."""

    bits_per_weight: float
    error_bits: float
    source_bits: int = SOURCE_BITS

    @property
    def ratio(self) -> float:
        """Ratio at the bound itself."""
        return self.source_bits / self.bits_per_weight if self.bits_per_weight > 0 else math.inf

    @property
    def ratio_with_error(self) -> float:
        """Largest ratio that does not beat the bound by more than its error."""
        bits = self.bits_per_weight - self.error_bits
        return self.source_bits / bits if bits > 0 else math.inf


def slb_bits(cos: float, gap_bits: float) -> float:
    """Shannon-lower-bound bits per weight at `cos` for a source `gap_bits` below the Gaussian
    of equal power (gap = h_gauss − h(W) ≥ 0), never below 0."""
    return max(0.0, bound_bits(cos) - max(0.0, gap_bits))


def combine_bounds(parts: list[tuple[int, float, float]]) -> DataBound:
    """One bound for several matrices: (weights, bound bits/weight, error bits) each; bits and
    errors are weight-averaged (errors add: the conservative choice)."""
    n = sum(p[0] for p in parts)
    if n <= 0:
        raise ValueError("no weights")
    bits = sum(p[0] * p[1] for p in parts) / n
    err = sum(p[0] * p[2] for p in parts) / n
    return DataBound(bits, err)


def data_bound_of(entry: Entry) -> DataBound | None:
    """The data-dependent bound the evidence records (rate_distortion.data_bound), if sound."""
    rd = predicate_of(entry).raw.get("rate_distortion")
    block = rd.get("data_bound") if isinstance(rd, dict) else None
    if not isinstance(block, dict):
        return None
    bits, err = block.get("bits_per_weight"), block.get("error_bits")
    nums = (bits, err)
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in nums):
        return None
    if not (math.isfinite(bits) and math.isfinite(err)) or bits < 0 or err < 0:  # type: ignore[arg-type]
        return None
    return DataBound(float(bits), float(err))  # type: ignore[arg-type]


def physics_of(entry: Entry) -> Physics:
    """The rate-distortion check of one claim (see the module docstring)."""
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
        physics.note = f"cos {cos:g}: the Gaussian reference gives no finite ratio to compare with"
        return physics
    if ratio <= bound * (1 + BOUND_SLACK):
        data = data_bound_of(entry)
        if data is not None and ratio > data.ratio_with_error * (1 + BOUND_SLACK):
            # each matrix's bound at its own cos can be tighter than the reference at cos_min
            physics.status = "implausible"
            physics.data_bound_ratio = data.ratio_with_error
            physics.note = (
                f"ratio {ratio:g} beats the data-dependent bound of its own weights "
                f"{data.ratio:.3f}x ({data.bits_per_weight:.3f} bits/weight) by more than its "
                f"error ({data.error_bits:.3f} bits, up to {data.ratio_with_error:.3f}x); "
                "implausible"
            )
        return physics
    excess = f"ratio {ratio:g} at cos {cos:g} is above the Gaussian reference {bound:.3f}x"
    marker = structured_marker(entry)
    data = data_bound_of(entry)
    if marker:
        physics.status = "structured"
        physics.note = f"{excess}; the evidence marks its data as structured ({marker})"
    elif data is not None:
        limit = data.ratio_with_error
        physics.data_bound_ratio = limit
        if ratio <= limit * (1 + BOUND_SLACK):
            physics.status = "within-data-bound"
            physics.note = (
                f"{excess}, within the data-dependent bound {data.ratio:.3f}x "
                f"({data.bits_per_weight:.3f} ± {data.error_bits:.3f} bits/weight)"
            )
        else:
            physics.status = "implausible"
            physics.note = (
                f"{excess} and beats the data-dependent bound {data.ratio:.3f}x "
                f"({data.bits_per_weight:.3f} bits/weight) by more than its error "
                f"({data.error_bits:.3f} bits, up to {limit:.3f}x); implausible"
            )
    else:
        physics.status = "needs-reproduction"
        physics.note = (
            f"{excess} ({bits:.3f} bits/weight) and records no data-dependent bound: "
            "needs a verified reproduction from another key"
        )
    return physics


def settle(physics: Physics, claim: Entry, entries: list[Entry]) -> Physics:
    """A `needs-reproduction` claim becomes `reproduced` when one of `entries` (which the
    caller has verified) is a `reproduction` of it with verdict reproduced, signed by no key
    that signed the claim; if that reproduction records a data-dependent bound, it is
    judged against that bound instead."""
    if physics.status != "needs-reproduction":
        return physics
    own = set(claim.signer_keyids)
    for e in entries:
        if e.kind != "reproduction":
            continue
        pred = predicate_of(e).raw
        ref = pred.get("claim")
        if not isinstance(ref, dict) or ref.get("digest") != claim.digest:
            continue
        if pred.get("verdict") != "reproduced" or own & set(e.signer_keyids):
            continue
        again = physics_of(e)
        if again.status in ("implausible",):
            return again
        return Physics(
            "reproduced",
            physics.ratio,
            physics.cos,
            physics.bound_ratio,
            physics.bound_bits,
            f"{physics.note.split(' and records')[0]}; reproduced by seq {e.seq} (another key)",
            again.data_bound_ratio,
        )
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
