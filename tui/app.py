"""The evledger reviewer's terminal UI."""

from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

from textual import on, work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import Screen
from textual.worker import get_current_worker

from ledger.api import Ledger, open_ledger
from ledger.chain import Entry, parse_entry
from ledger.errors import EvledgerError
from ledger.index import Index, cached_index, checked_index, load_index
from ledger.store import entry_path
from ledger.verify import Problem, Report
from ledger.view import TrustAnchor, VerifiedView
from tui.commands import EntryProvider
from tui.messages import (
    IndexLoaded,
    IndexProgress,
    VerifyFailed,
    VerifyFinished,
    VerifyProgress,
)
from tui.widgets.entry_list import marks_for


class VerifyCancelledError(Exception):
    """Raised inside the verify worker's progress callback to stop early."""


class EvledgerApp(App[None]):
    """Browse, verify, diff, gate and audit an evledger ledger."""

    CSS_PATH = "evledger.tcss"
    TITLE = "evledger"
    COMMANDS = App.COMMANDS | {EntryProvider}
    BINDINGS: list[BindingType] = [  # noqa: RUF012
        Binding("q", "quit", "Quit", id="quit"),
        Binding("question_mark,f1", "help", "Help", key_display="?", id="help"),
    ]

    index: reactive[Index | None] = reactive(None, init=False)
    """The entry index (untrusted listing metadata); None while loading."""
    report: reactive[Report | None] = reactive(None, init=False)
    """The newest verification report; None until verification finished."""
    verify_total: reactive[int] = reactive(0, init=False)
    """Entries verification will check (0: not running)."""
    verify_done: reactive[int] = reactive(0, init=False)
    """Entries verification has checked so far."""
    index_total: reactive[int] = reactive(0, init=False)
    """Entries the index build must read (0: not building)."""
    index_done: reactive[int] = reactive(0, init=False)
    """Entries the index build has read so far."""

    def __init__(
        self,
        ledger: Ledger | Path | str | None = None,
        *,
        verify_on_start: bool = True,
        use_cache: bool = True,
        anchor: TrustAnchor | None = None,
    ) -> None:
        super().__init__()
        self.ledger = ledger if isinstance(ledger, Ledger) else open_ledger(ledger)
        self.anchor = anchor or TrustAnchor()
        """The reviewer's pins (`evledger tui --trusted-key/--genesis`)."""
        self.verified: VerifiedView | None = None
        """The verified view of the newest verification (None until one finished)."""
        self.verify_on_start = verify_on_start
        self.use_cache = use_cache
        self.status: dict[int, str] = {}
        """Status marks (signature, chain, schema, trust) by seq, from the report."""
        self.problems: dict[int | None, list[Problem]] = {}
        """Problems of the newest report, by seq (None: ledger-wide)."""
        self.signer_names: dict[str, str] = {}
        """keyid -> key name, from the newest report's trusted keys."""
        self.marked: tuple[int, ...] = ()
        """Seqs marked for a diff."""
        self.index_seconds = 0.0
        """How long loading the index took (for the benchmark)."""
        self.index_cached = False
        """Whether the index came straight from the cache."""
        self.sub_title = str(self.ledger.root)

    # ------------------------------------------------------------ lifecycle
    def on_mount(self) -> None:
        """Show the ledger list at once; load the index and verify in the background."""
        from tui.screens.browse import BrowseScreen

        self.push_screen(BrowseScreen())
        self.load_index()

    @work(thread=True, exclusive=True, group="index", exit_on_error=False)
    def load_index(self) -> None:
        """Load the index from cache, or build/update it (posts IndexProgress, IndexLoaded)."""
        start = time.perf_counter()
        store = self.ledger.store
        index = cached_index(store) if self.use_cache else None
        cached = index is not None
        if index is None:
            index = load_index(
                store,
                use_cache=self.use_cache,
                progress=lambda d, t: self.post_message(IndexProgress(d, t)),
                preview=lambda head: self.post_message(
                    IndexLoaded(head, time.perf_counter() - start, False, partial=True)
                ),
            )
        self.post_message(IndexLoaded(index, time.perf_counter() - start, cached))
        index.search_text()  # warm the search haystack off the UI thread

    @on(IndexProgress)
    def _index_progress(self, message: IndexProgress) -> None:
        if self.index is None or self.index_total:  # not once the full index is in
            self.index_total, self.index_done = message.total, message.done

    @on(IndexLoaded)
    def _index_loaded(self, message: IndexLoaded) -> None:
        if message.partial and self.index is not None:
            return  # the full index won the race
        self.index_seconds = message.seconds
        self.index_cached = message.cached
        if not message.partial:
            self.index_total = self.index_done = 0
        self.index = message.index
        if message.partial:
            return  # first screen now; verification waits for the full index
        if self.verify_on_start:
            self.call_after_refresh(self.verify_ledger)  # paint the list first

    @work(thread=True, exclusive=True, group="verify", exit_on_error=False)
    def verify_ledger(self) -> None:
        """Full verification in a thread; posts VerifyProgress and VerifyFinished."""
        worker = get_current_worker()
        start = time.perf_counter()

        def progress(done: int, total: int) -> None:
            if worker.is_cancelled:
                raise VerifyCancelledError
            self.post_message(VerifyProgress(done, total))

        try:
            view = self.ledger.view(self.anchor, progress=progress)
        except VerifyCancelledError:
            return
        except EvledgerError as e:
            self.post_message(VerifyFailed(str(e)))
            return
        index, differed = (self.index, 0) if self.index is None else checked_index(self.index, view)
        self.verified = view
        self.post_message(
            VerifyFinished(view.report, time.perf_counter() - start, view, index, differed)
        )

    def current_view(self) -> VerifiedView:
        """The verified view (blocking: call from a worker); every verdict screen reads it."""
        if self.verified is None:
            self.verified = self.ledger.view(self.anchor)
        return self.verified

    @on(VerifyProgress)
    def _verify_progress(self, message: VerifyProgress) -> None:
        self.verify_total, self.verify_done = message.total, message.done

    @on(VerifyFinished)
    def _verify_finished(self, message: VerifyFinished) -> None:
        report = message.report
        problems: dict[int | None, list[Problem]] = {}
        for p in report.problems:
            problems.setdefault(p.seq, []).append(p)
        self.problems = problems
        self.signer_names = {k["keyid"]: k["name"] for k in report.trusted_keys}
        if self.index is not None:
            empty: list[Problem] = []
            self.status = {s: marks_for(problems.get(s, empty)) for s in self.index.seq}
        self.verify_total = 0
        if message.index is not None and message.index_differed:
            self.index = message.index
            self.notify(
                f"{message.index_differed} cached listing rows did not match the verified "
                "entries; they were recomputed",
                title="index cache checked",
                severity="warning",
            )
        self.report = report

    @on(VerifyFailed)
    def _verify_failed(self, message: VerifyFailed) -> None:
        self.verify_total = 0
        self.notify(message.error, title="verification could not run", severity="error")

    # ------------------------------------------------------------ helpers
    def read_entry(self, seq: int) -> Entry:
        """Entry `seq` at HEAD (blocking: call from a worker)."""
        raw = self.ledger.store.read_path("HEAD", entry_path(seq))
        if raw is None:
            raise EvledgerError(f"entry {seq} is missing")
        return parse_entry(raw, entry_path(seq))

    def open_entry(self, seq: int) -> None:
        """Push the entry screen for `seq`."""
        from tui.screens.entry import EntryScreen

        self.push_screen(EntryScreen(seq))

    def open_diff(self, left: int, right: int) -> None:
        """Push the diff screen for two seqs."""
        from tui.screens.diff import DiffScreen

        self.push_screen(DiffScreen(left, right))

    def open_gates(self) -> None:
        """Push the gates screen."""
        from tui.screens.gates import GatesScreen

        self.push_screen(GatesScreen())

    def open_audit(self) -> None:
        """Push the audit screen."""
        from tui.screens.audit import AuditScreen

        self.push_screen(AuditScreen())

    def open_verify(self) -> None:
        """Push the verify screen."""
        from tui.screens.verify import VerifyScreen

        self.push_screen(VerifyScreen())

    def jump_to_entry(self, seq: int) -> None:
        """Open entry `seq` on top of the current screen, with the list's cursor on it too."""
        from tui.screens.browse import BrowseScreen

        for screen in self.screen_stack:
            if isinstance(screen, BrowseScreen):
                screen.focus_seq(seq)
        self.open_entry(seq)

    # ------------------------------------------------------------ actions
    def action_help(self) -> None:
        """Show the keys of the current screen."""
        from tui.screens.help import HelpScreen

        if isinstance(self.screen, HelpScreen):
            return
        self.push_screen(HelpScreen(self.screen))

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        """Palette: the system commands plus one entry per action of the current screen."""
        yield from super().get_system_commands(screen)
        seen: set[str] = set()
        for key, active in screen.active_bindings.items():
            binding = active.binding
            if binding.action in seen or not binding.description or not active.enabled:
                continue
            if binding.action in ("quit", "command_palette", "help"):
                continue
            seen.add(binding.action)
            node = active.node

            async def run(action: str = binding.action, node: object = node) -> None:
                await self.run_action(action, node)  # type: ignore[arg-type]

            yield SystemCommand(binding.description, binding.tooltip or f"key: {key}", run)
        yield SystemCommand("Ledger: verify again", "Re-run full verification", self.verify_ledger)
        yield SystemCommand("Open verification", "Problems grouped by code", self.open_verify)
        yield SystemCommand("Open gates", "GO / NO-GO per claim", self.open_gates)
        yield SystemCommand("Open audit", "Claims vs reproductions vs physics", self.open_audit)
        yield SystemCommand("Help", "Keys of this screen", self.action_help)
