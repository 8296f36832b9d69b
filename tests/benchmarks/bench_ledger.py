"""Ledger benchmarks: verify vs the bare crypto/read floor, re-verify since a checkpoint,
one-by-one and batch appends.

    python tests/benchmarks/bench_ledger.py [--sizes 10000,100000] [--repeats 3] [--json]
    python tests/benchmarks/bench_ledger.py --ledger PATH   # verify figures of an existing ledger
    python tests/benchmarks/bench_ledger.py --compare-appends OLD_CHECKOUT [--append-size 100000]
        # one-by-one appends, this code vs OLD_CHECKOUT's, side by side in one run

One ledger is grown through the requested sizes with `bulk.bulk_append` (the same
entries `append_prepared` makes, 1000 per commit, through one `git fast-import`). Entries
are ~2 KB legacy-wrapped v43 documents with runner-like per-matrix rows.
At 1000 entries and at the largest size, 100 one-by-one appends are timed; at every
size the last 2000 entries are a timed `Ledger.append` batch (validating) and, after a
checkpoint, a timed `append_prepared` batch; then full verify, the bare floor (`git ls-tree` +
`git cat-file --batch` read, SHA-256, JSON parse + base64 + PAE, Ed25519 verify, all in this
process) and `verify(since_note=checkpoint 1000 entries before the end)` are timed.
Not collected by pytest (the file name does not start with test_). Build on the disk a real
ledger would live on (`--workdir`): on some hosts /tmp is ~10x slower per file created.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bulk import bulk_append

import schemas
from ledger.api import Ledger, Prepared, init_ledger, open_ledger
from ledger.envelope import STATEMENT_TYPE, pae
from ledger.keys import load_public_pem
from ledger.store import ENTRY_DIR, seq_from_path
from ledger.verify import stored_checkpoints

KEY = "bench"
BATCH = 1000
MIN_SIZE = 1100 + 2 * BATCH + 100  # one-by-one at 1000, then two timed batches
MATRICES = ("attn.qkv", "attn.out", "ffn.up", "ffn.down")


def log(msg: str) -> None:
    """Progress on stderr."""
    print(msg, file=sys.stderr, flush=True)


def statement(i: int, rng: random.Random) -> dict[str, Any]:
    """A ~1.5 KB runner-like statement (legacy v43 wrapper), giving a ~2 KB entry."""
    rows = [
        {
            "name": f"encoder.layer.{i % 6}.{m}.weight",
            "shape": [384, 1536 if "ffn" in m else 384],
            "bits": 4,
            "group_size": 64,
            "cos": round(0.99 + rng.random() * 0.009, 6),
            "ratio": round(3.7 + rng.random() * 0.2, 4),
            "bytes": 73728 + rng.randrange(4096),
        }
        for m in MATRICES
    ]
    cos = [r["cos"] for r in rows]
    doc = {
        "schema_id": "evidence.v43.v1",
        "timestamp_utc": "2026-02-01T14:13:27Z",
        "env": {"model": "model.safetensors", "phase": "all", "config_path": f"run-{i}.json"},
        "summary": {
            "go": min(cos) >= 0.99,
            "ratio_fp16_effective_min": min(r["ratio"] for r in rows),
            "cos_min": min(cos),
            "seed_entropy_delta": round(rng.uniform(-0.02, 0.0), 6),
            "crossblock_enabled": True,
            "colddust_enabled": False,
            "bytes_total": sum(r["bytes"] for r in rows),
            "determinism_delta": 0.0,
        },
        "rows": rows,
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [
            {"name": "model.safetensors", "digest": {"sha256": hashlib.sha256(b"m").hexdigest()}},
            {"name": f"calib-{i}", "digest": {"sha256": hashlib.sha256(b"%d" % i).hexdigest()}},
        ],
        "predicateType": schemas.predicate_type("legacy"),
        "predicate": {"schema_id": "evidence.v43.v1", "document": doc, "source": {"file": "b"}},
    }


class Builder:
    """Grows one ledger with distinct statements."""

    def __init__(self, led: Ledger) -> None:
        self.led = led
        self.rng = random.Random(0)
        self.next = 0
        self.size = sum(1 for _ in led.store.list_tree("HEAD", ENTRY_DIR))
        self.batch_rates: list[float] = []
        self.bulk_time = 0.0
        self.bulk_entries = 0

    def statements(self, n: int) -> list[dict[str, Any]]:
        """`n` fresh statements."""
        out = [statement(self.next + k, self.rng) for k in range(n)]
        self.next += n
        return out

    def prepared_batch(self, n: int) -> float:
        """Append `n` entries in one `append_prepared` commit; return seconds."""
        items = [Prepared(s, "evidence", "bench") for s in self.statements(n)]
        t0 = time.perf_counter()
        self.led.append_prepared(items, key_name=KEY)
        dt = time.perf_counter() - t0
        self.size += n
        self.batch_rates.append(n / dt)
        return dt

    def validated_batch(self, n: int) -> float:
        """Append `n` statements in one validating `Ledger.append` commit; return seconds."""
        items = self.statements(n)
        t0 = time.perf_counter()
        self.led.append(items, key_name=KEY)
        self.size += n
        return time.perf_counter() - t0

    def grow_to(self, target: int) -> None:
        """`bulk.bulk_append` (1000 entries per commit, one fast-import) up to `target`."""
        need = target - self.size
        if need <= 0:
            return
        t0 = time.perf_counter()
        start = self.size

        def progress(done: int) -> None:
            if done % 10_000 == 0:
                rate = done / (time.perf_counter() - t0)
                log(f"  built {start + done} entries ({rate:.0f}/s)")

        items = (Prepared(s, "evidence", "bench") for s in self.statements(need))
        bulk_append(self.led, items, key_name=KEY, per_commit=BATCH, progress=progress)
        self.size = target
        self.bulk_time += time.perf_counter() - t0
        self.bulk_entries += need

    def one_by_one(self, n: int) -> list[float]:
        """`n` single appends, each its own commit; return per-append seconds."""
        times = []
        for s in self.statements(n):
            t0 = time.perf_counter()
            self.led.append([s], key_name=KEY)
            times.append(time.perf_counter() - t0)
        self.size += n
        return times


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Median seconds over `repeats` runs, and the last result."""
    times, result = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def bare_floor(led: Ledger) -> dict[str, float]:
    """Seconds for the bare work on every entry: read, SHA-256, parse/extract, Ed25519 verify."""
    store = led.store
    t0 = time.perf_counter()
    items = [i for i in store.list_tree("HEAD", ENTRY_DIR) if seq_from_path(i.path) is not None]
    items.sort(key=lambda i: i.path)
    raws = list(store.read_blobs(i.sha for i in items))
    t_read = time.perf_counter() - t0

    t0 = time.perf_counter()
    for raw in raws:
        hashlib.sha256(raw).digest()
    t_sha = time.perf_counter() - t0

    t0 = time.perf_counter()
    jobs = []
    for raw in raws:
        env = orjson.loads(raw)["envelope"]
        sig = env["signatures"][0]
        payload = base64.b64decode(env["payload"])
        jobs.append((sig["keyid"], base64.b64decode(sig["sig"]), pae(env["payloadType"], payload)))
    t_parse = time.perf_counter() - t0

    keys = _public_keys(led)
    t0 = time.perf_counter()
    for keyid, sig, message in jobs:
        keys[keyid].verify(sig, message)
    t_ed = time.perf_counter() - t0
    return {
        "entries": len(raws),
        "read_s": t_read,
        "sha256_s": t_sha,
        "parse_s": t_parse,
        "ed25519_s": t_ed,
        "bytes_mean": sum(map(len, raws)) / max(1, len(raws)),
    }


