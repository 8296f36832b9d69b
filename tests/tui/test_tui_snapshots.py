"""Snapshot tests of every screen at 100x30 on a deterministic ledger (fixed key and times)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from ledger.api import Ledger
from tui.app import EvledgerApp

SIZE = (100, 30)


def runner(*keys: str) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """Wait for the index and verification, press `keys` (settling after each), settle again."""

    async def run_before(pilot: Pilot[Any]) -> None:
        app = pilot.app
        for _ in range(2):
            await app.workers.wait_for_complete()
            await pilot.pause()
        for key in keys:
            await pilot.press(key)
            for _ in range(2):
                await app.workers.wait_for_complete()
                await pilot.pause()

    return run_before


@pytest.fixture
def snapshot_app(review_ledger: Ledger) -> EvledgerApp:
    """The app on the deterministic review ledger, animations off."""
    app = EvledgerApp(review_ledger)
    app.animation_level = "none"
    return app


SCREENS = {
    "browse": (),
    "entry": ("j", "j", "j", "enter"),
    "diff": ("j", "j", "j", "space", "j", "space", "d"),
    "gates": ("p",),
    "audit": ("a",),
    "verify": ("v",),
    "help": ("question_mark",),
}


@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(snap_compare: Any, snapshot_app: EvledgerApp, screen: str) -> None:
    assert snap_compare(snapshot_app, terminal_size=SIZE, run_before=runner(*SCREENS[screen]))


def test_tampered_browse_snapshot(snap_compare: Any, tampered_ledger: Ledger) -> None:
    app = EvledgerApp(tampered_ledger)
    app.animation_level = "none"
    assert snap_compare(app, terminal_size=SIZE, run_before=runner())


def test_small_terminal_snapshot(snap_compare: Any, snapshot_app: EvledgerApp) -> None:
    assert snap_compare(snapshot_app, terminal_size=(80, 24), run_before=runner())
