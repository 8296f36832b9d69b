"""hessian: GPTQ-style error feedback with H = 2·XᵀX from calibration activations, on FFN matrices.

With a BERT-style model folder (config.json + tokenizer.json next to the weights, e.g. the
default MiniLM-L6), X are real activations from running the model on the built-in English
texts, gathered sequentially: each matrix sees the inputs of the model whose earlier
selected matrices are already quantized (as in GPTQ). The functional metric is the cosine
between sentence embeddings of the compressed and the original model on held-out texts
(not used for calibration; GPTQ fits the calibration activations, so in-sample figures are
optimistic and are reported apart as *_calib), for GPTQ and for plain round-to-nearest
(RTN) on the same grid. With a causal LM folder (config architectures *ForCausalLM plus
tokenizer.json, run through `transformers` from local files only, see runners/causal.py),
X are the inputs of the model's own Linear layers on the calibration texts, again
gathered sequentially in forward order, and the functional metric is perplexity
(exp of the mean next-token NLL) on the held-out texts: before, after GPTQ, after RTN.
Without a runnable config/tokenizer (a bare .safetensors file), X are seeded Gaussian
inputs and no functional metric is given.

Memory: per matrix, H⁻¹'s upper Cholesky factor is computed once, then W is read and
quantized in blocks of rows (runners.stream); only reconstructions the functional metric
applies are kept, so on a bare file the peak follows the largest matrix, not the model.
A matrix of up to `FLOAT32_H_ABOVE` values (every matrix of the default model and of
SmolLM2) has it factored in float64 (about two in×in float64 arrays at the peak,
`runners.gptq.hinv_upper_lean`); a larger one has H accumulated in float32 and factored in
place with LAPACK (`runners.gptq.hinv_upper_f32`: one in×in float32 array).
"""

from __future__ import annotations

import hashlib
import importlib.util
from typing import Any

import numpy as np
import torch

from runners.base import Measurement, Param, ProgressFn
from runners.common import bits_param, group_param, selected
from runners.gptq import (
    QuantResult,
    dequantize,
    gptq_rows,
    hinv_upper_f32,
    hinv_upper_lean,
    rtn,
)
from runners.measure import (
    CompressedMatrix,
    ReconstructionDigest,
    fp16_bytes,
    from_fp16_bytes,
    pack_bits,
    summarize,
    unpack_bits,
)
from runners.minilm import BertEncoder, folder_kind, model_folder
from runners.model import ModelSource, TensorInfo
from runners.stream import (
    RowSample,
    RunningCosine,
    block_row,
    bound_heap,
    row_blocks,
    trim_heap,
)
from runners.texts import HELDOUT, TEXTS
from runners.texts import subject as texts_subject

GAUSSIAN_SAMPLES = 512
GAUSSIAN_SEED = 0
# A matrix of more values than this gets float32 H and an in-place LAPACK factorisation
# (`runners.gptq.hinv_upper_f32`); up to it, float64 (`hinv_upper_lean`). The same 2^20 as
# runners.stream.ROW_CHUNK_ELEMS, above which matrices are read in row blocks.
FLOAT32_H_ABOVE = 1 << 20
# Values per row block of such a matrix: a quarter of the streaming default, since H⁻¹'s
# factor (in² float32) stays resident while GPTQ, RTN, packing and the cosines of a block
# take ~10x its fp32 size in temporaries (measured: 40 MiB at 2^20 values, 4096 columns).
LARGE_BLOCK_ELEMS = 1 << 18


def compress(q: QuantResult) -> CompressedMatrix:
    """Pack codes (bits each) + fp16 per-group scales/offsets, and rebuild Ŵ from those bytes."""
    rows, cols = q.codes.shape
    parts = {
        "codes": pack_bits(q.codes.reshape(-1).numpy(), q.bits),
        "scales": fp16_bytes(q.scale),
        "zeros": fp16_bytes(q.zero),
    }
    codes = unpack_bits(parts["codes"], q.bits, rows * cols).astype(np.float32)
    c = torch.from_numpy(codes).reshape(rows, cols)
    scale = from_fp16_bytes(parts["scales"], tuple(q.scale.shape))
    offset = from_fp16_bytes(parts["zeros"], tuple(q.zero.shape))
    gs = q.group_size
    w_hat = dequantize(
        c,
        scale.repeat_interleave(gs, 1)[:, :cols],
        offset.repeat_interleave(gs, 1)[:, :cols],
    )
    return CompressedMatrix(parts, w_hat, {"group_size": gs})


