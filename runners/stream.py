"""Row-block streaming of large matrices: read, compress and measure a block of rows at a time.

A matrix whose float32 copy would exceed `ROW_CHUNK_ELEMS` values is read from its
safetensors file in blocks of whole rows (`ModelSource.load_rows`), so the runner never
holds the whole float32 matrix, its reconstruction, or their float64 copies at once. The
packed bytes and the reconstruction digest are the same as for the whole matrix: blocks
start on group (and packed-byte) boundaries, and sha256 over consecutive blocks is sha256
over the whole. Cosines are running sums of per-block dot products and norms; a matrix
that fits in one block (every matrix of the default model and of SmolLM2's linear layers)
takes exactly the whole-matrix arithmetic, so its figures are bit-for-bit unchanged; for
a multi-block matrix the float64 sums are regrouped (differences ~1e-16 relative).
"""

from __future__ import annotations

import ctypes
import math
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from runners.measure import ReconstructionDigest, figures_row, matrix_row, scalar_compress
from runners.physics import add_sampled_bound, sample_index

if TYPE_CHECKING:
    from runners.model import ModelSource, TensorInfo

ROW_CHUNK_ELEMS = 1 << 20  # values per row block: 4 MiB as float32 (read at call time)
MMAP_THRESHOLD = 1 << 20  # glibc: allocations from 1 MiB up get their own mapping
_heap_bounded = False


def bound_heap() -> None:
    """Have glibc map every allocation of `MMAP_THRESHOLD` bytes or more on its own and
    unmap it when freed (mallopt M_MMAP_THRESHOLD; Linux/glibc only, once per process).

    By default glibc raises that threshold to the size of the largest block freed (up to
    32 MiB), so block-sized tensors then come from the heap, whose freed space interleaved
    with small live objects is kept: measured on 4096×4096 matrices, RSS climbed by ~15 MiB
    per row block to ~4x a layer before it levelled. Numbers are unaffected.
    """
    global _heap_bounded
    if _heap_bounded or not sys.platform.startswith("linux"):
        return
    _heap_bounded = True
    try:
        libc = ctypes.CDLL(None)
        if not hasattr(libc, "gnu_get_libc_version"):
            return  # not glibc (musl ignores mallopt)
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)
    except (OSError, AttributeError):
        pass


_M_MMAP_THRESHOLD = -3
_libc: Any = None


