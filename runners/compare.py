"""compare: measure a published compressed checkpoint against its original.

`--model ORIGINAL --param compressed=PATH`. The compressed side is read by its format's
reader (runners/formats: compressed-tensors, GPTQ/AWQ packed layouts, GGUF, or a plain
safetensors of dequantized weights with a claimed byte count), tensor by tensor; each
original tensor is loaded once, compared and dropped (the functional metric alone keeps
the reconstructions of a model it runs). A GPTQ/AWQ matrix larger than one row block
(runners.stream.ROW_CHUNK_ELEMS values) is read in blocks of 32·k output rows on both
sides (only those columns of qweight/qzeros/scales), so memory follows the block, not the
tensor; the digest and the weight cosine are the same as read whole. Metrics:

- bytes on disk per tensor from the file's own header/offsets, every stored part counted
  (packed codes, scales, zero points, g_idx, shapes); `ratio_fp16_effective` = fp16 bytes
  of the original's counted matrices (`matrices`, default linear) / the stored bytes of
  their compressed counterparts; `ratio_model` = fp16 bytes of every original float tensor
  / the total size of the compressed weight files (headers and metadata included);
- per-matrix weight cosine (`cos_min`, `cos_mean`) and per-layer output cosine
  cos(X·Wᵀ, X·Ŵᵀ) on calibration inputs X (`layer_out_cos_min`, `layer_out_cos_mean`):
  the original model's own activations on the built-in calibration texts when it runs
  (BERT encoder, causal LM), else seeded Gaussian inputs (said so);
- the functional metric where the model runs, original vs compressed on held-out texts:
  sentence-embedding cosine for a BERT encoder, perplexity for a causal LM.

Tensors on one side only, or not comparable (shape, integer dtype), are listed by name.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ledger.errors import InputError
from runners import device as devices
from runners.base import Measurement, Param, ProgressFn
from runners.formats import Checkpoint, open_checkpoint
from runners.formats.base import file_record
from runners.formats.detect import FORMATS
from runners.formats.signing import find_signatures, read_signature
from runners.model import ModelSource, TensorInfo, selects
from runners.stream import bound_heap, row_blocks
from runners.texts import HELDOUT, TEXTS
from runners.texts import subject as texts_subject

GAUSSIAN_SAMPLES = 256
GAUSSIAN_SEED = 0
_FLOAT = {"F16", "BF16", "F32", "F64"}
_ORIGINAL_SIDE_FILES = (
    ("config.json", "config"),
    ("tokenizer.json", "tokenizer"),
    ("tokenizer_config.json", "tokenizer"),
    ("special_tokens_map.json", "tokenizer"),
    ("sentence_bert_config.json", "config"),
    ("generation_config.json", "config"),
    ("model.safetensors.index.json", "index"),
)


def match_names(original: list[str], compressed: list[str]) -> dict[str, str]:
    """original name -> compressed name: exact, else one unique suffix match either way."""
    comp = set(compressed)
    out: dict[str, str] = {}
    used: set[str] = set()
    for name in original:
        if name in comp:
            out[name] = name
            used.add(name)
    for name in original:
        if name in out:
            continue
        cands = [
            c
            for c in compressed
            if c not in used and (c.endswith("." + name) or name.endswith("." + c))
        ]
        if len(cands) == 1:
            out[name] = cands[0]
            used.add(cands[0])
    return out


class _Functional:
    """The original model run forward (BERT encoder or causal LM), or nothing."""

    def __init__(self, model: ModelSource):
        """Pick the model kind from the original's folder."""
        from runners.minilm import folder_kind, model_folder

        self.kind = "bare"
        self.folder = model_folder(model.paths[0])
        self.encoder: Any = None
        self.lm: Any = None
        if self.folder is None:
            return
        kind = folder_kind(self.folder)
        if kind == "bert":
            from runners.minilm import BertEncoder

            self.encoder = BertEncoder(self.folder, files=model.paths)
            self.kind = "bert"
        elif kind == "causal-lm":
            try:
                from runners.causal import CausalLM

                self.lm = CausalLM(self.folder)
                self.kind = "causal-lm"
            except ImportError:
                self.kind = "causal-lm-no-transformers"
        else:
            self.kind = "unknown"

    def param_name(self, file_key: str, shape: tuple[int, ...]) -> str | None:
        """The model's own name for a file tensor (encoder weight or LM parameter)."""
        if self.encoder is not None:
            name = file_key.removeprefix("bert.")
            w = self.encoder.weights.get(name)
            return name if w is not None and tuple(w.shape) == tuple(shape) else None
        if self.lm is not None:
            params = dict(self.lm.model.named_parameters())
            if file_key in params:
                cands = [file_key]
            else:
                cands = [
                    n for n in params if n.endswith("." + file_key) or file_key.endswith("." + n)
                ]
            if len(cands) == 1 and tuple(params[cands[0]].shape) == tuple(shape):
                return cands[0]
        return None

    def linear_inputs(self, names: dict[str, str]) -> dict[str, torch.Tensor]:
        """Inputs X of the named linear layers (file key -> model name) on the calibration texts."""
        out: dict[str, torch.Tensor] = {}
        if self.encoder is not None:
            wanted = {v: k for k, v in names.items()}
            got: dict[str, torch.Tensor] = {}
            self.encoder.embed(
                TEXTS,
                capture=lambda n, x: got.__setitem__(n, x.clone()),
                capture_names=list(wanted),
            )
            out = {wanted[n]: x for n, x in got.items()}
        elif self.lm is not None:
            mods = {}
            for key, pname in names.items():
                mod = pname.removesuffix(".weight")
                if mod in self.lm.linears and pname.endswith(".weight"):
                    mods[mod] = key
            got = self.lm.capture(TEXTS, list(mods), strict=False) if mods else {}
            out = {mods[m]: x for m, x in got.items()}
        return out

    @contextmanager
    def _lm_params(self, overrides: dict[str, torch.Tensor]) -> Iterator[None]:
        """The causal LM with some parameters replaced (restored after)."""
        params = dict(self.lm.model.named_parameters())
        saved = {}
        try:
            for name, w in overrides.items():
                p = params[name]
                saved[name] = p.data
                p.data = w.to(p.dtype).reshape(p.shape)
            yield
        finally:
            for name, w in saved.items():
                params[name].data = w

    def evaluate(self, overrides: dict[str, torch.Tensor]) -> tuple[dict[str, float], dict]:
        """The functional metrics of the compressed weights vs the original, and a description."""
        if self.encoder is not None:
            ref = self.encoder.embed(HELDOUT)
            got = self.encoder.embed(HELDOUT, overrides=overrides)
            cos = torch.nn.functional.cosine_similarity(
                ref.to(torch.float64), got.to(torch.float64), dim=1
            )
            return (
                {"embedding_cos_min": float(cos.min()), "embedding_cos_mean": float(cos.mean())},
                {
                    "metric": "sentence-embedding cosine (mean pooling + L2), compressed vs "
                    "original",
                    "texts": f"{len(HELDOUT)} built-in held-out texts (evaluation-texts)",
                    "tensors_applied": len(overrides),
                },
            )
        if self.lm is not None:
            before = self.lm.perplexity(HELDOUT)
            with self._lm_params(overrides):
                after = self.lm.perplexity(HELDOUT)
            return (
                {"ppl_original": before, "ppl_compressed": after, "ppl_ratio": after / before},
                {
                    "metric": "perplexity",
                    "definition": "exp(mean next-token negative log-likelihood), each text "
                    "run alone, float32 model, float64 log-softmax",
                    "texts": f"{len(HELDOUT)} built-in held-out texts (evaluation-texts, "
                    f"{self.lm.nll(HELDOUT)[1]} predicted tokens)",
                    "ratio": "ppl_ratio = ppl_compressed / ppl_original",
                    "tensors_applied": len(overrides),
                },
            )
        reasons = {
            "bare": "no config.json/tokenizer.json beside the original weights",
            "unknown": "architecture not runnable (BERT encoders and *ForCausalLM are)",
            "causal-lm-no-transformers": "causal LM, but `transformers` is not installed",
        }
        return {}, {"metric": None, "reason": reasons.get(self.kind, self.kind)}


