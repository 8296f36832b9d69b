"""report: the snapshot's table from the ledger (md/json), reproductions, and the Pareto SVG."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from evidence_factory import add, example_ledger, statement
from invoke import run

from ledger.api import Ledger
from ledger.evidence import metrics_of, runner_of
from ledger.gate import resolve_policy
from ledger.ratedistortion import bound_ratio
from ledger.report import build_report, to_markdown, write_pareto_svg


def test_gaussian_bound() -> None:
    bound = bound_ratio(0.99)
    assert bound is not None and math.isclose(bound, 5.6626, rel_tol=1e-3)
    bound = bound_ratio(0.94)
    assert bound is not None and math.isclose(bound, 10.31, rel_tol=1e-3)
    assert bound_ratio(0.0) is None and bound_ratio(1.0) is None


@pytest.fixture
def example(ledger: Ledger) -> Ledger:
    return example_ledger(ledger)


def test_report_rows(example: Ledger) -> None:
    entries = list(example.entries())
    [static] = [e for e in entries if runner_of(e) == "static"]
    repro = statement("static", dict(metrics_of(static)))
    repro["predicateType"] = "https://evledger.dev/predicates/reproduction/v1"
    repro["predicate"].update(
        claim={"seq": static.seq, "digest": static.digest, "predicate_type": "x"},
        deltas={},
        verdict="reproduced",
    )
    [r] = add(example, repro, kind="reproduction")
    report = build_report(list(example.entries()), resolve_policy("v37"))
    rows = {row.id: row for row in report.rows}
    assert report.outcome == "NO-GO" and report.tip_seq == r.seq
    assert rows["V38"].reproduced == f"reproduced (seq {r.seq})"
    assert rows["V80"].reproduced == "unreproduced"
    assert rows["TNSEC"].reproduced in ("n/a (legacy)", "unreproduced (legacy)")
    assert (
        rows["FFN_SOTA"].state == "fail"
        and rows["FFN_SOTA"].figures["ratio_fp16_effective"] == 5.65
    )
    # the legacy V43 sample claims 4.0x at cos_min 0.999954: above the Gaussian bound (~2.39x)
    assert rows["V43"].bound_ratio is not None and round(rows["V43"].bound_ratio, 2) == 2.39
    assert rows["V43"].above_bound is True and rows["V38"].above_bound is False
    assert rows["V43"].physics in ("", "needs-reproduction")
    assert len(report.points) == 5  # v43 legacy + static, pareto, hessian, pq


def test_report_markdown(example: Ledger) -> None:
    report = build_report(list(example.entries()), resolve_policy("v37"))
    md = to_markdown(report, plot="r.pareto.svg")
    assert md.startswith("## Results (policy `v37`: **NO-GO**)")
    assert (
        "| claim | what | required | gate | best evidence | Gaussian ref | data bound "
        "| reproduced | entry |" in md
    )
    assert "| FFN_SOTA | FFN 16x at cosine >= 0.99 | yes | **FAIL** |" in md
    assert "**NO-GO**: FFN_SOTA fail (ratio_fp16_effective = 5.65 (needs >= 16))" in md
    assert "![ratio vs cos_min" in md and "(r.pareto.svg)" in md


def test_pareto_svg(example: Ledger, tmp_path: Path) -> None:
    report = build_report(list(example.entries()), resolve_policy("v37"))
    out = write_pareto_svg(report.points, tmp_path / "p.svg")
    text = out.read_text()
    assert text.lstrip().startswith("<?xml") and "<svg" in text
    write_pareto_svg([], tmp_path / "empty.svg")


def test_cli_report_json_and_md(example: Ledger) -> None:
    code, out, err = run(["--ledger", str(example.root), "report", "--json"])
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["policy"] == "v37" and doc["outcome"] == "NO-GO"
    assert doc["rows"][0]["id"] == "V80"
    assert all(set(r) >= {"figures", "state", "digest", "reproduced"} for r in doc["rows"])
    code, out, _ = run(["--ledger", str(example.root), "report"])
    assert code == 0 and out.startswith("## Results")


def test_cli_report_output_files(example: Ledger, tmp_path: Path) -> None:
    target = tmp_path / "out" / "RESULTS.md"
    target.parent.mkdir()
    code, out, _ = run(["--ledger", str(example.root), "report", "-o", str(target)])
    assert code == 0 and out == ""
    assert "(RESULTS.pareto.svg)" in target.read_text()
    assert (target.parent / "RESULTS.pareto.svg").read_text().count("<svg") == 1
    assert sorted(p.name for p in target.parent.iterdir()) == ["RESULTS.md", "RESULTS.pareto.svg"]
    jtarget = tmp_path / "out" / "r.json"
    code, _, _ = run(["--ledger", str(example.root), "report", "--json", "-o", str(jtarget)])
    assert code == 0 and json.loads(jtarget.read_text())["policy"] == "v37"


def test_cli_report_bad_input(example: Ledger, tmp_path: Path) -> None:
    for args in (
        ["--json", "--md"],
        ["-o", str(tmp_path / "missing" / "r.md")],
        ["--policy", "nope"],
    ):
        code, out, err = run(["--ledger", str(example.root), "report", *args])
        assert code == 2, args
        assert out == "" and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "missing").exists()


def test_report_without_audit_module(example: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ledger.audit", None)  # import now raises ImportError
    report = build_report(list(example.entries()), resolve_policy("v37"))
    rows = {row.id: row for row in report.rows}
    assert rows["V80"].reproduced == "unreproduced" and rows["V80"].physics == ""
    assert rows["TNSEC"].reproduced == "n/a (legacy)"
    assert any("ledger.audit unavailable" in n for n in report.notes)


def test_a_recorded_data_bound_is_shown_beside_the_gaussian_reference(ledger: Ledger) -> None:
    """A claim above the Gaussian reference (6.2x at cos 0.99 > 5.66x) within the bound its own
    weights allow (16 / (2.5 - 0.03) = 6.48x) shows that bound, marked within."""
    st = statement("pareto", {"ratio_fp16_effective": 6.2, "cos_min": 0.99, "cos_mean": 0.995})
    st["predicate"]["rate_distortion"] = {
        "model": "gaussian-reference",
        "data_bound": {"bits_per_weight": 2.5, "error_bits": 0.03},
    }
    add(ledger, st)
    report = build_report(list(ledger.entries()), resolve_policy("v37"))
    row = next(r for r in report.rows if r.id == "FFN_SOTA")
    assert row.data_bound_ratio == pytest.approx(16 / 2.47)
    assert row.physics == "within-data-bound" and row.above_bound
    line = next(x for x in to_markdown(report).splitlines() if x.startswith("| FFN_SOTA "))
    assert "| 5.66x (above) | 6.48x (within) |" in line
    _, out, _ = run(["--ledger", str(ledger.root), "report", "--json"])
    [shown] = [r for r in json.loads(out)["rows"] if r["id"] == "FFN_SOTA"]
    assert (shown["data_bound_bits"], shown["data_bound_error_bits"]) == (2.5, 0.03)
