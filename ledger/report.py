"""The snapshot's results table regenerated from the ledger, plus a ratio-vs-cos_min Pareto plot."""

from __future__ import annotations

import importlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ledger.chain import Entry
from ledger.evidence import fmt_metric, is_compression_claim, is_legacy, metrics_of, runner_of
from ledger.gate import (
    ClaimResult,
    GateResult,
    Policy,
    evaluate,
    evaluate_view,
    resolve_policy,
)
from ledger.ratedistortion import bound_ratio
from ledger.statement import Reproduction
from ledger.view import TrustAnchor, VerifiedView, verified_view


@dataclass
class ReportRow:
    """One claim of the policy with its best evidence."""

    id: str
    title: str
    required: bool
    state: str
    figures: dict[str, Any]
    seq: int | None
    digest: str | None
    runner: str | None
    reproduced: str
    physics: str = ""  # from ledger.audit: within-bound | implausible | structured | ...
    bound_ratio: float | None = None
    above_bound: bool = False
    reasons: list[str] = field(default_factory=list)


@dataclass
class ParetoPoint:
    """A compression claim: ratio vs fp16 at its minimum cosine."""

    seq: int
    digest: str
    runner: str | None
    ratio: float
    cos_min: float
    kind: str


@dataclass
class Report:
    """Everything the report shows; rendering is separate."""

    policy: str
    outcome: str
    entries: int
    tip_seq: int | None
    tip_digest: str | None
    rows: list[ReportRow]
    points: list[ParetoPoint]
    notes: list[str] = field(default_factory=list)
    trust_line: str = ""
    """The verified view's trust line (anchor, N of M verified, exclusions)."""
    trust: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)


def _reproductions(entries: list[Entry]) -> dict[str, list[tuple[int, str]]]:
    """claim digest -> [(seq, verdict)] of reproduction entries pointing at it."""
    out: dict[str, list[tuple[int, str]]] = {}
    for e in entries:
        pred = e.predicate
        if e.kind == "reproduction" and isinstance(pred, Reproduction) and pred.claim:
            if pred.claim.digest:
                out.setdefault(pred.claim.digest, []).append((e.seq, pred.verdict or "unknown"))
    return out


def _audited(entries: list[Entry]) -> dict[str, Any] | None:
    """digest -> ClaimAudit from `ledger.audit`, or None if that module is unavailable."""
    try:
        audit = importlib.import_module("ledger.audit")
    except ImportError:
        return None
    return {c.digest: c for c in audit.audit_entries(entries).claims}


def _audit_text(claim_audit: Any) -> tuple[str, str]:
    """(reproduced cell, physics status) from a ledger.audit ClaimAudit."""
    audit = importlib.import_module("ledger.audit")
    text = str(audit.verdict_text(claim_audit))
    seqs = [str(c.seq) for c in getattr(claim_audit, "checks", [])]
    if seqs:
        text += f" (seq {', '.join(seqs)})"
    if getattr(claim_audit, "legacy", False) and claim_audit.verdict == "unreproduced":
        text += " (legacy)"
    return text, str(claim_audit.physics.status)


def _reproduced(
    claim: ClaimResult, by_digest: dict[str, Entry], repros: dict[str, list[tuple[int, str]]]
) -> str:
    """Fallback when ledger.audit is unavailable: the latest reproduction entry's verdict."""
    if claim.source is None:
        return "-"
    found = repros.get(claim.source.digest)
    if found:
        seq, verdict = found[-1]
        return f"{verdict} (seq {seq})"
    entry = by_digest.get(claim.source.digest)
    if entry is not None and is_legacy(entry):
        return "n/a (legacy)"
    return "unreproduced"


def _figures(claim: ClaimResult) -> dict[str, Any]:
    figs = {c.metric: c.observed for c in claim.checks}
    for key in ("ratio_fp16_effective", "cos_min", "out_cos"):
        if key in claim.metrics and key not in figs:
            figs[key] = claim.metrics[key]
    return figs


def build_report(entries: list[Entry], policy: Policy, gate: GateResult | None = None) -> Report:
    """Evaluate `policy` over `entries` (verified ones: see `report_for_view`) and collect the
    table rows and Pareto points."""
    gate = gate or evaluate(policy, entries)
    by_digest = {e.digest: e for e in entries}
    repros = _reproductions(entries)
    audited = _audited(entries)
    rows = []
    for c in gate.claims:
        figs = _figures(c)
        ratio, cos = c.metrics.get("ratio_fp16_effective"), c.metrics.get("cos_min")
        bound = None
        above = False
        if isinstance(cos, float | int) and not isinstance(cos, bool):
            bound = bound_ratio(float(cos))
            if bound is not None and isinstance(ratio, int | float) and not isinstance(ratio, bool):
                above = float(ratio) > bound
        reproduced, physics = _reproduced(c, by_digest, repros), ""
        if audited is not None and c.source is not None and c.source.digest in audited:
            reproduced, physics = _audit_text(audited[c.source.digest])
        rows.append(
            ReportRow(
                id=c.id,
                title=c.title,
                required=c.required,
                state=c.state,
                figures=figs,
                seq=c.source.seq if c.source else None,
                digest=c.source.digest if c.source else None,
                runner=c.source.runner if c.source else None,
                reproduced=reproduced,
                physics=physics,
                bound_ratio=bound,
                above_bound=above,
                reasons=c.reasons(),
            )
        )
    points = []
    for e in entries:
        if e.kind in ("evidence", "import") and is_compression_claim(e):
            m = metrics_of(e)
            points.append(
                ParetoPoint(
                    e.seq,
                    e.digest,
                    runner_of(e),
                    float(m["ratio_fp16_effective"]),
                    float(m["cos_min"]),
                    e.kind,
                )
            )
    tip = entries[-1] if entries else None
    notes = [
        "only entries that verify count (signatures, chain, schema, trust at each seq)",
        "reproduced: "
        + (
            "`evledger audit` verdicts"
            if audited is not None
            else "latest reproduction entry (ledger.audit unavailable)"
        ),
        "bound = Gaussian rate-distortion limit on the ratio vs fp16 at the claim's cos_min:"
        " 16 / (½·log2(1/(1−c²)))",
    ]
    return Report(
        policy=gate.policy,
        outcome=gate.outcome,
        entries=gate.entries,
        tip_seq=tip.seq if tip else None,
        tip_digest=tip.digest if tip else None,
        rows=rows,
        points=points,
        notes=notes,
    )


