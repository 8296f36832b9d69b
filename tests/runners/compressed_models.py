"""Real compressed checkpoints of a model, written by the formats' own writers (for tests).

compressed-tensors: the library's compressors (`BaseCompressor.compress`) with qparams from
its `calculate_qparams`; GGUF: `gguf.GGUFWriter` with `gguf.quants.quantize`; GPTQ: the
AutoGPTQ `QuantLinear.pack` loop (qlinear_cuda_old.py) transcribed below, word by word;
AWQ: AutoAWQ's pack loop with its ORDER map.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from runners.model import default_model_path


def default_folder() -> Path:
    """The default model's folder (MiniLM-L6)."""
    return default_model_path().parent


def load_all(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file."""
    with safe_open(str(path), framework="pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


def linear_names(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the encoder's Linear weights (2-D, in encoder.layer.* or pooler)."""
    return [
        k
        for k, v in tensors.items()
        if v.dim() == 2 and k.endswith(".weight") and ("encoder.layer" in k or "pooler" in k)
    ]


def write_config(out: Path, quantization_config: dict | None) -> None:
    """The original config.json, plus a quantization_config when given."""
    cfg = json.loads((default_folder() / "config.json").read_text())
    if quantization_config is not None:
        cfg["quantization_config"] = quantization_config
    (out / "config.json").write_text(json.dumps(cfg, indent=1, default=str))


# ------------------------------------------------------------------ compressed-tensors


def write_compressed_tensors(out: Path, preset: str = "W4A16", fmt: str = "pack-quantized") -> Path:
    """A compressed-tensors folder of the default model, compressed by the library."""
    from compressed_tensors.compressors import BaseCompressor
    from compressed_tensors.quantization import (
        QuantizationConfig,
        QuantizationStatus,
        preset_name_to_scheme,
    )
    from compressed_tensors.quantization.utils import calculate_qparams

    out.mkdir(parents=True, exist_ok=True)
    tensors = load_all(default_model_path())
    scheme = preset_name_to_scheme(preset, ["Linear"])
    scheme.format = fmt
    compressor = BaseCompressor.get_value_from_registry(fmt)
    args = scheme.weights
    result: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name not in linear_names(tensors):
            result[name] = t
            continue
        module = name.removesuffix(".weight")
        w = t.to(torch.float32)
        if (
            str(args.strategy.value if hasattr(args.strategy, "value") else args.strategy)
            == "group"
        ):
            g = w.reshape(w.shape[0], -1, args.group_size)
            mn, mx = g.amin(-1), g.amax(-1)
        else:  # channel
            mn, mx = w.amin(-1, keepdim=True), w.amax(-1, keepdim=True)
        scale, zp = calculate_qparams(mn, mx, args)
        sd = {"weight": w, "weight_scale": scale, "weight_zero_point": zp}
        for k, v in compressor.compress(sd, scheme).items():
            result[f"{module}.{k}"] = v.contiguous()
    save_file(result, str(out / "model.safetensors"))
    qc = QuantizationConfig(
        config_groups={"group_0": scheme},
        format=fmt,
        quantization_status=QuantizationStatus.COMPRESSED,
    )
    write_config(out, json.loads(qc.model_dump_json()))
    return out


# ------------------------------------------------------------------ GPTQ / AWQ


def rtn_codes(
    w: torch.Tensor, bits: int, group_size: int, g_idx: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Asymmetric RTN: codes [out, in], scales/zeros [groups, out], g_idx [in]."""
    out_f, in_f = w.shape
    if g_idx is None:
        g_idx = torch.arange(in_f, dtype=torch.int32) // group_size
    groups = int(g_idx.max()) + 1
    maxq = (1 << bits) - 1
    scales = torch.empty(groups, out_f)
    zeros = torch.empty(groups, out_f, dtype=torch.int64)
    for g in range(groups):
        cols = w[:, g_idx == g]
        mn, mx = cols.amin(1).clamp(max=0), cols.amax(1).clamp(min=0)
        s = ((mx - mn) / maxq).clamp(min=1e-8)
        scales[g] = s.half().float()
        zeros[g] = torch.round(-mn / scales[g]).clamp(1, maxq).to(torch.int64)
    s_col, z_col = scales[g_idx.long()].T, zeros[g_idx.long()].T
    codes = torch.clamp(torch.round(w / s_col) + z_col, 0, maxq).to(torch.int64)
    return codes, scales, zeros, g_idx


def autogptq_pack(values: np.ndarray, bits: int) -> np.ndarray:
    """AutoGPTQ's QuantLinear.pack loop along axis 0: uint32 words [n·bits/32, cols]."""
    intweight = values.astype(np.uint32)
    q = np.zeros((intweight.shape[0] // 32 * bits, intweight.shape[1]), dtype=np.uint32)
    i = row = 0
    while row < q.shape[0]:
        if bits in (2, 4, 8):
            for j in range(i, i + 32 // bits):
                q[row] |= intweight[j] << (bits * (j - i))
            i += 32 // bits
            row += 1
        else:  # 3 bits: 32 codes over 3 words
            for j in range(i, i + 10):
                q[row] |= intweight[j] << (3 * (j - i))
            i += 10
            q[row] |= intweight[i] << 30
            row += 1
            q[row] |= (intweight[i] >> 2) & 1
            i += 1
            for j in range(i, i + 10):
                q[row] |= intweight[j] << (3 * (j - i) + 1)
            i += 10
            q[row] |= intweight[i] << 31
            row += 1
            q[row] |= (intweight[i] >> 1) & 0x3
            i += 1
            for j in range(i, i + 10):
                q[row] |= intweight[j] << (3 * (j - i) + 2)
            i += 10
            row += 1
    return q


def gptq_tensors(
    w: torch.Tensor, bits: int, group_size: int, act_order: bool
) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """qweight/qzeros/scales/g_idx of one matrix (AutoGPTQ v1 layout) and the expected Ŵ."""
    in_f = w.shape[1]
    g_idx = None
    if act_order:  # act-order: a permutation decides which group each column falls into
        perm = torch.randperm(in_f, generator=torch.Generator().manual_seed(in_f))
        g_idx = (torch.argsort(perm) // group_size).to(torch.int32)
    codes, scales, zeros, g_idx = rtn_codes(w, bits, group_size, g_idx)
    qweight = autogptq_pack(codes.T.numpy(), bits).astype(np.int32)
    qzeros = autogptq_pack((zeros - 1).T.numpy(), bits).T.copy().astype(np.int32)
    tensors = {
        "qweight": torch.from_numpy(qweight),
        "qzeros": torch.from_numpy(qzeros),
        "scales": scales.half(),
        "g_idx": g_idx.to(torch.int32),
    }
    expected = (scales[g_idx.long()].T * (codes - zeros[g_idx.long()].T)).float()
    return tensors, expected


def write_gptq(out: Path, bits: int = 4, group_size: int = 128, act_order: bool = False):
    """A GPTQ-layout folder of the default model; returns (folder, {name: expected Ŵ})."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_all(default_model_path())
    result: dict[str, torch.Tensor] = {}
    expected: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name not in linear_names(tensors):
            result[name] = t.half() if t.is_floating_point() else t
            continue
        module = name.removesuffix(".weight")
        parts, exp = gptq_tensors(t.float(), bits, group_size, act_order)
        for k, v in parts.items():
            result[f"{module}.{k}"] = v
        expected[name] = exp
    save_file(result, str(out / "model.safetensors"))
    write_config(
        out,
        {
            "quant_method": "gptq",
            "bits": bits,
            "group_size": group_size,
            "desc_act": act_order,
            "sym": False,
            "checkpoint_format": "gptq",
        },
    )
    return out, expected


AWQ_ORDER = [0, 2, 4, 6, 1, 3, 5, 7]


def awq_pack(values: torch.Tensor) -> torch.Tensor:
    """AutoAWQ's WQLinear_GEMM pack loop: int32 [rows, cols/8] from 4-bit codes [rows, cols]."""
    v = values.to(torch.int64)
    packed = torch.zeros(v.shape[0], v.shape[1] // 8, dtype=torch.int64)
    for col in range(v.shape[1] // 8):
        for i in range(8):
            packed[:, col] |= v[:, col * 8 + AWQ_ORDER[i]] << (i * 4)
    return torch.where(packed >= 1 << 31, packed - (1 << 32), packed).to(torch.int32)


def write_awq(out: Path, group_size: int = 128):
    """An AWQ (GEMM, 4-bit) folder of the default model; returns (folder, expected Ŵ)."""
    out.mkdir(parents=True, exist_ok=True)
    tensors = load_all(default_model_path())
    result: dict[str, torch.Tensor] = {}
    expected: dict[str, torch.Tensor] = {}
    for name, t in tensors.items():
        if name not in linear_names(tensors):
            result[name] = t.half() if t.is_floating_point() else t
            continue
        module = name.removesuffix(".weight")
        codes, scales, zeros, g_idx = rtn_codes(t.float(), 4, group_size)
        result[f"{module}.qweight"] = awq_pack(codes.T.contiguous())
        result[f"{module}.qzeros"] = awq_pack(zeros)
        result[f"{module}.scales"] = scales.half()
        expected[name] = (scales[g_idx.long()].T * (codes - zeros[g_idx.long()].T)).float()
    save_file(result, str(out / "model.safetensors"))
    write_config(
        out, {"quant_method": "awq", "bits": 4, "group_size": group_size, "version": "gemm"}
    )
    return out, expected


# ------------------------------------------------------------------ GGUF


def write_gguf(out: Path, qtype: str = "Q8_0") -> Path:
    """A GGUF file of the default model: Linear weights in `qtype`, the rest F32."""
    import gguf

    tensors = load_all(default_model_path())
    tmap = gguf.get_tensor_name_map(gguf.MODEL_ARCH.BERT, 6)
    w = gguf.GGUFWriter(str(out), "bert")
    w.add_block_count(6)
    w.add_head_count(12)
    lin = set(linear_names(tensors))
    for name, t in tensors.items():
        gname = tmap.get_name(name, try_suffixes=(".weight", ".bias"))
        if gname is None:
            continue
        arr = t.float().numpy()
        if name in lin and "pooler" not in name:
            q = getattr(gguf.GGMLQuantizationType, qtype)
            w.add_tensor(gname, gguf.quants.quantize(arr, q), raw_dtype=q)
        else:
            w.add_tensor(gname, arr)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return out


def copy_original(out: Path) -> Path:
    """A copy of the default model's folder (config, tokenizer, weights)."""
    shutil.copytree(default_folder(), out)
    return out
