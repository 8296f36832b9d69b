"""Re-run a claim's runner with its recorded params on the same subject; record per-metric deltas.

The tolerance table lives here (`DEFAULT_TOLERANCES`, `tolerance_for`): deterministic runner
metrics must match exactly; process-dependent metrics (peak RSS, wall time) get a relative slack.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import schemas
from ledger.api import Ledger, Prepared
from ledger.chain import Entry
from ledger.envelope import STATEMENT_TYPE
from ledger.errors import InputError, UsageError
from ledger.statement import Import, RunnerEvidence, Statement
from ledger.verify import Report as VerifyReport
from ledger.view import TrustAnchor

REPRODUCTION_TYPE = schemas.predicate_type("reproduction")


@dataclass(frozen=True)
class Tolerance:
    """How far a reproduced metric may be from the claim: max(abs, rel·|claim|)."""

    abs: float = 0.0
    rel: float = 0.0

    def allowed(self, claim: float) -> float:
        """The absolute slack for a claimed value."""
        return max(self.abs, self.rel * abs(claim))


#: metric name -> tolerance; everything not listed (and not matched by the patterns) is exact
DEFAULT_TOLERANCES: dict[str, Tolerance] = {
    "peak_rss_mb": Tolerance(rel=0.10),
    "peak_rss_bytes": Tolerance(rel=0.10),
    "rss_ratio": Tolerance(rel=0.10),
}
#: (pattern, tolerance) for process-dependent metrics not named above, first match wins
PATTERN_TOLERANCES: tuple[tuple[re.Pattern[str], Tolerance], ...] = (
    (re.compile(r"(^|_)rss(_|$)"), Tolerance(rel=0.10)),
    (
        re.compile(r"(^|_)(wall|time|elapsed|seconds|secs|ms|throughput|per_s)(_|$)"),
        Tolerance(rel=0.50),
    ),
    (re.compile(r"_s$"), Tolerance(rel=0.50)),
)
EXACT = Tolerance()


def tolerance_for(metric: str, overrides: Mapping[str, Tolerance] | None = None) -> Tolerance:
    """The tolerance for one metric: user override, the table, a pattern, else exact."""
    if overrides and metric in overrides:
        return overrides[metric]
    if metric in DEFAULT_TOLERANCES:
        return DEFAULT_TOLERANCES[metric]
    for pattern, tol in PATTERN_TOLERANCES:
        if pattern.search(metric):
            return tol
    return EXACT


def parse_tolerance(text: str) -> tuple[str, Tolerance]:
    """`METRIC=X` (absolute) or `METRIC=X%` (relative to the claimed value)."""
    name, sep, value = text.partition("=")
    name, value = name.strip(), value.strip()
    if not sep or not name or not value:
        raise UsageError(f"--tolerance {text!r}: use METRIC=X or METRIC=X%")
    rel = value.endswith("%")
    try:
        number = float(value[:-1] if rel else value)
    except ValueError as e:
        raise UsageError(f"--tolerance {text!r}: {value!r} is not a number") from e
    if not math.isfinite(number) or number < 0:
        raise UsageError(f"--tolerance {text!r}: must be a finite number >= 0")
    return name, Tolerance(rel=number / 100) if rel else Tolerance(abs=number)


def _num(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    return None


def compare_metrics(
    claim: Mapping[str, Any],
    reproduced: Mapping[str, Any],
    overrides: Mapping[str, Tolerance] | None = None,
) -> dict[str, dict[str, Any]]:
    """Per claimed metric: {claim, reproduced, delta, tolerance[, tolerance_rel], ok}."""
    out: dict[str, dict[str, Any]] = {}
    for name in sorted(claim):
        c, r = claim[name], reproduced.get(name)
        tol = tolerance_for(name, overrides)
        cn, rn = _num(c), _num(r)
        row: dict[str, Any] = {"claim": c, "reproduced": r}
        if cn is not None and rn is not None:
            allowed = tol.allowed(cn)
            delta = rn - cn
            row.update(delta=delta, tolerance=allowed, ok=abs(delta) <= allowed)
        else:
            row.update(delta=None, tolerance=0.0, ok=name in reproduced and c == r)
        if tol.rel:
            row["tolerance_rel"] = tol.rel
        out[name] = row
    return out


def claim_statement(entry: Entry) -> Statement:
    """The statement a claim makes: the entry's own, or the foreign one inside an import."""
    pred = entry.predicate
    if isinstance(pred, Import):
        inner = pred.inner
        if inner is None:
            raise UsageError(f"seq {entry.seq}: the imported envelope is unreadable")
        return inner
    return entry.statement


def claim_ref(entry: Entry) -> dict[str, Any]:
    """The `claim` block of a reproduction pointing at `entry` (and its origin, if imported)."""
    ref: dict[str, Any] = {
        "seq": entry.seq,
        "digest": entry.digest,
        "predicate_type": claim_statement(entry).predicate_type,
    }
    pred = entry.predicate
    if isinstance(pred, Import) and pred.source_digest:
        src = pred.source
        ref["imported_from"] = {k: src[k] for k in ("origin", "seq", "digest") if k in src}
    return ref


@dataclass
class Reproduction:
    """The outcome of `reproduce`: the appended entry and its predicate's figures."""

    entry: Entry
    claim: Entry
    verdict: str
    deltas: dict[str, dict[str, Any]]
    param_changes: dict[str, dict[str, Any]]

    def to_json(self) -> dict[str, Any]:
        """The `reproduce --json` document."""
        failing = {k: v for k, v in self.deltas.items() if not v["ok"]}
        return {
            "seq": self.entry.seq,
            "digest": self.entry.digest,
            "claim": {"seq": self.claim.seq, "digest": self.claim.digest},
            "verdict": self.verdict,
            "deltas": self.deltas,
            "diverged": failing,
            "param_changes": self.param_changes,
        }


