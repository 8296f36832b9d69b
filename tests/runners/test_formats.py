"""Format readers against independent computations: packing orders, bytes, dequantization."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from compressed_models import (
    autogptq_pack,
    awq_pack,
    gptq_tensors,
    write_compressed_tensors,
    write_gguf,
)
from safetensors.torch import save_file

from runners.formats import open_checkpoint
from runners.formats.detect import detect
from runners.formats.gptq import pack_stream, unpack_awq, unpack_stream


def header_sizes(path: Path) -> dict[str, int]:
    """Byte length of every tensor from the raw safetensors header (independent parse)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    return {
        k: v["data_offsets"][1] - v["data_offsets"][0]
        for k, v in header.items()
        if k != "__metadata__"
    }


def test_gptq_4bit_word_layout_is_lsb_first() -> None:
    """Codes 1..8 of one column pack into the word 0x87654321 (AutoGPTQ order)."""
    codes = np.zeros((32, 1), dtype=np.uint32)
    codes[:8, 0] = np.arange(1, 9)
    packed = autogptq_pack(codes, 4)
    assert packed[:, 0].tolist() == [0x87654321, 0, 0, 0]
    words = torch.tensor([[0x87654321 - (1 << 32)]], dtype=torch.int32)
    assert unpack_stream(words, 4, 8)[:, 0].tolist() == list(range(1, 9))


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
def test_unpack_matches_the_autogptq_pack_loop(bits: int) -> None:
    """Random codes packed by AutoGPTQ's loop come back exactly; our packer gives the same words."""
    gen = torch.Generator().manual_seed(bits)
    codes = torch.randint(0, 1 << bits, (64, 5), generator=gen)
    packed = autogptq_pack(codes.numpy(), bits).astype(np.int32)
    assert packed.shape == (64 * bits // 32, 5)
    assert torch.equal(unpack_stream(torch.from_numpy(packed), bits, 64), codes)
    assert np.array_equal(pack_stream(codes, bits).numpy(), packed)


def test_awq_unpack_matches_the_autoawq_pack_loop() -> None:
    """AWQ's interleaved nibble order (0,2,4,6,1,3,5,7) round-trips."""
    codes = torch.randint(0, 16, (6, 24), generator=torch.Generator().manual_seed(1))
    packed = awq_pack(codes)
    assert packed.shape == (6, 3)
    assert torch.equal(unpack_awq(packed), codes)
    first = int(packed[0, 0]) & 0xFFFFFFFF
    assert first & 0xF == int(codes[0, 0]) and (first >> 4) & 0xF == int(codes[0, 2])


@pytest.mark.parametrize(("bits", "act_order"), [(2, False), (3, True), (4, True), (8, False)])
def test_gptq_checkpoint_dequantizes_to_the_expected_weights(
    tmp_path: Path, bits: int, act_order: bool
) -> None:
    """A GPTQ-layout file (qweight/qzeros/scales/g_idx) reads back to scales·(q − zero)."""
    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(0)) * 0.05
    parts, expected = gptq_tensors(w, bits, 64, act_order)
    folder = tmp_path / "gptq"
    folder.mkdir()
    save_file(
        {f"lin.{k}": v for k, v in parts.items()} | {"lin.bias": torch.zeros(64)},
        str(folder / "model.safetensors"),
    )
    cfg = {
        "quantization_config": {
            "quant_method": "gptq",
            "bits": bits,
            "group_size": 64,
            "desc_act": act_order,
        }
    }
    (folder / "config.json").write_text(json.dumps(cfg))
    assert detect(folder) is not None and detect(folder)[0] == "gptq"
    ck = open_checkpoint(folder)
    assert ck.names() == ["lin.weight", "lin.bias"]
    rec = ck.load("lin.weight")
    assert torch.allclose(rec.w_hat, expected, atol=1e-6)
    sizes = header_sizes(folder / "model.safetensors")
    assert rec.nbytes == sum(sizes[f"lin.{p}"] for p in ("qweight", "qzeros", "scales", "g_idx"))
    assert sizes["lin.qweight"] == 256 * bits // 8 * 64
    assert ck.overhead_bytes() == (folder / "model.safetensors").stat().st_size - sum(
        sizes.values()
    )


