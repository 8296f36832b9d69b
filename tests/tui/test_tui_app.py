"""The real app on real ledgers, driven by Pilot."""

from __future__ import annotations

import subprocess
import sys

from evidence_factory import add, statement
from legacy import LEGACY_SAMPLES
from textual.message import Message
from textual.widgets import DataTable, Tree

from ledger.api import Ledger
from tui.app import EvledgerApp
from tui.messages import IndexLoaded, VerifyFinished, VerifyProgress
from tui.screens.audit import AuditScreen
from tui.screens.browse import BrowseScreen
from tui.screens.diff import DiffScreen
from tui.screens.entry import EntryScreen
from tui.screens.gates import GatesScreen
from tui.screens.help import HelpScreen
from tui.screens.verify import VerifyScreen
from tui.widgets.diff_table import DiffTable
from tui.widgets.entry_list import EntryList

SIZE = (120, 40)


async def settle(app: EvledgerApp, pilot: object) -> None:
    """Wait for every worker, then for the messages they posted."""
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]
    await app.workers.wait_for_complete()
    await pilot.pause()  # type: ignore[attr-defined]


async def test_opens_lists_and_verifies(review_ledger: Ledger) -> None:
    seen: list[Message] = []
    app = EvledgerApp(review_ledger)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, BrowseScreen)
        entries = app.screen.query_one(EntryList)
        assert len(entries.rows) == 9
        wanted = IndexLoaded | VerifyProgress | VerifyFinished
        kinds = [type(m) for m in seen if isinstance(m, wanted)]
        assert kinds[0] is IndexLoaded and kinds[-1] is VerifyFinished
        assert VerifyProgress in kinds
        assert app.report is not None and app.report.ok, app.report.problems
        assert set(app.status.values()) == {"✓✓✓✓"}


def browse(app: EvledgerApp) -> BrowseScreen:
    """The ledger screen (bottom of the stack)."""
    screen = next(s for s in app.screen_stack if isinstance(s, BrowseScreen))
    return screen


