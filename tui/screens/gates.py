"""Gates: pick a policy, see each claim's checks, observed values, source entry, GO / NO-GO."""

from __future__ import annotations

import textwrap
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Select, Static

from ledger.errors import EvledgerError
from ledger.evidence import fmt_metric
from ledger.textsafe import safe_markup, safe_text, visible
from tui.widgets.diff_table import PAD, shorten_middle

#: entry-derived text inside Textual markup
markup = partial(safe_markup, dialect="textual")

if TYPE_CHECKING:
    from tui.app import EvledgerApp

STATE_STYLE = {"pass": "bold green", "fail": "bold red", "missing": "yellow"}


HEADERS = ("claim", "req", "state", "checks (observed)", "source")
#: the column that folds; narrowest it gets before the table scrolls sideways
CHECKS = 3
MIN_CHECKS = 24
MAX_SOURCE = 16


def claim_cells(claim: Any) -> tuple[str, str, str, str, str]:
    """The plain-text cells of one claim's row (entry-derived text still to be made inert)."""
    checks = "; ".join(
        f"{'✓' if c.ok else '✗'} {c.metric} {fmt_metric(c.observed)} {c.op} {fmt_metric(c.value)}"
        for c in claim.checks
    ) or (claim.note or "no evidence")
    if claim.physics:
        checks = f"✗ physics: {claim.physics_status} (below); {checks}"
    source = (
        f"#{claim.source.seq} {claim.source.runner or claim.source.kind}" if claim.source else "-"
    )
    source = shorten_middle(visible(source), MAX_SOURCE)  # the detail below has it whole
    return (claim.id, "yes" if claim.required else "no", claim.state.upper(), checks, source)


def fold(text: str, width: int) -> list[str]:
    """`text` in lines of at most `width` cells: one check per line, long ones wrapped."""
    lines: list[str] = []
    for part in visible(text).split("; "):
        lines.extend(textwrap.wrap(part, width, subsequent_indent="  ") or [""])
    return lines


@dataclass
class GatesEvaluated(Message):
    """A policy was evaluated (or failed with `error`)."""

    policy: str
    result: Any
    error: str = ""


def policy_names(app: EvledgerApp) -> list[str]:
    """The ledger's own policies/NAME.toml, then packaged ones not overridden."""
    from ledger import gate

    names: list[str] = []
    store = app.ledger.store
    try:
        if store.resolve() is not None:
            for item in store.list_tree("HEAD", "policies", recursive=False):
                name = item.path.rsplit("/", 1)[-1]
                if name.endswith(".toml"):
                    names.append(name[: -len(".toml")])
    except EvledgerError:
        pass
    for name in gate.packaged_policy_names():
        if name not in names:
            names.append(name)
    return names


