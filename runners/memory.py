"""memory: streaming inference layer by layer from memory-mapped safetensors, in a child process.

The child (``python -m runners.memory --child FILE...``, numpy only, no torch) parses each
file's safetensors header, then for one tensor at a time maps just that tensor's byte range
(``mmap`` at a page-aligned offset), converts it to float32, applies it to a small
activation batch, and unmaps it before the next tensor. The inference is a generic chain of
linear layers: a 2-D tensor [out, in] maps the current activation of width `in` (a seeded
Gaussian batch the first time a width is seen) to width `out`, rows renormalised to unit
RMS; a 1-D tensor is added as a bias where a width matches. It is not the model's own
architecture, but it reads and uses every byte of every float tensor, once, in file order.
The child reports its own peak RSS (VmHWM of its address space, see `_maxrss_mb`); the
parent also polls the child's RSS with psutil as a cross-check.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import mmap
import os
import resource
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from runners.base import Measurement, Param, ProgressFn

MIB = 1 << 20
RSS_LIMIT_MB = 1024.0
BATCH = 8
SEED = 0
_NP_DTYPES = {"F16": "<f2", "F32": "<f4", "F64": "<f8", "BF16": "<u2"}
_ITEMSIZE = {
    "F16": 2,
    "BF16": 2,
    "F32": 4,
    "F64": 8,
    "I64": 8,
    "I32": 4,
    "I16": 2,
    "I8": 1,
    "U8": 1,
    "BOOL": 1,
    "U16": 2,
    "U32": 4,
    "U64": 8,
    "F8_E4M3": 1,
    "F8_E5M2": 1,
}


# --------------------------------------------------------------------------- child side


def _rss_mb() -> float:
    """Current resident set size of this process in MiB (from /proc, else ru_maxrss)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            pages = int(fh.read().split()[1])
        return pages * os.sysconf("SC_PAGE_SIZE") / MIB
    except (OSError, ValueError, IndexError):
        return _maxrss_mb()