async def test_navigation_keys(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        entries = browse(app).entries
        assert entries.current_seq == 0
        await pilot.press("j", "j")
        assert entries.current_seq == 2
        await pilot.press("k")
        assert entries.current_seq == 1
        await pilot.press("G")
        assert entries.current_seq == 8
        await pilot.press("g")
        assert entries.current_seq == 0
        await pilot.press("s")  # sort by time, then runner
        await pilot.press("s")
        assert browse(app).sort_key == "runner"
        await pilot.press("r")
        assert browse(app).sort_reverse


async def test_filter_by_runner_and_kind(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("f")
        await pilot.press(*"runner:static")
        await pilot.press("enter")
        screen = browse(app)
        assert screen.filters == {"runner": "static"}
        seqs = [app.index.seq[p] for p in screen.entries.rows]  # type: ignore[union-attr]
        assert seqs == [3, 4, 7, 8]
        await pilot.press("f", "ctrl+a", "ctrl+k", *"kind:reproduction", "enter")
        assert [app.index.seq[p] for p in screen.entries.rows] == [8]  # type: ignore[union-attr]
        await pilot.press("c")
        assert len(screen.entries.rows) == 9


async def test_search_and_next_previous(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("slash", *"pareto", "enter")
        entries = browse(app).entries
        assert entries.current_seq == 5
        await pilot.press("slash", "ctrl+a", "ctrl+k", *"static", "enter")
        assert entries.current_seq == 7  # the first match at or after the cursor (5)
        await pilot.press("n")
        assert entries.current_seq == 8
        await pilot.press("n")  # wraps around
        assert entries.current_seq == 3
        await pilot.press("N")
        assert entries.current_seq == 8
        await pilot.press("escape")  # nothing open: escape is harmless on the root screen
        assert isinstance(app.screen, BrowseScreen)


async def test_open_entry_and_back(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "j", "j", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EntryScreen)
        assert app.screen.entry is not None and app.screen.entry.seq == 3
        text = str(app.screen.query_one("#entry-signature").render())
        assert "alice, trusted since seq 0, not revoked" in text
        chain = str(app.screen.query_one("#entry-chain").render())
        assert "included in the verified tree of 9 entries" in chain
        repro = app.screen.query_one("#entry-reproductions", DataTable)
        assert repro.get_row_at(0)[0] == "8" and str(repro.get_row_at(0)[2]) == "reproduced"
        await pilot.press("t")
        await pilot.press("J")
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)


async def test_mark_two_and_diff(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "j", "j", "space", "j", "m", "d")
        await settle(app, pilot)
        assert isinstance(app.screen, DiffScreen)
        assert app.marked == (3, 4)
        table = app.screen.query_one(DiffTable)
        keys = {
            table.full_keys[r].split(" ", 1)[-1]: table.get_row_at(r)
            for r in range(table.row_count)
            if table.full_keys[r]
        }
        ratio = keys["ratio_fp16_effective"]
        assert (str(ratio[1]), str(ratio[2]), str(ratio[5])) == ("3.9", "5.1", "better")
        assert str(keys["cos_min"][5]) == "worse"
        assert "threads" in keys  # environment change
        assert "encoder.layer.0.attention.self.query.weight.cos" in keys  # per-matrix row
        await pilot.press("A")
        assert table.row_count > len(keys)
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)


async def test_diff_needs_two_marks(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("d")
        assert isinstance(app.screen, BrowseScreen)


async def test_gates_banner_and_jump(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert isinstance(app.screen, GatesScreen)
        result = app.screen.result
        assert result is not None
        banner = str(app.screen.query_one("#gate-banner").render())
        assert result.outcome in banner
        assert app.screen.has_class("-go") == result.go
        claim = next(c for c in result.claims if c.source is not None)
        row = result.claims.index(claim)
        table = app.screen.query_one("#gate-claims", DataTable)
        table.move_cursor(row=row)
        await pilot.press("enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EntryScreen) and app.screen.seq == claim.source.seq


async def test_gates_no_go_on_legacy_only(ledger: Ledger) -> None:
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    app = EvledgerApp(ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        assert app.screen.has_class("-no-go")
        assert "NO-GO" in str(app.screen.query_one("#gate-banner").render())


async def test_tampered_entry_shows_bad(tampered_ledger: Ledger) -> None:
    app = EvledgerApp(tampered_ledger)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.report is not None and not app.report.ok
        assert app.status[4][0] == "✗"  # signature
        assert app.status[5][1] == "✗"  # chain: 5 no longer links to the changed bytes
        assert all(app.status[s] == "✓✓✓✓" for s in (0, 1, 2, 3, 6, 7, 8))
        assert browse(app).has_class("-failed")
        await pilot.press("v")
        await settle(app, pilot)
        assert isinstance(app.screen, VerifyScreen)
        tree = app.screen.query_one(Tree)
        codes = [str(n.label).split(" ")[0] for n in tree.root.children]
        assert codes == ["bad-signature", "chain-break"]
        bad = tree.root.children[0].children[0]
        tree.select_node(bad)
        await settle(app, pilot)
        assert isinstance(app.screen, EntryScreen) and app.screen.seq == 4
        assert app.screen.has_class("-failed")


async def test_verify_screen_clean(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        assert app.report is None
        await pilot.press("v")
        await settle(app, pilot)
        assert app.report is not None and app.report.ok
        assert app.screen.has_class("-verified")
        await pilot.press("r")
        await settle(app, pilot)
        assert app.report.ok


async def test_audit_screen(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        assert isinstance(app.screen, AuditScreen)
        table = app.screen.query_one("#audit-claims", DataTable)
        rows = [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]
        by_seq = {r[1]: r for r in rows}
        assert by_seq["7"][4].startswith("needs-reproduction")  # 30x at cos 0.99, no bound
        assert by_seq["3"][6].startswith("reproduced")


async def test_audit_screen_shows_the_recorded_data_bound(review_ledger: Ledger) -> None:
    """A claim above the Gaussian reference within its weights' bound says both figures."""
    st = statement("pareto", {"ratio_fp16_effective": 6.2, "cos_min": 0.99, "cos_mean": 0.995})
    st["predicate"]["rate_distortion"] = {
        "model": "gaussian-reference",
        "data_bound": {"bits_per_weight": 2.5, "error_bits": 0.03},
    }
    [entry] = add(review_ledger, st)
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("a")
        await settle(app, pilot)
        table = app.screen.query_one("#audit-claims", DataTable)
        rows = [[str(c) for c in table.get_row_at(r)] for r in range(table.row_count)]
        [row] = [r for r in rows if r[1] == str(entry.seq)]
        assert row[4] == "within-data-bound (ref 5.66x, data bound 6.48x)"


async def test_help_and_palette(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SIZE) as pilot:
        await settle(app, pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert ("/", "Search") in app.screen.rows
        await pilot.press("escape")
        assert isinstance(app.screen, BrowseScreen)
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Search", "Filter", "Diff", "Gates", "Audit", "Open verification"):
            assert wanted in titles


async def test_cached_index_is_reused_and_updated(review_ledger: Ledger) -> None:
    from ledger.index import cached_index, load_index

    first = load_index(review_ledger.store)
    assert cached_index(review_ledger.store) is not None
    review_ledger.append_files(LEGACY_SAMPLES[:1], key_name="alice")
    assert cached_index(review_ledger.store) is None  # new commit: not cached yet
    second = load_index(review_ledger.store)
    assert len(second) == len(first) + 1
    assert second.cols["digest"][: len(first)] == first.cols["digest"]


def test_core_never_imports_textual() -> None:
    code = (
        "import sys, evledger.cli, ledger.api, ledger.verify, ledger.index, runners.registry; "
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.')); "
        "print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr


async def test_first_rows_show_before_a_large_index_is_built(
    review_ledger: Ledger, monkeypatch: object
) -> None:
    """A partial index (the first rows) comes first; verification waits for the full one."""
    import ledger.index

    monkeypatch.setattr(ledger.index, "PREVIEW_ROWS", 3)  # type: ignore[attr-defined]
    seen: list[Message] = []
    app = EvledgerApp(review_ledger, use_cache=False)
    async with app.run_test(size=SIZE, message_hook=seen.append) as pilot:
        await settle(app, pilot)
        loaded = [m for m in seen if isinstance(m, IndexLoaded)]
        assert [m.partial for m in loaded] == [True, False]
        assert len(loaded[0].index) == 3 and len(loaded[1].index) == 9
        first_verify = next(i for i, m in enumerate(seen) if isinstance(m, VerifyProgress))
        assert first_verify > seen.index(loaded[1])
        assert len(browse(app).entries.rows) == 9 and app.index_total == 0
