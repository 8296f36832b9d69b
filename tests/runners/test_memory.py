"""memory runner and the synthetic safetensors writer, on small files made in the test."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

from runners import synthetic
from runners.memory import RUNNER, read_header, run_child
from runners.model import ModelSource
from runners.statement import run_runner, validate_statement


def test_synthetic_round_trip(tmp_path: Path) -> None:
    out = tmp_path / "s.safetensors"
    gb = 4 * 128 * 128 * 2 / synthetic.GIB  # exactly four 128x128 fp16 tensors
    synthetic.write(out, gb, dim=128, seed=3)
    assert out.stat().st_size == synthetic.expected_size(gb, 128, 3)
    (n,) = struct.unpack("<Q", out.read_bytes()[:8])
    assert n % 8 == 0
    assert out.stat().st_size == 8 + n + 4 * 128 * 128 * 2
    assert synthetic.verify(out) == 4
    with safe_open(str(out), framework="pt") as f:
        assert list(f.keys()) == [f"layers.{i}.weight" for i in range(4)]
        assert f.metadata()["seed"] == "3"
        t = f.get_tensor("layers.2.weight")
    assert t.dtype == torch.float16 and t.shape == (128, 128)
    assert np.array_equal(t.numpy(), synthetic._tensor(2, 128, 3))
    assert 0.05 < float(t.float().std()) < 0.12  # N(0, 1/128)
    again = tmp_path / "t.safetensors"
    synthetic.main([str(again), "--gb", repr(gb), "--dim", "128", "--seed", "3"])
    assert again.read_bytes() == out.read_bytes()
    assert not list(tmp_path.glob("*.part"))


def test_synthetic_cached_reuses(tmp_path: Path) -> None:
    gb = 2 * 64 * 64 * 2 / synthetic.GIB
    a = synthetic.cached(gb, dim=64, cache_dir=tmp_path)
    mtime = a.stat().st_mtime_ns
    b = synthetic.cached(gb, dim=64, cache_dir=tmp_path)
    assert a == b and b.stat().st_mtime_ns == mtime


def _model(path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    save_file(
        {
            "embed.weight": torch.randn(500, 64, generator=g),
            "layers.0.weight": torch.randn(128, 64, generator=g) * 0.1,
            "layers.0.bias": torch.randn(128, generator=g),
            "layers.1.weight": (torch.randn(64, 128, generator=g) * 0.1).to(torch.bfloat16),
            "layers.2.weight": (torch.randn(32, 64, generator=g) * 0.1).to(torch.float16),
            "position_ids": torch.arange(64).reshape(1, 64),
        },
        str(path),
    )
    return path


def test_memory_runner_on_small_file(tmp_path: Path) -> None:
    path = _model(tmp_path / "m.safetensors")
    st = run_runner(RUNNER, ModelSource(path), {}, repeat=2)
    validate_statement(st)
    json.dumps(st, allow_nan=False)
    pred = st["predicate"]
    m = pred["metrics"]
    assert m["peak_rss_mb"] > 0 and pred["cross_check"]["peak_rss_polled_mb"] > 0
    assert "peak_rss_polled_mb" not in m  # polling noise must not count as non-determinism
    assert m["peak_rss_pass"] is True
    assert m["bytes_model"] == path.stat().st_size
    assert m["model_mb"] == pytest.approx(path.stat().st_size / 2**20, abs=1e-3)
    start, header = read_header(path)
    data = sum(
        v["data_offsets"][1] - v["data_offsets"][0]
        for k, v in header.items()
        if k != "__metadata__"
    )
    assert m["bytes_streamed"] == data == path.stat().st_size - start
    assert m["tensors"] == 6 and m["tensors_used"] == 5  # int64 position_ids only read
    assert m["outputs_finite"] is True
    assert pred["determinism"]["digests_equal"]
    assert pred["source"] == {"kind": "model", "files": ["m.safetensors"]}
    assert {r["name"] for r in pred["rows"]} == set(header) - {"__metadata__"}
    offsets = [header[r["name"]]["data_offsets"][0] for r in pred["rows"]]
    assert offsets == sorted(offsets)  # streamed in file order


def test_memory_synthetic_param(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLEDGER_CACHE", str(tmp_path))
    model = ModelSource(_model(tmp_path / "m.safetensors"))
    st = run_runner(RUNNER, model, {"synthetic_gb": 1 / 64}, repeat=2)  # one 32 MiB tensor
    validate_statement(st)
    pred = st["predicate"]
    assert pred["source"]["kind"] == "synthetic"
    syn = next(tmp_path.glob("evledger-synthetic/*.safetensors"))
    assert pred["metrics"]["bytes_model"] == syn.stat().st_size
    assert st["subject"][-1]["name"] == syn.name
    assert pred["metrics"]["tensors"] == 1


def test_child_peak_not_inherited_from_parent(tmp_path: Path) -> None:
    """A big parent must not inflate the child's peak (ru_maxrss survives exec on Linux)."""
    path = _model(tmp_path / "m.safetensors")
    ballast = bytearray(b"\x01") * (400 * 2**20)
    rep = run_child([path])
    assert len(ballast) > 0
    assert rep["peak_rss_mb"] < 300


@pytest.mark.slow
def test_memory_two_gib_under_one_gib(tmp_path: Path) -> None:
    st = run_runner(RUNNER, ModelSource(), {"synthetic_gb": 2.0}, repeat=2)
    m = st["predicate"]["metrics"]
    assert m["bytes_model"] > 2 * 2**30
    assert m["peak_rss_mb"] < 1024 and m["peak_rss_pass"]
    assert st["predicate"]["determinism"]["digests_equal"]


def test_rss_spread_is_physical_not_nondeterminism(tmp_path: Path) -> None:
    """Peak RSS varies run to run; that spread is reported apart, and delta stays 0."""
    path = _model(tmp_path / "m.safetensors")
    det = run_runner(RUNNER, ModelSource(path), {}, repeat=2)["predicate"]["determinism"]
    assert det["delta"] == 0.0 and det["digests_equal"]
    assert set(det["physical_spread"]) == {"peak_rss_mb", "baseline_rss_mb", "rss_to_model_ratio"}
    assert not set(det["deltas"]) & set(det["physical_spread"])
