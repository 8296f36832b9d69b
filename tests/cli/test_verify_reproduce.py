"""`evledger verify --reproduce`: every runner claim re-run here, nothing appended."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import run
from test_reproduce import append_claim, static_claim, tiny_model

from ledger.api import Ledger


def test_reproduce_flag_passes_for_honest_claims(ledger: Ledger, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors")
    append_claim(ledger, static_claim(model))
    tip = ledger.tip()
    at = ["--ledger", str(ledger.root), "verify", "--reproduce", "--json"]
    code, out, _ = run([*at, "--model", str(model)])
    report = json.loads(out)
    assert code == 0 and report["ok"], report["problems"]
    assert report["reproduced"] == {"claims": 1, "rerun": 1, "skipped": []}
    assert ledger.tip() == tip  # nothing appended


def test_doctored_claim_is_not_reproduced(ledger: Ledger, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors")
    honest = append_claim(ledger, static_claim(model))
    doctored = static_claim(model)
    doctored["predicate"]["metrics"]["cos_min"] += 0.001  # validly signed, but not true
    bad = append_claim(ledger, doctored)
    code, out, _ = run(
        ["--ledger", str(ledger.root), "verify", "--reproduce", "--model", str(model), "--json"]
    )
    problems = json.loads(out)["problems"]
    assert code == 1
    assert [(p["seq"], p["code"]) for p in problems] == [(bad, "not-reproduced")]
    assert "cos_min" in problems[0]["message"] and honest != bad


def test_claim_without_its_model_is_skipped(ledger: Ledger, tmp_path: Path) -> None:
    seq = append_claim(ledger, static_claim(tiny_model(tmp_path / "m.safetensors")))
    code, out, _ = run(["--ledger", str(ledger.root), "verify", "--reproduce", "--json"])
    report = json.loads(out)
    assert code == 0 and report["problems"] == []  # not checked is not failed ...
    [skip] = report["reproduced"]["skipped"]  # ... but it is said
    assert skip["seq"] == seq and "--model" in skip["reason"]
    assert report["reproduced"]["rerun"] == 0


def test_claim_from_another_runner_version_is_skipped(ledger: Ledger, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors")
    old = static_claim(model)
    old["predicate"]["runner"]["version"] = "0.9.0"
    seq = append_claim(ledger, old)
    code, out, _ = run(
        ["--ledger", str(ledger.root), "verify", "--reproduce", "--model", str(model), "--json"]
    )
    report = json.loads(out)
    [skip] = report["reproduced"]["skipped"]
    assert code == 0 and skip["seq"] == seq and "static 0.9.0" in skip["reason"]
