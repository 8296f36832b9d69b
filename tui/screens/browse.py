"""The ledger screen: every entry in one list, with filter, sort, search and status marks."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.widgets import Footer, Input, ProgressBar, Static

from ledger.index import Index
from ledger.textsafe import safe_text
from ledger.verify import Report
from tui.messages import EntryMarked, EntrySelected
from tui.widgets.entry_list import EntryList

if TYPE_CHECKING:
    from tui.app import EvledgerApp

#: columns `s` cycles through
SORTS = ("seq", "time", "runner", "kind", "ratio_fp16_effective", "cos_min", "peak_rss_mb")


def parse_filter(text: str) -> dict[str, str]:
    """`runner:static kind:evidence signer:alice` -> {field: value}; a bare word is a runner."""
    out: dict[str, str] = {}
    for token in text.split():
        key, sep, value = token.partition(":")
        if not sep:
            key, value = "runner", token
        if key in ("runner", "kind", "signer") and value:
            out[key] = value
    return out


class BrowseScreen(Screen[None]):
    """All entries; the first screen."""

    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("escape", "back", "Back", show=False, priority=True, id="back"),
        Binding("slash", "search", "Search", key_display="/", id="search"),
        Binding("n", "next_match", "Next match", show=False, id="next-match"),
        Binding("N", "previous_match", "Previous match", show=False, id="previous-match"),
        Binding("f", "filter", "Filter", id="filter"),
        Binding("c", "clear_filter", "Clear filter", show=False, id="clear-filter"),
        Binding("s", "sort", "Sort", show=False, id="sort"),
        Binding("r", "reverse_sort", "Reverse sort", show=False, id="reverse-sort"),
        Binding("d", "diff", "Diff", id="diff"),
        Binding("v", "verify", "Verify", show=False, id="verify-all"),
        Binding("p", "gates", "Gates", id="gates"),
        Binding("a", "audit", "Audit", id="audit"),
    ]

    sort_key: reactive[str] = reactive("seq", init=False)
    """Column the list is sorted by."""
    sort_reverse: reactive[bool] = reactive(False, init=False)
    """Sort descending."""
    filters: reactive[dict[str, str]] = reactive(dict, init=False)
    """Active filters: runner / kind / signer."""
    search_text: reactive[str] = reactive("", init=False)
    """The current search (empty: none)."""

    def __init__(self) -> None:
        super().__init__()
        self._matches: list[int] = []

    @property
    def evapp(self) -> EvledgerApp:
        """The app, typed."""
        return cast("EvledgerApp", self.app)

    def compose(self) -> ComposeResult:
        """Summary line, criteria line, the list, the inputs, the progress bar, the footer."""
        yield Static("Loading the index…", id="summary")
        yield Static("", id="criteria")
        yield EntryList(id="entries")
        yield Input(placeholder="search seq, digest, runner, kind, subject…", id="search-input")
        yield Input(
            placeholder="runner:NAME kind:KIND signer:NAME|KEYID (empty clears)",
            id="filter-input",
        )
        with Horizontal(id="verify-row"):
            yield Static("verifying", id="verify-label")
            yield ProgressBar(total=None, show_eta=False, id="verify-bar")
        yield Footer(compact=True, show_command_palette=False)

    def on_mount(self) -> None:
        """Follow the app's index, report and verification progress."""
        self.watch(self.evapp, "index", self._index_changed)
        self.watch(self.evapp, "report", self._report_changed)
        self.watch(self.evapp, "verify_done", self._progress_changed)
        self.watch(self.evapp, "verify_total", self._progress_changed)
        self.watch(self.evapp, "index_done", lambda _v: self._update_summary())
        self.query_one(EntryList).focus()

    @property
    def entries(self) -> EntryList:
        """The list widget."""
        return self.query_one(EntryList)

    # ------------------------------------------------------------ app state
    def _index_changed(self, index: Index | None) -> None:
        if index is not None:
            self._apply()

    def _report_changed(self, report: Report | None) -> None:
        app = self.evapp
        self.entries.set_status(app.status, app.signer_names, report is not None)
        self._update_summary()

    def _progress_changed(self, _value: int) -> None:
        app = self.evapp
        running = app.verify_total > 0
        self.set_class(running, "-verifying")
        if running:
            bar = self.query_one("#verify-bar", ProgressBar)
            bar.update(total=app.verify_total, progress=app.verify_done)
            self.query_one("#verify-label", Static).update(
                f"verifying {app.verify_done}/{app.verify_total} "
            )
        self._update_summary()

    def _update_summary(self) -> None:
        app = self.evapp
        index = app.index
        if index is None:
            return
        if app.index_total:
            parts = [
                f"indexing {app.index_done:,}/{app.index_total:,}: showing the first "
                f"{len(index):,} entries"
            ]
        else:
            parts = [f"{len(index)} entries", "index cached" if app.index_cached else "index built"]
        report = app.report
        if app.verify_total:
            parts.append(f"verifying {app.verify_done}/{app.verify_total}")
        elif report is None:
            parts.append("not verified yet (v)")
        elif report.ok:
            parts.append(f"✓ verified ({report.trust_anchor})")
        else:
            bad = len({p.seq for p in report.problems})
            parts.append(f"✗ {len(report.problems)} problems in {bad} places (v for details)")
        self.set_class(report is not None and not report.ok, "-failed")
        self.set_class(report is not None and report.ok, "-verified")
        self.query_one("#summary", Static).update(safe_text(" · ".join(parts)))

    # ------------------------------------------------------------ list contents
    def _apply(self) -> None:
        """Recompute the shown rows from filters and sort (O(n) over plain lists)."""
        index = self.evapp.index
        if index is None:
            return
        f = self.filters
        signer = f.get("signer")
        if signer is not None:
            names = {n: k for k, n in self.evapp.signer_names.items()}
            signer = names.get(signer, signer)
        if f:
            rows = index.select(runner=f.get("runner"), kind=f.get("kind"), signer=signer)
        else:
            rows = list(range(len(index)))
        if self.sort_key != "seq" or self.sort_reverse:
            rows = index.order(rows, self.sort_key, self.sort_reverse)
        self.entries.show(index, rows)
        if self.search_text:
            self._run_search(jump=False)
        self._update_criteria()
        self._update_summary()

    def _update_criteria(self) -> None:
        index = self.evapp.index
        shown = len(self.entries.rows)
        total = len(index) if index else 0
        parts = [
            f"{shown} of {total} shown",
            f"sort {self.sort_key}{' ↓' if self.sort_reverse else ''} (s r)",
        ]
        if self.filters:
            parts.append(
                "filter " + " ".join(f"{k}:{v}" for k, v in self.filters.items()) + " (c clears)"
            )
        if self.search_text:
            parts.append(f"search {self.search_text!r}: {len(self._matches)} matches (n N)")
        self.query_one("#criteria", Static).update(safe_text(" · ".join(parts)))

    def watch_sort_key(self) -> None:
        """Re-sort."""
        self._apply()

    def watch_sort_reverse(self) -> None:
        """Re-sort."""
        self._apply()

    def watch_filters(self) -> None:
        """Re-filter."""
        self._apply()

    def focus_seq(self, seq: int) -> None:
        """Put the cursor on `seq` (clearing filters if it is hidden)."""
        if not self.entries.go_to_seq(seq) and self.filters:
            self.filters = {}
            self.entries.go_to_seq(seq)

    # ------------------------------------------------------------ search
    def _run_search(self, *, jump: bool = True) -> None:
        index = self.evapp.index
        if index is None:
            return
        found = set(index.search(self.search_text)) if self.search_text else set()
        rows = self.entries.rows
        self._matches = [n for n, pos in enumerate(rows) if pos in found]
        self.entries.set_matches(found)
        if jump:
            self._jump(1, include_current=True)
        self._update_criteria()

    def _jump(self, direction: int, *, include_current: bool = False) -> None:
        if not self._matches:
            if self.search_text:
                self.notify(f"no match for {self.search_text!r}", severity="warning")
            return
        cur = self.entries.cursor
        if direction > 0:
            after = [m for m in self._matches if m > cur or (include_current and m == cur)]
            target = after[0] if after else self._matches[0]
        else:
            before = [m for m in self._matches if m < cur]
            target = before[-1] if before else self._matches[-1]
        self.entries.cursor = target

    # ------------------------------------------------------------ actions
    def _open_input(self, which: str) -> Input:
        """Show one input box (state class on the box itself: restyling the whole screen
        cost ~80 ms per toggle)."""
        for name in ("search", "filter"):
            self.query_one(f"#{name}-input", Input).set_class(name == which, "-open")
        box = self.query_one(f"#{which}-input", Input)
        box.focus()
        return box

    def action_search(self) -> None:
        """Show the search box."""
        self._open_input("search").value = self.search_text

    def action_filter(self) -> None:
        """Show the filter box."""
        box = self._open_input("filter")
        box.value = " ".join(f"{k}:{v}" for k, v in self.filters.items())

    def _inputs_open(self) -> bool:
        return any(box.has_class("-open") for box in self.query(Input))

    def _close_inputs(self) -> None:
        for box in self.query(Input):
            box.set_class(False, "-open")
        self.entries.focus()

    @on(Input.Submitted, "#search-input")
    def _search_submitted(self, event: Input.Submitted) -> None:
        self.search_text = event.value.strip()
        self._close_inputs()
        self._run_search()

    @on(Input.Submitted, "#filter-input")
    def _filter_submitted(self, event: Input.Submitted) -> None:
        self._close_inputs()
        self.filters = parse_filter(event.value)

    def action_back(self) -> None:
        """Close an open input box; the ledger screen is the root, so nothing else."""
        if self._inputs_open():
            self._close_inputs()

    def action_next_match(self) -> None:
        """Next search match."""
        self._jump(1)

    def action_previous_match(self) -> None:
        """Previous search match."""
        self._jump(-1)

    def action_clear_filter(self) -> None:
        """Drop filters and search."""
        self.search_text = ""
        self._matches = []
        self.entries.set_matches(set())
        self.filters = {}

    def action_sort(self) -> None:
        """Sort by the next column."""
        self.sort_key = SORTS[(SORTS.index(self.sort_key) + 1) % len(SORTS)]

    def action_reverse_sort(self) -> None:
        """Flip the sort direction."""
        self.sort_reverse = not self.sort_reverse

    def action_diff(self) -> None:
        """Diff the two marked entries (or the marked one against the cursor)."""
        marked = list(self.entries.marked)
        current = self.entries.current_seq
        if len(marked) == 1 and current is not None and current != marked[0]:
            marked.append(current)
        if len(marked) != 2:
            self.notify("mark two entries with space or m, then press d", severity="warning")
            return
        left, right = sorted(marked)
        self.evapp.open_diff(left, right)

    def action_verify(self) -> None:
        """Open the verification screen."""
        self.evapp.open_verify()

    def action_gates(self) -> None:
        """Open the gates screen."""
        self.evapp.open_gates()

    def action_audit(self) -> None:
        """Open the audit screen."""
        self.evapp.open_audit()

    @on(EntrySelected)
    def _entry_selected(self, message: EntrySelected) -> None:
        self.evapp.open_entry(message.seq)

    @on(EntryMarked)
    def _entry_marked(self, message: EntryMarked) -> None:
        self.evapp.marked = message.marked
        if len(message.marked) == 2:
            self.notify(f"marked {message.marked[0]} and {message.marked[1]}: press d to diff")