def _gaussian(in_features: int) -> torch.Tensor:
    """Seeded N(0, 1) inputs [GAUSSIAN_SAMPLES, in_features]."""
    gen = torch.Generator().manual_seed(GAUSSIAN_SEED * 1_000_003 + in_features)
    return torch.randn(GAUSSIAN_SAMPLES, in_features, generator=gen)


_COS_CHUNK = 1 << 20


class _FlatCos:
    """`flat_cosine` over a tensor fed in pieces, each (but the last) a multiple of `chunk`
    values: the same chunks, summed in the same order, so the same float."""

    def __init__(self, chunk: int | None = None):
        """Start with nothing fed (chunk: `_COS_CHUNK` values, read now)."""
        self.chunk = _COS_CHUNK if chunk is None else chunk
        self.fed = 0
        self.dot = self.nx = self.ny = 0.0

    def update(self, a: torch.Tensor, b: torch.Tensor) -> None:
        """Add the next piece of both tensors."""
        if self.fed % self.chunk:
            raise ValueError("only the last piece may end off a chunk boundary")
        x, y = a.reshape(-1), b.reshape(-1)
        for i in range(0, x.numel(), self.chunk):
            xc = x[i : i + self.chunk].to(torch.float64)
            yc = y[i : i + self.chunk].to(torch.float64)
            self.dot += float(torch.dot(xc, yc))
            self.nx += float(torch.dot(xc, xc))
            self.ny += float(torch.dot(yc, yc))
        self.fed += x.numel()

    def value(self) -> float:
        """The cosine (float64, 1.0 for two zeros, 0.0 for one)."""
        if self.nx == 0 and self.ny == 0:
            return 1.0
        if self.nx == 0 or self.ny == 0:
            return 0.0
        return max(-1.0, min(1.0, self.dot / math.sqrt(self.nx * self.ny)))