def report_for_view(view: VerifiedView, policy: Policy) -> Report:
    """The report of a verified view under a policy (excluded entries never count)."""
    report = build_report(view.entries, policy, evaluate_view(view, policy))
    report.trust_line, report.trust = view.trust_line(), view.trust_json()
    report.notes.insert(0, f"policy: {policy.source}")
    return report


def report_for_ledger(
    ledger: Any, policy_spec: str | None = None, anchor: TrustAnchor | None = None
) -> Report:
    """Verify the ledger and report under a policy (default v37)."""
    view = verified_view(ledger, anchor)
    return report_for_view(view, resolve_policy(policy_spec, view, ledger=ledger))


# --------------------------------------------------------------------------- rendering
def _fmt(value: Any) -> str:
    return fmt_metric(value, missing="-")


def _figures_text(figs: dict[str, Any]) -> str:
    short = {"ratio_fp16_effective": "ratio", "determinism_delta": "det_delta"}
    parts = []
    for k, v in figs.items():
        suffix = (
            "x" if k.startswith("ratio") and isinstance(v, float | int) and v is not None else ""
        )
        parts.append(f"{short.get(k, k)} {_fmt(v)}{suffix if not isinstance(v, bool) else ''}")
    return ", ".join(parts)


STATE = {"pass": "PASS", "fail": "**FAIL**", "missing": "MISSING"}


def to_markdown(report: Report, *, plot: str | None = None) -> str:
    """The Markdown report (README results section); `plot` is the SVG's relative path."""
    tip = (
        f"seq {report.tip_seq}, `{report.tip_digest[:23]}`"
        if report.tip_digest is not None
        else "empty ledger"
    )
    blocking = [r for r in report.rows if r.required and r.state != "pass"]
    lines = [
        f"## Results (policy `{report.policy}`: **{report.outcome}**)",
        "",
        *([f"_{report.trust_line.replace('|', '/')}_", ""] if report.trust_line else []),
        f"Regenerated by `evledger report` from {report.entries} verified evidence "
        f"{'entry' if report.entries == 1 else 'entries'} (tip {tip}).",
        "",
        "| claim | what | required | gate | best evidence | bound | reproduced | entry |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        bound = "-" if r.bound_ratio is None else f"≤ {r.bound_ratio:.3g}x"
        if r.physics in ("implausible", "contradictory", "structured"):
            bound += f" ({r.physics})"
        elif r.above_bound:
            bound += " (above)"
        entry = f"seq {r.seq} `{r.digest[:19]}`" if r.digest else "-"
        figs = _figures_text(r.figures) if r.state != "missing" else "no evidence"
        cells = [
            r.id,
            r.title,
            "yes" if r.required else "no",
            STATE[r.state],
            f"{figs} ({r.runner})" if r.runner else figs,
            bound,
            r.reproduced,
            entry,
        ]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    lines.append("")
    if blocking:
        lines.append(
            f"**{report.outcome}**: "
            + "; ".join(f"{r.id} {r.state} ({', '.join(r.reasons)})" for r in blocking)
        )
        lines.append("")
    if plot:
        lines += [f"![ratio vs cos_min with the Gaussian rate-distortion bound]({plot})", ""]
    lines += [f"- {n}" for n in report.notes]
    return "\n".join(lines) + "\n"


def write_pareto_svg(points: list[ParetoPoint], path: Path) -> Path:
    """Scatter of ratio vs cos_min with the Gaussian bound curve, saved as SVG (matplotlib Agg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    lo = min([p.cos_min for p in points] + [0.9])
    lo = max(0.0, min(lo - 0.01, 0.9))
    xs = [lo + (0.99995 - lo) * i / 400 for i in range(401)]
    bound = [bound_ratio(x) for x in xs]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    try:
        ax.plot(
            xs,
            [b if b is not None else float("nan") for b in bound],
            color="grey",
            linestyle="--",
            label="Gaussian R(D) bound: 16 / (½·log2(1/(1−c²)))",
        )
        runners = sorted({p.runner or "?" for p in points})
        for name in runners:
            sel = [p for p in points if (p.runner or "?") == name]
            ax.scatter([p.cos_min for p in sel], [p.ratio for p in sel], label=name, s=28)
            for p in sel:
                ax.annotate(
                    str(p.seq),
                    (p.cos_min, p.ratio),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
        top = max([p.ratio for p in points] + [8.0]) * 1.25
        ax.set_ylim(0, top)
        ax.set_xlim(lo, 1.0)
        ax.set_xlabel("cos_min")
        ax.set_ylabel("ratio vs fp16 (effective)")
        ax.set_title("Compression claims: ratio vs cos_min")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="upper right")
        fig.tight_layout()
        fig.savefig(path, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    return path


__all__ = [
    "ParetoPoint",
    "Report",
    "ReportRow",
    "build_report",
    "report_for_ledger",
    "to_markdown",
    "write_pareto_svg",
]
