"""Witness benchmark: `witness cosign` on a big ledger that grew by a little.

    python tests/benchmarks/bench_witness.py [--size 100000] [--growth 1000] [--repeats 3]

One ledger is built with `bulk.bulk_append` (the entries `append_prepared` makes) to SIZE
entries and checkpointed; a witness cosigns it once (the first cosign is a full verify);
the ledger grows by GROWTH entries and is checkpointed again. Then, side by side in one run:
the incremental cosign (the witness's record restored before each repeat), a cosign with
nothing new (the fixed cost: listing checkpoints, reading the record, signing), and a full
`verify_ledger` of the grown ledger. Reported: medians, the cost per new entry and the ratio
of the incremental cosign to a full verify. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_ledger import KEY, statement
from bulk import bulk_append

from ledger.api import Ledger, Prepared, init_ledger
from ledger.keys import generate_key
from ledger.verify import verify_ledger
from ledger.witness import cosign, init_witness


def log(msg: str) -> None:
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def grow(led: Ledger, rng: random.Random, start: int, n: int) -> None:
    """Append `n` fresh entries through one fast-import."""
    items = (Prepared(statement(start + k, rng), "evidence", "bench") for k in range(n))
    bulk_append(led, items, key_name=KEY, per_commit=1000)


def median(fn: Any, repeats: int, before: Any = None) -> tuple[float, Any]:
    """Median seconds of `fn()` over `repeats` runs (`before()` untimed before each)."""
    times, result = [], None
    for _ in range(repeats):
        if before:
            before()
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def run(size: int, growth: int, repeats: int, workdir: Path) -> dict[str, Any]:
    """Build, cosign, grow, then time incremental cosign vs full verify."""
    os.environ["EVLEDGER_HOME"] = str(workdir / "home")
    generate_key(KEY)
    led, _ = init_ledger(workdir / "ledger", KEY)
    rng = random.Random(0)
    t0 = time.perf_counter()
    grow(led, rng, 0, size - 1)
    log(f"built {size} entries in {time.perf_counter() - t0:.0f} s")
    led.checkpoint(key_name=KEY)
    w = init_witness("bench-witness")
    t0 = time.perf_counter()
    first = cosign(w, str(led.root))
    full_cosign = time.perf_counter() - t0
    log(f"first cosign (full): {full_cosign:.1f} s over {first.entries_checked} entries")
    grow(led, rng, size, growth)
    led.checkpoint(key_name=KEY)
    logs = w.folder / "logs"
    saved = workdir / "saved-logs"
    shutil.copytree(logs, saved)

    def restore() -> None:
        shutil.rmtree(logs)
        shutil.copytree(saved, logs)

    incremental, result = median(lambda: cosign(w, str(led.root)), repeats, restore)
    assert result.entries_checked == growth and result.old_size == size
    nothing_new, idle = median(lambda: cosign(w, str(led.root)), repeats)
    assert idle.entries_checked == 0
    full_verify, report = median(lambda: verify_ledger(led.store), repeats)
    assert report.ok, report.problems[:3]
    per_entry = (incremental - nothing_new) / growth
    return {
        "size": size,
        "growth": growth,
        "repeats": repeats,
        "first_cosign_full_s": full_cosign,
        "incremental_cosign_s": incremental,
        "nothing_new_cosign_s": nothing_new,
        "per_new_entry_ms": per_entry * 1000,
        "full_verify_s": full_verify,
        "full_verify_per_entry_ms": full_verify / report.entries * 1000,
        "ratio_incremental_to_full_verify": incremental / full_verify,
        "consistency_proof_hashes": len(result.proof),
    }


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=100_000)
    p.add_argument("--growth", type=int, default=1000)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--workdir", type=Path, help="where to build (default: a temp folder)")
    args = p.parse_args(argv)
    if args.workdir:
        args.workdir.mkdir(parents=True, exist_ok=True)
        results = run(args.size, args.growth, args.repeats, args.workdir)
    else:
        with tempfile.TemporaryDirectory(prefix="evledger-bench-witness-") as tmp:
            results = run(args.size, args.growth, args.repeats, Path(tmp))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