def flat_cosine(a: torch.Tensor, b: torch.Tensor, chunk: int | None = None) -> float:
    """`runners.measure.cosine` (float64, 1.0 for two zeros) in chunks: no full float64 copies."""
    acc = _FlatCos(chunk)
    acc.update(a, b)
    return acc.value()


def _layer_out_cos(x: torch.Tensor, w: torch.Tensor, w_hat: torch.Tensor) -> float:
    """cos(X·Wᵀ, X·Ŵᵀ) on the current device (float64 reduction)."""
    dev = devices.current()
    xd = x.to(dev)
    return flat_cosine((xd @ w.to(dev).T).cpu(), (xd @ w_hat.to(dev).T).cpu())


class CompareRunner:
    """A given compressed checkpoint vs its original: bytes, cosines, functional metric."""

    name = "compare"
    version = "1.0.0"
    description = (
        "a published compressed checkpoint (compressed-tensors, GPTQ/AWQ, GGUF, or plain "
        "dequantized weights + claimed bytes) vs its original: on-disk bytes per tensor, "
        "ratios, weight and layer-output cosines, embedding cosine / perplexity"
    )
    params = (
        Param("compressed", "", "path of the compressed checkpoint (file or folder)", "str"),
        Param("format", "auto", "compressed format", "str", choices=FORMATS),
        Param(
            "claimed_bytes",
            0,
            "format=plain only: the compressed artifact's size in bytes, as claimed",
            "int",
            minimum=0,
        ),
        Param(
            "matrices",
            "linear",
            "which original tensors count: linear, ffn, attention, all2d or re:REGEX",
            "str",
        ),
        Param("functional", True, "run the model for the functional metric when it can", "bool"),
    )

    def measure(
        self, model: ModelSource, params: dict[str, Any], progress: ProgressFn
    ) -> Measurement:
        """Open the compressed checkpoint, compare tensor by tensor, then the functional metric."""
        if not params["compressed"]:
            raise InputError("compare needs --param compressed=PATH (the compressed checkpoint)")
        bound_heap()
        fmt = params["format"]
        if fmt == "plain" and params["claimed_bytes"] <= 0:
            raise InputError("format=plain needs --param claimed_bytes=N (the artifact's size)")
        if fmt != "plain" and params["claimed_bytes"]:
            raise InputError("claimed_bytes is only for format=plain (bytes are measured)")
        infos = model.tensors()
        ckpt = open_checkpoint(Path(params["compressed"]), fmt, [t.name for t in infos])
        mapping = match_names([t.name for t in infos], ckpt.names())
        functional = _Functional(model) if params["functional"] else None
        counted = [t for t in infos if t.name in mapping and selects(params["matrices"], t)]
        pnames = {}
        if functional is not None:
            for t in infos:
                if t.name in mapping and (p := functional.param_name(t.name, t.shape)):
                    pnames[t.name] = p
        calib = (
            functional.linear_inputs({t.name: pnames[t.name] for t in counted if t.name in pnames})
            if functional is not None
            else {}
        )
        rows, not_compared, overrides = [], [], {}
        digest = hashlib.sha256()  # over the float32 reconstructions, in file order
        calib_hash = hashlib.sha256()

        def calib_input(info: TensorInfo) -> torch.Tensor:
            """The matrix's calibration inputs (Gaussian where none were captured), hashed."""
            x = calib.get(info.name)
            if x is None:
                x = _gaussian(info.shape[1])
                gaussian_rows.append(info.name)
            calib_hash.update(x.contiguous().numpy().tobytes())
            return x

        gaussian_rows: list[str] = []
        counted_names = {t.name for t in counted}
        total = len(infos)
        for k, info in enumerate(infos):
            progress(info.name, k, total)
            if info.name not in mapping:
                continue
            cname = mapping[info.name]
            if info.dtype not in _FLOAT:
                not_compared.append({"name": info.name, "reason": f"integer tensor ({info.dtype})"})
                continue
            blocks = _row_blocks(ckpt, cname, info)
            if blocks is not None:  # a large matrix: both sides read block by block
                x = calib_input(info) if info.name in counted_names else None
                row, w_hat = _streamed_row(
                    model, info, ckpt, cname, blocks, x, digest, info.name in pnames
                )
                rows.append(row)
                if w_hat is not None:
                    overrides[pnames[info.name]] = w_hat
                continue
            rec = ckpt.load(cname)
            if tuple(rec.w_hat.shape) != tuple(info.shape):
                not_compared.append(
                    {
                        "name": info.name,
                        "reason": f"shape {list(rec.w_hat.shape)} vs original {list(info.shape)}",
                    }
                )
                continue
            if not torch.isfinite(rec.w_hat).all():
                raise InputError(f"compressed tensor {cname} holds NaN or infinite values")
            w = model.load(info)
            row = _row(info, cname, w, rec)
            if info.name in counted_names:
                x = calib_input(info)
                row["layer_out_cos"] = _layer_out_cos(x, w, rec.w_hat)
                row["counted"] = True
            rows.append(row)
            digest.update(rec.w_hat.contiguous().numpy())
            if info.name in pnames:
                overrides[pnames[info.name]] = rec.w_hat
            del w, rec
        if not any(r.get("counted") for r in rows):
            raise InputError(
                f"no counted matrix (matrices={params['matrices']}) has a counterpart in the "
                "compressed checkpoint",
                path=Path(params["compressed"]),
            )
        metrics = _metrics(rows, infos, ckpt, params)
        func_desc: dict[str, Any] = {"metric": None, "reason": "functional=false"}
        if functional is not None:
            fm, func_desc = functional.evaluate(overrides)
            metrics.update(fm)
        progress("done", total, total)
        only_original = [t.name for t in infos if t.name not in mapping]
        matched = set(mapping.values())
        only_compressed = [n for n in ckpt.names() if n not in matched]
        metrics["n_original_only"] = len(only_original)
        metrics["n_compressed_only"] = len(only_compressed)
        metrics["n_not_compared"] = len(not_compared)
        extra = _extra(model, ckpt, functional, params, gaussian_rows, calib_hash, calib)
        extra["functional"] = func_desc
        extra["tensors"] = {
            "only_original": only_original,
            "only_compressed": only_compressed,
            "not_compared": not_compared,
            "renamed": {k: v for k, v in mapping.items() if k != v},
        }
        return Measurement(metrics, rows, "sha256:" + digest.hexdigest(), extra)


