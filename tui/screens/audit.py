"""Audit: claims vs reproductions, the physics check, and a Pareto chart with the Gaussian bound."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from rich.markup import escape
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
from tui.widgets.diff_table import fit_columns

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


@dataclass
class AuditComputed(Message):
    """Audit rows are ready: (claim, seq, ratio, cos, physics, reproductions, verdict)."""

    rows: list[tuple[str, int | None, str, str, str, str, str]]
    source: str
    error: str = ""


def module_rows(report: Any) -> list[tuple[str, int | None, str, str, str, str, str]]:
    """Rows from a `ledger.audit.AuditReport`."""
    from ledger import audit

    out = []
    for c in report.claims:
        p = c.physics
        physics = p.status
        if p.bound_ratio is not None:
            physics += f" (bound {p.bound_ratio:.3g}x)"
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
        yield Footer()

    def on_mount(self) -> None:
        """Draw the chart from the index; compute the audit in a worker."""
        self.query_one(DataTable).focus()
        self._draw_plot()
        self.compute()

    @work(thread=True, exclusive=True, group="audit", exit_on_error=False)
    def compute(self) -> None:
        """Audit the ledger off the UI thread (claims, reproductions, physics check)."""
        try:
            rows = module_rows(audit_view(self.evapp.current_view()))
        except (EvledgerError, ValueError, KeyError, TypeError) as e:
            self.post_message(AuditComputed([], "", str(e)))
            return
        self.post_message(AuditComputed(rows, "ledger.audit"))

    @on(AuditComputed)
    def _computed(self, message: AuditComputed) -> None:
        banner = self.query_one("#audit-banner", Static)
        if message.error:
            banner.update(f"✗ {escape(message.error)}")
            return
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        headers = ["claim", "seq", "ratio", "cos_min", "physics", "repro", "verdict"]
        fit_columns(table, headers, [[str(c) for c in r] for r in message.rows], max_width=40)
        for name, seq, ratio, cos, physics, repros, verdict in message.rows:
            table.add_row(
                name,
                "" if seq is None else str(seq),
                ratio,
                cos,
                Text(physics, style=VERDICT_STYLE.get(physics.split(" ")[0], "")),
                repros,
                Text(verdict, style=VERDICT_STYLE.get(verdict.split(" ")[0], "")),
                key=None if seq is None else str(seq),
            )
        implausible = sum(1 for r in message.rows if r[4].startswith("implausible"))
        diverged = sum(1 for r in message.rows if r[6].startswith("diverged"))
        banner.update(
            f"{len(message.rows)} claims · {implausible} above the Gaussian bound · "
            f"{diverged} diverged · source: {message.source}"
        )

    def _draw_plot(self) -> None:
        plot = self.query_one(PlotextPlot)
        plt = plot.plt
        plt.clear_data()
        index = self.evapp.index
        xs: list[float] = []
        ys: list[float] = []
        if index is not None:
            ratios, coss = index.metrics["ratio_fp16_effective"], index.metrics["cos_min"]
            for r, c in zip(ratios, coss, strict=True):
                if isinstance(r, int | float) and isinstance(c, int | float) and 0 < c < 1:
                    xs.append(float(c))
                    ys.append(float(r))
                    if len(xs) >= MAX_POINTS:
                        break
        lo = min([0.9, *xs])
        grid = [lo + (0.9999 - lo) * i / 60 for i in range(61)]
        bound = [min(bound_ratio(c) or 64.0, 64.0) for c in grid]
        plt.plot(grid, bound, label="Gaussian bound 16/R(c)", marker="braille")
        if xs:
            plt.scatter(xs, ys, label="entries", marker="●")
        plt.title("ratio vs cos_min")
        plt.xlabel("cos_min")
        plt.ylabel("ratio (fp16)")
        plot.refresh()

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
