"""Full verification: problems grouped by code, jump to the entry."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import Screen
from textual.widgets import Footer, ProgressBar, Static, Tree

from ledger.textsafe import safe_markup, safe_text
from ledger.verify import CODES, Report
from tui.widgets.confirm import ConfirmScreen

#: entry-derived text inside Textual markup
markup = partial(safe_markup, dialect="textual")

if TYPE_CHECKING:
    from tui.app import EvledgerApp

CONFIRM_ABOVE = 20_000


class VerifyScreen(Screen[None]):
    """The newest verification report; `r` runs it again."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", priority=True, id="back"),
        Binding("r", "rerun", "Verify again", id="verify-again"),
    ]

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Verdict banner, progress, the problems tree, footer."""
        yield Static("", id="verify-banner")
        yield ProgressBar(total=None, show_eta=False, id="verify-screen-bar")
        yield Tree("problems", id="verify-problems")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Follow the app's report and progress; start verification if none is running."""
        self.watch(self.evapp, "report", self._show)
        self.watch(self.evapp, "verify_done", self._progress)
        if self.evapp.report is None and self.evapp.verify_total == 0:
            self.evapp.verify_ledger()
        self.query_one(Tree).focus()

    def _progress(self, _done: int) -> None:
        app = self.evapp
        running = app.verify_total > 0
        self.set_class(running, "-verifying")
        if running:
            self.query_one(ProgressBar).update(total=app.verify_total, progress=app.verify_done)
            self.query_one("#verify-banner", Static).update(
                f"verifying… {app.verify_done}/{app.verify_total}"
            )

    def _show(self, report: Report | None) -> None:
        banner = self.query_one("#verify-banner", Static)
        tree: Tree[int | None] = self.query_one(Tree)
        tree.clear()
        if report is None:
            banner.update("verification is running…")
            return
        self.set_class(report.ok, "-verified")
        self.set_class(not report.ok, "-failed")
        head = (
            f"{'✓ VERIFIED' if report.ok else '✗ FAILED'} · {report.entries} entries · "
            f"{report.verified_entries} checked · {report.checkpoints} checkpoints · "
            f"trust: {report.trust_anchor} · root {report.root[:16]}…"
        )
        banner.update(markup(head))
        tree.root.set_label(f"{len(report.problems)} problems")
        groups: dict[str, list[tuple[int | None, str]]] = {}
        for p in report.problems:
            groups.setdefault(p.code, []).append((p.seq, p.message))
        for code in sorted(groups):
            items = groups[code]
            label = safe_text(f"{code} ({len(items)}) — {CODES.get(code, '')}")
            node = tree.root.add(label, expand=True)
            for seq, msg in items:
                where = f"seq {seq}" if seq is not None else "ledger"
                node.add_leaf(safe_text(f"{where}: {msg}"), data=seq)
        if not groups:
            tree.root.add_leaf("no problems: every entry, signature, link and checkpoint checks")
        tree.root.expand()

    @on(Tree.NodeSelected)
    def _jump(self, event: Tree.NodeSelected[int | None]) -> None:
        seq = event.node.data
        if isinstance(seq, int):
            self.evapp.jump_to_entry(seq)

    def action_rerun(self) -> None:
        """Verify again (asks first on big ledgers)."""
        index = self.evapp.index
        if index is not None and len(index) > CONFIRM_ABOVE:

            def answer(yes: bool | None) -> None:
                if yes:
                    self.evapp.verify_ledger()

            self.app.push_screen(ConfirmScreen(f"Verify all {len(index)} entries again?"), answer)
            return
        self.evapp.verify_ledger()

    def action_back(self) -> None:
        """Back."""
        self.app.pop_screen()
