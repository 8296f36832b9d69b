"""Audit: every claim against its reproductions, corroborating evidence by other keys, and the
Gaussian rate-distortion bound.

`audit_ledger(ledger) -> AuditReport` is pure (reads only); the CLI, the TUI and `report` use it.
A claim is runner or legacy evidence, ours or imported. Its verdict is `reproduced` (every check
within tolerance), `diverged` (some metric out of tolerance, or a parameter changed) or
`unreproduced`; its physics is `implausible` when its ratio at its cosine beats the bound
(ratio ≤ 16 / R(c), R(c) = ½·log2(1/(1−c²)) bits per weight) and nothing marks the data as
structured or synthetic.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

import schemas
from ledger.chain import Entry
from ledger.evidence import evidence_statement, is_legacy, predicate_of, runner_of
from ledger.ratedistortion import FAILING, Physics, physics_of, settle, structured_marker
from ledger.reproduce import Tolerance, compare_metrics
from ledger.statement import Import, Reproduction, RunnerEvidence
from ledger.textsafe import md_cell, md_code, md_text
from ledger.view import TrustAnchor, VerifiedView, verified_view

REPRODUCTION_TYPE = schemas.predicate_type("reproduction")


@dataclass
class MetricDelta:
    """One metric out of tolerance: claimed, reproduced, their difference and the slack."""

    metric: str
    claim: Any
    reproduced: Any
    delta: float | None
    tolerance: float


@dataclass
class Check:
    """One reproduction (or corroborating claim by another key) of a claim."""

    seq: int
    digest: str
    source: str  # reproduction | imported reproduction | corroborating evidence
    signer: str
    origin: str | None
    verdict: str  # reproduced | diverged
    diverged: list[MetricDelta] = field(default_factory=list)
    metrics_compared: int = 0


@dataclass
class ClaimAudit:
    """The audit of one claim."""

    seq: int
    digest: str
    kind: str
    runner: str | None
    predicate_type: str
    signer: str
    origin: str | None
    legacy: bool
    verdict: str  # reproduced | diverged | unreproduced
    physics: Physics
    checks: list[Check] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """True if the claim is diverged, implausible, contradictory, or above the Gaussian
        reference with neither a data-dependent bound nor a reproduction by another key."""
        return self.verdict == "diverged" or self.physics.status in FAILING

    @property
    def diverged(self) -> list[MetricDelta]:
        """Every out-of-tolerance metric over all checks."""
        return [d for c in self.checks for d in c.diverged]


@dataclass
class AuditReport:
    """All claims of a ledger, audited."""

    claims: list[ClaimAudit] = field(default_factory=list)
    trust: dict[str, Any] = field(default_factory=dict)
    """The verified view's trust block: only verified entries were audited."""
    trust_line: str = ""

    @property
    def ok(self) -> bool:
        """True if no claim is diverged or implausible and nothing was excluded."""
        return not any(c.failed for c in self.claims) and self.trust.get("ok", True)

    def counts(self) -> dict[str, int]:
        """Number of claims per verdict, plus implausible and structured."""
        out = {"claims": len(self.claims), "reproduced": 0, "diverged": 0, "unreproduced": 0}
        for c in self.claims:
            out[c.verdict] += 1
        out["implausible"] = sum(c.physics.status == "implausible" for c in self.claims)
        out["contradictory"] = sum(c.physics.status == "contradictory" for c in self.claims)
        out["structured"] = sum(c.physics.status == "structured" for c in self.claims)
        for status in ("needs-reproduction", "within-data-bound"):
            out[status] = sum(c.physics.status == status for c in self.claims)
        return out

    def to_json(self) -> dict[str, Any]:
        """The `audit --json` document."""
        return {
            "ok": self.ok,
            "trust": self.trust,
            "summary": self.counts(),
            "claims": [{**asdict(c), "failed": c.failed} for c in self.claims],
        }

    def to_markdown(self) -> str:
        """The `audit --md` document."""
        lines = [
            "# Audit",
            "",
            "| seq | runner | signer | verdict | checks | physics | ratio | cos | bound | digest |",
            "|---:|---|---|---|---:|---|---:|---:|---:|---|",
        ]
        for c in self.claims:  # every string from an entry goes through md_cell
            p = c.physics
            lines.append(
                f"| {c.seq} | {md_cell(c.runner or '')} | {md_cell(c.signer[:12])} | "
                f"{md_cell(verdict_text(c))} | {len(c.checks)} | {md_cell(p.status)} | "
                f"{_fmt(p.ratio)} | {_fmt(p.cos, 6)} | {_fmt(p.bound_ratio)} | "
                f"{md_code(c.digest[:19])} |"
            )
        notes = [f"- seq {c.seq}: {md_text(c.physics.note)}" for c in self.claims if c.physics.note]
        if notes:
            lines += [
                "",
                "Physics notes (Gaussian reference 16 / R(c); data-dependent bound where "
                "recorded, see docs/physics.md):",
                "",
                *notes,
            ]
        counts = self.counts()
        lines += [
            "",
            f"{counts['claims']} claims: {counts['reproduced']} reproduced, "
            f"{counts['diverged']} diverged, {counts['unreproduced']} unreproduced, "
            f"{counts['implausible']} implausible, {counts['needs-reproduction']} needing "
            f"reproduction. Overall: {'OK' if self.ok else 'FAILED'}.",
        ]
        return "\n".join(lines) + "\n"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "" if value is None else f"{value:.{digits}f}"


