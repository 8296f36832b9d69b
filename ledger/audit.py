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
from ledger.evidence import inner_statement, is_legacy, metrics_of, predicate_of, runner_of
from ledger.ratedistortion import Physics, physics_of, settle, structured_marker
from ledger.reproduce import Tolerance, compare_metrics

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
        """True if the claim is diverged, implausible, or above the Gaussian reference with
        neither a data-dependent bound nor a reproduction by another key."""
        return self.verdict == "diverged" or self.physics.status in (
            "implausible",
            "needs-reproduction",
        )

    @property
    def diverged(self) -> list[MetricDelta]:
        """Every out-of-tolerance metric over all checks."""
        return [d for c in self.checks for d in c.diverged]


@dataclass
class AuditReport:
    """All claims of a ledger, audited."""

    claims: list[ClaimAudit] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True if no claim is diverged or implausible."""
        return not any(c.failed for c in self.claims)

    def counts(self) -> dict[str, int]:
        """Number of claims per verdict, plus implausible and structured."""
        out = {"claims": len(self.claims), "reproduced": 0, "diverged": 0, "unreproduced": 0}
        for c in self.claims:
            out[c.verdict] += 1
        out["implausible"] = sum(c.physics.status == "implausible" for c in self.claims)
        out["structured"] = sum(c.physics.status == "structured" for c in self.claims)
        for status in ("needs-reproduction", "within-data-bound"):
            out[status] = sum(c.physics.status == status for c in self.claims)
        return out

    def to_json(self) -> dict[str, Any]:
        """The `audit --json` document."""
        return {
            "ok": self.ok,
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
        for c in self.claims:
            p = c.physics
            lines.append(
                f"| {c.seq} | {c.runner or ''} | {c.signer[:12]} | {verdict_text(c)} | "
                f"{len(c.checks)} | {p.status} | {_fmt(p.ratio)} | {_fmt(p.cos, 6)} | "
                f"{_fmt(p.bound_ratio)} | `{c.digest[:19]}` |"
            )
        notes = [f"- seq {c.seq}: {c.physics.note}" for c in self.claims if c.physics.note]
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


def _statement_of(entry: Entry) -> dict[str, Any]:
    if entry.kind == "import":
        return inner_statement(entry) or {}
    return entry.statement


def _is_reproduction(entry: Entry) -> bool:
    if entry.kind == "reproduction":
        return True
    return entry.kind == "import" and _statement_of(entry).get("predicateType") == REPRODUCTION_TYPE


def _is_claim(entry: Entry) -> bool:
    if entry.kind not in ("evidence", "import") or _is_reproduction(entry):
        return False
    if entry.kind == "import":
        kind = entry.predicate.get("source", {}).get("kind")
        if kind not in (None, "evidence", "import"):
            return False
    return runner_of(entry) is not None


def _signer(entry: Entry) -> str:
    """The key that made the evidence: the foreign signer for imports."""
    if entry.kind == "import":
        keys = entry.predicate.get("foreign_keys")
        if isinstance(keys, list) and keys and isinstance(keys[0], dict):
            return str(keys[0].get("keyid", ""))
        sigs = entry.predicate.get("envelope", {}).get("signatures", [])
        if sigs and isinstance(sigs[0], dict):
            return str(sigs[0].get("keyid", ""))
    return entry.signer_keyids[0] if entry.signer_keyids else ""


def _origin(entry: Entry) -> str | None:
    if entry.kind != "import":
        return None
    origin = entry.predicate.get("source", {}).get("origin")
    return origin if isinstance(origin, str) else None


def _identities(entry: Entry) -> set[str]:
    """Digests a reproduction may use to point at this claim."""
    ids = {entry.digest}
    if entry.kind == "import":
        src = entry.predicate.get("source", {})
        if isinstance(src, dict) and isinstance(src.get("digest"), str):
            ids.add(src["digest"])
    return ids


def _targets(rep: Entry) -> set[str]:
    """Digests a reproduction points at (its claim, and the claim's origin if imported)."""
    claim = predicate_of(rep).get("claim", {})
    out = set()
    if isinstance(claim, dict):
        if isinstance(claim.get("digest"), str):
            out.add(claim["digest"])
        src = claim.get("imported_from")
        if isinstance(src, dict) and isinstance(src.get("digest"), str):
            out.add(src["digest"])
    return out


def _raw_metrics(entry: Entry) -> dict[str, Any]:
    metrics = predicate_of(entry).get("metrics")
    return metrics if isinstance(metrics, dict) else dict(metrics_of(entry))


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
    changes = predicate_of(other).get("param_changes")
    if source != "corroborating evidence" and isinstance(changes, dict):
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
    stmt = _statement_of(entry)
    pred = stmt.get("predicate", {})
    if not isinstance(pred, dict) or not isinstance(pred.get("runner"), dict):
        return None
    subjects = frozenset(
        str(s.get("digest", {}).get("sha256"))
        for s in stmt.get("subject", [])
        if isinstance(s, dict) and isinstance(s.get("digest"), dict)
    )
    params = json.dumps(pred.get("params", {}), sort_keys=True)
    return str(stmt.get("predicateType", "")), params, subjects


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
                recorded = predicate_of(rep).get("deltas", {})
                checks.append(
                    _check(claim, rep, source, recorded if isinstance(recorded, dict) else {})
                )
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
        stmt = _statement_of(claim)
        report.claims.append(
            ClaimAudit(
                seq=claim.seq,
                digest=claim.digest,
                kind=claim.kind,
                runner=runner_of(claim),
                predicate_type=str(stmt.get("predicateType", "")),
                signer=signer,
                origin=_origin(claim),
                legacy=is_legacy(claim),
                verdict=verdict,
                physics=settle(physics_of(claim), claim, reproductions),
                checks=sorted(checks, key=lambda c: c.seq),
            )
        )
    return report


def audit_ledger(ledger: Any, rev: str = "HEAD") -> AuditReport:
    """Audit every claim of a ledger at `rev` (reads only)."""
    return audit_entries(ledger.entries(rev))


__all__ = [
    "AuditReport",
    "Check",
    "ClaimAudit",
    "MetricDelta",
    "Physics",
    "audit_entries",
    "audit_ledger",
    "physics_of",
    "structured_marker",
    "verdict_text",
]
