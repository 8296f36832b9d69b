"""Help: the keys of the screen underneath, built from its active bindings."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import DataTable, Static

MARKS_HELP = (
    "Status marks (SCJT): S signature, C chain + checkpoints, J schema, T trust.  "
    "✓ good · ✗ bad · ? could not check · · not verified yet. "
    "Marks come from verification, never from the cached index."
)


class HelpScreen(ModalScreen[None]):
    """Keys of the current screen, plus what the status marks mean."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape,q,question_mark,f1", "dismiss", "Close", id="close-help"),
    ]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        keys_of: dict[tuple[str, str], list[str]] = {}
        for key, active in under.active_bindings.items():
            b = active.binding
            if b.id is None and not b.show:
                continue  # inherited scrolling/focus keys: not ours to explain
            label = b.description or b.action
            shown = b.key_display or key
            keys = keys_of.setdefault((b.action, label), [])
            if shown not in keys:
                keys.append(shown)
        self.rows = [(", ".join(keys), label) for (_, label), keys in keys_of.items()]
        self.title_text = f"Keys: {under.__class__.__name__.removesuffix('Screen')}"

    def compose(self) -> ComposeResult:
        """A table of keys and a note on the marks."""
        with VerticalScroll(id="help-box"):
            yield Static(self.title_text, id="help-title")
            table: DataTable[str] = DataTable(id="help-keys", cursor_type="row")
            table.add_columns("key", "action")
            for key, label in self.rows:
                table.add_row(key, label)
            yield table
            yield Static(MARKS_HELP, id="help-marks")
            yield Static("ctrl+p: command palette (every action) · escape: close", id="help-foot")