def verdict_text(claim: ClaimAudit) -> str:
    """The verdict, with the worst diverged metric and by how much."""
    if claim.verdict != "diverged":
        return claim.verdict
    parts = []
    for d in claim.diverged[:3]:
        by = f"{d.delta:+.6g}" if d.delta is not None else f"{d.claim!r}→{d.reproduced!r}"
        parts.append(f"{d.metric} {by}")
    return "diverged (" + ", ".join(parts) + ")"


# ----------------------------------------------------------------------------- helpers


def _is_reproduction(entry: Entry) -> bool:
    return isinstance(predicate_of(entry), Reproduction)


def _is_claim(entry: Entry) -> bool:
    if entry.kind not in ("evidence", "import") or _is_reproduction(entry):
        return False
    pred = entry.predicate
    if isinstance(pred, Import) and pred.source_kind not in (None, "evidence", "import"):
        return False
    return runner_of(entry) is not None


def _signer(entry: Entry) -> str:
    """The key that made the evidence: the verified foreign signer for imports (the view
    re-checked that signature), else the key whose signature on the entry verified."""
    pred = entry.predicate
    if isinstance(pred, Import):
        return pred.signer or ""
    return entry.signer or ""


def _origin(entry: Entry) -> str | None:
    pred = entry.predicate
    return pred.origin if isinstance(pred, Import) else None


def _identities(entry: Entry) -> set[str]:
    """Digests a reproduction may use to point at this claim."""
    ids = {entry.digest}
    pred = entry.predicate
    if isinstance(pred, Import) and pred.source_digest:
        ids.add(pred.source_digest)
    return ids


def _targets(rep: Entry) -> set[str]:
    """Digests a reproduction points at (its claim, and the claim's origin if imported)."""
    pred = predicate_of(rep)
    claim = pred.claim if isinstance(pred, Reproduction) else None
    return claim.digests if claim is not None else set()


def _raw_metrics(entry: Entry) -> dict[str, Any]:
    pred = predicate_of(entry)
    return dict(pred.raw_metrics) if isinstance(pred, RunnerEvidence) else dict(pred.metrics)


def _check(claim: Entry, other: Entry, source: str, recorded: dict[str, Any]) -> Check:
    """Compare a claim with a reproduction (or another claim) metric by metric."""
    overrides: dict[str, Tolerance] = {}
    for name, row in recorded.items():
        if isinstance(row, dict) and isinstance(row.get("tolerance"), int | float):
            overrides[name] = Tolerance(abs=float(row["tolerance"]))
    deltas = compare_metrics(_raw_metrics(claim), _raw_metrics(other), overrides)
    bad = [
        MetricDelta(k, d["claim"], d["reproduced"], d["delta"], d["tolerance"])
        for k, d in deltas.items()
        if not d["ok"]
    ]
    other_pred = predicate_of(other)
    changes = other_pred.param_changes if isinstance(other_pred, Reproduction) else None
    if source != "corroborating evidence" and changes:
        for name, change in sorted(changes.items()):
            if isinstance(change, dict):
                bad.append(
                    MetricDelta(
                        f"param:{name}", change.get("claim"), change.get("reproduced"), None, 0.0
                    )
                )
    return Check(
        other.seq,
        other.digest,
        source,
        _signer(other),
        _origin(other),
        "diverged" if bad else "reproduced",
        bad,
        len(deltas),
    )


