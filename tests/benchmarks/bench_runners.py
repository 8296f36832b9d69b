"""Benchmark: wall time of each runner on the default model and the best ratios vs the bound.

Run: python tests/benchmarks/bench_runners.py [--repeat 2] [runner ...]
"""

from __future__ import annotations

import argparse
import time

from ledger.ratedistortion import bound_ratio
from runners.model import ModelSource
from runners.registry import get_runner, list_runners


def main() -> None:
    """Run each runner once (with `repeat` measurements) and print a table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runners", nargs="*", default=list_runners())
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    from runners.statement import run_runner

    model = ModelSource()
    model.files()  # hash once, outside the timings
    best = {0.99: (0.0, ""), 0.94: (0.0, "")}
    print(
        f"{'runner':<9} {'wall s':>7} {'ratio':>7} {'cos_min':>8} {'out_cos':>8} "
        f"{'bound@cos':>9} {'eff':>5} {'delta':>6}"
    )
    for name in args.runners:
        if name not in list_runners():
            raise SystemExit(f"unknown runner {name}")
        t0 = time.perf_counter()
        st = run_runner(get_runner(name), model, {}, repeat=args.repeat)
        wall = time.perf_counter() - t0
        m = st["predicate"]["metrics"]
        delta = float(m["determinism_delta"])
        if "ratio_fp16_effective" not in m:  # memory: no compression figures
            print(
                f"{name:<9} {wall:7.1f} {'-':>7} {'-':>8} {'-':>8} {'-':>9} {'-':>5} "
                f"{delta:6.2g}  peak_rss_mb {m.get('peak_rss_mb')}"
            )
            continue
        ratio, cmin = float(m["ratio_fp16_effective"]), float(m.get("cos_min", 0.0))
        bound = bound_ratio(cmin) if cmin else None
        eff = ratio / bound if bound else 0.0
        print(
            f"{name:<9} {wall:7.1f} {ratio:7.3f} {cmin:8.5f} {float(m.get('out_cos', 0)):8.5f} "
            f"{(bound or 0):9.3f} {eff:5.2f} {delta:6.2g}"
        )
        points = [(ratio, cmin)]
        points += [(p["ratio"], p["cos_min"]) for p in st["predicate"].get("frontier", [])]
        for t in best:
            for r, c in points:
                if c >= t and r > best[t][0]:
                    best[t] = (r, name)
    for t, (r, who) in best.items():
        print(
            f"best ratio at cos_min >= {t}: {r:.3f}x ({who or 'none'}); "
            f"Gaussian bound {bound_ratio(t):.2f}x"
        )


if __name__ == "__main__":
    main()