def _public_keys(led: Ledger) -> dict[str, Any]:
    """Public keys by keyid from the ledger's keys/ folder."""
    from ledger.keys import keyid_of

    out = {}
    for item in led.store.list_tree("HEAD", "keys/", recursive=False):
        if item.path.endswith(".pub"):
            data = led.store.read_path("HEAD", item.path)
            assert data is not None
            pub = load_public_pem(data)
            out[keyid_of(pub)] = pub
    return out


def measure_verify(led: Ledger, repeats: int, since_note: str | None) -> dict[str, Any]:
    """Full verify, bare floor, and since-checkpoint verify, medians of `repeats`."""
    t_verify, report = timed(led.verify, repeats)
    if not report.ok:
        raise SystemExit(f"benchmark ledger does not verify: {report.problems[:3]}")
    floors = [bare_floor(led) for _ in range(repeats)]
    med = {k: statistics.median(f[k] for f in floors) for k in floors[0]}
    n = report.entries
    bare = med["read_s"] + med["sha256_s"] + med["parse_s"] + med["ed25519_s"]
    bare_strict = med["read_s"] + med["sha256_s"] + med["ed25519_s"]
    out: dict[str, Any] = {
        "entries": n,
        "entry_bytes_mean": round(med["bytes_mean"]),
        "verify_s": t_verify,
        "verify_us_per_entry": t_verify / n * 1e6,
        "bare_read_us": med["read_s"] / n * 1e6,
        "bare_sha256_us": med["sha256_s"] / n * 1e6,
        "bare_parse_us": med["parse_s"] / n * 1e6,
        "bare_ed25519_us": med["ed25519_s"] / n * 1e6,
        "bare_us_per_entry": bare / n * 1e6,
        "ratio_verify_to_bare": t_verify / bare,
        "ratio_verify_to_bare_without_parse": t_verify / bare_strict,
    }
    out.update(measure_decisions(led, repeats, t_verify))
    if since_note is not None:
        t_since, since_report = timed(lambda: led.verify(since_note=since_note), repeats)
        if not since_report.ok:
            raise SystemExit(f"since-verify failed: {since_report.problems[:3]}")
        out["since_new_entries"] = n - int(since_note.splitlines()[1])
        out["since_verify_s"] = t_since
        out["since_ratio_to_full"] = t_since / t_verify
        out["since_us_per_new_entry"] = t_since / out["since_new_entries"] * 1e6
    return out