def _group_key(entry: Entry) -> tuple[str, str, frozenset[str]] | None:
    """Runner claims that measured the same thing: type, params and model subjects."""
    stmt = evidence_statement(entry)
    pred = stmt.predicate
    if not isinstance(pred, RunnerEvidence) or pred.runner is None or not pred.runner.version:
        return None
    params = json.dumps(dict(pred.params), sort_keys=True, default=str)
    return stmt.predicate_type, params, frozenset(stmt.subject_digests)


# ----------------------------------------------------------------------------- audit


def audit_entries(entries: Iterable[Entry]) -> AuditReport:
    """Audit a sequence of entries (seq order)."""
    claims: list[Entry] = []
    reproductions: list[Entry] = []
    for entry in entries:
        if _is_reproduction(entry):
            reproductions.append(entry)
        elif _is_claim(entry):
            claims.append(entry)
    by_target: dict[str, list[Entry]] = defaultdict(list)
    for rep in reproductions:
        for digest in _targets(rep):
            by_target[digest].append(rep)
    groups: dict[tuple[str, str, frozenset[str]], list[Entry]] = defaultdict(list)
    for claim in claims:
        key = _group_key(claim)
        if key is not None:
            groups[key].append(claim)
    report = AuditReport()
    for claim in claims:
        checks: list[Check] = []
        seen: set[int] = set()
        for digest in sorted(_identities(claim)):
            for rep in by_target.get(digest, []):
                if rep.seq in seen:
                    continue
                seen.add(rep.seq)
                source = "reproduction" if rep.kind == "reproduction" else "imported reproduction"
                rep_pred = predicate_of(rep)
                recorded = dict(rep_pred.deltas) if isinstance(rep_pred, Reproduction) else {}
                checks.append(_check(claim, rep, source, recorded))
        key = _group_key(claim)
        signer = _signer(claim)
        for other in groups.get(key, []) if key else []:
            if other.seq != claim.seq and _signer(other) != signer:
                checks.append(_check(claim, other, "corroborating evidence", {}))
        if any(c.verdict == "diverged" for c in checks):
            verdict = "diverged"
        elif checks:
            verdict = "reproduced"
        else:
            verdict = "unreproduced"
        stmt = evidence_statement(claim)
        report.claims.append(
            ClaimAudit(
                seq=claim.seq,
                digest=claim.digest,
                kind=claim.kind,
                runner=runner_of(claim),
                predicate_type=stmt.predicate_type,
                signer=signer,
                origin=_origin(claim),
                legacy=is_legacy(claim),
                verdict=verdict,
                physics=settle(physics_of(claim), claim, reproductions),
                checks=sorted(checks, key=lambda c: c.seq),
            )
        )
    return report


def audit_view(view: VerifiedView) -> AuditReport:
    """Audit the verified entries of a view (excluded ones are neither claims nor checks)."""
    report = audit_entries(view.entries)
    report.trust, report.trust_line = view.trust_json(), view.trust_line()
    return report


def audit_ledger(ledger: Any, rev: str = "HEAD", anchor: TrustAnchor | None = None) -> AuditReport:
    """Verify the ledger at `rev` and audit every verified claim (reads only)."""
    return audit_view(verified_view(ledger, anchor, rev=rev))


__all__ = [
    "AuditReport",
    "Check",
    "ClaimAudit",
    "MetricDelta",
    "Physics",
    "audit_entries",
    "audit_ledger",
    "audit_view",
    "physics_of",
    "structured_marker",
    "verdict_text",
]
