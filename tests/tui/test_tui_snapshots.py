"""Snapshot tests of every screen at 80x24 and 160x48 on a deterministic ledger (fixed key and
times, animations off). Review `snapshot_report.html` before `--snapshot-update`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from textual.pilot import Pilot

from ledger.api import Ledger
from tui.app import EvledgerApp

SIZES = {"80x24": (80, 24), "160x48": (160, 48)}


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


@pytest.mark.parametrize("size", list(SIZES))
@pytest.mark.parametrize("screen", list(SCREENS))
def test_screen_snapshot(
    snap_compare: Any, snapshot_app: EvledgerApp, screen: str, size: str
) -> None:
    assert snap_compare(
        snapshot_app, terminal_size=SIZES[size], run_before=runner(*SCREENS[screen])
    )


@pytest.mark.parametrize("size", list(SIZES))
def test_tampered_browse_snapshot(snap_compare: Any, tampered_ledger: Ledger, size: str) -> None:
    app = EvledgerApp(tampered_ledger)
    app.animation_level = "none"
    assert snap_compare(app, terminal_size=SIZES[size], run_before=runner())