def _row_blocks(ckpt: Checkpoint, cname: str, info: TensorInfo) -> list[tuple[int, int]] | None:
    """Row blocks for a matrix the checkpoint reads in rows, when it spans several blocks.

    Blocks start on multiples of 32 rows (whole packed words) and of `_COS_CHUNK` values,
    so the weight cosine sums the very chunks `flat_cosine` sums for the whole tensor.
    """
    if info.dtype not in _FLOAT or len(info.shape) != 2:
        return None
    if ckpt.row_shape(cname) != tuple(info.shape):
        return None
    rows, cols = info.shape
    blocks = row_blocks(rows, cols, unit=math.lcm(32 * cols, _COS_CHUNK))
    return blocks if len(blocks) > 1 else None


def _streamed_row(
    model: ModelSource,
    info: TensorInfo,
    ckpt: Checkpoint,
    cname: str,
    blocks: list[tuple[int, int]],
    x: torch.Tensor | None,
    digest: Any,
    keep: bool,
) -> tuple[dict[str, Any], torch.Tensor | None]:
    """`_row` (+ layer_out_cos when `x` is given) for one matrix read in row blocks from both
    sides; the reconstruction is fed to `digest` block by block and returned when `keep`."""
    rows, cols = info.shape
    cos = _FlatCos()
    full = torch.empty(rows, cols) if keep else None
    dev = devices.current()
    xd = x.to(dev) if x is not None else None
    outs = (torch.empty(x.shape[0], rows), torch.empty(x.shape[0], rows)) if x is not None else None
    rec: Any = None
    for r0, r1 in blocks:
        rec = ckpt.load_rows(cname, r0, r1)
        if not torch.isfinite(rec.w_hat).all():
            raise InputError(f"compressed tensor {cname} holds NaN or infinite values")
        w = model.load_rows(info, r0, r1)
        cos.update(w, rec.w_hat)
        if xd is not None and outs is not None:
            outs[0][:, r0:r1] = (xd @ w.to(dev).T).cpu()
            outs[1][:, r0:r1] = (xd @ rec.w_hat.to(dev).T).cpu()
        digest.update(rec.w_hat.contiguous().numpy())
        if full is not None:
            full[r0:r1] = rec.w_hat
        del w
    n = info.numel
    row = {
        "name": info.name,
        "compressed_name": cname,
        "kind": info.kind,
        "shape": list(info.shape),
        "params": n,
        "scheme": rec.scheme,
        "bytes_fp16": 2 * n,
        "bytes_stored": rec.nbytes,
        "bytes_by_part": dict(rec.parts),
        "ratio": 2 * n / rec.nbytes if rec.nbytes else None,
        "bits_per_weight": 8.0 * rec.nbytes / n,
        "cos": cos.value(),
        "counted": False,
    }
    if outs is not None:
        row["layer_out_cos"] = flat_cosine(outs[0], outs[1])
        row["counted"] = True
    return row, full


