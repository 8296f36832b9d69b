"""Shared measurement code: group quantization, bit packing, cosines, rows, rate-distortion."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from ledger.errors import InputError
from ledger.ratedistortion import bound_bits, bound_ratio
from runners.physics import add_data_bound, combined_bound

if TYPE_CHECKING:
    from runners.model import ModelSource, TensorInfo

FP16_MAX = 65504.0

# --------------------------------------------------------------------------- fp16 rounding


def fp16_down(x: torch.Tensor) -> torch.Tensor:
    """Largest fp16 value <= x (elementwise), as float16."""
    h = x.to(torch.float16)
    bump = h.to(torch.float32) > x
    if bump.any():
        h = torch.where(bump, torch.nextafter(h, torch.full_like(h, -math.inf)), h)
    return h


def fp16_up(x: torch.Tensor) -> torch.Tensor:
    """Smallest fp16 value >= x (elementwise), as float16."""
    h = x.to(torch.float16)
    bump = h.to(torch.float32) < x
    if bump.any():
        h = torch.where(bump, torch.nextafter(h, torch.full_like(h, math.inf)), h)
    return h


# --------------------------------------------------------------------------- quantization


@dataclass
class QuantizedGroups:
    """Group-wise asymmetric codes of a flattened tensor with fp16 scale and zero (offset)."""

    codes: np.ndarray  # uint8, length numel
    scale: torch.Tensor  # float16, one per group
    zero: torch.Tensor  # float16, one per group (the group's offset, value of code 0)
    bits: int
    group_size: int
    shape: tuple[int, ...]


def _grouped(flat: torch.Tensor, group_size: int) -> torch.Tensor:
    """Flat tensor as [groups, group_size], the last group padded with its last value."""
    n = flat.numel()
    groups = -(-n // group_size)
    pad = groups * group_size - n
    if pad:
        flat = torch.cat([flat, flat[-1:].expand(pad)])
    return flat.reshape(groups, group_size)


def quantize(w: torch.Tensor, bits: int, group_size: int) -> QuantizedGroups:
    """Asymmetric round-to-nearest quantization in groups of `group_size` consecutive values.

    The offset is rounded down and the scale up to fp16, so every value lies inside the
    representable range and the round-trip error is at most scale/2 per element.
    """
    if not 1 <= bits <= 8:
        raise ValueError(f"bits must be in 1..8, got {bits}")
    if group_size < 1:
        raise ValueError(f"group_size must be >= 1, got {group_size}")
    flat = w.detach().reshape(-1).to(torch.float32)
    if flat.numel() == 0:
        raise ValueError("cannot quantize an empty tensor")
    g = _grouped(flat, group_size)
    qmax = (1 << bits) - 1
    mn = g.min(dim=1).values
    mx = g.max(dim=1).values
    if mn.min() < -FP16_MAX or mx.max() > FP16_MAX:
        raise InputError("weights exceed the fp16 range; fp16 scale/zero cannot hold them")
    zero16 = fp16_down(mn)
    span = (mx - zero16.to(torch.float32)) / qmax
    if span.max() > FP16_MAX:
        raise InputError("weight range too wide for an fp16 scale")
    scale16 = fp16_up(span)
    s = scale16.to(torch.float32)
    safe = torch.where(s > 0, s, torch.ones_like(s))
    codes = torch.round((g - zero16.to(torch.float32)[:, None]) / safe[:, None]).clamp_(0, qmax)
    codes = torch.where(s[:, None] > 0, codes, torch.zeros_like(codes))
    codes_np = codes.to(torch.uint8).reshape(-1)[: flat.numel()].numpy().copy()
    return QuantizedGroups(codes_np, scale16, zero16, bits, group_size, tuple(w.shape))


def dequantize_codes(
    codes: np.ndarray,
    scale: torch.Tensor,
    zero: torch.Tensor,
    group_size: int,
    shape: tuple[int, ...],
) -> torch.Tensor:
    """Float32 tensor from codes and fp16 per-group scale/zero."""
    n = codes.size
    c = torch.from_numpy(codes.astype(np.float32, copy=False))
    groups = scale.numel()
    pad = groups * group_size - n
    if pad:
        c = torch.cat([c, torch.zeros(pad)])
    c = c.reshape(groups, group_size)
    w = c * scale.to(torch.float32)[:, None] + zero.to(torch.float32)[:, None]
    return w.reshape(-1)[:n].reshape(shape)


def dequantize(q: QuantizedGroups) -> torch.Tensor:
    """Float32 reconstruction of `q`."""
    return dequantize_codes(q.codes, q.scale, q.zero, q.group_size, q.shape)


# --------------------------------------------------------------------------- bit packing


def pack_bits(codes: np.ndarray, bits: int) -> bytes:
    """Pack unsigned codes (< 2**bits, bits 1..16) MSB-first into ceil(n*bits/8) bytes."""
    if not 1 <= bits <= 16:
        raise ValueError(f"bits must be in 1..16, got {bits}")
    codes = np.asarray(codes).reshape(-1)
    if codes.size and int(codes.max()) >= (1 << bits):
        raise ValueError(f"a code does not fit in {bits} bits")
    if bits == 8:
        return codes.astype(np.uint8).tobytes()
    if bits in (1, 2, 4):  # fast path: whole codes per byte, same MSB-first layout
        per = 8 // bits
        c = codes.astype(np.uint8)
        pad = (-c.size) % per
        if pad:
            c = np.concatenate([c, np.zeros(pad, dtype=np.uint8)])
        c = c.reshape(-1, per)
        out = np.zeros(c.shape[0], dtype=np.uint8)
        for j in range(per):
            out |= c[:, j] << np.uint8(8 - bits * (j + 1))
        return out.tobytes()
    if bits <= 8:
        as_bytes = codes.astype(np.uint8).reshape(-1, 1)
        width = 8
    else:
        as_bytes = codes.astype(">u2").view(np.uint8).reshape(-1, 2)
        width = 16
    bit_matrix = np.unpackbits(as_bytes, axis=1)[:, width - bits :]
    return np.packbits(bit_matrix.reshape(-1)).tobytes()


def unpack_bits(data: bytes, bits: int, n: int) -> np.ndarray:
    """Inverse of `pack_bits`: n codes (uint8 for bits <= 8, else uint16)."""
    expected = -(-n * bits // 8)
    if len(data) != expected:
        raise ValueError(f"packed length {len(data)} != expected {expected}")
    raw = np.frombuffer(data, dtype=np.uint8)
    if bits == 8:
        return raw.copy()
    if bits in (1, 2, 4):
        per = 8 // bits
        mask = np.uint8((1 << bits) - 1)
        cols = [(raw >> np.uint8(8 - bits * (j + 1))) & mask for j in range(per)]
        return np.stack(cols, axis=1).reshape(-1)[:n].copy()
    width = 8 if bits <= 8 else 16
    bit_matrix = np.unpackbits(raw)[: n * bits].reshape(n, bits)
    full = np.zeros((n, width), dtype=np.uint8)
    full[:, width - bits :] = bit_matrix
    packed = np.packbits(full, axis=1)
    if width == 8:
        return packed.reshape(-1)
    return packed.view(">u2").reshape(-1).astype(np.uint16)


def packed_size(n: int, bits: int) -> int:
    """Bytes taken by n codes of `bits` bits (used only to cross-check real packing)."""
    return -(-n * bits // 8)


# --------------------------------------------------------------------------- a compressed matrix


@dataclass
class CompressedMatrix:
    """The bytes produced for one matrix (by part) and the tensor rebuilt from those bytes."""

    parts: dict[str, bytes]
    w_hat: torch.Tensor
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        """Total bytes actually produced."""
        return sum(len(b) for b in self.parts.values())

    def bytes_by_part(self) -> dict[str, int]:
        """Byte count of each part."""
        return {k: len(v) for k, v in self.parts.items()}


def fp16_bytes(t: torch.Tensor) -> bytes:
    """Raw little-endian fp16 bytes of a tensor."""
    return t.detach().to(torch.float16).contiguous().numpy().astype("<f2").tobytes()


def from_fp16_bytes(data: bytes, shape: tuple[int, ...]) -> torch.Tensor:
    """Float32 tensor from raw little-endian fp16 bytes."""
    arr = np.frombuffer(data, dtype="<f2").astype(np.float32)
    return torch.from_numpy(arr.copy()).reshape(shape)


def scalar_compress(w: torch.Tensor, bits: int, group_size: int, rank: int = 0) -> CompressedMatrix:
    """Quantize, pack codes + fp16 scales/zeros (+ fp16 low-rank residual), rebuild from bytes."""
    q = quantize(w, bits, group_size)
    parts = {
        "codes": pack_bits(q.codes, bits),
        "scales": fp16_bytes(q.scale),
        "zeros": fp16_bytes(q.zero),
    }
    groups = q.scale.numel()
    codes = unpack_bits(parts["codes"], bits, q.codes.size)
    w_hat = dequantize_codes(
        codes,
        from_fp16_bytes(parts["scales"], (groups,)),
        from_fp16_bytes(parts["zeros"], (groups,)),
        group_size,
        tuple(w.shape),
    )
    info: dict[str, Any] = {"q": q}
    if rank > 0:
        if w.dim() != 2:
            raise ValueError("low-rank residual needs a 2-D matrix")
        out_f, in_f = w.shape
        r = min(rank, out_f, in_f)
        resid = w.to(torch.float64) - w_hat.to(torch.float64)
        u, s, vh = torch.linalg.svd(resid, full_matrices=False)
        a = (u[:, :r] * s[:r]).to(torch.float32)
        b = vh[:r].to(torch.float32)
        parts["residual"] = fp16_bytes(a) + fp16_bytes(b)
        a16 = from_fp16_bytes(parts["residual"][: 2 * out_f * r], (out_f, r))
        b16 = from_fp16_bytes(parts["residual"][2 * out_f * r :], (r, in_f))
        w_hat = w_hat + a16 @ b16
        info["rank"] = r
    return CompressedMatrix(parts, w_hat, info)


# --------------------------------------------------------------------------- metrics


def cosine(a: torch.Tensor, b: torch.Tensor) -> float:
    """Cosine similarity of two tensors viewed as flat vectors (float64; 1.0 for two zeros)."""
    x = a.reshape(-1).to(torch.float64)
    y = b.reshape(-1).to(torch.float64)
    nx = torch.linalg.vector_norm(x)
    ny = torch.linalg.vector_norm(y)
    if nx == 0 and ny == 0:
        return 1.0
    if nx == 0 or ny == 0:
        return 0.0
    return float(torch.clamp(torch.dot(x, y) / (nx * ny), -1.0, 1.0))


def output_cosine(x: torch.Tensor, w: torch.Tensor, w_hat: torch.Tensor) -> float:
    """cos(X Wᵀ, X Ŵᵀ) on calibration inputs X [n, in_features]."""
    return cosine(x @ w.T, x @ w_hat.T)


def entropy_bits(symbols: np.ndarray, alphabet: int | None = None) -> float:
    """Order-0 Shannon entropy in bits per symbol of a non-negative integer array."""
    counts = np.bincount(np.asarray(symbols).reshape(-1), minlength=alphabet or 0)
    counts = counts[counts > 0].astype(np.float64)
    if counts.size <= 1:
        return 0.0
    p = counts / counts.sum()
    return float(-(p * np.log2(p)).sum())


def rate_distortion(cos: float, ratio: float, basis: str = "cos_min") -> dict[str, Any]:
    """The Gaussian rate-distortion reference at the achieved cosine and the efficiency."""
    bits = bound_bits(cos)
    bound = bound_ratio(cos)
    out: dict[str, Any] = {
        "model": "gaussian",
        "basis": basis,
        "cosine": cos,
        "achieved_ratio": ratio,
        "bound_bits_per_weight": None if math.isinf(bits) else bits,
        "bound_ratio": bound,
    }
    if bound is None:
        out["efficiency"] = None
        out["within_bound"] = True
    else:
        out["efficiency"] = ratio / bound if bound > 0 else None
        out["within_bound"] = bool(ratio <= bound * (1 + 1e-12))
    return out


# --------------------------------------------------------------------------- calibration

ActivationProvider = Callable[["ModelSource", int, int], dict[str, torch.Tensor] | None]
_activation_provider: ActivationProvider | None = None


def set_activation_provider(fn: ActivationProvider | None) -> None:
    """Install the hook that returns real inputs per matrix name: fn(model, samples, seed)."""
    global _activation_provider
    _activation_provider = fn


def minilm_linear_inputs(
    model: ModelSource, samples: int, seed: int
) -> dict[str, torch.Tensor] | None:
    """Real inputs of each linear layer from running a BERT folder on the built-in texts."""
    try:
        from runners import minilm
        from runners.texts import TEXTS
    except Exception:
        return None
    folder = minilm.model_folder(model.requested)
    if folder is None or minilm.folder_kind(folder) != "bert":
        return None
    encoder = minilm.BertEncoder(folder)
    got: dict[str, list[torch.Tensor]] = {}

    def capture(name: str, x: torch.Tensor) -> None:
        got.setdefault(name, []).append(x.detach().to(torch.float32))

    encoder.embed(list(TEXTS), capture=capture)
    out: dict[str, torch.Tensor] = {}
    for name, chunks in got.items():
        x = torch.cat(chunks)
        if x.shape[0] > samples:
            gen = torch.Generator().manual_seed(seed)
            idx = torch.randperm(x.shape[0], generator=gen)[:samples].sort().values
            x = x[idx]
        out[name] = x.contiguous()
    return out


def _default_activation_provider() -> ActivationProvider | None:
    """The installed hook, else real activations from the MiniLM forward pass."""
    return _activation_provider or minilm_linear_inputs


class Calibration:
    """Calibration inputs X per matrix: seeded Gaussian, or real activations when available."""

    def __init__(
        self, model: ModelSource | None, kind: str = "gaussian", samples: int = 256, seed: int = 0
    ):
        """Prepare (lazily) the inputs; `kind` is "gaussian" or "activations"."""
        self.kind = kind
        self.samples = samples
        self.seed = seed
        self.used = "gaussian"
        self._cache: dict[Any, torch.Tensor] = {}
        self.sources: dict[str, str] = {}
        self._digest = hashlib.sha256()
        self._activations: dict[str, torch.Tensor] | None = None
        if kind == "activations" and model is not None:
            provider = _default_activation_provider()
            acts = provider(model, samples, seed) if provider is not None else None
            if acts:
                self._activations = acts
                self.used = "activations"
        elif kind not in ("gaussian", "activations"):
            raise InputError(f"unknown calibration {kind!r} (gaussian or activations)")

    def inputs(self, info: TensorInfo) -> torch.Tensor:
        """X [samples, in_features] for the matrix `info`."""
        in_f = info.shape[1]
        if self._activations is not None and info.name in self._activations:
            key: Any = info.name
            self.sources[info.name] = "activations"
            if key not in self._cache:
                x = self._activations[info.name].to(torch.float32).reshape(-1, in_f)
                self._cache[key] = x
                self._digest.update(x.contiguous().numpy().tobytes())
            return self._cache[key]
        key = ("gaussian", in_f)
        self.sources[info.name] = "gaussian"
        if key not in self._cache:
            gen = torch.Generator().manual_seed(self.seed * 1_000_003 + in_f)
            x = torch.randn(self.samples, in_f, generator=gen)
            self._cache[key] = x
            self._digest.update(x.numpy().tobytes())
        return self._cache[key]

    def describe(self) -> dict[str, Any]:
        """Requested kind, what each matrix actually got, samples and seed."""
        counts: dict[str, int] = {}
        for v in self.sources.values():
            counts[v] = counts.get(v, 0) + 1
        return {"requested": self.kind, "used": counts, "samples": self.samples, "seed": self.seed}

    def subjects(self) -> list[dict[str, Any]]:
        """in-toto subjects for the calibration data actually used (and its texts)."""
        kinds = sorted(set(self.sources.values())) or ["gaussian"]
        out = [
            {
                "name": f"calibration/{'+'.join(kinds)}-seed{self.seed}-n{self.samples}",
                "digest": {"sha256": self._digest.hexdigest()},
            }
        ]
        if "activations" in kinds:
            from runners import texts

            out.append(texts.subject())
        return out


# --------------------------------------------------------------------------- rows and summaries


class ReconstructionDigest:
    """sha256 over reconstructed tensors' float32 bytes, fed in a fixed (matrix) order."""

    def __init__(self) -> None:
        """Start an empty digest."""
        self._h = hashlib.sha256()

    def update(self, t: torch.Tensor) -> None:
        """Add one reconstructed tensor."""
        self._h.update(t.detach().to(torch.float32).contiguous().numpy().tobytes())

    def hexdigest(self) -> str:
        """'sha256:<hex>'."""
        return "sha256:" + self._h.hexdigest()


