"""Parameters and loops shared by the scalar-quantization runners."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from runners.base import Measurement, Param, ProgressFn
from runners.functional import add_functional
from runners.measure import (
    Calibration,
    CompressedMatrix,
    ReconstructionDigest,
    matrix_row,
    scalar_compress,
    summarize,
)
from runners.model import ModelSource
from runners.stream import bound_heap, keeps_reconstructions, scalar_matrix

MATRICES = Param(
    "matrices",
    "linear",
    "which tensors count: linear (2-D weights, no embeddings), ffn, attention, "
    "all2d (incl. embeddings) or re:REGEX",
    "str",
)
CALIBRATION = Param(
    "calibration",
    "activations",
    "calibration inputs for output cos: gaussian (seeded) or activations "
    "(real model inputs when the model can run; else gaussian)",
    "str",
    choices=("gaussian", "activations"),
)
CALIB_SAMPLES = Param(
    "calib_samples", 256, "calibration input rows per matrix", "int", minimum=8, maximum=65536
)


def bits_param(default: int) -> Param:
    """The `bits` parameter (2..8)."""
    return Param("bits", default, "bits per code (asymmetric, 2..8)", "int", minimum=2, maximum=8)


def group_param(default: int) -> Param:
    """The `group_size` parameter."""
    return Param(
        "group_size",
        default,
        "values per group sharing one fp16 scale and zero",
        "int",
        minimum=1,
        maximum=1 << 20,
    )


def selected(model: ModelSource, params: dict[str, Any]) -> ModelSource:
    """The model source with the runner's `matrices` selection applied."""
    sel = params.get("matrices", model.matrices)
    if sel == model.matrices:
        return model
    return ModelSource(model.requested if not model.is_default else None, matrices=sel)


Recode = Callable[[Any, torch.Tensor, CompressedMatrix], tuple[CompressedMatrix, dict[str, Any]]]


def scalar_measure(
    model: ModelSource,
    params: dict[str, Any],
    progress: ProgressFn,
    rank: int = 0,
    recode: Recode | None = None,
    keep: bool = True,
) -> tuple[Measurement, list[tuple[Any, CompressedMatrix]]]:
    """Group-quantize every counted matrix (optionally re-coding its bytes); rows and summary.

    `recode(info, w, cm)` may replace the produced bytes (e.g. entropy-code them) and returns
    the new CompressedMatrix plus extra row fields. With `keep=False` nothing per matrix is
    returned, and without recode or residual each matrix is streamed in row blocks
    (runners.stream): memory follows the largest block, not the model.
    """
    if not keep and recode is None and rank == 0:
        return _streamed(model, params, progress), []
    model = selected(model, params)
    calib = Calibration(
        model, params.get("calibration", "activations"), params.get("calib_samples", 256), seed=0
    )
    digest = ReconstructionDigest()
    rows: list[dict[str, Any]] = []
    kept: list[tuple[Any, CompressedMatrix]] = []
    recon: dict[str, torch.Tensor] = {}
    keep_recon = keeps_reconstructions(model)  # only the functional probe reads them
    infos = model.matrix_infos()
    for i, (info, w) in enumerate(model.iter_matrices()):
        cm = scalar_compress(w, params["bits"], params["group_size"], rank)
        more: dict[str, Any] = {}
        if recode is not None:
            cm, more = recode(info, w, cm)
        rows.append(matrix_row(info, w, cm, calib.inputs(info)))
        rows[-1].update(more)
        rows[-1]["calibration"] = calib.sources[info.name]
        digest.update(cm.w_hat)
        if keep_recon:
            recon[info.name] = cm.w_hat
        if keep:
            kept.append((info, cm))
        cm.w_hat = cm.w_hat[:0]  # drop the reconstruction; codes stay for later coders
        progress(info.name, i + 1, len(infos))
    metrics = summarize(rows)
    extra = {"subjects": calib.subjects(), "calibration": calib.describe()}
    add_functional(model, recon, metrics, extra)
    return Measurement(metrics, rows, digest.hexdigest(), extra), kept


def _streamed(model: ModelSource, params: dict[str, Any], progress: ProgressFn) -> Measurement:
    """`scalar_measure` without codes kept: row blocks, reconstructions only for the probe."""
    bound_heap()
    model = selected(model, params)
    calib = Calibration(
        model, params.get("calibration", "activations"), params.get("calib_samples", 256), seed=0
    )
    digest = ReconstructionDigest()
    rows: list[dict[str, Any]] = []
    recon: dict[str, torch.Tensor] = {}
    keep = keeps_reconstructions(model)
    infos = model.matrix_infos()
    for i, info in enumerate(infos):
        x = calib.inputs(info)
        row, w_hat = scalar_matrix(
            model, info, params["bits"], params["group_size"], x, digest, keep
        )
        rows.append(row)
        rows[-1]["calibration"] = calib.sources[info.name]
        if w_hat is not None:
            recon[info.name] = w_hat
        progress(info.name, i + 1, len(infos))
    metrics = summarize(rows)
    extra = {"subjects": calib.subjects(), "calibration": calib.describe()}
    add_functional(model, recon, metrics, extra)
    return Measurement(metrics, rows, digest.hexdigest(), extra)
