"""diff_entries: params, metrics with direction, rows by matrix name, environment, subjects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from evidence_factory import add, statement
from invoke import run
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger
from ledger.diff import diff_entries, fmt_value, table_rows
from ledger.evidence import runner_of

ROWS_A = [
    {"name": "l0.ffn", "cos": 0.98, "bytes_total": 100},
    {"name": "l1.ffn", "cos": 0.97, "bytes_total": 100},
]
ROWS_B = [
    {"name": "l0.ffn", "cos": 0.99, "bytes_total": 120},
    {"name": "l1.ffn", "cos": 0.97, "bytes_total": 100},
    {"name": "l2.ffn", "cos": 0.9, "bytes_total": 50},
]


@pytest.fixture
def pair(ledger: Ledger) -> Ledger:
    add(
        ledger,
        statement(
            "static",
            {
                "cos_min": 0.97,
                "ratio_fp16_effective": 4.0,
                "peak_rss_mb": 500.0,
                "n_matrices": 2,
                "go": False,
            },
            params={"bits": 4, "group_size": 64},
            rows=ROWS_A,
            environment={"python": "3.11.9", "torch": "2.4.0", "seeds": {"torch": 0}},
        ),
        statement(
            "static",
            {
                "cos_min": 0.97,
                "ratio_fp16_effective": 5.0,
                "peak_rss_mb": 600.0,
                "n_matrices": 3,
                "go": True,
            },
            params={"bits": 3, "group_size": 64},
            rows=ROWS_B,
            environment={"python": "3.12.1", "torch": "2.4.0", "seeds": {"torch": 0}},
            subject=("model.safetensors", "cd" * 32),
        ),
    )
    return ledger


def test_diff_entries(pair: Ledger) -> None:
    d = diff_entries(pair.resolve("1"), pair.resolve("2"))
    assert d.a.seq == 1 and d.b.seq == 2 and d.changed
    metrics = {c.key: c for c in d.section("metrics")}
    assert set(metrics) == {"ratio_fp16_effective", "peak_rss_mb", "n_matrices", "go"}
    ratio = metrics["ratio_fp16_effective"]
    assert ratio.delta == 1.0 and ratio.pct == 25.0 and ratio.verdict == "better"
    assert metrics["peak_rss_mb"].verdict == "worse"
    assert metrics["n_matrices"].verdict == "" and metrics["go"].verdict == "better"
    assert {c.key for c in d.section("metrics", include_all=True)} >= {"cos_min"}
    assert [(c.key, c.old, c.new) for c in d.section("params")] == [("bits", 4, 3)]
    assert [c.key for c in d.section("environment")] == ["python"]
    assert [c.key for c in d.section("environment", include_all=True)] == [
        "python",
        "seeds.torch",
        "torch",
    ]
    [subj] = d.section("subjects")
    assert subj.old == "sha256:" + "ab" * 32 and subj.new == "sha256:" + "cd" * 32
    rows = {r.name: r for r in d.row_diffs()}
    assert set(rows) == {"l0.ffn", "l2.ffn"} and rows["l2.ffn"].status == "added"
    l0 = {c.key: c for c in rows["l0.ffn"].changes}
    assert l0["cos"].verdict == "better" and l0["bytes_total"].verdict == "worse"
    assert len(d.row_diffs(include_all=True)) == 3


def test_same_entry_has_no_changes(pair: Ledger) -> None:
    e = pair.resolve("1")
    d = diff_entries(e, e)
    assert not d.changed and table_rows(d) == []
    assert len(table_rows(d, include_all=True)) > 5


def test_legacy_vs_runner_notes(ledger: Ledger) -> None:
    [v43] = [
        e
        for e in ledger.append_files(LEGACY_SAMPLES, key_name="alice")
        if runner_of(e) == "evidence.v43.v1"
    ]
    [st] = add(ledger, statement("proxy", {"cos_min": 0.99, "ratio_fp16_effective": 4.0}))
    d = diff_entries(v43, st)
    assert any("different runners" in n for n in d.notes)
    [cos] = [c for c in d.section("metrics") if c.key == "cos_min"]
    assert cos.old == 0.999954 and cos.verdict == "worse"


def test_fmt_value_precision() -> None:
    assert fmt_value(0.123456789, 3) == "0.123" and fmt_value(2.0, 5) == "2"
    assert fmt_value(True) == "true" and fmt_value(None) == "-"


def test_cli_diff_only_changed_vs_all(pair: Ledger) -> None:
    base = ["--ledger", str(pair.root), "diff"]
    code, out, err = run([*base, "1", "2"])
    assert code == 0 and err == ""
    assert "ratio_fp16_effective" in out and "cos_min " not in out
    assert "+25.00%" in out and "better" in out
    code, out, _ = run([*base, "1", "static@latest", "--all"])
    assert code == 0 and "cos_min " in out


def test_cli_diff_json_shape(pair: Ledger) -> None:
    code, out, _ = run(["--ledger", str(pair.root), "diff", "1", "latest", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert set(doc) >= {"a", "b", "params", "metrics", "rows", "environment", "subjects"}
    assert doc["metrics"]["ratio_fp16_effective"] == {
        "old": 4.0,
        "new": 5.0,
        "diff": 1.0,
        "pct": 25.0,
        "status": "changed",
        "verdict": "better",
    }
    assert "cos_min" not in doc["metrics"]
    assert doc["rows"]["l2.ffn"]["status"] == "added"
    assert doc["a"]["seq"] == 1 and doc["b"]["digest"].startswith("sha256:")
    code, out, _ = run(["--ledger", str(pair.root), "diff", "1", "2", "--json", "--all"])
    assert "cos_min" in json.loads(out)["metrics"]


def test_cli_diff_md_and_precision(pair: Ledger) -> None:
    code, out, _ = run(["--ledger", str(pair.root), "diff", "1", "2", "--md", "--precision", "1"])
    assert code == 0
    assert "| section | key | old | new | Δ | Δ% | verdict |" in out
    assert "| metrics | ratio_fp16_effective | 4 | 5 | +1 | +25.0% | better |" in out
    assert "| rows | l0.ffn.cos | 1 | 1 | +0 |" not in out
    assert "| rows | l0.ffn.cos | 1 | 1 |" in out  # 0.98 -> 0.99 at one decimal


def test_cli_diff_bad_input(pair: Ledger, tmp_path: Path) -> None:
    base = ["--ledger", str(pair.root), "diff"]
    for args in (
        ["1"],
        ["1", "99"],
        ["1", "2", "--json", "--md"],
        ["--rev", "HEAD"],
        ["1", "2", "--rev", "HEAD~1..HEAD"],
        ["--rev", "nope..HEAD"],
    ):
        code, out, err = run([*base, *args])
        assert code == 2, args
        assert out == "" and len(err.strip().splitlines()) == 1, (args, err)


def test_cli_diff_rev_gate_changes(ledger: Ledger) -> None:
    before = ledger.store.resolve()
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    code, out, _ = run(["--ledger", str(ledger.root), "diff", "--rev", f"{before}..HEAD", "--json"])
    assert code == 0
    doc = json.loads(out)
    assert doc["a"]["outcome"] == "NO-GO" and doc["b"]["entries"] == 2
    changes = {c["id"]: (c["old"], c["new"]) for c in doc["changes"]}
    assert changes == {"TNSEC": ("missing", "pass"), "V43": ("missing", "fail")}
    code, out, _ = run(["--ledger", str(ledger.root), "diff", "--rev", "HEAD~1..HEAD"])
    lines = out.splitlines()
    assert code == 0 and lines[0].startswith("HEAD~1: trust: ledger genesis (unpinned)")
    assert lines[2].startswith("gate v37: NO-GO -> NO-GO") and "TNSEC" in out