def _gaussian_inputs(in_features: int) -> torch.Tensor:
    """Seeded N(0, 1) calibration inputs [GAUSSIAN_SAMPLES, in_features]."""
    gen = torch.Generator().manual_seed(GAUSSIAN_SEED * 1_000_003 + in_features)
    return torch.randn(GAUSSIAN_SAMPLES, in_features, generator=gen)


def _cos_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine of two [n, d] tensors, float64."""
    return torch.nn.functional.cosine_similarity(a.to(torch.float64), b.to(torch.float64), dim=1)


class HessianRunner:
    """GPTQ (Frantar et al.) vs RTN on the same group-wise grid, with a functional metric."""

    name = "hessian"
    # 1.1: perplexity for causal LM folders (was a Gaussian fallback); 1.2: out_cos renamed
    # layer_out_cos_min, 204 held-out texts, ratio_model; 1.3: matrices of more than 2^20
    # values get float32 H factored in place with LAPACK (peak memory; smaller ones unchanged)
    version = "1.3.0"
    description = (
        "GPTQ-style quantization with error feedback (H = 2·XᵀX from real activations of the "
        "model on built-in texts), on FFN matrices; output cos and sentence-embedding cos "
        "(perplexity for a causal LM folder) vs the original model, GPTQ beside plain "
        "rounding; real packed bytes"
    )
    params = (
        bits_param(4),
        group_param(128),
        Param(
            "damp",
            0.01,
            "damping λ as a fraction of mean(diag H)",
            "float",
            minimum=0.0,
            maximum=10.0,
        ),
        Param("matrices", "ffn", "which tensors count: ffn, linear, attention or re:REGEX", "str"),
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Quantize every selected matrix with GPTQ and RTN; rows, metrics, functional metric."""
        prev_threads = torch.get_num_threads()
        # Small matmuls and a long column loop: one intra-op thread is 2-5x faster than two
        # on a busy 2-core host and gives the same numbers (recorded under `compute`).
        torch.set_num_threads(1)
        try:
            m = self._measure(model, params, progress)
        finally:
            torch.set_num_threads(prev_threads)
        m.extra["compute"] = {"torch_threads": 1}
        return m

    def _measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """The measurement proper (see `measure`)."""
        bound_heap()
        model = selected(model, params)
        infos = [i for i in model.matrix_infos() if len(i.shape) == 2]
        folder = model_folder(model.paths[0])
        kind = folder_kind(folder) if folder is not None else "bare"
        if kind == "causal-lm" and folder is not None:
            if importlib.util.find_spec("transformers") is not None:
                return _measure_causal(model, infos, folder, params, progress)
            kind = "causal-lm-no-transformers"
        encoder: BertEncoder | None = None
        if kind == "bert" and folder is not None:
            encoder = BertEncoder(folder, files=model.paths)
            if all(_enc_name(encoder, i.name) is None for i in infos):
                encoder = None
                kind = "bert-unmatched"
        bits, gs, damp = params["bits"], params["group_size"], params["damp"]
        digest = ReconstructionDigest()
        rows: list[dict[str, Any]] = []
        gptq_w: dict[str, torch.Tensor] = {}
        rtn_w: dict[str, torch.Tensor] = {}
        calib_hash = hashlib.sha256()
        x_orig: dict[str, torch.Tensor] = {}  # held-out inputs, for layer_out_cos
        gaussian_rows: list[str] = []
        if encoder is not None:
            names = [n for i in infos if (n := _enc_name(encoder, i.name)) is not None]
            encoder.embed(
                HELDOUT, capture=lambda n, x: x_orig.__setitem__(n, x.clone()), capture_names=names
            )
        total = len(infos)
        for k, info in enumerate(infos):
            ename = _enc_name(encoder, info.name) if encoder is not None else None
            if encoder is not None and ename is not None:
                x_seq = _capture_one(encoder, ename, gptq_w)
                x_eval = x_orig[ename]
            else:
                x_seq = x_eval = _gaussian_inputs(info.shape[1])
            calib_hash.update(x_seq.contiguous().numpy().tobytes())
            keep = ename is not None  # only the encoder runs need the reconstructions
            row, g_hat, r_hat = _gptq_matrix(
                model, info, x_seq, x_eval, keep, bits, gs, damp, digest, keep
            )
            rows.append(row)
            if ename is not None and g_hat is not None and r_hat is not None:
                gptq_w[ename] = g_hat
                rtn_w[ename] = r_hat
            elif encoder is not None:
                gaussian_rows.append(info.name)
            progress(info.name, k + 1, total)
        metrics = summarize(rows)
        metrics["cos_min_rtn"] = min(r["cos_rtn"] for r in rows)
        metrics["layer_out_cos_min_rtn"] = min(r["layer_out_cos_rtn"] for r in rows)
        metrics["layer_out_cos_mean_rtn"] = sum(r["layer_out_cos_rtn"] for r in rows) / len(rows)
        extra: dict[str, Any] = {"seeds": {"gaussian_calibration": GAUSSIAN_SEED}}
        if encoder is not None:
            for suffix, texts in (("", HELDOUT), ("_calib", TEXTS)):
                ref = encoder.embed(texts)
                cos_g = _cos_rows(ref, encoder.embed(texts, overrides=gptq_w))
                cos_r = _cos_rows(ref, encoder.embed(texts, overrides=rtn_w))
                metrics[f"embedding_cos_min{suffix}"] = float(cos_g.min())
                metrics[f"embedding_cos_mean{suffix}"] = float(cos_g.mean())
                metrics[f"embedding_cos_min_rtn{suffix}"] = float(cos_r.min())
                metrics[f"embedding_cos_mean_rtn{suffix}"] = float(cos_r.mean())
            extra["subjects"] = [texts_subject(), texts_subject(HELDOUT, "evaluation-texts")]
            extra["calibration"] = {
                "kind": "activations",
                "texts": len(TEXTS),
                "tokens": max(int(r["calib_rows"]) for r in rows if r["calib"] == "activations"),
                "gaussian_matrices": gaussian_rows,
                "layer_out_cos_inputs": "original model's activations on the held-out texts",
                "sequential": True,
                "digest": "sha256:" + calib_hash.hexdigest(),
            }
            extra["functional"] = {
                "metric": "sentence-embedding cosine (mean pooling + L2), compressed vs original",
                "texts": f"{len(HELDOUT)} built-in held-out texts (evaluation-texts); the "
                f"*_calib metrics are on the {len(TEXTS)} calibration texts (in-sample)",
                "before": "rtn",
                "after": "gptq",
            }
        else:
            extra["subjects"] = [
                {
                    "name": f"calibration/gaussian-seed{GAUSSIAN_SEED}-n{GAUSSIAN_SAMPLES}",
                    "digest": {"sha256": calib_hash.hexdigest()},
                }
            ]
            extra["calibration"] = {
                "kind": "gaussian",
                "samples": GAUSSIAN_SAMPLES,
                "reason": _fallback_reason(kind),
                "digest": "sha256:" + calib_hash.hexdigest(),
            }
            extra["functional"] = {"metric": None, "reason": _fallback_reason(kind)}
        extra["method"] = _method()
        return Measurement(metrics, rows, digest.hexdigest(), extra)


