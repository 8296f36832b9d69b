"""The app at 80x24 (and wide): values whole, headline metrics first, footers and headers
that fit, entry text inert. Real app, real ledger, driven by Pilot."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import STATIC_4BIT, runner_statement, write_fixed_key
from textual.widgets import DataTable, Footer

from ledger.api import Ledger, Prepared, init_ledger
from ledger.evidence import fmt_metric
from tui.app import EvledgerApp
from tui.screens.browse import BrowseScreen
from tui.screens.diff import DiffScreen
from tui.screens.entry import EntryScreen
from tui.screens.gates import GatesScreen
from tui.widgets.diff_table import DiffTable, shorten_key

SMALL = (80, 24)
WIDE = (160, 48)


async def settle(app: EvledgerApp, pilot: Any) -> None:
    """Wait for every worker, then for the messages they posted."""
    for _ in range(2):
        await app.workers.wait_for_complete()
        await pilot.pause()


def screen_text(app: EvledgerApp) -> list[str]:
    """What the terminal shows, line by line."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


@pytest.mark.parametrize("size", [SMALL, WIDE])
async def test_diff_values_are_never_cut(review_ledger: Ledger, size: tuple[int, int]) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "j", "j", "space", "j", "space", "d")
        await settle(app, pilot)
        assert isinstance(app.screen, DiffScreen)
        text = "\n".join(screen_text(app))
        # per-matrix byte counts (7 and 8 digits), their deltas and percentages, whole
        for value in ("6054912", "4541184", "-1513728", "24219648", "18164736", "-6054912"):
            assert f" {value} " in text, value
        for value in ("+30.77%", "-25.00%", "+100.00%", "better", "worse"):
            assert value in text, value
        table = app.screen.query_one(DiffTable)
        assert table.columns_fit.total <= size[0] - 2  # no sideways scrolling needed
        lines = screen_text(app)
        row = next(line for line in lines if "6054912" in line and "4541184" in line)
        assert row.rstrip().endswith("better")  # right-aligned values, verdict last
        # the key column is compact at 80 and shows the full key of the cursor row below
        if size == SMALL:
            assert "encoder.layer.0.attention.self.query.weight.bytes" not in text
            assert "e.l.0.a.s." in text
        keys = table.full_keys
        table.move_cursor(row=keys.index("rows encoder.layer.0.attention.self.query.weight.bytes"))
        await pilot.pause()
        footer_line = screen_text(app)[-2]
        assert "rows encoder.layer.0.attention.self.query.weight.bytes" in footer_line
        assert "↑↓" in footer_line


def test_shorten_key_keeps_layer_and_metric() -> None:
    key = "encoder.layer.11.attention.self.query.weight.cos"
    assert shorten_key(key, 100) == key
    short = shorten_key(key, 26)
    assert len(short) <= 26 and ".11." in short and short.endswith("weight.cos")
    assert len(shorten_key(key, 8)) == 8


@pytest.mark.parametrize("size", [SMALL, WIDE])
async def test_entry_shows_headline_metrics_first(
    review_ledger: Ledger, size: tuple[int, int]
) -> None:
    app = EvledgerApp(review_ledger)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("j", "j", "j", "enter")
        await settle(app, pilot)
        assert isinstance(app.screen, EntryScreen)
        lines = screen_text(app)
        top = "\n".join(lines[:8])  # above the fold, right under the tabs
        for shown in ("ratio_fp16_effective 3.9x", "cos_min 0.995", "out_cos 0.998"):
            assert shown in top, shown
        assert "determinism Δ 0" in top and "digests equal" in top
        assert "D Determinism" in top and "r Reproductions" in top  # the way to the rest
        await pilot.press("r")
        await pilot.pause()
        text = "\n".join(screen_text(app))
        assert "reproduced" in text and "Reproductions of this entry" in text
        assert app.screen.focused is not None
        assert app.screen.focused.id == "entry-reproductions"
        await pilot.press("D")
        await pilot.pause()
        assert "all per-metric deltas are 0" in "\n".join(screen_text(app))


SCREEN_KEYS = {
    "browse": (),
    "entry": ("j", "enter"),
    "diff": ("j", "space", "j", "space", "d"),
    "gates": ("p",),
    "audit": ("a",),
    "verify": ("v",),
}