def trim_heap() -> None:
    """Return the heap's free pages to the system (glibc malloc_trim(0); no-op elsewhere).

    Below `MMAP_THRESHOLD`, a block's temporaries come from the heap, where small objects
    kept across blocks (sampled rows, running sums) pin its freed space; trimmed after each
    block, RSS stays flat over the blocks. Numbers are unaffected.
    """
    global _libc
    if not sys.platform.startswith("linux"):
        return
    try:
        if _libc is None:
            _libc = ctypes.CDLL(None)
        if hasattr(_libc, "malloc_trim"):
            _libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def row_blocks(
    rows: int, cols: int, unit: int = 1, budget: int | None = None
) -> list[tuple[int, int]]:
    """Row ranges [r0, r1) of about `budget` values each, every start a multiple of `unit`
    values into the flattened matrix (so group and packed-byte boundaries line up)."""
    budget = ROW_CHUNK_ELEMS if budget is None else budget
    cols = max(1, cols)
    per = unit // math.gcd(unit, cols)  # rows whose value count is a multiple of `unit`
    step = max(per, (max(1, budget // cols) // per) * per)
    if step >= rows:
        return [(0, rows)]
    return [(r, min(r + step, rows)) for r in range(0, rows, step)]


class RunningCosine:
    """`runners.measure.cosine` over a tensor fed in consecutive pieces (float64 sums).

    With one piece the result is exactly `cosine(a, b)`; with several, the dot product and
    the squared norms are summed over the pieces.
    """

    def __init__(self) -> None:
        """Start with no pieces."""
        self._parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add the next piece of both tensors."""
        x = a.reshape(-1).to(torch.float64)
        y = b.reshape(-1).to(torch.float64)
        self._parts.append(
            (torch.dot(x, y), torch.linalg.vector_norm(x), torch.linalg.vector_norm(y))
        )

    def value(self) -> float:
        """The cosine so far (1.0 for two zero tensors, 0.0 for one)."""
        if len(self._parts) == 1:
            dot, nx, ny = self._parts[0]
        else:
            dot = torch.stack([p[0] for p in self._parts]).sum()
            nx = torch.sqrt(torch.stack([p[1] * p[1] for p in self._parts]).sum())
            ny = torch.sqrt(torch.stack([p[2] * p[2] for p in self._parts]).sum())
        if nx == 0 and ny == 0:
            return 1.0
        if nx == 0 or ny == 0:
            return 0.0
        return float(torch.clamp(dot / (nx * ny), -1.0, 1.0))


class RowSample:
    """The rows `runners.physics.sample_rows` takes of a matrix, gathered from its row blocks
    (the data-dependent bound is estimated on them, as for the whole matrix)."""

    def __init__(self, rows: int, cols: int):
        """Which rows: every row of a small matrix, else `sample_rows`' evenly spaced ones."""
        self.rows = rows
        self.index = sample_index(rows, cols)
        self._parts: list[torch.Tensor] = []

    def update(self, r0: int, block: torch.Tensor) -> None:
        """Keep the sampled rows of the block starting at row r0."""
        if self.index is None:
            self._parts.append(block.detach().clone())
            return
        sel = self.index[(self.index >= r0) & (self.index < r0 + block.shape[0])] - r0
        if sel.numel():
            self._parts.append(block[sel])

    def add_bound(self, row: dict[str, Any]) -> None:
        """`runners.physics.add_data_bound` of the whole matrix, from the sampled rows."""
        sample = torch.cat(self._parts) if len(self._parts) > 1 else self._parts[0]
        add_sampled_bound(row, sample, self.rows)


def keeps_reconstructions(model: ModelSource) -> bool:
    """Whether a functional metric will run the model (BERT encoder or causal LM folder), so
    the reconstructions must be kept for it; otherwise each is dropped once measured."""
    from runners.minilm import folder_kind, model_folder

    folder = model_folder(model.paths[0]) if model.paths else None
    return folder is not None and folder_kind(folder) in ("bert", "causal-lm")


def scalar_matrix(
    model: ModelSource,
    info: TensorInfo,
    bits: int,
    group_size: int,
    x: torch.Tensor | None,
    digest: ReconstructionDigest,
    keep: bool,
    on_parts: Callable[[dict[str, bytes]], None] | None = None,
) -> tuple[dict[str, Any], torch.Tensor | None]:
    """Group-quantize one matrix (no residual), in row blocks when it is large.

    Feeds the reconstruction to `digest` and returns `matrix_row`'s row plus the whole
    reconstruction when `keep` (else None). `on_parts` receives each block's packed bytes
    (tests check they concatenate to the whole-matrix bytes).
    """
    rows, cols = info.shape
    blocks = row_blocks(rows, cols, unit=math.lcm(group_size, 8))
    if len(blocks) == 1:
        w = model.load(info)
        cm = scalar_compress(w, bits, group_size, 0)
        if on_parts is not None:
            on_parts(cm.parts)
        digest.update(cm.w_hat)
        return matrix_row(info, w, cm, x), (cm.w_hat if keep else None)
    sizes: dict[str, int] = {}
    cos, out_cos = RunningCosine(), RunningCosine()
    sample = RowSample(rows, cols)
    full = torch.empty(rows, cols) if keep else None
    for r0, r1 in blocks:
        w = model.load_rows(info, r0, r1)
        sample.update(r0, w)
        cm = scalar_compress(w, bits, group_size, 0)
        if on_parts is not None:
            on_parts(cm.parts)
        for k, v in cm.parts.items():
            sizes[k] = sizes.get(k, 0) + len(v)
        cos.update(w, cm.w_hat)
        if x is not None:
            out_cos.update(x @ w.T, x @ cm.w_hat.T)
        digest.update(cm.w_hat)
        if full is not None:
            full[r0:r1] = cm.w_hat
        del w, cm
    out = out_cos.value() if x is not None else None
    return block_row(info, sizes, cos.value(), out, sample), full


def block_row(
    info: TensorInfo,
    sizes: dict[str, int],
    cos: float,
    layer_out_cos: float | None,
    sample: RowSample,
) -> dict[str, Any]:
    """`runners.measure.matrix_row` from byte counts and cosines (same keys, same order)."""
    row = figures_row(info, sizes, cos, layer_out_cos)
    sample.add_bound(row)
    return row
