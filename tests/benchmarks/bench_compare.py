"""Benchmark: `compare` wall time and peak RSS, on the default model and on synthetic files.

    python tests/benchmarks/bench_compare.py [--sizes 1,4] [--repeat 1] [--json] [--skip-default]

Each measurement runs `run_runner(compare)` (two measurements, as `evledger run` does) in a
child process that reports its own peak RSS (VmHWM, runners.memory._maxrss_mb) and wall
time. The default model (MiniLM-L6) is compared against a W4A16 pack-quantized
compressed-tensors checkpoint written by the library, with the functional metric (held-out
embedding cosine). The synthetic originals (runners.synthetic: F16 4096×4096 matrices, ≥ 4
GiB for the largest) are compared against a 4-bit GPTQ-layout file (group 128) streamed to
disk tensor by tensor here. Goal: peak RSS flat in model size (well under the size of one
model; a few times one 4096×4096 float32 matrix). Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "runners"))

MIB = 1 << 20


def child(original: str, compressed: str, functional: bool) -> None:
    """Run compare once (2 measurements) and print wall time, peak RSS and metrics as JSON."""
    from runners.memory import _maxrss_mb
    from runners.model import ModelSource
    from runners.registry import get_runner
    from runners.statement import run_runner

    t0 = time.perf_counter()
    model = ModelSource(None if original == "default" else original)
    params = {"compressed": compressed, "functional": str(functional).lower()}
    st = run_runner(get_runner("compare"), model, params)
    wall = time.perf_counter() - t0
    m = st["predicate"]["metrics"]
    keep = ("cos_min", "layer_out_cos_min", "ratio_fp16_effective", "embedding_cos_min")
    print(
        json.dumps(
            {
                "wall_s": wall,
                "peak_rss_mb": _maxrss_mb(),
                "metrics": {k: m[k] for k in keep if k in m},
            }
        )
    )


def run_child(original: str, compressed: Path, functional: bool) -> dict[str, Any]:
    """One child run; its JSON report."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "2"
    cmd = [sys.executable, __file__, "--child", original, str(compressed)]
    if functional:
        cmd.append("--functional")
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def write_gptq_of(original: Path, out_dir: Path, limit: int | None = None) -> Path:
    """A 4-bit GPTQ-layout (group 128, AutoGPTQ v1 zeros) copy of a synthetic file, streamed
    (of its first `limit` tensors only, when given)."""
    import numpy as np
    import torch
    from safetensors import safe_open

    out_dir.mkdir(parents=True, exist_ok=True)
    target = out_dir / "model.safetensors"
    done = out_dir / ".complete"
    if done.is_file():
        return out_dir
    with safe_open(str(original), framework="pt") as f:
        names = list(f.keys())[:limit]
        shapes = {n: f.get_slice(n).get_shape() for n in names}
    bits, gs = 4, 128
    header: dict[str, Any] = {}
    offset = 0
    plan = []
    for n in names:
        rows, cols = shapes[n]
        m = n.removesuffix(".weight")
        for part, dtype, shape, item in (
            ("qweight", "I32", [cols * bits // 32, rows], 4),
            ("qzeros", "I32", [cols // gs, rows * bits // 32], 4),
            ("scales", "F16", [cols // gs, rows], 2),
        ):
            size = shape[0] * shape[1] * item
            header[f"{m}.{part}"] = {
                "dtype": dtype,
                "shape": shape,
                "data_offsets": [offset, offset + size],
            }
            plan.append((n, part))
            offset += size
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * ((-len(raw)) % 8)

    def pack4(codes: torch.Tensor) -> np.ndarray:
        """[n, cols] 4-bit codes -> int32 [n/8, cols], LSB first along n (GPTQ order)."""
        c = codes.to(torch.int64).reshape(-1, 8, codes.shape[1])
        word = sum(c[:, k] << (4 * k) for k in range(8))
        return torch.where(word >= 1 << 31, word - (1 << 32), word).to(torch.int32).numpy()

    with target.open("wb") as fh, safe_open(str(original), framework="pt") as f:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        for n in names:
            w = f.get_tensor(n).to(torch.float32)
            g = w.reshape(w.shape[0], -1, gs)
            mn, mx = g.amin(-1).clamp(max=0), g.amax(-1).clamp(min=0)
            scale = ((mx - mn) / 15).clamp(min=1e-8).half().float()  # [rows, groups]
            zero = torch.round(-mn / scale).clamp(1, 15)
            codes = torch.clamp(torch.round(g / scale[..., None]) + zero[..., None], 0, 15)
            codes = codes.reshape(w.shape).to(torch.int64)  # [rows(out), cols(in)]
            fh.write(pack4(codes.T.contiguous()).tobytes())
            fh.write(pack4((zero.to(torch.int64) - 1).contiguous()).T.copy().tobytes())
            fh.write(scale.T.contiguous().half().numpy().tobytes())
    cfg = {"quantization_config": {"quant_method": "gptq", "bits": bits, "group_size": gs}}
    (out_dir / "config.json").write_text(json.dumps(cfg))
    done.write_text("ok")
    return out_dir


def measure(
    label: str, original: str, compressed: Path, functional: bool, repeat: int, size: int
) -> dict[str, Any]:
    """`repeat` child runs; medians of wall time and peak RSS."""
    reps = [run_child(original, compressed, functional) for _ in range(repeat)]
    peak = statistics.median(r["peak_rss_mb"] for r in reps)
    return {
        "case": label,
        "model_mb": round(size / MIB, 1),
        "wall_s": round(statistics.median(r["wall_s"] for r in reps), 2),
        "peak_rss_mb": round(peak, 1),
        "rss_to_model": round(peak / (size / MIB), 4),
        "metrics": reps[0]["metrics"],
    }


def main(argv: list[str] | None = None) -> int:
    """Write the inputs if needed, measure side by side, print the table."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("ORIGINAL", "COMPRESSED"))
    ap.add_argument("--functional", action="store_true")
    ap.add_argument("--sizes", default="1,4", help="synthetic GiB sizes, comma-separated")
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.functional)
        return 0
    from runners import synthetic
    from runners.model import default_model_path

    cache = Path(os.environ.get("EVLEDGER_CACHE", tempfile.gettempdir())) / "evledger-bench-compare"
    results = []

    def show(r: dict[str, Any]) -> None:
        """One result line as soon as it is measured (unless --json)."""
        if not args.json:
            print(
                f"{r['case']:<42} model {r['model_mb']:>8} MiB  wall {r['wall_s']:>7} s  "
                f"peak RSS {r['peak_rss_mb']:>7} MiB  ({r['rss_to_model']:.3f} of model)  "
                f"{r['metrics']}",
                flush=True,
            )

    for gb in (float(s) for s in args.sizes.split(",")):
        original = synthetic.cached(gb)
        gptq = write_gptq_of(original, cache / f"synthetic-{gb:g}gib-gptq4")
        size = original.stat().st_size
        label = f"synthetic {gb:g} GiB vs GPTQ 4-bit"
        results.append(measure(label, str(original), gptq, False, args.repeat, size))
        show(results[-1])
    if not args.skip_default:
        from compressed_models import write_compressed_tensors

        ct = cache / "minilm-w4a16"
        if not (ct / "model.safetensors").is_file():
            write_compressed_tensors(ct, "W4A16", "pack-quantized")
        size = default_model_path().stat().st_size
        for functional in (True, False):
            label = f"default model vs W4A16 ({'functional' if functional else 'weights only'})"
            results.append(measure(label, "default", ct, functional, args.repeat, size))
            show(results[-1])
    if args.json:
        print(json.dumps(results, indent=1))
    synth = [r for r in results if r["case"].startswith("synthetic")]
    if len(synth) >= 2:
        flat = synth[-1]["peak_rss_mb"] / synth[0]["peak_rss_mb"]
        print(
            f"peak RSS ratio largest/smallest synthetic: {flat:.3f} (model size ratio "
            f"{synth[-1]['model_mb'] / synth[0]['model_mb']:.2f})"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