@pytest.mark.parametrize("screen", list(SCREEN_KEYS))
async def test_footer_fits_80_columns(review_ledger: Ledger, screen: str) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        await pilot.press(*SCREEN_KEYS[screen])
        await settle(app, pilot)
        footer = app.screen.query_one(Footer)
        shown = [
            b.binding.description
            for b in app.screen.active_bindings.values()
            if b.binding.show and b.binding.description
        ]
        last = screen_text(app)[-1]
        assert footer.region.width == SMALL[0]
        for description in shown:
            assert description in last, (description, last)
        assert last.rstrip().endswith("? Help") or last.rstrip().endswith("Help")


async def test_filter_header_is_not_cut(review_ledger: Ledger) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=SMALL) as pilot:
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, BrowseScreen)
        screen.filters = {"runner": "static", "kind": "evidence"}
        screen.search_text = "model"
        screen._run_search(jump=False)
        await pilot.pause()
        text = "\n".join(screen_text(app)[:4])
        for part in ("3 of 9 shown", "filter runner:static kind:evidence (c clears)", "(n N)"):
            assert part in text.replace("\n ", " "), (part, text)


@pytest.mark.parametrize("size", [SMALL, WIDE])
async def test_gate_checks_fold_instead_of_cut(
    review_ledger: Ledger, size: tuple[int, int]
) -> None:
    app = EvledgerApp(review_ledger, verify_on_start=False)
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await pilot.press("p")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, GatesScreen) and screen.result is not None
        table = screen.query_one(DataTable)
        assert sum(c.width + 2 for c in table.columns.values()) <= size[0] - 2, [
            (c.label, c.width) for c in table.columns.values()
        ]
        assert screen.result.claims
        for row, claim in enumerate(screen.result.claims):
            table.move_cursor(row=row)  # scrolls the row into view: rows fold, so they grow
            await pilot.pause(0.5)
            lines = screen_text(app)
            header = next(n for n, line in enumerate(lines) if "checks (observed)" in line)
            top = next(
                n for n in range(header + 1, len(lines)) if lines[n].split()[:1] == [claim.id]
            )
            height = next(r.height for k, r in table.rows.items() if k.value == claim.id)
            cell = " ".join(line.strip() for line in lines[top : top + height])
            for check in claim.checks:
                for word in (check.metric, fmt_metric(check.observed)):
                    assert word in cell, (claim.id, word, "\n".join(lines))


HOSTILE = "[bold red]pwn[/] \x1b[2J\x1b]8;;http://x\x07\u202eevil"


@pytest.fixture
def hostile_ledger(home: Any, tmp_path: Any, fixed_time: None) -> Ledger:
    """A ledger with one entry whose runner name and metric key carry markup and escapes."""
    write_fixed_key(home)
    led, _ = init_ledger(tmp_path / "hostile", "alice")
    st = runner_statement("static", {"bits": 4}, {**STATIC_4BIT, HOSTILE: 1.0})
    st["predicate"]["runner"]["name"] = HOSTILE
    st["subject"][0]["name"] = HOSTILE
    st["predicate"]["params"] = {HOSTILE: HOSTILE + "\x9b2J"}  # a C1 CSI JSON does not escape
    led.append_prepared([Prepared(st, "evidence", "test")], key_name="alice")
    return led


@pytest.mark.parametrize("keys", [(), ("j", "enter"), ("j", "enter", "t"), ("j", "enter", "J")])
async def test_entry_text_is_inert(hostile_ledger: Ledger, keys: tuple[str, ...]) -> None:
    app = EvledgerApp(hostile_ledger)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press(*keys)
        await settle(app, pilot)
        text = "\n".join(screen_text(app))
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text
        assert "\x9b" not in text
        assert "\\x1b" in text and "\\u202e" in text  # shown as visible escapes
        assert "[bold red]pwn" in text  # markup shown literally, never applied


async def test_palette_shows_entry_text_inert(hostile_ledger: Ledger) -> None:
    app = EvledgerApp(hostile_ledger, verify_on_start=False)
    async with app.run_test(size=WIDE) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"pwn")
        for _ in range(4):
            await pilot.pause(0.1)
        text = "\n".join(screen_text(app))
        assert "Open entry 1" in text
        assert "[bold red]pwn" in text and "\x1b" not in text and "\u202e" not in text
