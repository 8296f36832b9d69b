"""Benchmark: peak RSS of the memory runner's child on 2 GiB and 4 GiB synthetic files.

    python tests/benchmarks/bench_memory.py [--sizes 2,4] [--repeat 1] [--json]

Each size is written once (cached in $EVLEDGER_CACHE or the temp dir, deterministic
content), then streamed by the same child process the `memory` runner uses. Goal: peak
RSS < 1 GiB and flat in model size. The default model is measured too, for scale.
Not collected by pytest (the file name does not start with test_).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from runners import synthetic
from runners.memory import MIB, RSS_LIMIT_MB, run_child
from runners.model import default_model_path


def measure(label: str, path: Path, repeat: int) -> dict[str, Any]:
    """Stream `path` `repeat` times in the child; worst peak RSS and best wall time."""
    reps = [run_child([path], threads=2) for _ in range(repeat)]
    size = path.stat().st_size
    peak = max(r["peak_rss_mb"] for r in reps)
    return {
        "file": label,
        "model_mb": round(size / MIB, 1),
        "tensors": reps[0]["tensors"],
        "peak_rss_mb": round(peak, 1),
        "peak_rss_polled_mb": round(max(r["peak_rss_polled_mb"] for r in reps), 1),
        "baseline_rss_mb": round(min(r["baseline_rss_mb"] for r in reps), 1),
        "rss_to_model": round(peak / (size / MIB), 4),
        "stream_s": round(min(r["wall_s"] for r in reps), 2),
        "gb_per_s": round(size / 2**30 / min(r["wall_s"] for r in reps), 2),
        "pass": peak < RSS_LIMIT_MB,
    }


def main(argv: list[str] | None = None) -> int:
    """Write the files if needed, measure, print the table; exit 1 if any size fails."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="2,4", help="GiB sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    results = [measure("default model", default_model_path(), args.repeat)]
    for gb in (float(s) for s in args.sizes.split(",")):
        t0 = time.perf_counter()
        path = synthetic.cached(gb)
        write_s = time.perf_counter() - t0
        row = measure(f"synthetic {gb:g} GiB", path, args.repeat)
        row["write_or_reuse_s"] = round(write_s, 1)
        results.append(row)
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        cols = [
            "file",
            "model_mb",
            "tensors",
            "peak_rss_mb",
            "peak_rss_polled_mb",
            "baseline_rss_mb",
            "rss_to_model",
            "stream_s",
            "gb_per_s",
            "pass",
        ]
        print(" | ".join(cols))
        print(" | ".join("---" for _ in cols))
        for r in results:
            print(" | ".join(str(r[c]) for c in cols))
        peaks = [r["peak_rss_mb"] for r in results[1:]]
        if len(peaks) > 1:
            print(f"\nflatness: largest/smallest synthetic peak = {max(peaks) / min(peaks):.3f}")
    return 0 if all(r["pass"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
