"""Shared measurement code on small tensors whose answers are known by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ledger.ratedistortion import bound_bits, bound_ratio
from runners.measure import (
    cosine,
    dequantize,
    entropy_bits,
    output_cosine,
    pack_bits,
    quantize,
    rate_distortion,
    scalar_compress,
    summarize,
    unpack_bits,
)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("group_size", [1, 7, 32, 64])
def test_round_trip_error_at_most_half_scale(bits: int, group_size: int) -> None:
    """Every element is reconstructed within scale/2 of its group."""
    w = torch.randn(33, 40, generator=torch.Generator().manual_seed(bits * 100 + group_size))
    q = quantize(w, bits, group_size)
    err = (dequantize(q) - w).abs().reshape(-1)
    n = w.numel()
    groups = -(-n // group_size)
    scale = q.scale.float().repeat_interleave(group_size)[:n]
    assert q.scale.numel() == groups
    assert torch.all(err <= scale / 2 * (1 + 1e-5) + 1e-7)
    assert int(q.codes.max()) <= (1 << bits) - 1


def test_int8_and_int4_known_values() -> None:
    """A hand-made group: 0..15 in steps of 1 is exact at 4 bits; int8 on a 0..255 ramp too."""
    ramp = torch.arange(16, dtype=torch.float32)
    q = quantize(ramp, 4, 16)
    assert float(q.scale[0]) == 1.0 and float(q.zero[0]) == 0.0
    assert q.codes.tolist() == list(range(16))
    assert torch.equal(dequantize(q), ramp)
    ramp8 = torch.arange(256, dtype=torch.float32) * 0.5 - 64
    q8 = quantize(ramp8, 8, 256)
    assert torch.equal(dequantize(q8), ramp8)


def test_constant_group_is_exact() -> None:
    """A constant (fp16-representable) group has scale 0 and reconstructs exactly."""
    w = torch.full((64,), 0.25)
    q = quantize(w, 4, 32)
    assert torch.equal(dequantize(q), w)
    assert float(q.scale.max()) == 0.0


@pytest.mark.parametrize(
    ("n", "bits", "expected"),
    [
        (1000, 4, 500),
        (1000, 8, 1000),
        (1000, 2, 250),
        (1000, 3, 375),
        (7, 3, 3),
        (5, 12, 8),
        (1, 1, 1),
    ],
)
def test_packed_byte_counts_are_exact(n: int, bits: int, expected: int) -> None:
    """ceil(n*bits/8) bytes, and unpacking gives the codes back."""
    rng = np.random.default_rng(n + bits)
    codes = rng.integers(0, 1 << bits, size=n)
    packed = pack_bits(codes, bits)
    assert len(packed) == expected
    assert np.array_equal(unpack_bits(packed, bits, n).astype(np.int64), codes)


def test_pack_layout_msb_first() -> None:
    """Two 4-bit codes share a byte, first code in the high nibble."""
    assert pack_bits(np.array([1, 2, 15, 0]), 4) == bytes([0x12, 0xF0])
    assert pack_bits(np.array([3, 0, 1, 2]), 2) == bytes([0b11000110])


def test_pack_rejects_too_wide_codes() -> None:
    """A code that does not fit raises."""
    with pytest.raises(ValueError, match="fit"):
        pack_bits(np.array([16]), 4)


def test_scale_zero_overhead_and_ratio_arithmetic() -> None:
    """4-bit, group 64 on 1000x64: codes 32000 B + 1000 fp16 scales + 1000 fp16 zeros."""
    w = torch.randn(1000, 64, generator=torch.Generator().manual_seed(1))
    cm = scalar_compress(w, 4, 64)
    assert cm.bytes_by_part() == {"codes": 32000, "scales": 2000, "zeros": 2000}
    assert cm.nbytes == 36000
    ratio = 2 * w.numel() / cm.nbytes
    assert ratio == pytest.approx(16 / 4.5)


def test_lowrank_residual_counts_fp16_factors() -> None:
    """rank r on an m x n matrix adds 2*r*(m+n) bytes and does not lower the weight cosine."""
    w = torch.randn(48, 40, generator=torch.Generator().manual_seed(2))
    plain = scalar_compress(w, 2, 8)
    corrected = scalar_compress(w, 2, 8, rank=4)
    assert corrected.bytes_by_part()["residual"] == 2 * 4 * (48 + 40)
    assert corrected.nbytes == plain.nbytes + 2 * 4 * (48 + 40)
    assert cosine(w, corrected.w_hat) > cosine(w, plain.w_hat)


def test_reconstruction_comes_from_the_bytes() -> None:
    """scalar_compress rebuilds from the packed bytes: it equals plain dequantization."""
    w = torch.randn(16, 24, generator=torch.Generator().manual_seed(3))
    cm = scalar_compress(w, 3, 8)
    assert torch.equal(cm.w_hat, dequantize(quantize(w, 3, 8)))


def test_cosine_of_known_vectors() -> None:
    """Orthogonal 0, parallel 1, opposite -1, 45 degrees sqrt(2)/2."""
    a = torch.tensor([1.0, 0.0])
    assert cosine(a, torch.tensor([0.0, 2.0])) == 0.0
    assert cosine(a, torch.tensor([3.0, 0.0])) == pytest.approx(1.0)
    assert cosine(a, torch.tensor([-1.0, 0.0])) == pytest.approx(-1.0)
    assert cosine(a, torch.tensor([1.0, 1.0])) == pytest.approx(math.sqrt(2) / 2)
    assert cosine(torch.zeros(3), torch.zeros(3)) == 1.0


def test_output_cosine_identity_and_known() -> None:
    """Same weights give 1; X = I makes output cos equal to weight cos."""
    w = torch.randn(5, 4, generator=torch.Generator().manual_seed(4))
    w2 = w + 0.1
    x = torch.eye(4)
    assert output_cosine(x, w, w) == pytest.approx(1.0)
    assert output_cosine(x, w, w2) == pytest.approx(cosine(w, w2))


def test_entropy_bits_known() -> None:
    """Uniform over 4 symbols is 2 bits; a constant is 0 bits."""
    assert entropy_bits(np.array([0, 1, 2, 3] * 10)) == pytest.approx(2.0)
    assert entropy_bits(np.zeros(10, dtype=np.int64)) == 0.0


def test_gaussian_bound() -> None:
    """R(c) = 0.5*log2(1/(1-c^2)): 5.66x at 0.99, 10.3x at 0.94, unbounded at c = 0."""
    assert bound_ratio(0.99) == pytest.approx(5.66, abs=0.01)
    assert bound_ratio(0.94) == pytest.approx(10.3, abs=0.05)
    assert bound_bits(math.sqrt(0.75)) == pytest.approx(1.0)
    assert bound_ratio(0.0) is None
    rd = rate_distortion(0.99, 4.0)
    assert rd["within_bound"] and rd["efficiency"] == pytest.approx(4.0 / 5.6618, rel=1e-3)
    assert not rate_distortion(0.99, 6.0)["within_bound"]


def test_summarize_min_mean_and_ratio() -> None:
    """Ratio comes from summed bytes, min/mean from rows."""
    rows = [
        {"params": 100, "bytes_fp16": 200, "bytes_total": 50, "cos": 0.9, "layer_out_cos": 0.8},
        {"params": 300, "bytes_fp16": 600, "bytes_total": 150, "cos": 0.99, "layer_out_cos": 0.95},
    ]
    m = summarize(rows)
    assert m["ratio_fp16_effective"] == 4.0
    assert m["cos_min"] == 0.9
    assert m["cos_mean"] == pytest.approx(0.945)
    assert m["layer_out_cos_min"] == 0.8
    assert m["bits_per_weight"] == 4.0
