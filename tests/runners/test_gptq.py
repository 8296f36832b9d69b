"""GPTQ error feedback vs plain round-to-nearest on random problems with a known H."""

from __future__ import annotations

import pytest
import torch

from runners.gptq import gptq, minmax_grid, output_error, rtn


def _problem(seed: int, n: int = 384, d: int = 192, o: int = 96) -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(n, 24, generator=g)
    x = latent @ torch.randn(24, d, generator=g) + 0.1 * torch.randn(n, d, generator=g)
    w = torch.randn(o, d, generator=g)
    h = 2.0 * x.double().T @ x.double()
    return x, w, h


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize(("bits", "group_size"), [(4, 64), (3, 32), (2, 64), (8, 0), (4, 48)])
def test_gptq_never_worse_than_rtn(seed: int, bits: int, group_size: int) -> None:
    x, w, h = _problem(seed)
    q = gptq(w, h, bits, group_size)
    r = rtn(w, bits, group_size)
    assert output_error(x, w, q.weight) <= output_error(x, w, r.weight)


def test_gptq_codes_match_reconstruction() -> None:
    _, w, h = _problem(7)
    q = gptq(w, h, 4, 64)
    assert q.codes.dtype == torch.uint8
    assert int(q.codes.max()) <= 15
    assert q.scale.shape == (96, 3) and q.zero.shape == (96, 3)
    se = q.scale.repeat_interleave(64, 1)
    ze = q.zero.repeat_interleave(64, 1)
    assert torch.equal(q.codes.float() * se + ze, q.weight)
    # scales are exactly representable in fp16 (stored as fp16)
    assert torch.equal(q.scale.half().float(), q.scale)


def test_gptq_deterministic() -> None:
    _, w, h = _problem(3)
    a = gptq(w, h, 4, 64)
    b = gptq(w, h, 4, 64)
    assert torch.equal(a.codes, b.codes) and torch.equal(a.weight, b.weight)


def test_rtn_error_bound() -> None:
    g = torch.Generator().manual_seed(0)
    w = torch.randn(16, 128, generator=g)
    r = rtn(w, 8, 32)
    se = r.scale.repeat_interleave(32, 1)
    assert torch.all((w - r.weight).abs() <= se / 2 + 1e-6)


def test_dead_columns_and_shape_check() -> None:
    _, w, h = _problem(1)
    h[5, :] = 0
    h[:, 5] = 0
    q = gptq(w, h, 4, 64)
    assert torch.isfinite(q.weight).all()
    with pytest.raises(ValueError, match="shape"):
        gptq(w, h[:10, :10], 4, 64)


def test_minmax_grid_offset_convention() -> None:
    s, z = minmax_grid(torch.tensor([[1.0, 2.0, 4.0]]), 2)
    assert float(z[0, 0]) == 1.0 and float(s[0, 0]) == 1.0
    s, z = minmax_grid(torch.tensor([[0.5, 0.5]]), 4)
    assert float(s[0, 0]) == 0.0
    r = rtn(torch.tensor([[0.5, 0.5]]), 4, 0)
    assert torch.equal(r.weight, torch.tensor([[0.5, 0.5]]))


def test_rtn_matches_shared_quantizer() -> None:
    from runners.measure import dequantize, quantize

    g = torch.Generator().manual_seed(5)
    w = torch.randn(24, 256, generator=g)
    for bits, gs in [(4, 64), (3, 128), (8, 32)]:
        ours = rtn(w, bits, gs)
        theirs = quantize(w, bits, gs)
        assert torch.equal(ours.codes.reshape(-1), torch.from_numpy(theirs.codes))
        assert torch.equal(ours.weight, dequantize(theirs))
