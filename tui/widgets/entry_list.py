"""The ledger's entry list: a Line-API ScrollView over `ledger.index` (O(visible rows))."""

from __future__ import annotations

from collections.abc import Sequence

from rich.segment import Segment
from textual.binding import Binding, BindingType
from textual.cache import LRUCache
from textual.geometry import Region, Size, Spacing
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from ledger.index import Index
from ledger.textsafe import visible
from ledger.verify import Problem
from tui.messages import EntryMarked, EntrySelected

#: status columns: (header letter, problem codes that make it bad)
MARK_COLUMNS: tuple[tuple[str, frozenset[str]], ...] = (
    ("S", frozenset({"bad-signature", "unverifiable-signature"})),
    (
        "C",
        frozenset(
            {
                "chain-break",
                "out-of-order",
                "missing-entry",
                "binding-mismatch",
                "checkpoint-mismatch",
                "not-append-only",
            }
        ),
    ),
    ("J", frozenset({"schema", "bad-entry", "not-canonical"})),
    (
        "T",
        frozenset(
            {"untrusted-key", "revoked-key", "bad-trust-entry", "no-genesis", "genesis-mismatch"}
        ),
    ),
)
PENDING, GOOD, BAD, UNSURE = "·", "✓", "✗", "?"


def marks_for(problems: Sequence[Problem]) -> str:
    """The four status marks (signature, chain, schema, trust) of one verified entry."""
    codes = {p.code for p in problems}
    out = []
    for _, bad in MARK_COLUMNS:
        hit = codes & bad
        if not hit:
            out.append(GOOD)
        elif hit == {"unverifiable-signature"}:
            out.append(UNSURE)
        else:
            out.append(BAD)
    return "".join(out)


def _fmt_number(value: object, width: int) -> str:
    if value is None or value == "":
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = f"{value:.5g}"
        return text if len(text) <= width else f"{value:.3g}"
    return str(value)


class Column:
    """One column of the list: title, index field, width, alignment."""

    def __init__(self, title: str, field: str, width: int, right: bool = False) -> None:
        self.title, self.field, self.width, self.right = title, field, width, right

    def fit(self, text: str) -> str:
        """`text` padded or cut to the column width."""
        if len(text) > self.width:
            text = text[: max(0, self.width - 1)] + "…"
        return text.rjust(self.width) if self.right else text.ljust(self.width)


def layout(width: int) -> list[Column]:
    """Columns that fit `width` cells (subject takes what is left; some drop on narrow screens)."""
    cols = [
        Column("", "mark", 1),
        Column("seq", "seq", 6, right=True),
        Column("time", "time", 16 if width >= 90 else 11),
        Column("kind", "kind", 12),
        Column("runner", "runner", 16 if width >= 100 else 12),
        Column("ratio", "ratio_fp16_effective", 7, right=True),
        Column("cos_min", "cos_min", 8, right=True),
    ]
    if width >= 100:
        cols.append(Column("rss MB", "peak_rss_mb", 7, right=True))
    if width >= 90:
        cols.append(Column("signer", "keyid", 8))
    cols.append(Column("SCJT", "status", 4))
    used = sum(c.width + 1 for c in cols)
    if width - used >= 8:
        cols.insert(5, Column("subject", "subject", width - used - 1))
    return cols