def _row(info: TensorInfo, cname: str, w: torch.Tensor, rec: Any) -> dict[str, Any]:
    """One compared tensor: shape, kind, bytes (fp16 reference, stored by part), cosine."""
    fp16 = 2 * w.numel()
    return {
        "name": info.name,
        "compressed_name": cname,
        "kind": info.kind,
        "shape": list(info.shape),
        "params": w.numel(),
        "scheme": rec.scheme,
        "bytes_fp16": fp16,
        "bytes_stored": rec.nbytes,
        "bytes_by_part": dict(rec.parts),
        "ratio": fp16 / rec.nbytes if rec.nbytes else None,
        "bits_per_weight": 8.0 * rec.nbytes / w.numel(),
        "cos": flat_cosine(w, rec.w_hat),
        "counted": False,
    }


def _metrics(
    rows: list[dict[str, Any]], infos: list[TensorInfo], ckpt: Checkpoint, params: dict[str, Any]
) -> dict[str, Any]:
    """Byte totals, ratios and cosine summaries."""
    counted = [r for r in rows if r["counted"]]
    fp16 = sum(r["bytes_fp16"] for r in counted)
    stored = sum(r["bytes_stored"] for r in counted)
    n_params = sum(r["params"] for r in counted)
    cos = [r["cos"] for r in counted]
    outs = [r["layer_out_cos"] for r in counted]
    model_fp16 = sum(2 * t.numel for t in infos if t.dtype in _FLOAT)
    m: dict[str, Any] = {
        "cos_min": min(cos),
        "cos_mean": sum(cos) / len(cos),
        "cos_weighted": sum(r["cos"] * r["params"] for r in counted) / n_params,
        "cos_min_all": min(r["cos"] for r in rows),
        "layer_out_cos_min": min(outs),
        "layer_out_cos_mean": sum(outs) / len(outs),
        "bytes_fp16": fp16,
        "bytes_fp16_model": model_fp16,
        "n_matrices": len(counted),
        "n_params": n_params,
        "n_compared": len(rows),
    }
    if params["format"] == "plain" or ckpt.format == "plain":
        m["bytes_claimed"] = params["claimed_bytes"]
        m["ratio_model_claimed"] = model_fp16 / params["claimed_bytes"]
        return m
    m["bytes_total"] = stored
    m["bytes_files"] = ckpt.weight_bytes()
    m["bytes_overhead"] = ckpt.overhead_bytes()
    m["bytes_stored_all"] = sum(s.nbytes for s in ckpt.stored())
    m["ratio_fp16_effective"] = fp16 / stored
    m["ratio_model"] = model_fp16 / ckpt.weight_bytes()
    m["bits_per_weight"] = 8.0 * stored / n_params
    return m


