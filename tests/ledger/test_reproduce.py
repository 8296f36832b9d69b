"""reproduce: a deterministic re-run on the same file gives zero deltas; changes diverge."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import save_file

import schemas
from evledger.rerun import RunnerRerunner
from ledger.api import Ledger, Prepared
from ledger.errors import InputError, UsageError
from ledger.reproduce import (
    Tolerance,
    compare_metrics,
    parse_tolerance,
    reproduce,
    tolerance_for,
)
from ledger.statement import Reproduction as ReproductionPredicate
from runners.model import ModelSource
from runners.registry import get_runner
from runners.statement import run_runner

PARAMS = {"bits": 4, "group_size": 16, "calibration": "gaussian", "calib_samples": 8}


def tiny_model(path: Path, seed: int = 1) -> Path:
    """A real two-matrix .safetensors file."""
    gen = torch.Generator().manual_seed(seed)
    save_file(
        {
            "layer.0.dense.weight": torch.randn(32, 64, generator=gen),
            "layer.1.dense.weight": torch.randn(16, 32, generator=gen),
        },
        str(path),
    )
    return path


def static_claim(model: Path) -> dict[str, Any]:
    """A real static-runner statement on `model` (as plain JSON types)."""
    statement = run_runner(get_runner("static"), ModelSource(model), PARAMS)
    return json.loads(json.dumps(statement))


def append_claim(ledger: Ledger, statement: dict[str, Any]) -> int:
    """Append runner evidence (through the schema if one ships for the runner)."""
    if schemas.predicate_schema_path(statement["predicateType"]):
        [entry] = ledger.append([statement], key_name="alice")
    else:
        [entry] = ledger.append_prepared(
            [Prepared(statement, "evidence", "test")], key_name="alice"
        )
    return entry.seq


@pytest.fixture
def model(tmp_path: Path) -> Path:
    """A tiny real model file."""
    return tiny_model(tmp_path / "tiny.safetensors")


def test_same_machine_reproduction_has_zero_deltas(ledger: Ledger, model: Path) -> None:
    seq = append_claim(ledger, static_claim(model))
    result = reproduce(
        ledger, str(seq), rerunner=RunnerRerunner(), model_path=model, key_name="alice"
    )
    assert result.verdict == "reproduced"
    assert result.deltas and all(d["delta"] == 0 for d in result.deltas.values())
    assert result.entry.kind == "reproduction"
    pred = result.entry.predicate
    assert isinstance(pred, ReproductionPredicate) and pred.claim is not None
    assert pred.claim.seq == seq
    assert pred.claim.digest == ledger.resolve(str(seq)).digest
    assert result.entry.subjects == ledger.resolve(str(seq)).subjects
    assert not [p for p in ledger.verify().problems if p.seq == result.entry.seq]


def test_changed_parameter_diverges(ledger: Ledger, model: Path) -> None:
    seq = append_claim(ledger, static_claim(model))
    result = reproduce(
        ledger,
        str(seq),
        rerunner=RunnerRerunner(),
        model_path=model,
        params={"bits": 3},
        key_name="alice",
    )
    assert result.verdict == "diverged"
    assert result.param_changes == {"bits": {"claim": 4, "reproduced": 3}}
    assert not result.deltas["ratio_fp16_effective"]["ok"]


def test_doctored_metric_diverges(ledger: Ledger, model: Path) -> None:
    statement = copy.deepcopy(static_claim(model))
    statement["predicate"]["metrics"]["cos_min"] += 0.001
    seq = append_claim(ledger, statement)
    result = reproduce(
        ledger, str(seq), rerunner=RunnerRerunner(), model_path=model, key_name="alice"
    )
    assert result.verdict == "diverged"
    bad = {k for k, d in result.deltas.items() if not d["ok"]}
    assert bad == {"cos_min"}
    assert result.deltas["cos_min"]["delta"] == pytest.approx(-0.001)


def test_tolerance_absorbs_a_small_doctoring(ledger: Ledger, model: Path) -> None:
    statement = copy.deepcopy(static_claim(model))
    statement["predicate"]["metrics"]["cos_min"] += 1e-6
    seq = append_claim(ledger, statement)
    result = reproduce(
        ledger,
        str(seq),
        rerunner=RunnerRerunner(),
        model_path=model,
        tolerances={"cos_min": Tolerance(abs=1e-5)},
        key_name="alice",
    )
    assert result.verdict == "reproduced"
    assert result.deltas["cos_min"]["tolerance"] == 1e-5


def test_other_model_file_is_refused(ledger: Ledger, model: Path, tmp_path: Path) -> None:
    seq = append_claim(ledger, static_claim(model))
    other = tiny_model(tmp_path / "other.safetensors", seed=2)
    before = ledger.tip()
    with pytest.raises(InputError, match="not a subject of the claim"):
        reproduce(ledger, str(seq), rerunner=RunnerRerunner(), model_path=other, key_name="alice")
    assert ledger.tip() == before


def test_legacy_evidence_cannot_be_rerun(filled: Ledger) -> None:
    with pytest.raises(UsageError, match="not runner evidence"):
        reproduce(filled, "1", rerunner=RunnerRerunner(), key_name="alice")


def test_tolerance_table_and_parsing() -> None:
    assert tolerance_for("cos_min") == Tolerance()
    assert tolerance_for("peak_rss_mb").allowed(1000.0) == pytest.approx(100.0)
    assert tolerance_for("wall_time_s").rel > 0
    assert parse_tolerance("cos_min=0.001") == ("cos_min", Tolerance(abs=0.001))
    assert parse_tolerance("peak_rss_mb=5%") == ("peak_rss_mb", Tolerance(rel=0.05))
    for bad in ("cos_min", "=1", "x=abc", "x=-1", "x=nan"):
        with pytest.raises(UsageError):
            parse_tolerance(bad)


def test_compare_metrics_handles_bools_strings_and_missing() -> None:
    out = compare_metrics(
        {"ok": True, "n": "12345678901234567", "gone": 1.0, "rss_mb": 100.0},
        {"ok": True, "n": "12345678901234567", "rss_mb": 105.0},
    )
    assert out["ok"]["ok"] and out["n"]["ok"] and out["rss_mb"]["ok"]
    assert not out["gone"]["ok"] and out["gone"]["reproduced"] is None
