"""A diff of two entries as a table: section, key, old, new, Δ, Δ%, better/worse in colour."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.widgets import DataTable

VERDICT_STYLE = {
    "better": "bold green",
    "worse": "bold red",
    "added": "cyan",
    "removed": "magenta",
}


def fit_columns(
    table: DataTable[Any], headers: list[str], rows: list[list[str]], max_width: int = 60
) -> None:
    """Add columns sized to their widest plain-text cell (styled cells are not measured)."""
    for n, header in enumerate(headers):
        width = max([len(header), *(len(str(r[n])) for r in rows)])
        table.add_column(header, width=min(width, max_width))


class DiffTable(DataTable[Any]):
    """Rows from `ledger.diff.table_rows`; colour says whether a change is better or worse."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row", zebra_stripes=True)

    def load(self, rows: list[tuple[str, str, str, str, str, str, str]]) -> None:
        """Replace the contents with (section, key, old, new, Δ, Δ%, verdict) rows."""
        self.clear(columns=True)
        headers = ["section", "key", "old", "new", "Δ", "Δ%", ""]
        fit_columns(self, headers, [list(r) for r in rows] or [["", "(no differences)"] + [""] * 5])
        previous = None
        for section, key, old, new, delta, pct, verdict in rows:
            style = VERDICT_STYLE.get(verdict, "")
            shown_section = section if section != previous else ""
            previous = section
            self.add_row(
                Text(shown_section, style="bold"),
                Text(key),
                Text(old),
                Text(new, style=style),
                Text(delta, style=style, justify="right"),
                Text(pct, style=style, justify="right"),
                Text(verdict, style=style),
            )
        if not rows:
            self.add_row("", Text("(no differences)", style="dim"), "", "", "", "", "")
