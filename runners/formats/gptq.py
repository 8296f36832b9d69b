"""GPTQ and AWQ packed layouts (`qweight`, `qzeros`, `scales`, `g_idx`) in safetensors.

GPTQ (AutoGPTQ / GPTQModel, checkpoint_format "gptq"): `qweight` int32 [in·bits/32, out]
holds each output column's input codes as one LSB-first bit stream over consecutive 32-bit
words (code j at bit j·bits; for 3-bit a code may straddle two words), `qzeros` int32
[groups, out·bits/32] the zero points packed the same way along the output axis, stored
minus one ("gptq" v1; "gptq_v2" stores them as is), `scales` fp16 [groups, out], and
`g_idx` int32 [in] the group of every input column (act-order / desc_act permutes it;
absent means i // group_size). W[o, i] = scales[g[i], o] · (q[i, o] − zero[g[i], o]).

AWQ (AutoAWQ GEMM, 4-bit): `qweight` int32 [in, out/8] and `qzeros` int32 [groups, out/8]
pack eight output columns per word, nibble k holding column 8c + ORDER[k] with
ORDER = [0, 2, 4, 6, 1, 3, 5, 7]; `scales` fp16 [groups, out]; zeros are stored as is.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from ledger.errors import InputError
from runners.formats.base import (
    Checkpoint,
    Reconstruction,
    SafetensorsIndex,
    read_config,
    safetensors_files,
)

AWQ_ORDER = (0, 2, 4, 6, 1, 3, 5, 7)
PARTS = ("qweight", "qzeros", "scales", "g_idx")
_CHUNK_ELEMS = 1 << 22


def unpack_stream(packed: torch.Tensor, bits: int, n: int) -> torch.Tensor:
    """Codes [n, cols] (integers) from int32 words [rows, cols], one LSB-first stream per column."""
    if bits not in (2, 3, 4, 8):
        raise InputError(f"GPTQ bits must be 2, 3, 4 or 8, got {bits}")
    rows, cols = packed.shape
    if rows * 32 < n * bits:
        raise InputError(f"packed tensor holds {rows * 32 // bits} codes per column, need {n}")
    mask = (1 << bits) - 1
    if bits in (2, 4, 8):  # whole codes per word: one shift per position, int32 throughout
        per = 32 // bits
        w32 = packed.to(torch.int32)
        out32 = torch.empty(rows, per, cols, dtype=torch.int32)
        for k in range(per):
            torch.bitwise_and(w32 >> (bits * k), mask, out=out32[:, k])
        return out32.reshape(rows * per, cols)[:n]
    words = packed.to(torch.int64) & 0xFFFFFFFF
    pos = torch.arange(n, dtype=torch.int64) * bits
    word, shift = pos // 32, (pos % 32)[:, None]
    nxt = torch.clamp(word + 1, max=rows - 1)
    out = torch.empty(n, cols, dtype=torch.int64)
    step = max(1, _CHUNK_ELEMS // max(1, n))
    for c0 in range(0, cols, step):
        w = words[:, c0 : c0 + step]
        lo, hi = w[word], w[nxt]
        out[:, c0 : c0 + step] = ((lo | (hi << 32)) >> shift) & mask
    return out


def pack_stream(codes: torch.Tensor, bits: int) -> torch.Tensor:
    """Inverse of `unpack_stream`: int32 words [n·bits/32, cols] from codes [n, cols]."""
    n, cols = codes.shape
    rows = -(-n * bits // 32)
    words = torch.zeros(rows + 1, cols, dtype=torch.int64)
    pos = torch.arange(n, dtype=torch.int64) * bits
    c = codes.to(torch.int64)
    for j in range(n):
        w, s = int(pos[j] // 32), int(pos[j] % 32)
        words[w] |= (c[j] << s) & 0xFFFFFFFF
        if s + bits > 32:
            words[w + 1] |= c[j] >> (32 - s)
    words = words[:rows]
    return torch.where(words >= 1 << 31, words - (1 << 32), words).to(torch.int32)


def unpack_awq(packed: torch.Tensor) -> torch.Tensor:
    """Codes [rows, 8·cols] (int64) from AWQ-packed int32 [rows, cols] (4-bit, ORDER)."""
    words = packed.to(torch.int64) & 0xFFFFFFFF
    rows, cols = words.shape
    out = torch.empty(rows, cols, 8, dtype=torch.int64)
    for k, col in enumerate(AWQ_ORDER):
        out[:, :, col] = (words >> (4 * k)) & 0xF
    return out.reshape(rows, cols * 8)


def _quant_config(root: Path, weight_files: list[Path]) -> tuple[dict[str, Any], Path | None]:
    """quantization_config from config.json, else quantize_config.json (AutoGPTQ), else {}."""
    cfg = read_config(root) if root.is_dir() else None
    if cfg and isinstance(cfg.get("quantization_config"), dict):
        return cfg["quantization_config"], root / "config.json"
    qc = root / "quantize_config.json"
    if qc.is_file():
        try:
            doc = json.loads(qc.read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"bad quantize_config.json: {exc}", path=qc) from exc
        if isinstance(doc, dict):
            return doc, qc
    return {}, None


def _dequantize(
    q: torch.Tensor, z: torch.Tensor, scales: torch.Tensor, g: torch.Tensor
) -> torch.Tensor:
    """scales[g[i], o] · (q[i, o] − z[g[i], o]) as float32 [in, out], few temporaries."""
    in_f = q.shape[0]
    groups = scales.shape[0]
    w = q.to(torch.float32)
    zf = z.to(torch.float32)
    gs = -(-in_f // groups)
    if in_f == groups * gs and torch.equal(g, torch.arange(in_f) // gs):  # contiguous groups
        view = w.view(groups, gs, -1)
        view -= zf[:, None, :]
        view *= scales[:, None, :]
        return w
    w -= zf[g]
    w *= scales[g]
    return w


class PackedCheckpoint(Checkpoint):
    """A GPTQ- or AWQ-layout safetensors checkpoint (file or folder)."""

    def __init__(self, path: Path):
        """Read headers and the quantization config; nothing is dequantized yet."""
        root, files, index = safetensors_files(path)
        super().__init__(root)
        self.add_safetensors(files, index)
        folder = path if path.is_dir() else path.parent
        qcfg, qpath = _quant_config(folder, files)
        if qpath is not None:
            self.add_file(qpath, "config")
        method = str(qcfg.get("quant_method", "gptq")).lower()
        self.method = "awq" if method == "awq" else "gptq"
        self.format = self.method
        self.config = qcfg
        self.bits = int(qcfg.get("bits", qcfg.get("w_bit", 4)))
        self.group_size = int(qcfg.get("group_size", qcfg.get("q_group_size", 128)))
        fmt = str(qcfg.get("checkpoint_format", "gptq")).lower()
        self.zero_offset = 1 if self.method == "gptq" and fmt != "gptq_v2" else 0
        if not qcfg:
            raise InputError(
                "GPTQ/AWQ layout without quantization_config (config.json) or "
                "quantize_config.json: bits and group size are unknown",
                path=path,
            )
        self.index = SafetensorsIndex(files)
        self._by_name = {s.name: s for s in self._stored}
        self._modules = sorted(
            {s.name.removesuffix(".qweight") for s in self._stored if s.name.endswith(".qweight")}
        )
        consumed = {f"{m}.{p}" for m in self._modules for p in PARTS}
        self._plain = [s.name for s in self._stored if s.name not in consumed]

    def names(self) -> list[str]:
        """Each packed module's `.weight`, then every other stored tensor as is."""
        return [f"{m}.weight" for m in self._modules] + self._plain

    def load(self, name: str) -> Reconstruction:
        """Unpack and dequantize one module's weight, or read a plain tensor."""
        module = name.removesuffix(".weight")
        if name.endswith(".weight") and module in self._modules:
            return self._dequantize(module)
        if name in self._plain:
            t = self.index.get(name)
            return Reconstruction(
                name, t.to(torch.float32), {name: self._by_name[name].nbytes}, "plain"
            )
        raise KeyError(name)

    def row_shape(self, name: str) -> tuple[int, ...] | None:
        """[out, in] of a packed module's weight (from the headers), else None."""
        module = name.removesuffix(".weight")
        if not name.endswith(".weight") or module not in self._modules:
            return None
        scales = self._by_name[f"{module}.scales"].shape
        g_idx = self._by_name.get(f"{module}.g_idx")
        if len(scales) != 2:
            return None
        if self.method == "awq":
            in_f = self._by_name[f"{module}.qweight"].shape[0]
        elif g_idx is not None and len(g_idx.shape) == 1:
            in_f = g_idx.shape[0]
        else:
            in_f = self._by_name[f"{module}.qweight"].shape[0] * 32 // self.bits
        return (scales[1], in_f)

    def load_rows(self, name: str, r0: int, r1: int) -> Reconstruction:
        """Rows r0:r1 (output channels) of a packed module's W, reading only their columns
        of qweight/qzeros/scales; r0 is a multiple of 32, so every packed word starts there."""
        if self.row_shape(name) is None:
            raise KeyError(name)
        if r0 % 32:
            raise ValueError(f"row block must start at a multiple of 32, got {r0}")
        return self._dequantize(name.removesuffix(".weight"), (r0, r1))

    def _dequantize(self, module: str, rows: tuple[int, int] | None = None) -> Reconstruction:
        """W [out, in] float32 from qweight/qzeros/scales(/g_idx); only rows r0:r1 if given
        (then only those output columns of the stored tensors are read)."""
        if rows is None:
            get = self.index.get
            qweight, qzeros = get(f"{module}.qweight"), get(f"{module}.qzeros")
            scales = get(f"{module}.scales").to(torch.float32)
        else:
            r0, r1 = rows
            per = 8 if self.method == "awq" else 1  # AWQ packs 8 output columns per word
            zb = 4 if self.method == "awq" else self.bits  # bits per zero along outputs
            cols = self.index.get_cols
            qweight = cols(f"{module}.qweight", r0 // per, -(-r1 // per))
            qzeros = cols(f"{module}.qzeros", r0 * zb // 32, -(-r1 * zb // 32))
            scales = cols(f"{module}.scales", r0, r1).to(torch.float32)
        get = self.index.get
        groups, out_f = scales.shape
        parts = {f"{module}.{p}": self._by_name[f"{module}.{p}"].nbytes for p in PARTS[:3]}
        if self.method == "awq":
            if self.bits != 4:
                raise InputError(f"AWQ layout with {self.bits} bits: only 4-bit GEMM is known")
            q = unpack_awq(qweight)[:, :out_f]  # [in, out]
            z = unpack_awq(qzeros)[:, :out_f]  # [groups, out]
            in_f = q.shape[0]
            g = torch.arange(in_f) // self.group_size
        else:
            has_gidx = f"{module}.g_idx" in self._by_name
            g_raw = get(f"{module}.g_idx").to(torch.int64) if has_gidx else None
            in_f = int(g_raw.numel()) if g_raw is not None else qweight.shape[0] * 32 // self.bits
            q = unpack_stream(qweight, self.bits, in_f)
            z = unpack_stream(qzeros.T.contiguous(), self.bits, out_f).T + self.zero_offset
            gs = self.group_size if self.group_size > 0 else in_f
            g = g_raw if g_raw is not None else torch.arange(in_f) // gs
            if has_gidx:
                parts[f"{module}.g_idx"] = self._by_name[f"{module}.g_idx"].nbytes
        if int(g.min()) < 0 or int(g.max()) >= groups:
            raise InputError(f"{module}: group index out of range (groups={groups})")
        w = _dequantize(q, z, scales, g)
        return Reconstruction(f"{module}.weight", w.T.contiguous(), parts, self._scheme())

    def _scheme(self) -> str:
        """Short scheme name, e.g. gptq-w4g128-act_order."""
        act = "-act_order" if self.config.get("desc_act") else ""
        return f"{self.method}-w{self.bits}g{self.group_size}{act}"

    def describe(self) -> dict[str, Any]:
        """Method, bits, group size, act-order and zero-point convention."""
        return {
            "format": self.method,
            "reader": "evledger unpacker for the AutoGPTQ/GPTQModel and AutoAWQ packed layouts",
            "bits": self.bits,
            "group_size": self.group_size,
            "desc_act": bool(self.config.get("desc_act", False)),
            "sym": self.config.get("sym"),
            "zero_point_stored_minus": self.zero_offset,
            "modules": len(self._modules),
        }
