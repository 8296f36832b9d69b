"""The compression runners on the default causal LM (SmolLM2-135M): perplexity on the held-out
texts before and after, as every compression runner reports its model-level metric (slow)."""

from __future__ import annotations

import math

import pytest

from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement

pytestmark = pytest.mark.slow

#: two MLP matrices of the first block: enough to move perplexity, cheap on 2 cores
FIRST_MLP = r"re:^model\.layers\.0\.mlp\.(up|down)_proj\.weight$"


def test_ecsq_reports_perplexity_before_and_after(smollm2: ModelSource) -> None:
    """One runner on the real model (each run evaluates the 204 texts four times); static,
    ecsq and tcq on a tiny causal LM: test_hessian_causal.py."""
    st = run_runner(get_runner("ecsq"), smollm2, {"target_cos": 0.97, "matrices": FIRST_MLP})
    validate_statement(st)
    pred = st["predicate"]
    m = pred["metrics"]
    assert m["n_matrices"] == 2
    assert 5 < m["ppl_before"] < 1000 and math.isfinite(m["ppl_after"])
    assert m["ppl_ratio"] == pytest.approx(m["ppl_after"] / m["ppl_before"])
    assert m["ppl_after"] != m["ppl_before"]  # the replaced matrices were applied
    assert 0.9 < m["ppl_ratio"] < 3  # two lossy matrices of 210: a small, real change
    assert pred["functional"]["matrices_applied"] == 2
    assert "perplexity" in pred["functional"]["metric"]
    assert "Q4_1" in pred["model"]["reference"]  # the reference is itself a Q4_1 model
