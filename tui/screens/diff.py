"""Two entries side by side: params, metrics (Δ, better/worse), per-matrix rows, environment."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from rich.text import Text
from textual import events, on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from ledger.errors import EvledgerError
from ledger.textsafe import safe_text
from tui.widgets.diff_table import DiffTable

if TYPE_CHECKING:
    from tui.app import EvledgerApp


@dataclass
class DiffComputed(Message):
    """The diff of the two entries is ready (or failed with `error`)."""

    diff: Any
    error: str = ""


class DiffScreen(Screen[None]):
    """`ledger.diff.diff_entries(left, right)` rendered as a table."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", priority=True, id="back"),
        Binding("A", "toggle_all", "All / changed", id="toggle-all"),
        Binding("x", "swap", "Swap sides", id="swap-sides"),
        Binding("enter", "open_right", "Open new", show=False, id="open-right"),
    ]

    show_all: reactive[bool] = reactive(False, init=False)
    """Show unchanged keys too (like `evledger diff --all`)."""

    def __init__(self, left: int, right: int) -> None:
        super().__init__()
        self.left, self.right = left, right
        self.diff: Any = None

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Header, notes, the table, the full key under the cursor, footer."""
        yield Static(f"Diff {self.left} → {self.right}", id="diff-title")
        yield Static("", id="diff-notes")
        yield DiffTable(id="diff-table")
        yield Static("", id="diff-key")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Compute the diff in a worker."""
        self.compute()

    @work(thread=True, exclusive=True, group="diff", exit_on_error=False)
    def compute(self) -> None:
        """Read both entries and diff them."""
        try:
            from ledger.diff import diff_entries
        except ImportError:
            self.post_message(DiffComputed(None, "ledger.diff is not available in this build"))
            return
        try:
            a = self.evapp.read_entry(self.left)
            b = self.evapp.read_entry(self.right)
            self.post_message(DiffComputed(diff_entries(a, b)))
        except (EvledgerError, ValueError, KeyError, TypeError) as e:
            self.post_message(DiffComputed(None, str(e)))

    @on(DiffComputed)
    def _computed(self, message: DiffComputed) -> None:
        if message.diff is None:
            self.query_one("#diff-notes", Static).update(safe_text(f"✗ {message.error}"))
            return
        self.diff = message.diff
        a, b = self.diff.a, self.diff.b
        self.query_one("#diff-title", Static).update(
            Text.assemble(
                ("old ", "dim"),
                safe_text(f"{a.seq} {a.runner or a.kind} {a.time[:16]}"),
                ("  →  new ", "dim"),
                safe_text(f"{b.seq} {b.runner or b.kind} {b.time[:16]}"),
            )
        )
        self._render_table()

    def _render_table(self) -> None:
        from ledger.diff import table_rows

        if self.diff is None:
            return
        rows = table_rows(self.diff, include_all=self.show_all, precision=5)
        table = self.query_one(DiffTable)
        table.load(rows, self.size.width - 2)  # 2: the vertical scrollbar
        notes = list(self.diff.notes)
        changed = sum(1 for r in rows if r[0] == "metrics")
        notes.append(
            f"{'all keys' if self.show_all else 'changed keys only'} (A toggles) · "
            f"{changed} metric rows · green better, red worse"
        )
        self.query_one("#diff-notes", Static).update(safe_text(" · ".join(notes)))
        self._show_key()

    def _show_key(self) -> None:
        """The full key of the cursor row, and how to reach what does not fit."""
        table = self.query_one(DiffTable)
        hints = [f"row {table.cursor_row + 1}/{table.row_count} ↑↓"]
        if table.columns_fit.total > table.size.width - 2 and table.size.width:
            hints.append("←→ more columns")
        line = Text.assemble(safe_text(table.key_at_cursor()), ("  " + " · ".join(hints), "dim"))
        self.query_one("#diff-key", Static).update(line)

    @on(DataTable.RowHighlighted, "#diff-table")
    def _row_highlighted(self, _event: DataTable.RowHighlighted) -> None:
        self._show_key()

    def on_resize(self, _event: events.Resize) -> None:
        """Re-fit the columns to the new width."""
        self._render_table()

    def watch_show_all(self) -> None:
        """Re-render with or without unchanged keys."""
        self._render_table()

    def action_toggle_all(self) -> None:
        """Show all keys or only the changed ones."""
        self.show_all = not self.show_all

    def action_swap(self) -> None:
        """Swap old and new."""
        self.left, self.right = self.right, self.left
        self.compute()

    def action_open_right(self) -> None:
        """Open the new entry."""
        self.evapp.open_entry(self.right)

    def action_back(self) -> None:
        """Back."""
        self.app.pop_screen()