def measure_decisions(led: Ledger, repeats: int, t_verify: float) -> dict[str, Any]:
    """`gate` and `report` (each now reading the verified view), beside the full verify."""
    from ledger.gate import evaluate_ledger
    from ledger.report import report_for_ledger

    t_gate, gate = timed(lambda: evaluate_ledger(led), repeats)
    t_report, report = timed(lambda: report_for_ledger(led), repeats)
    assert gate.trust["ok"] and report.trust["ok"], "benchmark ledger must verify"
    return {
        "gate_s": t_gate,
        "report_s": t_report,
        "ratio_gate_to_verify": t_gate / t_verify,
        "ratio_report_to_verify": t_report / t_verify,
    }


def one_by_one_figures(b: Builder, n: int) -> dict[str, Any]:
    """Appends/s for `n` single-entry commits at the current size."""
    size = b.size
    times = b.one_by_one(n)
    return {
        "at_size": size,
        "appends": n,
        "appends_per_s": n / sum(times),
        "median_ms": statistics.median(times) * 1e3,
        "p90_ms": sorted(times)[int(0.9 * len(times)) - 1] * 1e3,
    }


def run(sizes: list[int], repeats: int, workdir: Path) -> dict[str, Any]:
    """Build, grow and measure; return every figure."""
    os.environ["EVLEDGER_HOME"] = str(workdir / "home")
    led, _ = init_ledger(workdir / "ledger", KEY)
    b = Builder(led)
    results: dict[str, Any] = {"sizes": {}, "one_by_one": [], "machine": _machine()}
    singles_at = {1000, max(sizes)}
    steps = sorted(set(sizes) | singles_at)
    build_t0 = time.perf_counter()
    for step in steps:
        if step in singles_at and step not in sizes:
            b.grow_to(step)
            log(f"one-by-one appends at {b.size}")
            results["one_by_one"].append(one_by_one_figures(b, 100))
            continue
        log(f"size {step}: building")
        b.grow_to(step - 2 * BATCH - (100 if step in singles_at else 0))
        if step in singles_at:
            log(f"one-by-one appends at {b.size}")
            results["one_by_one"].append(one_by_one_figures(b, 100))
        t_val = b.validated_batch(BATCH)
        note, _cp = led.checkpoint(key_name=KEY)
        t_prep = b.prepared_batch(BATCH)
        log(f"size {b.size}: measuring verify ({repeats} repeats)")
        figures = measure_verify(led, repeats, note)
        figures["batch_append_per_s"] = BATCH / t_val
        figures["batch_append_prepared_per_s"] = BATCH / t_prep
        results["sizes"][str(step)] = figures
    results["build_s"] = time.perf_counter() - build_t0
    results["bulk_fast_import_per_s"] = b.bulk_entries / max(b.bulk_time, 1e-9)
    results["append_prepared_batches_per_s_median"] = statistics.median(b.batch_rates)
    return results


def existing(path: Path, repeats: int) -> dict[str, Any]:
    """Verify figures of an existing ledger (newest stored checkpoint as the since point)."""
    led = open_ledger(path)
    cps = stored_checkpoints(led.store, "HEAD")
    note = cps[-1][1] if cps else None
    figures = measure_verify(led, repeats, note)
    return {"sizes": {str(figures["entries"]): figures}, "one_by_one": [], "machine": _machine()}


def _machine() -> dict[str, Any]:
    import platform

    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": sys.platform,
        "loadavg_1m": round(os.getloadavg()[0], 2),
    }