class EntryList(ScrollView, can_focus=True):
    """Every entry as one line; rows come from the index, strips from an LRU cache."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("down,j", "cursor_down", "Down", show=False, id="cursor-down"),
        Binding("up,k", "cursor_up", "Up", show=False, id="cursor-up"),
        Binding("home,g", "cursor_first", "First", show=False, id="cursor-first"),
        Binding("end,G", "cursor_last", "Last", show=False, id="cursor-last"),
        Binding("pagedown", "cursor_page(1)", "Page down", show=False, id="page-down"),
        Binding("pageup", "cursor_page(-1)", "Page up", show=False, id="page-up"),
        Binding("enter", "open_entry", "Open", id="open-entry"),
        Binding("space,m", "mark_entry", "Mark", id="mark-entry"),
    ]

    COMPONENT_CLASSES = {  # noqa: RUF012
        "entry-list--header",
        "entry-list--cursor",
        "entry-list--marked",
        "entry-list--match",
        "entry-list--good",
        "entry-list--bad",
        "entry-list--pending",
        "entry-list--dim",
    }
    """Styles of the header, cursor row, marked rows, matches and status marks."""

    DEFAULT_CSS = """
    EntryList { height: 1fr; }
    """
    """Structure only; colours live in evledger.tcss."""

    cursor: reactive[int] = reactive(0, init=False, always_update=True)
    """Row (position in the current order) under the cursor."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.index: Index | None = None
        self.rows: list[int] = []
        """Index positions shown, in display order (filtered and sorted)."""
        self.status: dict[int, str] = {}
        """Status marks by seq (filled in by verification)."""
        self.verified = False
        self.marked: list[int] = []
        """Seqs marked for a diff (at most two; the oldest mark drops first)."""
        self.matches: set[int] = set()
        """Index positions matching the current search."""
        self._cache: LRUCache[tuple[int, int, bool], Strip] = LRUCache(1024)
        self._columns: list[Column] = layout(80)
        self._signers: dict[str, str] = {}

    # ------------------------------------------------------------ data
    def show(self, index: Index, rows: Sequence[int] | None = None) -> None:
        """Display `rows` (index positions) of `index`; keeps the cursor on the same entry."""
        current = self.current_seq
        self.index = index
        self.rows = list(range(len(index))) if rows is None else list(rows)
        self._cache.clear()
        self.virtual_size = Size(self.size.width, len(self.rows) + 1)
        target = 0
        if current is not None:
            for n, pos in enumerate(self.rows):
                if index.seq[pos] == current:
                    target = n
                    break
        self.cursor = target
        self.refresh()

    def set_status(self, status: dict[int, str], signers: dict[str, str], verified: bool) -> None:
        """New status marks (by seq) and keyid → signer name."""
        self.status, self._signers, self.verified = status, signers, verified
        self._cache.clear()
        self.refresh()

    def set_matches(self, matches: set[int]) -> None:
        """Highlight these index positions as search matches."""
        self.matches = matches
        self._cache.clear()
        self.refresh()

    @property
    def current_seq(self) -> int | None:
        """Seq of the entry under the cursor."""
        if self.index is None or not self.rows:
            return None
        return self.index.seq[self.rows[min(self.cursor, len(self.rows) - 1)]]

    def go_to_seq(self, seq: int) -> bool:
        """Move the cursor to entry `seq` if it is shown."""
        if self.index is None:
            return False
        pos = self.index.position(seq)
        if pos is None:
            return False
        try:
            self.cursor = self.rows.index(pos)
        except ValueError:
            return False
        return True

    # ------------------------------------------------------------ cursor
    def validate_cursor(self, value: int) -> int:
        """Clamp to the rows shown."""
        return max(0, min(value, len(self.rows) - 1)) if self.rows else 0

    def watch_cursor(self, old: int, new: int) -> None:
        """Redraw (rows are cached per cursor state) and keep the cursor visible."""
        self.refresh()
        self.scroll_to_region(
            Region(0, new + 1, 1, 1), spacing=Spacing(top=1), animate=False, x_axis=False
        )

    def action_cursor_down(self) -> None:
        """Next row."""
        self.cursor += 1

    def action_cursor_up(self) -> None:
        """Previous row."""
        self.cursor -= 1

    def action_cursor_first(self) -> None:
        """First row."""
        self.cursor = 0

    def action_cursor_last(self) -> None:
        """Last row."""
        self.cursor = len(self.rows) - 1

    def action_cursor_page(self, direction: int) -> None:
        """One page down (1) or up (-1)."""
        self.cursor += direction * max(1, self.scrollable_content_region.height - 2)

    def action_open_entry(self) -> None:
        """Open the entry under the cursor."""
        seq = self.current_seq
        if seq is not None:
            self.post_message(EntrySelected(seq))

    def action_mark_entry(self) -> None:
        """Mark (or unmark) the entry under the cursor for a diff."""
        seq = self.current_seq
        if seq is None:
            return
        if seq in self.marked:
            self.marked.remove(seq)
        else:
            self.marked.append(seq)
            del self.marked[:-2]
        self._cache.clear()
        self.refresh()
        self.post_message(EntryMarked(tuple(self.marked)))

    # ------------------------------------------------------------ rendering
    def on_resize(self) -> None:
        """Re-layout the columns for the new width."""
        self._columns = layout(self.scrollable_content_region.width)
        self.virtual_size = Size(self.scrollable_content_region.width, len(self.rows) + 1)
        self._cache.clear()

    def header_text(self) -> str:
        """The column titles as one line."""
        return " ".join(c.fit(c.title) for c in self._columns)

    def render_line(self, y: int) -> Strip:
        """Line `y` of the view: the header on top, then rows from the current scroll offset."""
        width = self.scrollable_content_region.width
        if y == 0:
            style = self.get_component_rich_style("entry-list--header")
            return Strip([Segment(self.header_text().ljust(width)[:width], style)], width)
        _, scroll_y = self.scroll_offset
        row = y - 1 + scroll_y
        if self.index is None or row >= len(self.rows):
            return Strip.blank(width, self.rich_style)
        key = (row, width, row == self.cursor)
        strip = self._cache.get(key)
        if strip is None:
            strip = self._render_row(row, width)
            self._cache[key] = strip
        return strip

    def _cell(self, column: Column, pos: int) -> str:
        assert self.index is not None
        index = self.index
        field = column.field
        if field == "mark":
            return "●" if index.seq[pos] in self.marked else " "
        if field == "seq":
            return str(index.seq[pos])
        if field == "status":
            return self.status.get(index.seq[pos], PENDING * 4)
        if field == "time":
            t = index.cols["time"][pos].replace("T", " ").rstrip("Z")
            return t[:16] if column.width >= 16 else t[5:16]
        if field == "keyid":
            keyid = index.cols["keyid"][pos]
            return self._signers.get(keyid) or keyid[:8]
        if field in index.cols:
            return str(index.cols[field][pos])
        return _fmt_number(index.metrics[field][pos], column.width)

    def _render_row(self, row: int, width: int) -> Strip:
        pos = self.rows[row]
        assert self.index is not None
        seq = self.index.seq[pos]
        base = self.rich_style
        if seq in self.marked:
            base += self.get_component_rich_style("entry-list--marked")
        if pos in self.matches:
            base += self.get_component_rich_style("entry-list--match")
        if row == self.cursor:
            base += self.get_component_rich_style("entry-list--cursor")
        good = base + self.get_component_rich_style("entry-list--good", partial=True)
        bad = base + self.get_component_rich_style("entry-list--bad", partial=True)
        pending = base + self.get_component_rich_style("entry-list--pending", partial=True)
        segments: list[Segment] = []
        for n, column in enumerate(self._columns):
            text = column.fit(visible(self._cell(column, pos)))  # entry text is inert
            if column.field == "status":
                for ch in text:
                    style = good if ch == GOOD else bad if ch in (BAD, UNSURE) else pending
                    segments.append(Segment(ch, style))
            else:
                segments.append(Segment(text, base))
            if n + 1 < len(self._columns):
                segments.append(Segment(" ", base))
        used = sum(len(s.text) for s in segments)
        if used < width:
            segments.append(Segment(" " * (width - used), base))
        return Strip(segments).crop(0, width)