def matrix_row(
    info: TensorInfo, w: torch.Tensor, cm: CompressedMatrix, x: torch.Tensor | None
) -> dict[str, Any]:
    """Per-matrix row: shape, bytes by part, ratio, weight cos, layer output cos, the Gaussian
    reference and the data-dependent bound at that cos."""
    out = output_cosine(x, w, cm.w_hat) if x is not None else None
    row = figures_row(info, cm.bytes_by_part(), cosine(w, cm.w_hat), out)
    add_data_bound(row, w)
    return row


def figures_row(
    info: TensorInfo, sizes: dict[str, int], cos: float, layer_out_cos: float | None
) -> dict[str, Any]:
    """`matrix_row` without the data bound, from byte counts by part and the cosines (the
    row of a matrix measured whole, or block by block: runners.stream)."""
    n = info.numel
    total = sum(sizes.values())
    row: dict[str, Any] = {
        "name": info.name,
        "shape": list(info.shape),
        "params": n,
        "bytes_fp16": 2 * n,
        "bytes_total": total,
    }
    for k, v in sizes.items():
        row[f"bytes_{k}"] = v
    row["ratio"] = 2 * n / total
    row["bits_per_weight"] = 8.0 * total / n
    row["cos"] = cos
    if layer_out_cos is not None:
        row["layer_out_cos"] = layer_out_cos
    row["rd_gaussian_ratio"] = bound_ratio(cos)
    return row


