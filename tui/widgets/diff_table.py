"""A diff of two entries as a table: key, old, new, Δ, Δ%, better/worse in colour.

Values are never cut: their columns are as wide as their widest cell and right-aligned. The
key column takes what is left (at least `MIN_KEY`) and shortens a long key by abbreviating its
leading segments, so the layer number and the metric stay readable; the full key
of the row under the cursor is shown below the table. Sections are header rows, not a column.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text
from textual.widgets import DataTable

from ledger.textsafe import safe_text, visible

VERDICT_STYLE = {
    "better": "bold green",
    "worse": "bold red",
    "added": "cyan",
    "removed": "magenta",
}
#: narrowest the key column gets before the table scrolls sideways instead
MIN_KEY = 14
#: DataTable's default cell padding (left + right) per column
PAD = 2
HEADERS = ("key", "old", "new", "Δ", "Δ%", "")

Row = tuple[str, str, str, str, str, str, str]


def fit_columns(
    table: DataTable[Any], headers: list[str], rows: list[list[str]], max_width: int = 60
) -> None:
    """Add columns sized to their widest plain-text cell (styled cells are not measured)."""
    for n, header in enumerate(headers):
        width = max([len(header), *(len(visible(str(r[n]))) for r in rows)])
        table.add_column(header, width=min(width, max_width))


def shorten_key(text: str, width: int) -> str:
    """A dotted key in at most `width` cells: leading name segments cut to their first letter
    (numbers kept whole: `e.l.0.a.s.query.weight.cos`), then the middle elided if need be."""
    parts = text.split(".")
    for n in range(len(parts) - 1):
        if len(".".join(parts)) <= width:
            break
        if not parts[n].isdigit():
            parts[n] = parts[n][:1]
    return shorten_middle(".".join(parts), width)


def shorten_middle(text: str, width: int) -> str:
    """`text` in at most `width` cells: its start and (longer) end around one `…`."""
    if len(text) <= width:
        return text
    if width <= 1:
        return "…"[:width]
    head = (width - 1) // 3
    tail = width - 1 - head
    return text[:head] + "…" + text[len(text) - tail :]


@dataclass(frozen=True)
class Layout:
    """Column widths for a table `available` cells wide."""

    key: int
    values: tuple[int, ...]

    @property
    def total(self) -> int:
        """Cells the table needs, padding included."""
        return self.key + sum(self.values) + PAD * (1 + len(self.values))


def layout_for(rows: list[Row], available: int) -> Layout:
    """Value columns at full width; the key column gets the rest (>= MIN_KEY, <= its need)."""
    cells = [[visible(c) for c in r[2:]] for r in rows]
    values = tuple(
        max([len(HEADERS[n + 1]), *(len(r[n]) for r in cells)]) for n in range(len(HEADERS) - 1)
    )
    keys = [len(visible(r[1])) + 2 for r in rows] + [len(visible(r[0])) for r in rows]
    need = max([len(HEADERS[0]), *keys])
    room = available - sum(values) - PAD * len(HEADERS)
    return Layout(max(MIN_KEY, min(need, room)), values)


class DiffTable(DataTable[Any]):
    """Rows from `ledger.diff.table_rows`; colour says whether a change is better or worse."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=False)
        self.full_keys: list[str] = []
        """The full key of every table row ('' for section headers)."""
        self.columns_fit = Layout(MIN_KEY, ())

    def load(self, rows: list[Row], available: int) -> None:
        """Replace the contents with (section, key, old, new, Δ, Δ%, verdict) rows."""
        self.clear(columns=True)
        self.columns_fit = layout = layout_for(rows, available)
        self.add_column(HEADERS[0], width=layout.key, key="key")
        for header, width in zip(HEADERS[1:], layout.values, strict=True):
            self.add_column(Text(header, justify="right"), width=width, key=header or "verdict")
        self.full_keys = []
        previous = None
        blank = [Text("")] * len(layout.values)
        for section, key, old, new, delta, pct, verdict in rows:
            if section != previous:
                self.add_row(safe_text(section, style="bold underline"), *blank)
                self.full_keys.append("")
                previous = section
            style = VERDICT_STYLE.get(verdict, "")
            shown = shorten_key(visible(key), layout.key - 2)
            self.add_row(
                Text("  " + shown),
                Text(visible(old), justify="right"),
                Text(visible(new), style=style, justify="right"),
                Text(visible(delta), style=style, justify="right"),
                Text(visible(pct), style=style, justify="right"),
                Text(visible(verdict), style=style),
            )
            self.full_keys.append(f"{section} {key}")
        if not rows:
            self.add_row(Text("(no differences)", style="dim"), *blank)
            self.full_keys.append("")

    def key_at_cursor(self) -> str:
        """The full (unshortened) key of the row under the cursor."""
        if 0 <= self.cursor_row < len(self.full_keys):
            return self.full_keys[self.cursor_row]
        return ""