class GatesScreen(Screen[None]):
    """GO / NO-GO for a policy."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", priority=True, id="back"),
        Binding("enter", "open_source", "Open source entry", id="open-source"),
        Binding("P", "choose_policy", "Policy", id="choose-policy"),
    ]

    def __init__(self, policy: str | None = None) -> None:
        super().__init__()
        self.policy = policy
        self.result: Any = None

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Policy chooser, banner, claims table, details of the claim under the cursor."""
        try:
            names = policy_names(self.evapp)
        except ImportError:
            names = []
        if self.policy is None and names:
            self.policy = "v37" if "v37" in names else names[0]
        yield Select(
            [(markup(n), n) for n in names],
            value=self.policy or Select.BLANK,
            allow_blank=not names,
            id="policy-select",
            prompt="policy",
        )
        yield Static("evaluating…", id="gate-banner")
        yield DataTable(id="gate-claims", cursor_type="row")
        yield Static("", id="gate-detail")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Evaluate the chosen policy."""
        self.query_one(DataTable).focus()
        if self.policy:
            self.evaluate(self.policy)
        else:
            self.query_one("#gate-banner", Static).update("no policy available (ledger.gate)")

    @work(thread=True, exclusive=True, group="gate", exit_on_error=False)
    def evaluate(self, name: str) -> None:
        """Evaluate `name` against every entry (blocking: reads the ledger)."""
        try:
            from ledger import gate

            view = self.evapp.current_view()
            policy = gate.resolve_policy(name, view, ledger=self.evapp.ledger)
            result = gate.evaluate_view(view, policy)
        except ImportError:
            self.post_message(GatesEvaluated(name, None, "ledger.gate is not available"))
            return
        except (EvledgerError, ValueError, KeyError) as e:
            self.post_message(GatesEvaluated(name, None, str(e)))
            return
        self.post_message(GatesEvaluated(name, result))

    @on(Select.Changed, "#policy-select")
    def _policy_changed(self, event: Select.Changed) -> None:
        if isinstance(event.value, str) and event.value != self.policy:
            self.policy = event.value
            self.query_one("#gate-banner", Static).update("evaluating…")
            self.evaluate(event.value)

    @on(GatesEvaluated)
    def _evaluated(self, message: GatesEvaluated) -> None:
        banner = self.query_one("#gate-banner", Static)
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        if message.result is None:
            banner.update(f"✗ {markup(message.error)}")
            return
        result = self.result = message.result
        self.set_class(result.go, "-go")
        self.set_class(not result.go, "-no-go")
        blocking = [c.id for c in result.claims if c.blocking]
        trust = result.trust
        text = (
            f" {result.outcome} · policy {result.policy} · {result.entries} verified entries"
            f" · {trust.get('verified', 0)} of {trust.get('entries', 0)} entries verified"
        )
        if trust.get("excluded"):
            text += " · excluded: " + ", ".join(
                f"seq {x['seq']} ({'/'.join(x['codes'])})" for x in trust["excluded"][:3]
            )
        if blocking:
            text += f" · blocking: {', '.join(blocking)}"
        banner.update(markup(text))
        self._fill_table()
        self._detail(0)

    def _fill_table(self) -> None:
        """The claims table, its checks column folded to the width the screen leaves."""
        result = self.result
        if result is None:
            return
        table: DataTable[Any] = self.query_one(DataTable)
        table.clear(columns=True)
        rows = [(claim, claim_cells(claim)) for claim in result.claims]
        fixed = [
            max(len(h), *(len(visible(cells[n])) for _, cells in rows)) if rows else len(h)
            for n, h in enumerate(HEADERS)
        ]
        # what the other columns, cell padding and the scrollbar leave for the checks
        room = (table.size.width or self.size.width) - sum(
            w for n, w in enumerate(fixed) if n != CHECKS
        )
        room -= PAD * len(HEADERS) + 2
        fixed[CHECKS] = max(MIN_CHECKS, min(fixed[CHECKS], room))
        for header, width in zip(HEADERS, fixed, strict=True):
            table.add_column(header, width=width)
        for claim, cells in rows:
            lines = fold(cells[CHECKS], fixed[CHECKS])
            table.add_row(
                safe_text(cells[0], style="bold"),
                cells[1],
                Text(cells[2], style=STATE_STYLE.get(claim.state, "")),
                Text("\n".join(lines)),  # fold() made every line inert
                safe_text(cells[4]),
                key=claim.id,
                height=len(lines),
            )

    def on_resize(self) -> None:
        """Fold the checks again for the new width."""
        if self.result is not None:
            row = self.query_one(DataTable).cursor_row
            self._fill_table()
            self.query_one(DataTable).move_cursor(row=row)

    def _detail(self, row: int) -> None:
        if self.result is None or not self.result.claims:
            return
        claim = self.result.claims[min(row, len(self.result.claims) - 1)]
        lines = [
            f"[b]{markup(claim.id)}[/b] {markup(claim.title)} — {claim.state}"
            f" ({'required' if claim.required else 'optional'})",
            f"evidence: {markup(claim.selector)} · {claim.candidates} "
            f"{'candidate' if claim.candidates == 1 else 'candidates'}",
        ]
        for c in claim.checks:
            why = f" {markup(c.reason)}" if c.reason else ""
            lines.append(
                f"  {'✓' if c.ok else '✗'} {markup(c.metric)} = {markup(fmt_metric(c.observed))} "
                f"(needs {markup(c.op)} {markup(fmt_metric(c.value))}){why}"
            )
        for reason in claim.reasons():
            lines.append(f"  [red]{markup(reason)}[/red]")
        if claim.source:
            lines.append(
                f"source: seq {claim.source.seq} {markup(claim.source.runner or claim.source.kind)}"
                f" {markup(claim.source.digest[:23])} (enter opens)"
            )
        self.query_one("#gate-detail", Static).update("\n".join(lines))

    @on(DataTable.RowHighlighted, "#gate-claims")
    def _highlighted(self, event: DataTable.RowHighlighted) -> None:
        self._detail(event.cursor_row)

    @on(DataTable.RowSelected, "#gate-claims")
    def _selected(self, event: DataTable.RowSelected) -> None:
        self.action_open_source()

    def action_open_source(self) -> None:
        """Open the entry the claim under the cursor came from."""
        if self.result is None or not self.result.claims:
            return
        row = self.query_one(DataTable).cursor_row
        claim = self.result.claims[min(row, len(self.result.claims) - 1)]
        if claim.source is None:
            self.notify(f"{claim.id}: no evidence to open", severity="warning")
            return
        self.evapp.jump_to_entry(claim.source.seq)

    def action_choose_policy(self) -> None:
        """Focus the policy chooser."""
        self.query_one(Select).focus()

    def action_back(self) -> None:
        """Back."""
        self.app.pop_screen()
