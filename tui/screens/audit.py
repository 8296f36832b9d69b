"""Audit: claims vs reproductions, the physics check, and a Pareto chart with the Gaussian
reference curve, drawn with the report SVG's encoding (ledger.report.RUNNER_MARKS)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static
from textual_plotext import PlotextPlot

from ledger.audit import audit_view
from ledger.errors import EvledgerError
from ledger.ratedistortion import bound_ratio
from ledger.report import REFERENCE_LABEL, runner_marks
from ledger.textsafe import safe_markup, safe_text
from tui.widgets.diff_table import fit_columns

#: entry-derived text inside Textual markup
markup = partial(safe_markup, dialect="textual")

if TYPE_CHECKING:
    from tui.app import EvledgerApp

VERDICT_STYLE = {
    "reproduced": "bold green",
    "diverged": "bold red",
    "unreproduced": "yellow",
    "implausible": "bold magenta",
    "plausible": "green",
    "within-bound": "green",
    "structured": "cyan",
}
MAX_POINTS = 5000
#: label flags, the same as the report SVG's
FLAGS = {"implausible": "!", "diverged": "✗", "reproduced": "✓", "unreproduced": "?"}
REFERENCE_COLOUR = (150, 150, 150)


@dataclass(frozen=True)
class ChartPoint:
    """One compression claim on the chart."""

    seq: int
    runner: str
    ratio: float
    cos: float
    physics: str
    verdict: str

    @property
    def flag(self) -> str:
        """`!` implausible, else ✗ diverged, ✓ reproduced, ? not yet reproduced."""
        return (
            FLAGS["implausible"] if self.physics == "implausible" else FLAGS.get(self.verdict, "")
        )


@dataclass
class AuditComputed(Message):
    """Audit rows are ready: (claim, seq, ratio, cos, physics, reproductions, verdict)."""

    rows: list[tuple[str, int | None, str, str, str, str, str]]
    source: str
    error: str = ""
    points: list[ChartPoint] | None = None


def chart_points(report: Any) -> list[ChartPoint]:
    """Claims with a ratio and a cos_min in (0, 1), from a `ledger.audit.AuditReport`."""
    out = []
    for c in report.claims:
        p = c.physics
        if isinstance(p.ratio, int | float) and isinstance(p.cos, int | float) and 0 < p.cos < 1:
            out.append(
                ChartPoint(
                    c.seq,
                    str(c.runner or c.kind),
                    float(p.ratio),
                    float(p.cos),
                    p.status,
                    c.verdict,
                )
            )
    return out[:MAX_POINTS]


def nines(cos: float) -> float:
    """The chart's x: -log10(1 - cos), so 0.99 is 2 and 0.9999 is 4."""
    return -math.log10(1.0 - cos)


def hex_rgb(colour: str) -> tuple[int, int, int]:
    """`#0072B2` -> (0, 114, 178)."""
    return int(colour[1:3], 16), int(colour[3:5], 16), int(colour[5:7], 16)


def place_labels(
    points: list[ChartPoint],
    x_range: tuple[float, float],
    y_range: tuple[float, float],
    cells: tuple[int, int],
) -> list[tuple[str, float, float, ChartPoint]]:
    """Labels (seq + flag) at free character cells next to their point: right, left, above,
    below, then further out; points at one spot share one label (`3,5?`)."""
    width, height = max(cells[0], 10), max(cells[1], 4)
    (x0, x1), (y0, y1) = x_range, y_range

    def cell(x: float, y: float) -> tuple[int, int]:
        return round((x - x0) / (x1 - x0) * (width - 1)), round((y - y0) / (y1 - y0) * (height - 1))

    taken = {cell(nines(p.cos), p.ratio) for p in points}
    groups: dict[tuple[int, int], list[ChartPoint]] = {}
    for p in sorted(points, key=lambda p: p.seq):
        groups.setdefault(cell(nines(p.cos), p.ratio), []).append(p)
    out = []
    for (cx, cy), group in sorted(groups.items()):
        flags = "".join(sorted({p.flag for p in group}, key="!✗?✓".find))
        text = ",".join(str(p.seq) for p in group) + flags
        n = len(text)
        for dx, dy in (
            (1, 0),
            (-n, 0),
            (0, 1),
            (0, -1),
            (1, 1),
            (-n, 1),
            (1, -1),
            (-n, -1),
            (2, 2),
        ):
            span = {(cx + dx + i, cy + dy) for i in range(n)}
            inside = 0 <= cx + dx and cx + dx + n <= width and 0 <= cy + dy < height
            if inside and not span & taken:
                taken |= span
                x = x0 + (cx + dx) / (width - 1) * (x1 - x0)
                y = group[0].ratio + dy / (height - 1) * (y1 - y0)  # same row when dy is 0
                out.append((text, x, y, group[0]))
                break
    return out


def module_rows(report: Any) -> list[tuple[str, int | None, str, str, str, str, str]]:
    """Rows from a `ledger.audit.AuditReport`."""
    from ledger import audit

    out = []
    for c in report.claims:
        p = c.physics
        physics = p.status
        if p.bound_ratio is not None:
            physics += f" (ref {p.bound_ratio:.3g}x"
            if p.data_bound_ratio is not None:  # set when the claim is above the reference
                data = "any" if p.data_bound_ratio == float("inf") else f"{p.data_bound_ratio:.3g}x"
                physics += f", data bound {data}"
            physics += ")"
        out.append(
            (
                str(c.runner or c.kind),
                c.seq,
                "" if p.ratio is None else f"{p.ratio:.3g}",
                "" if p.cos is None else f"{p.cos:.5g}",
                physics,
                str(len(c.checks)),
                audit.verdict_text(c),
            )
        )
    return out


