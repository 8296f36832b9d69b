"""The TUI's listing cache is checked, never trusted: a doctored cache that invents metrics
for a verified entry is replaced once verification finishes, and no mark says ✓ before."""

from __future__ import annotations

from pathlib import Path

import orjson

from ledger.api import Ledger
from ledger.index import cache_path, load_index
from tui.app import EvledgerApp
from tui.messages import VerifyFinished


async def test_doctored_index_cache_is_replaced_after_verification(led: Ledger) -> None:
    index = load_index(led.store)  # writes the cache for HEAD
    assert led.store.resolve() is not None
    path: Path = cache_path(led.store, led.store.resolve() or "")
    columns = orjson.loads(path.read_bytes())
    genuine = columns["m:ratio_fp16_effective"][2]
    columns["m:ratio_fp16_effective"][2] = 99.0  # invented for the verified seq 2
    path.write_bytes(orjson.dumps(columns))
    seen: list[object] = []
    app = EvledgerApp(led)
    async with app.run_test(size=(120, 40), message_hook=seen.append) as pilot:
        await app.workers.wait_for_complete()
        await pilot.pause()
        await app.workers.wait_for_complete()
        await pilot.pause()
        finished = [m for m in seen if isinstance(m, VerifyFinished)]
        assert finished and finished[-1].index_differed == 1
        assert app.index is not None
        assert app.index.metrics["ratio_fp16_effective"][2] == genuine == 4.5 != 99.0
        assert set(app.status.values()) == {"✓✓✓✓"}
    assert index.metrics["ratio_fp16_effective"][2] == genuine