def _enc_name(encoder: BertEncoder, file_key: str) -> str | None:
    """The encoder's weight name for a file key, if it is one of its linear layers."""
    name = file_key.removeprefix("bert.")
    return name if name in set(encoder.linear_names()) else None


def _capture_one(
    encoder: BertEncoder, name: str, overrides: dict[str, torch.Tensor]
) -> torch.Tensor:
    """Inputs of linear `name` over the texts, with `overrides` (already quantized) applied."""
    box: list[torch.Tensor] = []

    def cap(_n: str, x: torch.Tensor) -> None:
        box.append(x.clone())
        raise _Captured

    try:
        encoder.embed(TEXTS, overrides=overrides, capture=cap, capture_names=[name])
    except _Captured:
        pass
    if not box:
        raise RuntimeError(f"linear layer {name} was not reached in the forward pass")
    return box[0]


class _Captured(Exception):  # noqa: N818 - control flow, not an error
    """Raised by the capture hook to stop the forward pass once the inputs are taken."""


def _fallback_reason(kind: str) -> str:
    """Why Gaussian calibration inputs were used."""
    return {
        "bare": "no config.json/tokenizer.json beside the weights; synthetic Gaussian inputs",
        "unknown": "model architecture not supported for a forward pass (BERT-style encoders "
        "and *ForCausalLM causal LMs are); synthetic Gaussian inputs",
        "causal-lm-no-transformers": "causal LM folder, but `transformers` is not installed "
        "to run it; synthetic Gaussian inputs, no perplexity",
        "bert-unmatched": "selected matrices are not linear layers of the BERT encoder; "
        "synthetic Gaussian inputs",
    }.get(kind, "synthetic Gaussian inputs")