def _extra(
    model: ModelSource,
    ckpt: Checkpoint,
    functional: _Functional | None,
    params: dict[str, Any],
    gaussian_rows: list[str],
    calib_hash: Any,
    calib: dict[str, torch.Tensor],
) -> dict[str, Any]:
    """Subjects (every file read, texts, signatures), compressed-side block, calibration."""
    subjects: list[dict[str, Any]] = []
    read_names = {f.name for f in model.files()}
    if functional is not None and functional.folder is not None:
        for name, role in _ORIGINAL_SIDE_FILES:
            p = functional.folder / name
            if p.is_file() and name not in read_names:
                rec = file_record(model.root, p.resolve(), role)
                subjects.append({"name": rec.name, "digest": {"sha256": rec.sha256}})
    files = ckpt.files()
    for f in files:
        subjects.append({"name": f"compressed/{f.name}", "digest": {"sha256": f.sha256}})
    signing = []
    hashed = {f.name: f.sha256 for f in files}
    for sig in find_signatures(ckpt.root):
        rec = file_record(ckpt.root, sig, "signature")
        subjects.append({"name": f"compressed/{rec.name}", "digest": {"sha256": rec.sha256}})
        info = read_signature(sig).check(hashed)
        root = info.get("root_digest") or {}
        if isinstance(root.get("sha256"), str) and len(root["sha256"]) == 64:
            subjects.append(
                {"name": "compressed/model-signing-root", "digest": {"sha256": root["sha256"]}}
            )
        signing.append(info)
    used = [n for n in calib if n not in gaussian_rows]
    if used:
        subjects.append(texts_subject())
    if functional is not None and functional.kind in ("bert", "causal-lm"):
        subjects.append(texts_subject(HELDOUT, "evaluation-texts"))
    if gaussian_rows and not used:
        subjects.append(
            {
                "name": f"calibration/gaussian-seed{GAUSSIAN_SEED}-n{GAUSSIAN_SAMPLES}",
                "digest": {"sha256": calib_hash.hexdigest()},
            }
        )
    plain = ckpt.format == "plain"
    return {
        "subjects": subjects,
        "seeds": {"gaussian_calibration": GAUSSIAN_SEED},
        "compressed": {
            **ckpt.describe(),
            "path": Path(params["compressed"]).name,
            "files": [{"name": f.name, "role": f.role, "size": f.size} for f in files],
            "signing": signing,
        },
        "coverage": {
            "ratio_fp16_effective": None
            if plain
            else "fp16 bytes (2 per parameter) of the original's counted matrices "
            f"(matrices={params['matrices']}) / on-disk bytes of every stored part of their "
            "compressed counterparts (codes, scales, zero points, g_idx, shapes)",
            "ratio_model": None
            if plain
            else "fp16 bytes of every original float tensor / total size of the compressed "
            "weight files (headers, metadata and padding included)",
            "ratio_model_claimed": "fp16 bytes of every original float tensor / claimed_bytes "
            "(given by the user, not measured)"
            if plain
            else None,
            "bytes_source": "claimed" if plain else "measured from the files' headers/offsets",
        },
        "calibration": {
            "kind": "activations" if used else "gaussian",
            "texts": len(TEXTS) if used else 0,
            "gaussian_matrices": gaussian_rows,
            "layer_out_cos_inputs": "the original model's activations on the calibration texts"
            if used
            else f"seeded Gaussian inputs ({GAUSSIAN_SAMPLES} rows)",
            "digest": "sha256:" + calib_hash.hexdigest(),
        },
        "reference": getattr(model, "reference_note", None)
        or "the original weights as stored in the --model files",
    }


RUNNER = CompareRunner()
