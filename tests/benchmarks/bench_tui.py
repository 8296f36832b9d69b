"""TUI benchmark: time to first screen (index cached / uncached) and key latency.

Not part of the default test run. Usage:

    python tests/benchmarks/bench_tui.py [--sizes 10000,100000] [--workdir DIR] [--repeat 5]

Ledgers are built once per size under --workdir (default: a temp folder), 1000 prepared
statements per commit. Reported figures are medians.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

BATCH = 1000


def statement(i: int) -> dict[str, Any]:
    """A runner-shaped evidence statement with varying figures."""
    runner = ("static", "pareto", "pq", "memory")[i % 4]
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": f"model-{i % 97}.safetensors", "digest": {"sha256": f"{i:064x}"}}],
        "predicateType": f"https://evledger.dev/predicates/{runner}/v1",
        "predicate": {
            "runner": {"name": runner, "version": "1.0.0"},
            "params": {"bits": 2 + i % 7, "group_size": 32 << (i % 3)},
            "metrics": {
                "ratio_fp16_effective": 2.0 + (i % 50) / 7,
                "cos_min": 0.9 + (i % 97) / 1000,
                "peak_rss_mb": 100.0 + i % 900,
            },
            "rows": [{"name": f"layer.{j}.weight", "cos": 0.99} for j in range(4)],
            "determinism": {
                "runs": 2,
                "delta": 0.0,
                "deltas": {},
                "digests_equal": True,
                "reconstruction_digest": "sha256:" + "0" * 64,
            },
            "environment": {"python": "3.11", "threads": 2},
        },
    }


def build_ledger(root: Path, size: int) -> Path:
    """A ledger with `size` entries (genesis + size-1 statements), built in batches."""
    from ledger.api import Ledger, Prepared, init_ledger

    marker = root / f".built-{size}"
    if marker.exists():
        return root
    if root.exists():
        shutil.rmtree(root)
    led, _ = init_ledger(root, "bench")
    done, start = 1, time.perf_counter()
    while done < size:
        n = min(BATCH, size - done)
        led.append_prepared(
            [Prepared(statement(done + k), "evidence", "bench") for k in range(n)],
            key_name="bench",
        )
        done += n
        print(f"  built {done}/{size} ({time.perf_counter() - start:.0f} s)", flush=True)
    marker.write_text("ok")
    assert isinstance(led, Ledger)
    return root


def drop_cache(root: Path) -> None:
    """Remove the index caches."""
    shutil.rmtree(root / ".git" / "evledger", ignore_errors=True)


async def first_screen(root: Path, *, cached: bool, verify: bool) -> float:
    """Seconds from creating the app to the entry list showing rows."""
    from tui.app import EvledgerApp
    from tui.screens.browse import BrowseScreen

    if not cached:
        drop_cache(root)
    start = time.perf_counter()
    app = EvledgerApp(root, verify_on_start=verify)
    async with app.run_test(size=(120, 40)) as pilot:
        while True:
            await pilot.pause()
            screen = app.screen
            if isinstance(screen, BrowseScreen) and screen.entries.rows:
                break
        elapsed = time.perf_counter() - start
        app.workers.cancel_all()
    return elapsed


async def key_latency(root: Path, repeat: int, *, verify: bool) -> dict[str, float]:
    """Median seconds per key (press + repaint) for j, G, g and a `/` search."""
    from tui.app import EvledgerApp
    from tui.screens.browse import BrowseScreen

    app = EvledgerApp(root, verify_on_start=verify)
    out: dict[str, list[float]] = {
        "unbound (harness)": [],
        "j": [],
        "G": [],
        "g": [],
        "search": [],
        "n": [],
    }
    async with app.run_test(size=(120, 40)) as pilot:
        while not (isinstance(app.screen, BrowseScreen) and app.screen.entries.rows):
            await pilot.pause()

        async def timed(*keys: str) -> float:
            t = time.perf_counter()
            await pilot.press(*keys)
            await pilot.pause()
            return time.perf_counter() - t

        for _ in range(repeat):
            out["unbound (harness)"].append(await timed("z"))
            out["j"].append(await timed("j"))
            out["G"].append(await timed("G"))
            out["g"].append(await timed("g"))
            await pilot.press("slash", "ctrl+a", "ctrl+k", *"pareto")
            out["search"].append(await timed("enter"))
            out["n"].append(await timed("n"))
        app.workers.cancel_all()
    return {k: statistics.median(v) for k, v in out.items()}


async def key_to_state(root: Path, repeat: int, *, verify: bool) -> dict[str, float]:
    """Median seconds from a key event to the list's cursor moving (no Pilot idle waits).

    Pilot's `press` waits for the app to go idle, which never happens while verification
    streams progress messages; this measures the app itself: post the key, poll the state.
    """
    from tui.app import EvledgerApp
    from tui.screens.browse import BrowseScreen

    app = EvledgerApp(root, verify_on_start=verify)
    out: dict[str, list[float]] = {"j": [], "G": [], "g": []}
    async with app.run_test(size=(120, 40)) as pilot:
        while not (isinstance(app.screen, BrowseScreen) and app.screen.entries.rows):
            await pilot.pause()
        entries = app.screen.entries
        if verify:
            while app.verify_total == 0 and app.report is None:
                await asyncio.sleep(0.01)

        async def timed(key: str) -> float:
            before = entries.cursor
            t = time.perf_counter()
            app.simulate_key(key)
            while entries.cursor == before:
                await asyncio.sleep(0.0005)
            return time.perf_counter() - t

        for _ in range(repeat):
            out["j"].append(await timed("j"))
            out["G"].append(await timed("G"))
            out["g"].append(await timed("g"))
        still = app.verify_total > 0
        app.workers.cancel_all()
    result = {k: statistics.median(v) for k, v in out.items()}
    result["verification still running"] = float(still)
    return result


def index_times(root: Path, repeat: int) -> dict[str, float]:
    """Median seconds to load the index: cached, uncached, and after 1000 new entries."""
    from ledger.api import Ledger, Prepared
    from ledger.index import load_index
    from ledger.store import Store

    store = Store(root)
    uncached = []
    for _ in range(max(1, repeat // 2)):
        drop_cache(root)
        t = time.perf_counter()
        load_index(store)
        uncached.append(time.perf_counter() - t)
    cached = []
    for _ in range(repeat):
        t = time.perf_counter()
        load_index(store)
        cached.append(time.perf_counter() - t)
    led = Ledger(root)
    n = led.tip()[0] + 1  # type: ignore[index]
    led.append_prepared(
        [Prepared(statement(n + k), "evidence", "bench") for k in range(BATCH)], key_name="bench"
    )
    t = time.perf_counter()
    index = load_index(store)
    incremental = time.perf_counter() - t
    assert len(index) == n + BATCH
    return {
        "uncached": statistics.median(uncached),
        "cached": statistics.median(cached),
        "incremental_1000": incremental,
    }


def main() -> None:
    """Build the ledgers, measure, print medians."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--workdir", type=Path)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = args.workdir or Path(tempfile.mkdtemp(prefix="evledger-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    os.environ["EVLEDGER_HOME"] = str(work / "home")
    from ledger.errors import SigningKeyError
    from ledger.keys import generate_key, load_key

    try:
        load_key("bench")
    except SigningKeyError:
        generate_key("bench")
    for size in (int(s) for s in args.sizes.split(",")):
        print(f"== {size} entries", flush=True)
        root = build_ledger(work / f"ledger-{size}", size)
        idx = index_times(root, args.repeat)
        print(
            f"index load: cached {idx['cached'] * 1000:.0f} ms · uncached "
            f"{idx['uncached'] * 1000:.0f} ms · +1000 entries incremental "
            f"{idx['incremental_1000'] * 1000:.0f} ms",
            flush=True,
        )
        cold = [
            asyncio.run(first_screen(root, cached=False, verify=True))
            for _ in range(max(1, args.repeat // 2))
        ]
        warm = [
            asyncio.run(first_screen(root, cached=True, verify=True)) for _ in range(args.repeat)
        ]
        print(
            f"first screen: cached {statistics.median(warm):.2f} s · uncached "
            f"{statistics.median(cold):.2f} s (medians)",
            flush=True,
        )
        keys = asyncio.run(key_latency(root, args.repeat, verify=False))
        print(
            "key latency, Pilot press+pause (idle): "
            + " · ".join(f"{k} {v * 1000:.0f} ms" for k, v in keys.items()),
            flush=True,
        )
        for verify in (False, True):
            state = asyncio.run(key_to_state(root, args.repeat * 3, verify=verify))
            running = state.pop("verification still running")
            label = "while verifying" if verify else "idle"
            print(
                f"key → cursor moved ({label}{'' if running or not verify else ', finished'}): "
                + " · ".join(f"{k} {v * 1000:.1f} ms" for k, v in state.items()),
                flush=True,
            )


if __name__ == "__main__":
    main()
