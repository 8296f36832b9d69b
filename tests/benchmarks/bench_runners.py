"""Benchmark: wall time of each runner on the default model, with the figures it records.

Each runner runs as `evledger run` does (`run_runner`: two measurements for the determinism
delta, statement built), `--runs` times; the table shows the median wall time and the spread,
so a noisy machine shows as a spread rather than a wrong figure. Columns:

- `ratio`: fp16 bytes / stored bytes over the selected matrices (`ratio_fp16_effective`);
  `ratio_model`: the whole file, untouched tensors at their fp16 size;
- `cos_min`: weight cosine, worst matrix; `layer_cos`: `layer_out_cos_min`, the worst
  per-layer output cosine on calibration inputs (a per-layer figure, not the model's output);
- `emb_cos`: held-out sentence-embedding cosine (min), the model-level metric;
- `gauss_ref`: the i.i.d. Gaussian reference ratio at that cos_min (a reference, not a bound).

Run: python tests/benchmarks/bench_runners.py [--runs 3] [--repeat 2] [runner ...]
A runner may carry parameters: `ecsq:feedback=gptq,target_cos=0.9985`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from ledger.ratedistortion import bound_ratio
from runners.model import ModelSource
from runners.registry import RUNNERS, get_runner, list_runners

#: what needs more than the default model (compare: a compressed checkpoint to compare)
NEEDS_INPUT = {"compare"}


def parse_spec(spec: str) -> tuple[str, dict[str, str]]:
    """`NAME` or `NAME:KEY=VALUE,KEY=VALUE` (as `--param KEY=VALUE` would give them)."""
    name, _, rest = spec.partition(":")
    pairs = [p.partition("=") for p in rest.split(",") if p]
    if any(not eq for _, eq, _ in pairs):
        raise SystemExit(f"bad runner spec {spec!r}: use NAME:KEY=VALUE,KEY=VALUE")
    return name, {k: v for k, _, v in pairs}


def cell(metrics: dict[str, Any], name: str, fmt: str) -> str:
    """One metric formatted, or `-` when the runner does not record it."""
    value = metrics.get(name)
    return format(float(value), fmt) if isinstance(value, int | float) else "-"


def main() -> None:
    """Run each runner `--runs` times and print a Markdown table (medians)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runners", nargs="*", default=[r for r in RUNNERS if r not in NEEDS_INPUT])
    ap.add_argument("--runs", type=int, default=3, help="timed runs per runner (median shown)")
    ap.add_argument("--repeat", type=int, default=2, help="measurements per run (determinism)")
    args = ap.parse_args()
    from runners.statement import run_runner

    model = ModelSource()
    model.files()  # hash once, outside the timings
    print(
        "| runner | wall s (median) | min–max | ratio | ratio_model | cos_min | layer_cos "
        "| emb_cos | gauss_ref | det. delta |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for spec in args.runners:
        name, params = parse_spec(spec)
        if name not in list_runners():
            raise SystemExit(f"unknown runner {name}")
        walls = []
        for _ in range(args.runs):
            t0 = time.perf_counter()
            st = run_runner(get_runner(name), model, params, repeat=args.repeat)
            walls.append(time.perf_counter() - t0)
        m = st["predicate"]["metrics"]
        cmin = m.get("cos_min")
        ref = bound_ratio(float(cmin)) if isinstance(cmin, int | float) else None
        print(
            f"| {spec} | {statistics.median(walls):.1f} | {min(walls):.1f}–{max(walls):.1f} "
            f"| {cell(m, 'ratio_fp16_effective', '.3f')} | {cell(m, 'ratio_model', '.3f')} "
            f"| {cell(m, 'cos_min', '.5f')} | {cell(m, 'layer_out_cos_min', '.5f')} "
            f"| {cell(m, 'embedding_cos_min', '.5f')} | {'-' if ref is None else f'{ref:.3f}'} "
            f"| {cell(m, 'determinism_delta', '.2g')} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
