"""Write large synthetic safetensors files in bounded memory, tensor by tensor.

The format is written by hand: 8-byte little-endian header length, the JSON header
(padded with spaces to a multiple of 8), then each tensor's bytes in header order. The
header is computed first from the shapes alone, so each tensor can be generated, written
and dropped before the next one exists. Content is deterministic (numpy PCG64, one seed
per tensor), so the same size, dim and seed give the same file and the same sha256.

CLI: ``python -m runners.synthetic OUT.safetensors --gb 2 [--dim 4096] [--seed 0]``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import struct
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

FORMAT_VERSION = 1
GIB = 1 << 30
_ALIGN = 8


def plan(gb: float, dim: int) -> list[tuple[str, tuple[int, int]]]:
    """Tensor names and shapes (F16 [dim, dim] matrices) summing to at least `gb` GiB."""
    if gb <= 0 or dim <= 0:
        raise ValueError("gb and dim must be positive")
    per = dim * dim * 2
    n = max(1, math.ceil(gb * GIB / per))
    return [(f"layers.{i}.weight", (dim, dim)) for i in range(n)]


def header_bytes(layout: list[tuple[str, tuple[int, int]]], gb: float, seed: int) -> bytes:
    """The length-prefixed, space-padded JSON header for `layout` (all F16)."""
    header: dict[str, object] = {
        "__metadata__": {
            "format": "pt",
            "generator": f"evledger.runners.synthetic/{FORMAT_VERSION}",
            "gb": repr(float(gb)),
            "seed": str(seed),
        }
    }
    offset = 0
    for name, shape in layout:
        nbytes = shape[0] * shape[1] * 2
        header[name] = {
            "dtype": "F16",
            "shape": list(shape),
            "data_offsets": [offset, offset + nbytes],
        }
        offset += nbytes
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((-len(raw)) % _ALIGN)
    return struct.pack("<Q", len(raw)) + raw


def expected_size(gb: float, dim: int, seed: int = 0) -> int:
    """Size in bytes of the file `write` produces for these arguments."""
    layout = plan(gb, dim)
    return len(header_bytes(layout, gb, seed)) + sum(s[0] * s[1] * 2 for _, s in layout)


def _tensor(i: int, dim: int, seed: int) -> np.ndarray:
    """The i-th synthetic matrix: N(0, 1/dim) entries in fp16."""
    rng = np.random.Generator(np.random.PCG64([seed, i]))
    a = rng.standard_normal((dim, dim), dtype=np.float32)
    a *= np.float32(1.0 / math.sqrt(dim))
    return a.astype("<f2")


def write(
    path: Path | str,
    gb: float,
    *,
    dim: int = 4096,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Write the synthetic file atomically (temp name + rename); return its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    layout = plan(gb, dim)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(header_bytes(layout, gb, seed))
            for i, (_, _shape) in enumerate(layout):
                arr = _tensor(i, dim, seed)
                fh.write(memoryview(arr).cast("B"))
                del arr
                if progress is not None:
                    progress(i + 1, len(layout))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def verify(path: Path | str) -> int:
    """Open with safetensors' own reader, check shapes/dtypes and first/last tensor; count."""
    import torch
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        keys = list(f.keys())
        if not keys:
            raise ValueError(f"{path}: no tensors")
        for k in keys:
            sl = f.get_slice(k)
            if sl.get_dtype() != "F16" or len(sl.get_shape()) != 2:
                raise ValueError(f"{path}: unexpected tensor {k}")
        for k in {keys[0], keys[-1]}:
            t = f.get_tensor(k)
            if not bool(torch.isfinite(t).all()):
                raise ValueError(f"{path}: tensor {k} not finite")
    return len(keys)


def cached(
    gb: float,
    *,
    dim: int = 4096,
    seed: int = 0,
    cache_dir: Path | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """The synthetic file for (gb, dim, seed) in a cache folder, written once and reused."""
    base = cache_dir or Path(os.environ.get("EVLEDGER_CACHE", tempfile.gettempdir()))
    folder = Path(base) / "evledger-synthetic"
    name = f"synthetic-v{FORMAT_VERSION}-{gb:g}gib-d{dim}-s{seed}.safetensors"
    path = folder / name
    if path.is_file() and path.stat().st_size == expected_size(gb, dim, seed):
        return path
    return write(path, gb, dim=dim, seed=seed, progress=progress)


def main(argv: list[str] | None = None) -> int:
    """CLI entry point: write and verify one synthetic file."""
    ap = argparse.ArgumentParser(
        prog="python -m runners.synthetic", description=__doc__.split("\n")[0]
    )
    ap.add_argument("out", type=Path, help="output .safetensors path")
    ap.add_argument("--gb", type=float, default=2.0, help="size in GiB (default 2)")
    ap.add_argument("--dim", type=int, default=4096, help="matrix side (default 4096)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    path = write(args.out, args.gb, dim=args.dim, seed=args.seed)
    n = verify(path)
    print(f"{path}: {path.stat().st_size} bytes, {n} tensors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
