"""Benchmark: peak memory of `static`, `hessian` and `compare` against the largest layer.

    python tests/benchmarks/bench_streaming.py [--sizes 1,4] [--runners static,hessian,compare]
        [--runs 1] [--max-matrices N | RUNNER=N,...] [--skip-default] [--json]

Each case runs `run_runner` (two measurements, as `evledger run` does: hashing, both
measurements, the statement) in a fresh child process. The child first imports torch,
safetensors and the runners, then runs the same runner once on a tiny warm-up file (two
F16 256×256 matrices; for compare its GPTQ copy; hessian runs it twice, the second time
with its large-matrix float32/LAPACK path forced), so lazy imports and the BLAS/LAPACK
workspaces are in place, then opens the model (headers only) and takes its RSS
(VmRSS) as the **baseline**. It resets the high-water mark (writing "5" to
/proc/self/clear_refs resets VmHWM on Linux), runs, and reads VmHWM as the **peak**.

Reported per case: wall time, absolute peak RSS, baseline, peak above baseline, the fp32
size of the largest single tensor processed (4 × max params over the statement's rows),
and **ratio = (peak − baseline) / fp32 bytes of that largest tensor**; goal ≤ 1.5 for a
model processed tensor by tensor and block by block. The absolute RSS is dominated by the
~300–500 MiB of imported libraries, so both are given.

Cases: the default model (MiniLM-L6; compare against its W4A16 compressed-tensors copy)
with its functional metric, which runs the whole model and so holds every tensor; and
synthetic F16 files of 4096×4096 matrices (runners.synthetic) of each --sizes GiB, as
bare files (Gaussian calibration, no functional metric), compare against a 4-bit
GPTQ-layout copy (bench_compare.write_gptq_of). `--max-matrices N` limits the synthetic
cases to the first N matrices (static/hessian: a `matrices=re:` selection; compare: a
GPTQ copy of the first N tensors, the rest listed as original-only) so that hessian's
GPTQ column loop stays affordable on 2 cores; the files are still read, hashed and
opened at full size. Medians over --runs. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runners"))
sys.path.insert(0, str(ROOT / "tests" / "benchmarks"))

MIB = 1 << 20
GOAL = 1.5


def _status_mb(field: str) -> float:
    """A field of /proc/self/status (VmRSS, VmHWM) in MiB."""
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux clear_refs "5"); False when not possible."""
    try:
        with open("/proc/self/clear_refs", "w", encoding="ascii") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _warm_files(folder: Path) -> tuple[Path, Path]:
    """A tiny bare F16 file (two 256×256 matrices) and its GPTQ copy, for the warm-up run."""
    import torch
    from bench_compare import write_gptq_of
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tiny = folder / "warm.safetensors"
    if not tiny.is_file():
        g = torch.Generator().manual_seed(0)
        save_file(
            {f"layers.{i}.weight": torch.randn(256, 256, generator=g).half() for i in range(2)},
            str(tiny),
        )
    return tiny, write_gptq_of(tiny, folder / "warm-gptq4")


def child(runner_name: str, original: str, params: dict[str, Any], warm_dir: str) -> None:
    """One case in this (fresh) process: warm up, baseline, run, peak; JSON on stdout."""
    import gc

    import torch  # noqa: F401 - part of the baseline
    from safetensors import safe_open  # noqa: F401

    import runners.compare
    import runners.hessian
    import runners.static
    from runners.model import ModelSource
    from runners.registry import get_runner
    from runners.statement import run_runner

    runner = get_runner(runner_name)
    tiny, tiny_gptq = _warm_files(Path(warm_dir))
    warm = {"matrices": "linear"} if runner_name != "compare" else {"compressed": str(tiny_gptq)}
    if runner_name == "static":
        warm["calibration"] = "gaussian"
    run_runner(runner, ModelSource(tiny), warm)
    if runner_name == "hessian":  # once more on its large-matrix path (scipy's LAPACK/BLAS)
        limit = runners.hessian.FLOAT32_H_ABOVE
        runners.hessian.FLOAT32_H_ABOVE = 0
        try:
            run_runner(runner, ModelSource(tiny), warm)
        finally:
            runners.hessian.FLOAT32_H_ABOVE = limit
    gc.collect()
    model = ModelSource(None if original == "default" else original)
    gc.collect()
    baseline = _status_mb("VmRSS")
    reset = _reset_peak()
    t0 = time.perf_counter()
    st = run_runner(runner, model, params)
    wall = time.perf_counter() - t0
    peak = _status_mb("VmHWM")
    rows = st["predicate"]["rows"]
    largest = max(int(r["params"]) for r in rows) * 4 / MIB
    m = st["predicate"]["metrics"]
    keep = (
        "cos_min",
        "layer_out_cos_min",
        "ratio_fp16_effective",
        "embedding_cos_min",
        "ppl_ratio",
        "n_matrices",
    )
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": peak,
                "baseline_mb": baseline,
                "above_mb": peak - baseline,
                "largest_fp32_mb": largest,
                "ratio": (peak - baseline) / largest,
                "peak_reset": reset,
                "rows": len(rows),
                "digest": st["predicate"]["determinism"]["reconstruction_digest"],
                "metrics": {k: m[k] for k in keep if k in m},
            }
        )
    )