def _gptq_matrix(
    model: ModelSource,
    info: TensorInfo,
    x_seq: torch.Tensor,
    x_eval: torch.Tensor,
    activations: bool,
    bits: int,
    gs: int,
    damp: float,
    digest: ReconstructionDigest,
    keep: bool,
) -> tuple[dict[str, Any], torch.Tensor | None, torch.Tensor | None]:
    """GPTQ with H = 2·XᵀX (float64; float32 above `FLOAT32_H_ABOVE` values) and RTN on
    the same grid, both packed and rebuilt; the matrix's row (GPTQ figures measured on
    `x_eval`, RTN's beside them), the GPTQ reconstruction fed to `digest`, and both
    reconstructions when `keep`.

    H⁻¹ is factored once (`hinv_upper_lean`, or `hinv_upper_f32` for a large matrix); then
    W is read, quantized and measured in blocks of rows (GPTQ rows are independent given
    H⁻¹), so a large matrix is never held whole with its codes and reconstructions. One
    block (every matrix of the default model and SmolLM2) is the whole-matrix computation.
    """

    def build() -> torch.Tensor:
        x64 = x_seq.to(torch.float64)
        return (x64.T @ x64).mul_(2.0)  # == 2.0 * (XᵀX), without a second in×in array

    rows_n, cols = info.shape
    large = rows_n * cols > FLOAT32_H_ABOVE
    if large:
        dead, hinv = hinv_upper_f32(x_seq, damp)
    else:
        dead, hinv = hinv_upper_lean(build, damp)
    # whole packed bytes per block
    blocks = row_blocks(rows_n, cols, unit=8, budget=LARGE_BLOCK_ELEMS if large else None)
    one = len(blocks) == 1
    sizes: dict[str, int] = {}
    cos_g, cos_r, out_g, out_r = RunningCosine(), RunningCosine(), RunningCosine(), RunningCosine()
    sample = RowSample(rows_n, cols)
    g_full = torch.empty(rows_n, cols) if keep and not one else None
    r_full = torch.empty(rows_n, cols) if keep and not one else None
    g_hat = r_hat = None
    for r0, r1 in blocks:
        w = model.load(info) if one else model.load_rows(info, r0, r1)
        sample.update(r0, w)
        g = compress(gptq_rows(w, hinv, dead, bits, gs))
        r = compress(rtn(w, bits, gs))
        for k, v in g.parts.items():
            sizes[k] = sizes.get(k, 0) + len(v)
        cos_g.update(w, g.w_hat)
        cos_r.update(w, r.w_hat)
        y = x_eval @ w.T  # the original layer's output, once for both comparisons
        out_g.update(y, x_eval @ g.w_hat.T)
        out_r.update(y, x_eval @ r.w_hat.T)
        digest.update(g.w_hat)
        if one:
            g_hat, r_hat = (g.w_hat, r.w_hat) if keep else (None, None)
        elif g_full is not None and r_full is not None:
            g_full[r0:r1] = g.w_hat
            r_full[r0:r1] = r.w_hat
        del w, g, r, y
        if large:
            trim_heap()
    del hinv  # before block_row's data-dependent bound, which takes its own memory
    if not one:
        g_hat, r_hat = g_full, r_full
    row = block_row(info, sizes, cos_g.value(), out_g.value(), sample)
    row["method"] = "gptq"
    row["cos_rtn"] = cos_r.value()
    row["layer_out_cos_rtn"] = out_r.value()
    row["calib_rows"] = int(x_seq.shape[0])
    row["calib"] = "activations" if activations else "gaussian"
    return row, g_hat, r_hat


