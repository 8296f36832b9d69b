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
from ledger.ratedistortion import DataBound, bound_ratio, data_bound_of
from ledger.statement import Reproduction
from ledger.textsafe import md_cell, md_code, md_text, visible
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
    data_bound_bits: float | None = None  # rate_distortion.data_bound: bits a weight
    data_bound_error_bits: float | None = None  # … and its estimation error

    @property
    def data_bound_ratio(self) -> float | None:
        """The largest ratio the recorded data bound allows (its error allowed; inf: any)."""
        if self.data_bound_bits is None or self.data_bound_error_bits is None:
            return None
        return DataBound(self.data_bound_bits, self.data_bound_error_bits).ratio_with_error

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
        source = by_digest.get(c.source.digest) if c.source else None
        data = data_bound_of(source) if source is not None else None
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
                data_bound_bits=None if data is None else data.bits_per_weight,
                data_bound_error_bits=None if data is None else data.error_bits,
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
        "Gaussian ref = the i.i.d. Gaussian rate-distortion reference ratio vs fp16 at the claim's"
        " cos_min (a reference, not a bound: real weights can be coded below it; see"
        " docs/physics.md):"
        " 16 / (½·log2(1/(1−c²)))",
        "data bound = the largest ratio the claim's own weights allow at its cosines (Shannon"
        " lower bound under a per-row/column scale model, estimation error allowed), recorded by"
        " runners that had the weights; a claim above the Gaussian reference without one needs a"
        " reproduction",
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
        f"seq {report.tip_seq}, {md_code(report.tip_digest[:23])}"
        if report.tip_digest is not None
        else "empty ledger"
    )
    blocking = [r for r in report.rows if r.required and r.state != "pass"]
    lines = [
        f"## Results (policy {md_code(report.policy)}: **{report.outcome}**)",
        "",
        *([f"_{md_cell(report.trust_line)}_", ""] if report.trust_line else []),
        f"Regenerated by `evledger report` from {report.entries} verified evidence "
        f"{'entry' if report.entries == 1 else 'entries'} (tip {tip}).",
        "",
        "| claim | what | required | gate | best evidence | Gaussian ref | data bound "
        "| reproduced | entry |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in report.rows:
        bound = "-" if r.bound_ratio is None else f"{r.bound_ratio:.3g}x"
        if r.physics in ("implausible", "contradictory", "structured"):
            bound += f" ({r.physics})"
        elif r.above_bound:
            bound += " (above)"
        data = "-" if r.data_bound_ratio is None else _ratio_cell(r.data_bound_ratio)
        if r.physics == "within-data-bound":
            data += " (within)"
        entry = f"seq {r.seq} {md_code(r.digest[:19])}" if r.digest else "-"
        figs = _figures_text(r.figures) if r.state != "missing" else "no evidence"
        cells = [  # every string from a policy or an entry goes through md_cell
            md_cell(r.id),
            md_cell(r.title),
            "yes" if r.required else "no",
            STATE[r.state],
            md_cell(f"{figs} ({r.runner})" if r.runner else figs),
            md_cell(bound),
            md_cell(data),
            md_cell(r.reproduced),
            entry,
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if blocking:
        lines.append(
            f"**{report.outcome}**: "
            + md_text("; ".join(f"{r.id} {r.state} ({', '.join(r.reasons)})" for r in blocking))
        )
        lines.append("")
    if plot:
        lines += [f"![ratio vs cos_min with the Gaussian rate-distortion bound]({plot})", ""]
    lines += [f"- {n}" for n in report.notes]  # Markdown of ours, never text from an entry
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class RunnerMark:
    """How one runner's points look, in the report SVG and in the TUI chart alike."""

    colour: str  # hex, Okabe-Ito (colour-blind safe)
    marker: str  # matplotlib marker
    glyph: str  # the terminal's stand-in for the marker


#: fixed per runner so a figure reads the same in every report
RUNNER_MARKS = {
    "static": RunnerMark("#0072B2", "o", "●"),
    "pareto": RunnerMark("#E69F00", "s", "■"),
    "proxy": RunnerMark("#009E73", "^", "▲"),
    "pq": RunnerMark("#CC79A7", "D", "◆"),
    "entropy": RunnerMark("#56B4E9", "v", "▼"),
    "hessian": RunnerMark("#D55E00", "P", "✚"),
}
_SPARE_MARKS = (
    RunnerMark("#000000", "X", "✖"),
    RunnerMark("#999999", "h", "⬢"),
    RunnerMark("#F0E442", "*", "★"),
    RunnerMark("#661100", "p", "⬟"),
)
IMPLAUSIBLE_COLOUR = "#D00000"
REFERENCE_LABEL = "Gaussian reference 16 / R(c) (not a bound)"


def runner_marks(names: list[str]) -> dict[str, RunnerMark]:
    """A mark for each runner name: the fixed ones, then spares in sorted order."""
    out = {n: RUNNER_MARKS[n] for n in names if n in RUNNER_MARKS}
    spare = iter(_SPARE_MARKS * (1 + len(names) // len(_SPARE_MARKS)))
    for name in sorted(n for n in names if n not in RUNNER_MARKS):
        out[name] = next(spare)
    return out


def is_implausible(point: ParetoPoint) -> bool:
    """Above the Gaussian rate-distortion reference at its cos_min."""
    bound = bound_ratio(point.cos_min) if 0 < point.cos_min < 1 else None
    return bound is not None and point.ratio > bound


def point_groups(points: list[ParetoPoint]) -> list[list[ParetoPoint]]:
    """Points at the same (ratio, cos_min) to 4 significant digits: they share one label."""
    groups: dict[tuple[str, str], list[ParetoPoint]] = {}
    for p in sorted(points, key=lambda p: (p.cos_min, p.ratio, p.seq)):
        groups.setdefault((f"{p.ratio:.4g}", f"{p.cos_min:.4g}"), []).append(p)
    return list(groups.values())


#: label offsets (points) tried in order; beyond the first ring a leader line is drawn
_OFFSETS = [(6, 5), (6, -11), (-8, 5), (-8, -11), (0, 14), (0, -18)] + [
    (dx, dy) for r in (22, 34, 48) for dx, dy in ((r, r // 2), (r, -r), (-r, r // 2), (-r, -r))
]


def _boxes_overlap(a: tuple[float, float, float, float], b: tuple[float, ...]) -> bool:
    return not (a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1])


def write_pareto_svg(
    points: list[ParetoPoint], path: Path, verdicts: dict[int, str] | None = None
) -> Path:
    """Ratio vs cos_min (x: 1 − cos_min on a log scale, so 0.99 and 0.9999 are apart) with
    the Gaussian rate-distortion reference curve, saved as SVG (matplotlib Agg).

    Colour and marker say the runner; a filled marker is reproduced, a hollow one still needs
    reproduction (when `verdicts`, seq -> audit verdict, is given); a red ring and a `!`
    mark points above the reference (implausible). Every point lies inside the axes, labels
    never overlap (leader lines when moved far), the legend sits outside the data."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with matplotlib.rc_context(
        {"font.family": "DejaVu Sans", "svg.fonttype": "none", "svg.hashsalt": "evledger"}
    ):
        fig, ax = plt.subplots(figsize=(8.2, 4.6))
        try:
            draw_pareto(ax, points, verdicts)
            fig.tight_layout()
            fig.savefig(path, format="svg", metadata={"Date": None}, bbox_inches="tight")
        finally:
            plt.close(fig)
    return path


def draw_pareto(ax: Any, points: list[ParetoPoint], verdicts: dict[int, str] | None) -> None:
    """The chart's content on matplotlib axes `ax` (see write_pareto_svg)."""
    import math

    from matplotlib.lines import Line2D as line2d  # noqa: N813
    from matplotlib.ticker import FixedLocator as fixed_locator  # noqa: N813
    from matplotlib.ticker import FuncFormatter as func_formatter  # noqa: N813
    from matplotlib.ticker import NullLocator as null_locator  # noqa: N813

    gaps = [1.0 - p.cos_min for p in points if 0 < p.cos_min < 1]
    lo_gap = min([*gaps, 1e-4]) / 3  # the best cos_min, with room to its right
    hi_gap = max([*gaps, 0.1]) * 1.6
    xs = [
        math.exp(math.log(lo_gap) + (math.log(hi_gap) - math.log(lo_gap)) * i / 400)
        for i in range(401)
    ]
    ref = [bound_ratio(1.0 - g) for g in xs]
    top = max([p.ratio for p in points] + [8.0]) * 1.2
    ax.plot(
        xs,
        [r if r is not None and r <= top * 1.5 else float("nan") for r in ref],
        color="0.35",
        linestyle="--",
        linewidth=1.1,
        zorder=1,
    )
    ax.fill_between(
        xs,
        [r if r is not None and r <= top * 1.5 else top * 1.5 for r in ref],
        top * 1.5,
        color="#D00000",
        alpha=0.06,
        zorder=0,
        linewidth=0,
    )
    ax.set_xscale("log")
    ax.set_xlim(hi_gap, lo_gap)  # inverted: better fidelity to the right
    ax.set_ylim(0, top)
    nines = [10.0**-k for k in range(1, 8) if lo_gap <= 10.0**-k <= hi_gap]
    ax.xaxis.set_major_locator(fixed_locator(nines))
    ax.xaxis.set_minor_locator(null_locator())
    ax.xaxis.set_major_formatter(
        func_formatter(lambda g, _pos: f"{1 - g:.{max(1, round(-math.log10(g)))}f}")
    )
    ax.set_xlabel("cos_min (minimum per-matrix weight cosine; axis: 1 − cos_min, log scale)")
    ax.set_ylabel("ratio vs fp16 (effective bytes)")
    ax.set_title("Compression claims: ratio vs cos_min")
    ax.grid(alpha=0.25, linewidth=0.6)

    names = sorted({p.runner or "?" for p in points})
    marks = runner_marks(names)
    verdicts = verdicts or {}
    ax.figure.canvas.draw()  # the transform below needs the final axes size
    to_px = ax.transData.transform
    placed: list[tuple[float, float, float, float]] = []
    for group in point_groups(points):
        for n, p in enumerate(group):  # same spot: concentric, the first one largest
            mark = marks[p.runner or "?"]
            verdict = verdicts.get(p.seq, "")
            hollow = bool(verdicts) and verdict != "reproduced"
            size = 70 - 30 * n / max(1, len(group) - 1) if len(group) > 1 else 46
            ax.scatter(
                [1.0 - p.cos_min],
                [p.ratio],
                s=size,
                marker=mark.marker,
                facecolors="white" if hollow else mark.colour,
                edgecolors=mark.colour,
                linewidths=1.4,
                zorder=3 + n,
            )
            x, y = to_px((1.0 - p.cos_min, p.ratio))
            placed.append((x - 5, y - 5, x + 5, y + 5))
        flags = "".join(sorted({("!" if is_implausible(p) else "") for p in group}))
        if any(is_implausible(p) for p in group):
            ax.scatter(
                [1.0 - group[0].cos_min],
                [group[0].ratio],
                s=240,
                facecolors="none",
                edgecolors=IMPLAUSIBLE_COLOUR,
                linewidths=1.3,
                zorder=2,
            )
        if any(verdicts.get(p.seq) == "diverged" for p in group):
            flags += "✗"
        label = ", ".join(str(p.seq) for p in group) + flags
        _place_label(ax, group[0], label, placed, to_px, flags)

    handles = [
        line2d([], [], color="0.35", linestyle="--", label=REFERENCE_LABEL),
        *(
            line2d(
                [],
                [],
                linestyle="",
                marker=marks[n].marker,
                markersize=7,
                markerfacecolor=marks[n].colour,
                markeredgecolor=marks[n].colour,
                label=visible(n).replace("$", "\\$"),  # no mathtext, no control characters
            )
            for n in names
        ),
    ]
    if any(is_implausible(p) for p in points):
        handles.append(
            line2d(
                [],
                [],
                linestyle="",
                marker="o",
                markersize=12,
                markerfacecolor="none",
                markeredgecolor=IMPLAUSIBLE_COLOUR,
                label="! above the reference (implausible)",
            )
        )
    if verdicts:
        handles.append(
            line2d(
                [],
                [],
                linestyle="",
                marker="o",
                markersize=7,
                markerfacecolor="white",
                markeredgecolor="0.3",
                label="hollow: not yet reproduced",
            )
        )
    ax.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(1.02, 1.0),
        fontsize=7.5,
        frameon=False,
        title="labels: entry seq",
        title_fontsize=7.5,
    )


def _place_label(
    ax: Any,
    p: ParetoPoint,
    label: str,
    placed: list[tuple[float, float, float, float]],
    to_px: Any,
    flags: str,
) -> None:
    """Annotate `p` at the first offset whose box overlaps no label or marker so far."""
    dpi_scale = ax.figure.dpi / 72.0
    x, y = to_px((1.0 - p.cos_min, p.ratio))
    width, height = (4.6 * len(label) + 2) * dpi_scale, 9 * dpi_scale
    bbox = ax.get_window_extent()
    chosen = _OFFSETS[0]
    for dx, dy in _OFFSETS:
        left = x + dx * dpi_scale - (width if dx < 0 else 0)
        box = (left, y + dy * dpi_scale, left + width, y + dy * dpi_scale + height)
        inside = bbox.x0 <= box[0] and box[2] <= bbox.x1 and bbox.y0 <= box[1] and box[3] <= bbox.y1
        if inside and not any(_boxes_overlap(box, other) for other in placed):
            chosen = (dx, dy)
            placed.append(box)
            break
    dx, dy = chosen
    far = abs(dx) > 10 or abs(dy) > 16
    ax.annotate(
        label,
        (1.0 - p.cos_min, p.ratio),
        xytext=(dx, dy),
        textcoords="offset points",
        ha="right" if dx < 0 else "left",
        va="bottom",
        fontsize=7.5,
        color=IMPLAUSIBLE_COLOUR if "!" in flags else "0.1",
        arrowprops={"arrowstyle": "-", "color": "0.5", "linewidth": 0.6} if far else None,
        zorder=6,
    )


__all__ = [
    "RUNNER_MARKS",
    "ParetoPoint",
    "Report",
    "ReportRow",
    "RunnerMark",
    "build_report",
    "draw_pareto",
    "is_implausible",
    "point_groups",
    "report_for_ledger",
    "runner_marks",
    "to_markdown",
    "write_pareto_svg",
]


def _ratio_cell(ratio: float) -> str:
    """A bound's ratio (`any` when the bound allows every ratio)."""
    return "any" if ratio == float("inf") else f"{ratio:.3g}x"