def run_child(runner: str, original: str, params: dict[str, Any], warm_dir: Path) -> dict:
    """One child run; its JSON report."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "2"
    cmd = [sys.executable, __file__, "--child", runner, original, json.dumps(params)]
    cmd += ["--warm-dir", str(warm_dir)]
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"child failed ({runner} {original}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(
    case: str, runner: str, original: str, params: dict, runs: int, size: int, warm: Path
) -> dict[str, Any]:
    """`runs` child runs; medians."""
    load0 = os.getloadavg()[0]
    reps = [run_child(runner, original, params, warm) for _ in range(runs)]
    load1 = os.getloadavg()[0]

    def med(key: str) -> float:
        return statistics.median(float(r[key]) for r in reps)

    return {
        "case": case,
        "runner": runner,
        "model_mib": round(size / MIB, 1),
        "tensors": reps[0]["rows"],
        "wall_s": round(med("wall_s"), 1),
        "peak_rss_mib": round(med("peak_rss_mb"), 1),
        "baseline_mib": round(med("baseline_mb"), 1),
        "above_mib": round(med("above_mb"), 1),
        "largest_fp32_mib": round(reps[0]["largest_fp32_mb"], 1),
        "ratio": round(med("ratio"), 2),
        "meets_goal": med("ratio") <= GOAL,
        "peak_reset": all(r["peak_reset"] for r in reps),
        "runs": runs,
        "load_1m": [round(load0, 2), round(load1, 2)],
        "digest": reps[0]["digest"],
        "metrics": reps[0]["metrics"],
    }


def table(results: list[dict[str, Any]]) -> str:
    """The results as a Markdown table."""
    head = (
        "| case | runner | model MiB | tensors | wall s | peak RSS MiB | baseline MiB | "
        "above baseline MiB | largest tensor fp32 MiB | ratio (goal ≤ 1.5) |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in results:
        lines.append(
            f"| {r['case']} | {r['runner']} | {r['model_mib']} | {r['tensors']} | "
            f"{r['wall_s']} | {r['peak_rss_mib']} | {r['baseline_mib']} | {r['above_mib']} | "
            f"{r['largest_fp32_mib']} | {r['ratio']} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Write the inputs if needed, run every case in its own child, print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=3, metavar=("RUNNER", "ORIGINAL", "PARAMS"))
    ap.add_argument("--warm-dir", default="")
    ap.add_argument("--sizes", default="1,4", help="synthetic GiB sizes, comma-separated")
    ap.add_argument("--runners", default="static,hessian,compare")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument(
        "--max-matrices",
        default="",
        help="synthetic: first N matrices only; N for every runner or RUNNER=N,RUNNER=N",
    )
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], json.loads(args.child[2]), args.warm_dir)
        return 0
    from bench_compare import write_gptq_of

    from runners import synthetic
    from runners.model import default_model_path

    cache = Path(os.environ.get("EVLEDGER_CACHE", tempfile.gettempdir())) / "evledger-bench-stream"
    warm = cache / "warm"
    names = [n.strip() for n in args.runners.split(",") if n.strip()]
    limits: dict[str, int] = {}
    for item in (t.strip() for t in args.max_matrices.split(",") if t.strip()):
        key, _, val = item.rpartition("=")
        for name in [key] if key else names:
            limits[name] = int(val)
    results: list[dict[str, Any]] = []

    def show(r: dict[str, Any]) -> None:
        """One line on stderr as soon as a case is measured (also with --json)."""
        print(json.dumps(r), file=sys.stderr, flush=True)

    if not args.skip_default:
        size = default_model_path().stat().st_size
        for name in names:
            params: dict[str, Any] = {}
            if name == "compare":
                from compressed_models import write_compressed_tensors

                ct = cache / "minilm-w4a16"
                if not (ct / "model.safetensors").is_file():
                    write_compressed_tensors(ct, "W4A16", "pack-quantized")
                params = {"compressed": str(ct)}
            results.append(measure("default model", name, "default", params, 1, size, warm))
            show(results[-1])
    for gb in (float(s) for s in args.sizes.split(",") if s.strip()):
        original = synthetic.cached(gb)
        size = original.stat().st_size
        for name in names:
            n_max = limits.get(name, 0)
            sel = "linear"
            label = f"synthetic {gb:g} GiB"
            if n_max:
                sel = "re:^layers\\.(" + "|".join(str(i) for i in range(n_max)) + ")\\.weight$"
                label += f", first {n_max}"
            if name == "compare":
                limit = n_max or None
                gptq = write_gptq_of(
                    original, cache / f"synthetic-{gb:g}gib-gptq4-n{limit or 'all'}", limit
                )
                params = {"compressed": str(gptq)}
            else:
                params = {"matrices": sel}
            results.append(measure(label, name, str(original), params, args.runs, size, warm))
            show(results[-1])
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    if args.json:
        print(json.dumps({"date": stamp, "results": results}, indent=1))
    else:
        print(f"{stamp}, load average (1 min) {os.getloadavg()[0]:.2f}")
        print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