def _unpack_int4_lsb(packed: torch.Tensor, cols: int) -> torch.Tensor:
    """Independent nibble unpack of compressed-tensors' pack_to_int32 (LSB first, +8 offset)."""
    words = packed.to(torch.int64) & 0xFFFFFFFF
    nib = torch.stack([(words >> (4 * k)) & 0xF for k in range(8)], dim=-1)
    return nib.reshape(packed.shape[0], -1)[:, :cols] - 8


@pytest.fixture(scope="module")
def ct_w4(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """W4A16 pack-quantized checkpoint of the default model, written by compressed-tensors."""
    return write_compressed_tensors(
        tmp_path_factory.mktemp("ct") / "w4a16", "W4A16", "pack-quantized"
    )


def test_compressed_tensors_pack_quantized_against_own_unpack(ct_w4: Path) -> None:
    """The library's decompression equals an independent nibble unpack times the group scale."""
    from safetensors import safe_open

    ck = open_checkpoint(ct_w4)
    assert ck.format == "compressed-tensors"
    name = "encoder.layer.2.intermediate.dense"
    rec = ck.load(f"{name}.weight")
    with safe_open(str(ct_w4 / "model.safetensors"), "pt") as f:
        packed, scale = f.get_tensor(f"{name}.weight_packed"), f.get_tensor(f"{name}.weight_scale")
    q = _unpack_int4_lsb(packed, 384).float()
    expected = q * scale.float().repeat_interleave(128, dim=1)
    assert torch.allclose(rec.w_hat, expected.to(rec.w_hat.dtype), atol=1e-3 * float(scale.max()))
    sizes = header_sizes(ct_w4 / "model.safetensors")
    assert rec.nbytes == sum(v for k, v in sizes.items() if k.startswith(name + ".weight_"))
    assert rec.parts.keys() >= {f"{name}.weight_packed", f"{name}.weight_scale"}


@pytest.mark.parametrize(
    ("preset", "fmt"), [("W8A8", "int-quantized"), ("FP8_DYNAMIC", "float-quantized")]
)
def test_compressed_tensors_int_and_float_quantized(tmp_path: Path, preset: str, fmt: str) -> None:
    """int8 / fp8 weights with per-channel scales decompress to weight·scale."""
    from safetensors import safe_open

    folder = write_compressed_tensors(tmp_path / fmt, preset, fmt)
    ck = open_checkpoint(folder)
    name = "encoder.layer.0.attention.self.value"
    rec = ck.load(f"{name}.weight")
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        q, scale = f.get_tensor(f"{name}.weight"), f.get_tensor(f"{name}.weight_scale")
    assert q.dtype in (torch.int8, torch.float8_e4m3fn)
    expected = q.float() * scale.float()
    assert torch.allclose(rec.w_hat, expected, rtol=1e-2, atol=1e-6)
    assert (
        rec.nbytes
        == q.numel() * 1 + header_sizes(folder / "model.safetensors")[f"{name}.weight_scale"]
    )


def _q8_0(raw: np.ndarray, n: int) -> np.ndarray:
    """Independent Q8_0 dequantization: 34-byte blocks, fp16 d then 32 int8."""
    b = raw.reshape(-1, 34)
    d = b[:, :2].copy().view("<f2").astype(np.float32)
    return (d * b[:, 2:].copy().view(np.int8).astype(np.float32)).reshape(-1)[:n]


def _q4_0(raw: np.ndarray, n: int) -> np.ndarray:
    """Independent Q4_0 dequantization: fp16 d, 16 bytes (low nibbles first 16, high next)."""
    b = raw.reshape(-1, 18)
    d = b[:, :2].copy().view("<f2").astype(np.float32)
    qs = b[:, 2:]
    q = np.concatenate([qs & 0xF, qs >> 4], axis=1).astype(np.float32) - 8
    return (d * q).reshape(-1)[:n]


@pytest.mark.parametrize(("qtype", "block", "ref"), [("Q8_0", 34, _q8_0), ("Q4_0", 18, _q4_0)])
def test_gguf_reader_bytes_names_and_dequantization(
    tmp_path: Path, qtype: str, block: int, ref
) -> None:
    """gguf-written file: names map back to the original, bytes per block, values per block."""
    from compressed_models import load_all

    from runners.model import default_model_path

    path = write_gguf(tmp_path / "m.gguf", qtype)
    original = list(load_all(default_model_path()))
    ck = open_checkpoint(path, original=original)
    assert ck.format == "gguf"
    name = "encoder.layer.1.output.dense.weight"
    assert name in ck.names() and "encoder.layer.1.output.dense.bias" in ck.names()
    rec = ck.load(name)
    assert tuple(rec.w_hat.shape) == (384, 1536)
    assert rec.nbytes == 384 * 1536 // 32 * block
    raw = np.fromfile(path, dtype=np.uint8)
    t = ck.tensors[ck.from_original[name]]
    got = raw[t.data_offset : t.data_offset + t.n_bytes]
    assert np.allclose(rec.w_hat.numpy().reshape(-1), ref(got, 384 * 1536))
    assert ck.weight_bytes() == path.stat().st_size
    assert ck.overhead_bytes() == path.stat().st_size - sum(s.nbytes for s in ck.stored())
    assert "pooler.dense.weight" not in ck.names()  # BERT GGUF has no pooler


def test_awq_checkpoint_dequantizes_to_the_expected_weights(tmp_path: Path) -> None:
    """An AWQ (GEMM) layout file reads back to scales·(q − zero) with zeros stored as is."""
    from compressed_models import rtn_codes

    w = torch.randn(64, 256, generator=torch.Generator().manual_seed(3)) * 0.05
    codes, scales, zeros, g_idx = rtn_codes(w, 4, 64)
    expected = scales[g_idx.long()].T * (codes - zeros[g_idx.long()].T)
    folder = tmp_path / "awq"
    folder.mkdir()
    parts = {
        "lin.qweight": awq_pack(codes.T.contiguous()),
        "lin.qzeros": awq_pack(zeros),
        "lin.scales": scales.half(),
    }
    save_file(parts, str(folder / "model.safetensors"))
    cfg = {"quantization_config": {"quant_method": "awq", "bits": 4, "group_size": 64}}
    (folder / "config.json").write_text(json.dumps(cfg))
    ck = open_checkpoint(folder)
    assert ck.format == "awq"
    rec = ck.load("lin.weight")
    assert torch.allclose(rec.w_hat, expected.float(), atol=1e-6)
    sizes = header_sizes(folder / "model.safetensors")
    assert rec.nbytes == sum(sizes.values()) == 256 * 64 // 2 + 4 * 64 // 2 + 4 * 64 * 2


def test_detect_leaves_plain_models_alone(tmp_path: Path) -> None:
    """A float model with a tensor called `layer_scale` is not taken for a compressed one."""
    save_file(
        {"a.layer_scale": torch.ones(4), "a.weight": torch.ones(4, 4)},
        str(tmp_path / "m.safetensors"),
    )
    assert detect(tmp_path / "m.safetensors") is None
    from runners.model import default_model_path

    assert detect(default_model_path()) is None


@pytest.mark.parametrize(("qtype", "block", "d_at"), [("Q4_K", 144, (0, 2)), ("Q6_K", 210, (208,))])
def test_gguf_k_quant_tensors_read_with_their_block_bytes(
    tmp_path: Path, qtype: str, block: int, d_at: tuple[int, ...]
) -> None:
    """gguf-py cannot write K-quants, so raw K-quant blocks (fp16 scales set finite) are
    stored with the writer's raw_dtype; the reader counts 144/210 bytes per 256 weights and
    dequantizes through gguf.quants to the right shape, finite."""
    import gguf

    rows, cols = 8, 512
    raw = np.random.default_rng(0).integers(0, 256, (rows, cols // 256 * block), dtype=np.uint8)
    blocks = raw.reshape(rows, cols // 256, block)
    for at in d_at:  # the block's fp16 super-scale(s): 0.01
        blocks[:, :, at : at + 2] = np.frombuffer(np.float16(0.01).tobytes(), dtype=np.uint8)
    q = getattr(gguf.GGMLQuantizationType, qtype)
    path = tmp_path / "k.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_tensor("blk.0.ffn_down.weight", raw, raw_dtype=q)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    ck = open_checkpoint(path)
    rec = ck.load("blk.0.ffn_down.weight")
    assert tuple(rec.w_hat.shape) == (rows, cols) and rec.scheme == qtype
    assert rec.nbytes == rows * cols // 256 * block
    assert torch.isfinite(rec.w_hat).all() and rec.w_hat.abs().max() > 0
