"""`evledger runners` and `evledger run` through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from evledger.cli import cli, main


def test_runners_json_lists_params() -> None:
    """--json gives every runner with params and defaults."""
    res = CliRunner().invoke(cli, ["runners", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.output)
    by_name = {r["name"]: r for r in doc["runners"]}
    assert {"static", "pareto", "pq", "proxy", "entropy"} <= set(by_name)
    static = {p["name"]: p for p in by_name["static"]["params"]}
    assert static["bits"]["default"] == 4 and static["rank"]["type"] == "int"
    assert {p["name"] for p in by_name["pq"]["params"]} >= {"subvector_dim", "codebook_size"}


def test_run_dry_run_prints_statement(tiny_model: Path) -> None:
    """--dry-run prints a valid statement and needs no ledger."""
    res = CliRunner().invoke(
        cli,
        ["run", "static", "--model", str(tiny_model), "--param", "bits=8", "--dry-run", "--json"],
    )
    assert res.exit_code == 0, res.output
    st = json.loads(res.output)
    assert st["predicate"]["params"]["bits"] == 8
    assert st["predicate"]["determinism"]["delta"] == 0


@pytest.mark.parametrize(
    "args",
    [
        ["run", "static", "--param", "bits=99", "--dry-run"],
        ["run", "static", "--param", "nope=1", "--dry-run"],
        ["run", "static", "--param", "bits", "--dry-run"],
        ["run", "nosuch", "--dry-run"],
        ["run", "static", "--repeat", "1", "--dry-run"],
        ["run", "static", "--model", "/nonexistent/model.safetensors", "--dry-run"],
    ],
)
def test_run_bad_usage_exits_2(args: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """Bad params, runner, repeat or model: exit 2 with one line on stderr."""
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("evledger: ")


def test_run_appends_to_a_ledger(
    tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dry-run the statement is signed and appended; verify passes."""
    from ledger.api import init_ledger, open_ledger

    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    init_ledger(tmp_path / "led", key_name="alice")
    res = CliRunner().invoke(
        cli,
        ["--ledger", str(tmp_path / "led"), "run", "proxy", "--model", str(tiny_model), "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["seq"] == 1 and out["digest"].startswith("sha256:")
    entries = list(open_ledger(tmp_path / "led").entries())
    assert entries[-1].predicate_type == "https://evledger.dev/predicates/proxy/v1"