class AuditScreen(Screen[None]):
    """Claims against reproductions and physics."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", priority=True, id="back"),
        Binding("enter", "open_claim", "Open entry", id="open-claim"),
    ]

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Banner, claims table beside the Pareto chart, footer."""
        yield Static("auditing…", id="audit-banner")
        with Vertical(id="audit-body"):
            yield DataTable(id="audit-claims", cursor_type="row")
            yield PlotextPlot(id="audit-plot")
            yield Static("", id="audit-legend")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Draw the chart from the index; compute the audit in a worker."""
        self.points: list[ChartPoint] = []
        self.query_one(DataTable).focus()
        self._draw_plot()
        self.compute()

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def compute(self) -> None:
        """Audit the ledger off the UI thread (claims, reproductions, physics check)."""
        try:
            report = audit_view(self.evapp.current_view())
            rows, points = module_rows(report), chart_points(report)
        except (EvledgerError, ValueError, KeyError, TypeError) as e:
            self.post_message(AuditComputed([], "", str(e)))
            return
        self.post_message(AuditComputed(rows, "ledger.audit", points=points))

    @on(AuditComputed)
    def _computed(self, message: AuditComputed) -> None:
        banner = self.query_one("#audit-banner", Static)
        if message.error:
            banner.update(f"✗ {markup(message.error)}")
            return
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        headers = ["claim", "seq", "ratio", "cos_min", "physics", "repro", "verdict"]
        fit_columns(table, headers, [[str(c) for c in r] for r in message.rows], max_width=40)
        for name, seq, ratio, cos, physics, repros, verdict in message.rows:
            table.add_row(
                safe_text(name),
                "" if seq is None else str(seq),
                ratio,
                cos,
                safe_text(physics, style=VERDICT_STYLE.get(physics.split(" ")[0], "")),
                repros,
                safe_text(verdict, style=VERDICT_STYLE.get(verdict.split(" ")[0], "")),
                key=None if seq is None else str(seq),
            )
        implausible = sum(1 for r in message.rows if r[4].startswith("implausible"))
        diverged = sum(1 for r in message.rows if r[6].startswith("diverged"))
        banner.update(
            f"{len(message.rows)} claims · {implausible} above the Gaussian reference "
            f"(implausible) · {diverged} diverged"
        )
        self.points = message.points or []
        self._draw_plot()

    def _draw_plot(self) -> None:
        """Reference curve, one glyph and colour per runner, labels apart, legend below."""
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        plt.clear_figure()
        points = self.points
        x_lo = min([1.0, *(nines(p.cos) for p in points)]) - 0.15
        x_hi = max([4.0, *(nines(p.cos) for p in points)]) + 0.3
        y_hi = max([8.0, *(p.ratio for p in points)]) * 1.2
        grid = [x_lo + (x_hi - x_lo) * i / 120 for i in range(121)]
        ref = [bound_ratio(1.0 - 10.0**-x) for x in grid]
        keep = [(x, r) for x, r in zip(grid, ref, strict=True) if r is not None and r <= y_hi]
        if keep:
            plt.plot(*zip(*keep, strict=True), marker="braille", color=REFERENCE_COLOUR)
        marks = runner_marks(sorted({p.runner for p in points}))
        cells = (max(plot.size.width - 9, 10), max(plot.size.height - 5, 4))
        for text, x, y, p in place_labels(points, (x_lo, x_hi), (0.0, y_hi), cells):
            colour = (208, 0, 0) if "!" in text else hex_rgb(marks[p.runner].colour)
            plt.text(text, x, y, color=colour, alignment="left")
        for p in points:  # after the labels: a point is never drawn over
            mark = marks[p.runner]
            plt.scatter([nines(p.cos)], [p.ratio], marker=mark.glyph, color=hex_rgb(mark.colour))
        ticks = [k for k in range(1, 8) if x_lo <= k <= x_hi]
        plt.xticks(ticks, [f"{1 - 10.0**-k:.{k}f}" for k in ticks])
        plt.xlim(x_lo, x_hi)
        plt.ylim(0, y_hi)
        plt.title("ratio vs cos_min (x: nines of cos_min)")
        plt.xlabel("cos_min")
        plt.ylabel("ratio")
        plot.refresh()
        legend = Text()
        for name, mark in marks.items():
            legend.append(f"{mark.glyph} ", style=mark.colour)
            legend.append_text(safe_text(name))
            legend.append("  ")
        legend.append("⣀⣀ ", style="rgb(150,150,150)")
        legend.append(REFERENCE_LABEL)
        legend.append(
            "  labels: seq, ! implausible, ✗ diverged, ✓ reproduced, ? not yet", style="dim"
        )
        self.query_one("#audit-legend", Static).update(legend)

    def on_resize(self) -> None:
        """Labels are placed in character cells: place them again."""
        self._draw_plot()

    def action_open_claim(self) -> None:
        """Open the entry of the claim under the cursor."""
        table: DataTable[Any] = self.query_one(DataTable)
        if table.row_count == 0:
            return
        key = table.coordinate_to_cell_key((table.cursor_row, 0)).row_key.value
        if key and key.isdigit():
            self.evapp.jump_to_entry(int(key))

    @on(DataTable.RowSelected, "#audit-claims")
    def _selected(self, _event: DataTable.RowSelected) -> None:
        self.action_open_claim()

    def action_back(self) -> None:
        """Back."""
        self.app.pop_screen()
