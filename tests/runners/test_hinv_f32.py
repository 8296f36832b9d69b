"""Large-matrix H⁻¹ of the hessian runner: float32 H factored in place with LAPACK."""

from __future__ import annotations

import tracemalloc
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from runners import hessian
from runners.gptq import (
    gptq_rows,
    gram_f32,
    hinv_upper_f32,
    hinv_upper_inplace,
    hinv_upper_lean,
    rtn,
)
from runners.measure import cosine
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner


def _inputs(seed: int, tokens: int, n: int) -> torch.Tensor:
    """Correlated inputs (low-rank part + noise), one dead column: an ill-conditioned H."""
    g = torch.Generator().manual_seed(seed)
    latent = torch.randn(tokens, 32, generator=g)
    x = latent @ torch.randn(32, n, generator=g) + 0.1 * torch.randn(tokens, n, generator=g)
    x[:, 7] = 0.0
    return x


def _lean(x: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    def build() -> torch.Tensor:
        x64 = x.to(torch.float64)
        return (x64.T @ x64).mul_(2.0)

    return hinv_upper_lean(build, damp)


def test_float32_factor_close_to_float64_and_gptq_agrees() -> None:
    n = 512
    x = _inputs(0, 2048, n)
    dead64, u64 = _lean(x)
    dead32, u32 = hinv_upper_f32(x, 0.01)
    assert torch.equal(dead32, dead64)
    assert u32.dtype == torch.float32 and u32.is_contiguous()
    assert torch.equal(u32, torch.triu(u32))  # upper factor, strict lower triangle zero
    rel = float((u32.double() - u64.double()).norm() / u64.double().norm())
    assert rel < 1e-3, rel
    g = torch.Generator().manual_seed(1)
    w = torch.randn(256, n, generator=g) * 0.05
    q64 = gptq_rows(w, u64, dead64, 4, 128)
    q32 = gptq_rows(w, u32, dead32, 4, 128)
    same = float((q32.codes == q64.codes).double().mean())
    cos = cosine(q32.weight, q64.weight)
    # A wrong factor (transposed, not inverted, ...) gives codes far from GPTQ's; plain
    # rounding (no error feedback at all) is already outside these bounds:
    r = rtn(w, 4, 128)
    assert float((r.codes == q64.codes).double().mean()) < 0.99
    assert cosine(r.weight, q64.weight) < 0.9999
    assert same > 0.99, same
    assert cos > 0.9999, cos


def test_inplace_factorisation_allocates_no_second_array() -> None:
    n = 1024
    x = _inputs(2, 1536, n)
    h = gram_f32(x)
    assert h.dtype == np.float32 and h.flags.c_contiguous
    h64 = 2.0 * (x.double().T @ x.double())
    assert np.allclose(h, h64.numpy(), rtol=1e-5, atol=1e-3)
    np.einsum("ii->i", h)[7] = 1.0  # the dead column, as hinv_upper_f32 fixes it
    lam = 0.01 * float(np.diagonal(h).astype(np.float64).mean())
    ref = torch.linalg.cholesky(
        torch.cholesky_inverse(
            torch.linalg.cholesky(torch.from_numpy(h).double() + lam * torch.eye(n))
        ),
        upper=True,
    )
    addr = h.ctypes.data
    tracemalloc.start()
    try:
        info = hinv_upper_inplace(h, lam)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info == 0
    assert h.ctypes.data == addr
    # numpy's own allocations (mirroring blocks, index arrays) stay below half of one n×n
    # float32 array (a copy of H or of the factor would be all of it)
    assert peak < 0.5 * n * n * 4, peak
    got = torch.from_numpy(h).double()
    assert float((got - ref).norm() / ref.norm()) < 1e-3


def test_hinv_upper_f32_returns_a_view_of_its_gram_array(monkeypatch: pytest.MonkeyPatch) -> None:
    import runners.gptq

    made: list[np.ndarray] = []
    real = runners.gptq.gram_f32

    def spy(x: torch.Tensor, out: np.ndarray | None = None) -> np.ndarray:
        h = real(x, out)
        made.append(h)
        return h

    monkeypatch.setattr(runners.gptq, "gram_f32", spy)
    _, u = hinv_upper_f32(_inputs(3, 400, 300), 0.01)
    assert len(made) == 1  # no retry needed here
    assert np.shares_memory(u.numpy(), made[0])


def test_scipy_overwrites_fortran_view_in_place() -> None:
    from scipy.linalg import lapack

    a = np.eye(64, dtype=np.float32) * 4.0
    c, info = lapack.spotrf(a.T, lower=1, overwrite_a=1, clean=0)
    assert info == 0 and np.shares_memory(c, a)
    assert np.allclose(a, np.eye(64) * 2.0)


def test_inplace_rejects_arrays_lapack_would_copy() -> None:
    h = np.eye(8, dtype=np.float64)
    with pytest.raises(ValueError, match="float32"):
        hinv_upper_inplace(h, 0.0)
    with pytest.raises(ValueError, match="float32"):
        hinv_upper_inplace(np.asfortranarray(np.eye(8, 9, dtype=np.float32))[:, :8], 0.0)


def test_runner_float32_path_above_threshold(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    g = torch.Generator().manual_seed(0)
    path = tmp_path / "m.safetensors"
    save_file({"a.weight": (torch.randn(96, 256, generator=g) * 0.05).half()}, str(path))
    params = {"bits": 4, "group_size": 64, "matrices": "linear"}
    f64 = run_runner(get_runner("hessian"), ModelSource(path), params)["predicate"]
    monkeypatch.setattr(hessian, "FLOAT32_H_ABOVE", 1000)
    calls: list[int] = []
    real = hessian.hinv_upper_f32

    def spy(x: torch.Tensor, damp: float) -> tuple[torch.Tensor, torch.Tensor]:
        calls.append(int(x.shape[1]))
        return real(x, damp)

    monkeypatch.setattr(hessian, "hinv_upper_f32", spy)
    f32 = run_runner(get_runner("hessian"), ModelSource(path), params)["predicate"]
    assert calls and all(c == 256 for c in calls)
    (a,), (b,) = f64["rows"], f32["rows"]
    assert a["bytes_total"] == b["bytes_total"]
    assert b["cos"] == pytest.approx(a["cos"], abs=1e-5)
    assert b["layer_out_cos"] == pytest.approx(a["layer_out_cos"], abs=1e-5)
    assert "float32" in f32["method"]["factorisation"]
