"""pq: product quantization with per-matrix k-means codebooks on sub-vectors."""

from __future__ import annotations

import math
from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import CALIB_SAMPLES, CALIBRATION, MATRICES, selected
from runners.functional import add_functional
from runners.measure import (
    Calibration,
    CompressedMatrix,
    ReconstructionDigest,
    fp16_bytes,
    from_fp16_bytes,
    matrix_row,
    pack_bits,
    summarize,
    unpack_bits,
)
from runners.model import ModelSource

_CHUNK = 16384


def assign(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """Index of the nearest centroid for each row of x (chunked, ties to the lowest index)."""
    c2 = (centroids * centroids).sum(1)
    ct = centroids.T.contiguous()
    out = torch.empty(x.shape[0], dtype=torch.long)
    for s in range(0, x.shape[0], _CHUNK):
        d = torch.addmm(c2, x[s : s + _CHUNK], ct, beta=1.0, alpha=-2.0)
        out[s : s + _CHUNK] = d.argmin(dim=1)
    return out


def kmeans(x: torch.Tensor, k: int, iters: int, seed: int) -> torch.Tensor:
    """Lloyd k-means from k seeded distinct points; empty clusters move to worst-fit points."""
    gen = torch.Generator().manual_seed(seed)
    pool = torch.unique(x, dim=0)
    if pool.shape[0] >= k:
        centroids = pool[torch.randperm(pool.shape[0], generator=gen)[:k]].clone()
    else:
        extra = pool[torch.randint(0, pool.shape[0], (k - pool.shape[0],), generator=gen)]
        centroids = torch.cat([pool, extra]).clone()
    for _ in range(iters):
        idx = assign(x, centroids)
        sums = torch.zeros_like(centroids).index_add_(0, idx, x)
        counts = torch.bincount(idx, minlength=k).to(x.dtype)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        empty = (~filled).nonzero().reshape(-1)
        if empty.numel():
            err = ((x - centroids[idx]) ** 2).sum(1)
            worst = torch.topk(err, min(empty.numel(), x.shape[0])).indices
            centroids[empty[: worst.numel()]] = x[worst]
    return centroids


def pq_compress(
    w: torch.Tensor,
    subvector_dim: int,
    codebook_size: int,
    iters: int,
    train_samples: int,
    seed: int,
) -> CompressedMatrix:
    """Product-quantize a matrix: fp16 codebook + packed indices; rebuild from those bytes."""
    out_f, in_f = w.shape
    d = subvector_dim
    pad = (-in_f) % d
    wp = torch.nn.functional.pad(w, (0, pad)) if pad else w
    vecs = wp.reshape(-1, d).contiguous()
    n = vecs.shape[0]
    gen = torch.Generator().manual_seed(seed + 1)
    train = vecs if n <= train_samples else vecs[torch.randperm(n, generator=gen)[:train_samples]]
    centroids = kmeans(train, codebook_size, iters, seed)
    book = fp16_bytes(centroids)
    book_f = from_fp16_bytes(book, tuple(centroids.shape))
    idx = assign(vecs, book_f)
    bits = max(1, math.ceil(math.log2(codebook_size)))
    parts = {"codes": pack_bits(idx.numpy(), bits), "codebook": book}
    idx_back = torch.from_numpy(unpack_bits(parts["codes"], bits, n).astype("int64"))
    w_hat = from_fp16_bytes(parts["codebook"], tuple(centroids.shape))[idx_back]
    w_hat = w_hat.reshape(out_f, in_f + pad)[:, :in_f].contiguous()
    return CompressedMatrix(parts, w_hat, {"index_bits": bits, "subvectors": n})


class PQRunner:
    """Per-matrix product quantization; ratio counts codebooks and packed index bytes."""

    name = "pq"
    version = "1.1.0"  # 1.1: held-out embedding cosine, layer_out_cos_min, ratio_model
    description = (
        "product quantization: seeded k-means codebooks (fp16) on sub-vectors of "
        "each row; ratio from packed indices + codebook bytes"
    )
    params = (
        Param("subvector_dim", 4, "values per sub-vector", "int", minimum=1, maximum=64),
        Param(
            "codebook_size",
            256,
            "centroids per matrix codebook (2..65536)",
            "int",
            minimum=2,
            maximum=65536,
        ),
        Param("iters", 6, "k-means (Lloyd) iterations", "int", minimum=0, maximum=200),
        Param(
            "train_samples",
            8192,
            "sub-vectors sampled to train each codebook",
            "int",
            minimum=16,
            maximum=1 << 24,
        ),
        Param("seed", 0, "k-means seed", "int", minimum=0, maximum=2**31 - 1),
        MATRICES,
        CALIBRATION,
        CALIB_SAMPLES,
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """PQ every counted matrix once and summarize."""
        model = selected(model, params)
        calib = Calibration(model, params["calibration"], params["calib_samples"], seed=0)
        digest = ReconstructionDigest()
        rows: list[dict[str, Any]] = []
        recon: dict[str, torch.Tensor] = {}
        infos = model.matrix_infos()
        for i, (info, w) in enumerate(model.iter_matrices()):
            cm = pq_compress(
                w,
                params["subvector_dim"],
                params["codebook_size"],
                params["iters"],
                params["train_samples"],
                params["seed"] + i,
            )
            row = matrix_row(info, w, cm, calib.inputs(info))
            row["calibration"] = calib.sources[info.name]
            row["index_bits"] = cm.info["index_bits"]
            rows.append(row)
            digest.update(cm.w_hat)
            recon[info.name] = cm.w_hat
            progress(info.name, i + 1, len(infos))
        metrics = summarize(rows)
        extra = {
            "subjects": calib.subjects(),
            "calibration": calib.describe(),
            "seeds": {"kmeans": params["seed"]},
        }
        add_functional(model, recon, metrics, extra)
        return Measurement(metrics, rows, digest.hexdigest(), extra)


RUNNER = PQRunner()