def build_reproduction(
    claim_entry: Entry,
    rerun: dict[str, Any],
    tolerances: Mapping[str, Tolerance] | None = None,
) -> tuple[dict[str, Any], dict[str, dict[str, Any]], dict[str, dict[str, Any]], str]:
    """The reproduction statement from a claim entry and a re-run statement (pure)."""
    claim = claim_statement(claim_entry)
    cpred = claim.predicate
    claimed = cpred.raw_metrics if isinstance(cpred, RunnerEvidence) else cpred.metrics
    rpred = {k: v for k, v in rerun["predicate"].items() if k != "ledger"}
    deltas = compare_metrics(claimed, rpred.get("metrics", {}), tolerances)
    cparams = dict(cpred.params) if isinstance(cpred, RunnerEvidence) else {}
    rparams = rpred.get("params", {})
    changes = {
        k: {"claim": cparams.get(k), "reproduced": rparams.get(k)}
        for k in sorted(cparams)
        if cparams.get(k) != rparams.get(k)
    }
    ok = all(d["ok"] for d in deltas.values()) and not changes
    verdict = "reproduced" if ok else "diverged"
    predicate = {
        **rpred,
        "claim": claim_ref(claim_entry),
        "deltas": deltas,
        "param_changes": changes,
        "verdict": verdict,
    }
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [s.to_dict() for s in claim.subject or claim_entry.subjects],
        "predicateType": REPRODUCTION_TYPE,
        "predicate": predicate,
    }
    return statement, deltas, changes, verdict


class Rerunner(Protocol):
    """Re-runs claims; supplied by the composition root (`evledger`), which knows the runners."""

    def version(self, runner: str) -> str:
        """The version of `runner` this installation would run (UsageError if unknown)."""
        ...

    def rerun(
        self,
        claim: Entry,
        *,
        model_path: Path | None = None,
        params: Mapping[str, Any] | None = None,
        repeat: int = 2,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> dict[str, Any]:
        """A fresh statement from re-running the claim's runner with its recorded params."""
        ...


def recheck_claims(
    ledger: Ledger,
    report: VerifyReport,
    *,
    rerunner: Rerunner,
    model_path: Path | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> None:
    """`verify --reproduce`: re-run every runner claim (appending nothing); a claim that
    diverges is a `not-reproduced` problem, one that cannot be re-run here (another runner
    version, its model file missing) is listed as skipped with the reason."""
    claims = [
        e
        for e in ledger.view().entries
        if e.kind == "evidence" and isinstance(e.predicate, RunnerEvidence) and e.predicate.runner
    ]
    done, skipped = 0, []
    for entry in claims:
        if progress:
            progress(f"re-running seq {entry.seq}", done, len(claims))
        made_with = entry.predicate.runner
        assert made_with is not None
        try:
            current = rerunner.version(made_with.name)
        except (UsageError, ValueError) as e:
            skipped.append({"seq": entry.seq, "reason": str(e)})
            continue
        if made_with.version != current:
            reason = f"made with {made_with.name} {made_with.version}; "
            skipped.append({"seq": entry.seq, "reason": reason + f"this evledger runs {current}"})
            continue
        try:
            rerun = rerunner.rerun(entry, model_path=model_path)
        except (UsageError, InputError) as e:
            skipped.append({"seq": entry.seq, "reason": str(e)})
            continue
        _, deltas, changes, verdict = build_reproduction(entry, rerun)
        done += 1
        if verdict != "reproduced":
            off = [
                f"{m} {d['claim']} → {d['reproduced']}" for m, d in deltas.items() if not d["ok"]
            ]
            off += [f"param {k} changed" for k in changes]
            report.add(entry.seq, "not-reproduced", "; ".join(off) or "diverged")
    report.reproduced = {"claims": len(claims), "rerun": done, "skipped": skipped}


def reproduce(
    ledger: Ledger,
    ref: str,
    *,
    rerunner: Rerunner,
    model_path: Path | None = None,
    tolerances: Mapping[str, Tolerance] | None = None,
    params: Mapping[str, Any] | None = None,
    repeat: int = 2,
    key_name: str | None = None,
    progress: Callable[[str, int, int], None] | None = None,
    anchor: TrustAnchor | None = None,
) -> Reproduction:
    """Re-run claim `ref` and append a `reproduction` entry with per-metric deltas (only a
    claim that verifies under `anchor` is re-run)."""
    claim_entry = ledger.view(anchor).resolve(ref)
    if claim_entry.kind not in ("evidence", "import"):
        raise UsageError(f"seq {claim_entry.seq} is a {claim_entry.kind} entry, not a claim")
    rerun = rerunner.rerun(
        claim_entry, model_path=model_path, params=params, repeat=repeat, progress=progress
    )
    statement, deltas, changes, verdict = build_reproduction(claim_entry, rerun, tolerances)
    rel = schemas.predicate_schema_path(REPRODUCTION_TYPE)
    assert rel is not None
    probe = {**statement["predicate"], "ledger": {}}
    if errs := schemas.errors(rel, probe):
        raise InputError(f"reproduction does not match its schema: {errs[0]}")
    [entry] = ledger.append_prepared(
        [Prepared(statement, "reproduction", f"reproduce {claim_entry.digest}")], key_name=key_name
    )
    return Reproduction(entry, claim_entry, verdict, deltas, changes)


__all__ = [
    "DEFAULT_TOLERANCES",
    "Reproduction",
    "Rerunner",
    "Tolerance",
    "build_reproduction",
    "compare_metrics",
    "parse_tolerance",
    "reproduce",
    "tolerance_for",
]