def _maxrss_mb() -> float:
    """Peak resident set size of this process image in MiB.

    On Linux this is VmHWM from /proc/self/status: the high-water mark of the current
    address space only. getrusage's ru_maxrss is not used there, because the kernel carries
    the pre-exec image's peak over exec, so a child spawned (vfork/exec) by a big parent
    would report the parent's RSS. Elsewhere ru_maxrss (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except (OSError, ValueError, IndexError):
        pass
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return ru / MIB if sys.platform == "darwin" else ru / 1024.0


def read_header(path: Path) -> tuple[int, dict[str, Any]]:
    """(data start offset, header dict) of a safetensors file."""
    with path.open("rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > 100 * MIB:
            raise ValueError(f"{path}: implausible header length {n}")
        header = json.loads(fh.read(n).decode("utf-8"))
    return 8 + n, header


def stream_file(
    path: Path, acts: dict[int, Any], seed: int, batch: int, trace: list[dict[str, Any]]
) -> int:
    """Apply every tensor of one file to the activations, mapping one tensor at a time."""
    import numpy as np

    start, header = read_header(path)
    entries = sorted(
        ((k, v) for k, v in header.items() if k != "__metadata__"),
        key=lambda kv: kv[1]["data_offsets"][0],
    )
    page = mmap.ALLOCATIONGRANULARITY
    streamed = 0
    with path.open("rb") as fh:
        for name, meta in entries:
            dtype = str(meta["dtype"])
            shape = [int(d) for d in meta["shape"]]
            lo, hi = (int(o) for o in meta["data_offsets"])
            nbytes = hi - lo
            row: dict[str, Any] = {"name": name, "dtype": dtype, "shape": shape, "bytes": nbytes}
            if nbytes == 0:
                trace.append(row | {"rss_mb": round(_rss_mb(), 1), "used": False})
                continue
            off = start + lo
            base = off - off % page
            mm = mmap.mmap(fh.fileno(), off - base + nbytes, offset=base, access=mmap.ACCESS_READ)
            try:
                if hasattr(mm, "madvise") and hasattr(mmap, "MADV_SEQUENTIAL"):
                    mm.madvise(mmap.MADV_SEQUENTIAL)
                used = dtype in _NP_DTYPES
                if used:
                    count = nbytes // _ITEMSIZE[dtype]
                    raw = np.frombuffer(mm, dtype=_NP_DTYPES[dtype], count=count, offset=off - base)
                    if dtype == "BF16":
                        w = (raw.astype(np.uint32) << 16).view(np.float32)
                    else:
                        w = raw.astype(np.float32)
                    del raw
                    _apply(w, shape, acts, seed, batch)
                    del w
                else:
                    # not a float tensor: read through it so every byte is streamed
                    view = memoryview(mm)
                    hashlib.sha256(view[off - base :]).digest()
                    view.release()
            finally:
                mm.close()
            streamed += nbytes
            trace.append(row | {"rss_mb": round(_rss_mb(), 1), "used": used})
    return streamed


def _apply(w: Any, shape: list[int], acts: dict[int, Any], seed: int, batch: int) -> None:
    """One layer of the generic chain (see module docstring)."""
    import numpy as np

    if len(shape) <= 1:
        d = shape[0] if shape else 1
        if d in acts:
            acts[d] = acts[d] + w.reshape(1, d)
        return
    out_f = shape[0]
    in_f = int(np.prod(shape[1:]))
    mat = w.reshape(out_f, in_f)
    x = acts.get(in_f)
    if x is None:
        rng = np.random.Generator(np.random.PCG64([seed, in_f]))
        x = rng.standard_normal((batch, in_f), dtype=np.float32)
    y = x @ mat.T
    rms = np.sqrt(np.mean(y.astype(np.float64) ** 2, axis=1, keepdims=True) + 1e-12)
    acts[out_f] = (y / rms).astype(np.float32)


def child_main(files: list[Path], seed: int, batch: int) -> dict[str, Any]:
    """Stream all files; return peak RSS, counts, timing, trace and a digest of the outputs."""
    import numpy as np

    baseline = _rss_mb()
    t0 = time.perf_counter()
    acts: dict[int, Any] = {}
    trace: list[dict[str, Any]] = []
    streamed = sum(stream_file(f, acts, seed, batch, trace) for f in files)
    wall = time.perf_counter() - t0
    h = hashlib.sha256()
    for d in sorted(acts):
        h.update(struct.pack("<Q", d))
        h.update(np.ascontiguousarray(acts[d], dtype="<f4").tobytes())
    return {
        "peak_rss_mb": _maxrss_mb(),
        "baseline_rss_mb": baseline,
        "bytes_streamed": streamed,
        "tensors": len(trace),
        "tensors_used": sum(1 for r in trace if r["used"]),
        "wall_s": wall,
        "digest": "sha256:" + h.hexdigest(),
        "trace": trace,
        "finite": bool(all(np.isfinite(a).all() for a in acts.values())),
    }


# --------------------------------------------------------------------------- parent side


def run_child(
    files: list[Path],
    *,
    seed: int = SEED,
    batch: int = BATCH,
    threads: int = 1,
    poll_s: float = 0.02,
) -> dict[str, Any]:
    """Run the child on `files`; its report plus the psutil-polled peak RSS and wall time."""
    import psutil

    env = dict(os.environ)
    root = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = root + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = str(threads)
    cmd = [
        sys.executable,
        "-m",
        "runners.memory",
        "--child",
        "--seed",
        str(seed),
        "--batch",
        str(batch),
        *map(str, files),
    ]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    polled = 0.0
    done = threading.Event()

    def poll() -> None:
        nonlocal polled
        try:
            p = psutil.Process(proc.pid)
            while not done.is_set():
                polled = max(polled, p.memory_info().rss / MIB)
                done.wait(poll_s)
        except psutil.Error:
            pass

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    done.set()
    watcher.join()
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] or ["(no stderr)"]
        raise RuntimeError(f"memory child failed (exit {proc.returncode}): {tail[0]}")
    report = json.loads(out.decode("utf-8"))
    report["peak_rss_polled_mb"] = polled
    report["process_wall_s"] = wall
    return report


def file_sha256(path: Path) -> str:
    """sha256 hex of a file, cached in a sidecar keyed by size and mtime (for big files)."""
    st = path.stat()
    key = f"{st.st_size}:{st.st_mtime_ns}"
    side = path.with_name(path.name + ".sha256")
    try:
        k, digest = side.read_text("ascii").split()
        if k == key and len(digest) == 64:
            return digest
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(4 * MIB):
            h.update(chunk)
    digest = h.hexdigest()
    try:
        side.write_text(f"{key} {digest}\n", "ascii")
    except OSError:
        pass
    return digest


class MemoryRunner:
    """Peak RSS of streaming inference over a memory-mapped safetensors file, vs its size."""

    name = "memory"
    version = "1.2.0"  # 1.1: polled RSS -> cross_check; 1.2: RSS spread kept out of delta
    physical_metrics = frozenset({"peak_rss_mb", "baseline_rss_mb", "rss_to_model_ratio"})
    description = (
        "streaming inference layer by layer from a memory-mapped safetensors file in a child "
        "process (one tensor mapped at a time); child peak RSS vs model file size"
    )
    params = (
        Param(
            "synthetic_gb",
            0.0,
            "0 = stream --model; > 0 = write (once, cached in the temp "
            "dir) a synthetic fp16 safetensors file of this many GiB and stream that",
            "float",
            minimum=0.0,
            maximum=64.0,
        ),
        Param(
            "batch",
            BATCH,
            "activation rows pushed through each layer",
            "int",
            minimum=1,
            maximum=1024,
        ),
    )

    def measure(self, model: Any, params: dict[str, Any], progress: ProgressFn) -> Measurement:
        """Stream the model (or the synthetic file) in a child; report its peak RSS."""
        gb = float(params["synthetic_gb"])
        extra: dict[str, Any] = {"seeds": {"activations": SEED}}
        if gb > 0:
            from runners import synthetic

            path = synthetic.cached(
                gb, progress=lambda d, t: progress(f"writing synthetic {gb:g} GiB file", d, t)
            )
            files = [path]
            extra["subjects"] = [{"name": path.name, "digest": {"sha256": file_sha256(path)}}]
            extra["source"] = {
                "kind": "synthetic",
                "gib": gb,
                "dim": 4096,
                "seed": 0,
                "generator": f"runners.synthetic v{synthetic.FORMAT_VERSION}",
                "file": path.name,
            }
        else:
            files = list(model.paths)
            extra["source"] = {"kind": "model", "files": [p.name for p in files]}
        model_bytes = sum(p.stat().st_size for p in files)
        progress("streaming in child process", 0, 1)
        try:
            import torch

            threads = max(1, torch.get_num_threads())
        except ImportError:  # pragma: no cover - torch is a dependency
            threads = 1
        rep = run_child(files, seed=SEED, batch=int(params["batch"]), threads=threads)
        progress("streaming in child process", 1, 1)
        model_mb = model_bytes / MIB
        peak = float(rep["peak_rss_mb"])
        metrics: dict[str, float | int | bool] = {
            "peak_rss_mb": round(peak, 1),
            "baseline_rss_mb": round(float(rep["baseline_rss_mb"]), 1),
            "model_mb": round(model_mb, 3),
            "rss_to_model_ratio": round(peak / model_mb, 4) if model_mb > 0 else 0.0,
            "peak_rss_pass": peak < RSS_LIMIT_MB,
            "tensors": int(rep["tensors"]),
            "tensors_used": int(rep["tensors_used"]),
            "bytes_streamed": int(rep["bytes_streamed"]),
            "bytes_model": int(model_bytes),
            "outputs_finite": bool(rep["finite"]),
        }
        rows = rep["trace"]
        extra["limit"] = {
            "peak_rss_mb": RSS_LIMIT_MB,
            "basis": "child VmHWM (/proc/self/status; ru_maxrss off Linux)",
        }
        # a sampling cross-check of peak_rss_mb, not a result: kept out of the metrics so its
        # polling noise (tens of MB at times) does not count as non-determinism
        extra["cross_check"] = {"peak_rss_polled_mb": round(float(rep["peak_rss_polled_mb"]), 1)}
        extra["timing"] = {
            "stream_wall_s": round(float(rep["wall_s"]), 3),
            "process_wall_s": round(float(rep["process_wall_s"]), 3),
        }
        extra["child"] = {
            "command": "python -m runners.memory --child",
            "threads": threads,
            "inference": "generic linear chain (see runner description), numpy float32",
        }
        extra["determinism_note"] = (
            "peak_rss_mb, baseline_rss_mb and rss_to_model_ratio are physical measurements: "
            "their run-to-run spread is determinism.physical_spread, not part of "
            "determinism.delta; the digest of the final activations must not vary"
        )
        return Measurement(metrics, rows, rep["digest"], extra)


RUNNER = MemoryRunner()


def main(argv: list[str] | None = None) -> int:
    """Child entry point: ``python -m runners.memory --child [--seed S] [--batch B] FILE...``."""
    ap = argparse.ArgumentParser(prog="python -m runners.memory")
    ap.add_argument("--child", action="store_true", required=True)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--batch", type=int, default=BATCH)
    ap.add_argument("files", nargs="+", type=Path)
    args = ap.parse_args(argv)
    report = child_main(args.files, args.seed, args.batch)
    sys.stdout.write(json.dumps(report, allow_nan=False))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