def summarize(rows: list[dict[str, Any]]) -> dict[str, float | int | bool]:
    """min/mean summaries over rows and the effective ratio from summed bytes."""
    if not rows:
        raise ValueError("no rows to summarize")
    fp16 = sum(r["bytes_fp16"] for r in rows)
    total = sum(r["bytes_total"] for r in rows)
    params = sum(r["params"] for r in rows)
    cos = [r["cos"] for r in rows]
    out: dict[str, float | int | bool] = {
        "ratio_fp16_effective": fp16 / total,
        "cos_min": min(cos),
        "cos_mean": sum(cos) / len(cos),
        "cos_weighted": sum(r["cos"] * r["params"] for r in rows) / params,
        "bytes_fp16": fp16,
        "bytes_total": total,
        "bits_per_weight": 8.0 * total / params,
        "n_matrices": len(rows),
        "n_params": params,
    }
    parts = sorted(
        {k for r in rows for k in r if k.startswith("bytes_")} - {"bytes_fp16", "bytes_total"}
    )
    for k in parts:
        out[k] = sum(int(r.get(k, 0)) for r in rows)
    outs = [r["layer_out_cos"] for r in rows if "layer_out_cos" in r]
    if outs:  # per-layer output cosine on calibration inputs: not the model's output
        out["layer_out_cos_min"] = min(outs)
        out["layer_out_cos_mean"] = sum(outs) / len(outs)
    bound = bound_ratio(float(out["cos_min"]))
    if bound is not None and bound > 0:  # the Gaussian *reference*, not a bound on real weights
        out["rd_gaussian_ratio"] = bound
        out["rd_gaussian_efficiency"] = float(out["ratio_fp16_effective"]) / bound
    data = combined_bound(rows)
    if data is not None and math.isfinite(data.ratio):  # the data-dependent bound (physics.py)
        out["rd_data_bound_ratio"] = data.ratio
    return out


_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1}
_FLOATS = {"F64", "F32", "F16", "BF16"}


def model_scope(model: ModelSource, metrics: dict[str, Any]) -> dict[str, Any]:
    """Whole-file figures beside the selected-matrices ratio: `ratio_model` counts every
    tensor of the model, the untouched ones at their fp16 size (non-float ones as stored)."""
    if not all(k in metrics for k in ("bytes_total", "bytes_fp16")):
        return {}
    whole = sum(
        2 * t.numel if t.dtype in _FLOATS else _DTYPE_BYTES.get(t.dtype, 1) * t.numel
        for t in model.tensors()
    )
    selected = int(metrics["bytes_fp16"])
    total = int(metrics["bytes_total"]) + max(0, whole - selected)
    return {
        "bytes_model_fp16": whole,
        "bytes_model_total": total,
        "ratio_model": whole / total if total else 0.0,
        "params_model": sum(t.numel for t in model.tensors()),
    }
