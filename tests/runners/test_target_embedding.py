"""target_embedding_cos: the ecsq/tcq weight-cos target searched to a model-level target."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_functional import make_tiny_bert

from ledger.errors import UsageError
from runners.base import no_progress, resolve_params
from runners.ecsq import RUNNER as ECSQ
from runners.model import ModelSource
from runners.statement import measure_once, run_runner, validate_statement
from runners.tcq import RUNNER as TCQ


@pytest.fixture(scope="module")
def bert(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_bert(tmp_path_factory.mktemp("bert") / "bert")


def _once(runner, model: ModelSource, params: dict) -> dict:
    m = measure_once(runner, model, resolve_params(runner, params), no_progress, 2, 0)
    return {"metrics": m.metrics, "rows": m.rows, "digest": m.reconstruction_digest, **m.extra}


def test_unset_is_the_fixed_per_matrix_target(bert: Path) -> None:
    model = ModelSource(bert)
    plain = _once(ECSQ, model, {"target_cos": 0.95})
    off = _once(ECSQ, model, {"target_cos": 0.95, "target_embedding_cos": 0.0})
    assert plain["digest"] == off["digest"] and plain["metrics"] == off["metrics"]
    assert plain["metrics"]["target_cos"] == 0.95
    assert not any(k.endswith("_calib") for k in plain["metrics"])
    assert "target_search" not in plain["method"]
    assert all("target_cos" not in r for r in plain["rows"])


@pytest.mark.parametrize("runner", [ECSQ, TCQ], ids=["ecsq", "tcq"])
def test_search_meets_the_in_sample_target_and_reports_held_out(runner, bert: Path) -> None:
    st = run_runner(runner, ModelSource(bert), {"target_embedding_cos": 0.99})
    validate_statement(st)
    pred = st["predicate"]
    m = pred["metrics"]
    assert m["target_embedding_cos"] == 0.99
    assert m["embedding_cos_min_calib"] >= 0.99  # in-sample: the calibration texts
    assert m["embedding_cos_min_calib"] <= m["embedding_cos_mean_calib"]
    assert 0.0 < m["embedding_cos_min"] <= m["embedding_cos_mean"] < 1.0  # held-out
    search = pred["method"]["target_search"]
    assert search["steps"] and m["target_search_steps"] == len(search["steps"])
    assert search["searched_target_cos"] == m["target_cos"]
    assert search["embedding_cos_min_calib"] == m["embedding_cos_min_calib"]
    assert all(r["target_cos"] == pytest.approx(m["target_cos"]) for r in pred["rows"])
    assert all(r["cos"] >= r["target_cos"] for r in pred["rows"])
    names = {s["name"] for s in st["subject"]}
    assert {"calibration-texts", "evaluation-texts"} <= names
    assert pred["determinism"]["digests_equal"] and m["determinism_delta"] == 0
    if runner is ECSQ:  # its search steps plan the very codes encoded: no second try
        assert m["target_search_corrections"] == 0
        assert m["embedding_cos_min_calib"] in [
            s["embedding_cos_min_calib"] for s in search["steps"]
        ]


def test_a_higher_target_never_gives_a_higher_ratio(bert: Path) -> None:
    model = ModelSource(bert)
    ratios, calib = [], []
    for goal in (0.95, 0.98, 0.995):
        got = _once(ECSQ, model, {"target_embedding_cos": goal})
        ratios.append(got["metrics"]["ratio_fp16_effective"])
        calib.append(got["metrics"]["embedding_cos_min_calib"])
        assert calib[-1] >= goal
    assert ratios == sorted(ratios, reverse=True)


def test_feedback_and_slope_allocation_meet_the_target(bert: Path) -> None:
    model = ModelSource(bert)
    fb = _once(ECSQ, model, {"target_embedding_cos": 0.99, "feedback": "gptq"})
    assert fb["metrics"]["embedding_cos_min_calib"] >= 0.99
    assert "feedback" in fb["method"]
    # GPTQ is fitted to the calibration texts: plain rounding on its grid stands in for it
    assert "stands in for GPTQ" in fb["method"]["target_search"]["proxy"]
    slope = _once(ECSQ, model, {"target_embedding_cos": 0.99, "allocation": "slope"})
    assert slope["metrics"]["embedding_cos_min_calib"] >= 0.99
    search = slope["method"]["target_search"]
    assert search["allocation"] == "slope" and len(search["sensitivity"]) == len(slope["rows"])
    targets = {round(r["target_cos"], 12) for r in slope["rows"]}
    assert len(targets) > 1  # per-matrix targets
    m = slope["metrics"]
    assert m["target_cos_min"] == min(r["target_cos"] for r in slope["rows"]) < m["target_cos_max"]


@pytest.mark.parametrize("runner", [ECSQ, TCQ], ids=["ecsq", "tcq"])
def test_refused_without_an_embedding_model(runner, tiny_model: Path, tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="param target_embedding_cos") as bare:
        run_runner(runner, ModelSource(tiny_model), {"target_embedding_cos": 0.99})
    assert "\n" not in str(bare.value)
    lm = tmp_path / "lm"
    lm.mkdir()
    shutil.copy(tiny_model, lm / "model.safetensors")
    (lm / "config.json").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (lm / "tokenizer.json").write_text("{}")
    with pytest.raises(UsageError, match=r"param target_embedding_cos.*perplexity"):
        run_runner(runner, ModelSource(lm), {"target_embedding_cos": 0.99})


@pytest.mark.slow
def test_default_model_meets_the_in_sample_target() -> None:
    st = run_runner(ECSQ, ModelSource(), {"target_embedding_cos": 0.985})
    validate_statement(st)
    m = st["predicate"]["metrics"]
    assert m["embedding_cos_min_calib"] >= 0.985
    assert m["n_matrices"] == 37 and m["ratio_fp16_effective"] > 3.0
    assert "embedding_cos_min" in m  # held-out, reported beside the in-sample figure