def _measure_causal(
    model: ModelSource,
    infos: list[Any],
    folder: Any,
    params: dict[str, Any],
    progress: ProgressFn,
) -> Measurement:
    """GPTQ vs RTN on a causal LM's selected Linear weights; perplexity before and after.

    Matrices are taken in the order the forward pass reaches them; each one's calibration
    inputs come from the model with every earlier matrix already replaced by its GPTQ
    reconstruction (sequential GPTQ). Selected matrices that are not Linear layers of the
    loaded model (e.g. GPT-2's Conv1D), or that no calibration text reaches (an unrouted
    expert), get seeded Gaussian inputs, are listed under calibration.gaussian_matrices
    and are not applied in the perplexity runs. A layer reached by the calibration texts
    but by no held-out text has its layer_out_cos taken on its calibration inputs.
    """
    from runners.causal import CausalLM

    lm = CausalLM(folder)
    bits, gs, damp = params["bits"], params["group_size"], params["damp"]
    mod_of = {i.name: lm.module_for(i.name, i.shape) for i in infos}
    names = [n for n in mod_of.values() if n is not None]
    order = {n: k for k, n in enumerate(lm.forward_order(names, TEXTS[0]))} if names else {}
    infos = sorted(
        infos, key=lambda i: (mod_of[i.name] is None, order.get(mod_of[i.name] or "", 0))
    )
    x_orig = lm.capture(HELDOUT, names, strict=False) if names else {}
    digest = ReconstructionDigest()
    calib_hash = hashlib.sha256()
    rows: list[dict[str, Any]] = []
    gptq_w: dict[str, torch.Tensor] = {}
    rtn_w: dict[str, torch.Tensor] = {}
    gaussian_rows: list[str] = []
    tokens = 0
    for k, info in enumerate(infos):
        mname = mod_of[info.name]
        if mname is not None:
            got = lm.capture(TEXTS, [mname], overrides=gptq_w, stop_after=mname, strict=False)
            if mname not in got:  # never reached on the calibration texts (unrouted expert)
                mname = None
        if mname is not None:
            x_seq = got[mname]
            x_eval = x_orig.get(mname, x_seq)
            tokens = max(tokens, int(x_seq.shape[0]))
        else:
            x_seq = x_eval = _gaussian_inputs(info.shape[1])
            gaussian_rows.append(info.name)
        calib_hash.update(x_seq.contiguous().numpy().tobytes())
        keep = mname is not None
        row, g_hat, r_hat = _gptq_matrix(
            model, info, x_seq, x_eval, keep, bits, gs, damp, digest, keep
        )
        rows.append(row)
        if mname is not None and g_hat is not None and r_hat is not None:
            gptq_w[mname] = g_hat
            rtn_w[mname] = r_hat
        progress(info.name, k + 1, len(infos))
    metrics = summarize(rows)
    metrics["cos_min_rtn"] = min(r["cos_rtn"] for r in rows)
    metrics["layer_out_cos_min_rtn"] = min(r["layer_out_cos_rtn"] for r in rows)
    metrics["layer_out_cos_mean_rtn"] = sum(r["layer_out_cos_rtn"] for r in rows) / len(rows)
    if names:
        for suffix, texts in (("", HELDOUT), ("_calib", TEXTS)):
            before = lm.perplexity(texts)
            metrics[f"ppl_before{suffix}"] = before
            metrics[f"ppl_after_gptq{suffix}"] = lm.perplexity(texts, gptq_w)
            metrics[f"ppl_after_rtn{suffix}"] = lm.perplexity(texts, rtn_w)
            metrics[f"ppl_ratio{suffix}"] = metrics[f"ppl_after_gptq{suffix}"] / before
            metrics[f"ppl_ratio_rtn{suffix}"] = metrics[f"ppl_after_rtn{suffix}"] / before
        eval_tokens = lm.nll(HELDOUT)[1]
        calib_tokens = lm.nll(TEXTS)[1]
        calibration: dict[str, Any] = {
            "kind": "activations",
            "texts": len(TEXTS),
            "tokens": tokens,
            "gaussian_matrices": gaussian_rows,
            "layer_out_cos_inputs": "original model's activations on the held-out texts",
            "sequential": True,
            "order": "forward",
            "digest": "sha256:" + calib_hash.hexdigest(),
        }
        functional: dict[str, Any] = {
            "metric": "perplexity",
            "definition": "exp(mean next-token negative log-likelihood), each text run alone "
            "(batch of one, no padding), float32 model, float64 log-softmax",
            "texts": f"{len(HELDOUT)} built-in held-out texts (evaluation-texts, "
            f"{eval_tokens} predicted tokens); the *_calib metrics are on the {len(TEXTS)} "
            f"calibration texts ({calib_tokens} predicted tokens, in-sample for GPTQ)",
            "ratio": "ppl_ratio = ppl_after_gptq / ppl_before; ppl_ratio_rtn likewise for RTN",
            "matrices_applied": len(gptq_w),
        }
        subjects = [texts_subject(), texts_subject(HELDOUT, "evaluation-texts")]
    else:
        reason = (
            "selected matrices are not Linear layers of the causal LM; "
            "synthetic Gaussian inputs, no perplexity"
        )
        calibration = {
            "kind": "gaussian",
            "samples": GAUSSIAN_SAMPLES,
            "reason": reason,
            "digest": "sha256:" + calib_hash.hexdigest(),
        }
        functional = {"metric": None, "reason": reason}
        subjects = [
            {
                "name": f"calibration/gaussian-seed{GAUSSIAN_SEED}-n{GAUSSIAN_SAMPLES}",
                "digest": {"sha256": calib_hash.hexdigest()},
            }
        ]
    extra: dict[str, Any] = {
        "seeds": {"gaussian_calibration": GAUSSIAN_SEED},
        "subjects": subjects,
        "calibration": calibration,
        "functional": functional,
        "method": _method(),
    }
    return Measurement(metrics, rows, digest.hexdigest(), extra)


def _method() -> dict[str, Any]:
    """The method block shared by every path."""
    return {
        "algorithm": "gptq",
        "reference": "Frantar et al. 2022, arXiv:2210.17323",
        "hessian": "2·XᵀX + damp·mean(diag)·I",
        "factorisation": "upper Cholesky factor of H⁻¹ in float64 (torch) for matrices of "
        f"up to {FLOAT32_H_ABOVE} values; larger matrices use float32 H (each tile of XᵀX "
        "summed in float64, then rounded) factored in place with LAPACK (scipy spotrf, "
        "spotri, spotrf), as AutoGPTQ also works in float32, and are quantized in row "
        f"blocks of about {LARGE_BLOCK_ELEMS} values",
        "grid": "asymmetric min/max per (row, group of group_size input columns), "
        "fp16 scale and offset",
        "baseline": "rtn on the same grid",
    }


RUNNER = HessianRunner()