APPEND_WORKER = """
import json, os, random, sys, time
src, ledger, n, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
sys.path[:0] = [src, os.path.join(src, "tests", "benchmarks")]
from bench_ledger import KEY, statement
from ledger.api import open_ledger
led = open_ledger(ledger)
rng = random.Random(seed)
items = [statement(10_000_000 + seed * 1000 + i, rng) for i in range(n + 1)]
led.append([items[0]], key_name=KEY)  # warm-up: imports, caches
import resource
def cpu():  # this process and its waited-for git children
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime
times = []
c0 = cpu()
for s in items[1:]:
    t0 = time.perf_counter()
    led.append([s], key_name=KEY)
    times.append(time.perf_counter() - t0)
print(json.dumps([times, (cpu() - c0) / n]))
"""


def _append_round(
    src: Path, ledger: Path, n: int, seed: int, home: Path
) -> tuple[list[float], float]:
    """`n` one-by-one appends by the code in `src` (a fresh process): wall seconds each, and
    mean CPU seconds per append (the process and its git children: what load cannot stretch)."""
    import subprocess

    env = {**os.environ, "EVLEDGER_HOME": str(home), "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, "-c", APPEND_WORKER, str(src), str(ledger), str(n), str(seed)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise SystemExit(f"append worker ({src}) failed: {proc.stderr.strip()[-500:]}")
    wall, cpu = json.loads(proc.stdout)
    return [float(t) for t in wall], float(cpu)


def compare_appends(
    baseline_src: Path, size: int, workdir: Path, rounds: int = 5, per_round: int = 20
) -> dict[str, Any]:
    """One-by-one appends at `size` entries: this checkout vs `baseline_src`, interleaved.

    Both ledgers hold the same `size` entries (built once by `bulk.bulk_append`). This code
    appends to a ledger as `evledger init` makes it now (sparse index); the baseline to a copy
    laid out as a full checkout with a split v4 index, as the baseline's `init` made them.
    Rounds alternate between the two so load on a shared machine hits both alike.
    """
    import shutil
    import subprocess

    here = Path(__file__).resolve().parents[2]
    os.environ["EVLEDGER_HOME"] = str(workdir / "home")
    new_root = workdir / "ledger-new"
    led, _ = init_ledger(new_root, KEY)
    b = Builder(led)
    log(f"building {size} entries")
    b.grow_to(size)
    old_root = workdir / "ledger-baseline"
    log("copying the ledger for the baseline (full checkout, split index)")
    shutil.copytree(new_root, old_root, symlinks=True)
    for args in (
        ["sparse-checkout", "disable"],
        ["config", "core.splitIndex", "true"],
        ["config", "index.version", "4"],
        ["update-index", "--split-index"],
    ):
        subprocess.run(["git", *args], cwd=old_root, check=True, capture_output=True)
    home = workdir / "home"
    new_t: list[float] = []
    old_t: list[float] = []
    new_c: list[float] = []
    old_c: list[float] = []
    for r in range(rounds):
        log(f"round {r + 1}/{rounds}: {per_round} appends each")
        wall, cpu = _append_round(here, new_root, per_round, 2 * r, home)
        new_t, new_c = new_t + wall, [*new_c, cpu]
        wall, cpu = _append_round(baseline_src.resolve(), old_root, per_round, 2 * r + 1, home)
        old_t, old_c = old_t + wall, [*old_c, cpu]
    for root in (new_root, old_root):
        if not open_ledger(root).verify().ok:
            raise SystemExit(f"{root} does not verify after the appends")
    new_med, old_med = statistics.median(new_t), statistics.median(old_t)
    return {
        "at_size": size,
        "appends_each": len(new_t),
        "new_median_ms": new_med * 1e3,
        "new_appends_per_s": 1 / new_med,
        "baseline_median_ms": old_med * 1e3,
        "baseline_appends_per_s": 1 / old_med,
        "speedup_median": old_med / new_med,
        "new_cpu_ms_per_append": statistics.median(new_c) * 1e3,
        "baseline_cpu_ms_per_append": statistics.median(old_c) * 1e3,
        "baseline": str(baseline_src),
        "machine": _machine(),
    }


def compare_table(c: dict[str, Any]) -> str:
    """Plain-text report of `compare_appends`."""
    return "\n".join(
        [
            f"== one-by-one appends at {c['at_size']} entries, {c['appends_each']} each, "
            "interleaved rounds",
            f"  this code   median {c['new_median_ms']:7.1f} ms = {c['new_appends_per_s']:6.1f}/s"
            "   (goal ≥ 50/s)",
            f"  baseline    median {c['baseline_median_ms']:7.1f} ms = "
            f"{c['baseline_appends_per_s']:6.1f}/s   ({c['baseline']})",
            f"  speed-up    {c['speedup_median']:.2f}x (baseline median / this median); "
            f"load {c['machine']['loadavg_1m']}",
            f"  CPU/append  this {c['new_cpu_ms_per_append']:.1f} ms, baseline "
            f"{c['baseline_cpu_ms_per_append']:.1f} ms (with git children; median of rounds)",
        ]
    )


def table(results: dict[str, Any]) -> str:
    """A plain-text report."""
    lines = []
    for size, f in results["sizes"].items():
        lines += [
            f"== {size} entries (mean entry {f['entry_bytes_mean']} B)",
            f"  full verify           {f['verify_s']:8.2f} s  "
            f"{f['verify_us_per_entry']:8.1f} µs/entry",
            f"  bare floor            {f['bare_us_per_entry']:8.1f} µs/entry = read "
            f"{f['bare_read_us']:.1f} + sha256 {f['bare_sha256_us']:.1f} + parse/b64/PAE "
            f"{f['bare_parse_us']:.1f} + ed25519 {f['bare_ed25519_us']:.1f}",
            f"  verify / bare         {f['ratio_verify_to_bare']:8.2f} x   (goal ≤ 1.2x; "
            f"{f['ratio_verify_to_bare_without_parse']:.2f} x vs read+sha+ed25519 only)",
        ]
        if "gate_s" in f:
            lines.append(
                f"  gate / report         {f['gate_s']:8.2f} s / {f['report_s']:.2f} s = "
                f"{f['ratio_gate_to_verify']:.2f} x / {f['ratio_report_to_verify']:.2f} x a full "
                "verify (goal ≤ 1.5x; both verify first)"
            )
        if "since_verify_s" in f:
            lines.append(
                f"  verify --since        {f['since_verify_s']:8.2f} s  for "
                f"{f['since_new_entries']} new entries = {f['since_ratio_to_full']:.2f} of full "
                f"({f['since_us_per_new_entry']:.0f} µs per new entry)"
            )
        if "batch_append_per_s" in f:
            lines.append(
                f"  batch append (1000)   {f['batch_append_per_s']:8.0f} entries/s validating, "
                f"{f['batch_append_prepared_per_s']:.0f} entries/s prepared   (goal ≥ 1000)"
            )
    for o in results["one_by_one"]:
        lines.append(
            f"== one-by-one at {o['at_size']}: {o['appends_per_s']:.1f} appends/s "
            f"(median {o['median_ms']:.1f} ms, p90 {o['p90_ms']:.1f} ms; goal ≥ 50/s at 100k)"
        )
    if "build_s" in results:
        lines.append(
            f"== build: {results['build_s']:.0f} s total; bulk.py (fast-import) "
            f"{results['bulk_fast_import_per_s']:.0f} entries/s; append_prepared batches median "
            f"{results['append_prepared_batches_per_s_median']:.0f} entries/s"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="10000,100000", help="comma-separated ledger sizes")
    p.add_argument("--repeats", type=int, default=3, help="repeats per timing (median)")
    p.add_argument("--json", action="store_true", help="JSON on stdout (table on stderr)")
    p.add_argument("--workdir", type=Path, help="where to build (default: a temp folder)")
    p.add_argument("--ledger", type=Path, help="only measure verify on this existing ledger")
    p.add_argument(
        "--compare-appends",
        type=Path,
        metavar="OLD_CHECKOUT",
        help="only time one-by-one appends: this code vs the code in OLD_CHECKOUT",
    )
    p.add_argument("--append-size", type=int, default=100_000, help="with --compare-appends")
    args = p.parse_args(argv)
    if args.compare_appends:
        with tempfile.TemporaryDirectory(prefix="evledger-bench-", dir=args.workdir) as tmp:
            comparison = compare_appends(args.compare_appends, args.append_size, Path(tmp))
        print(compare_table(comparison), file=sys.stderr if args.json else sys.stdout)
        if args.json:
            print(json.dumps(comparison, indent=2))
        return 0
    if args.ledger:
        results = existing(args.ledger, args.repeats)
    else:
        sizes = sorted(int(s) for s in args.sizes.split(",") if s.strip())
        if min(sizes) < MIN_SIZE:
            p.error(f"sizes must be ≥ {MIN_SIZE}")
        if args.workdir:
            args.workdir.mkdir(parents=True, exist_ok=True)
            results = run(sizes, args.repeats, args.workdir)
        else:
            with tempfile.TemporaryDirectory(prefix="evledger-bench-") as tmp:
                results = run(sizes, args.repeats, Path(tmp))
    text = table(results)
    if args.json:
        print(text, file=sys.stderr)
        print(json.dumps(results, indent=2))
    else:
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
