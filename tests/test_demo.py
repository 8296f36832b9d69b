"""The demo driver: a rerun appends nothing twice and the run ends on the summary."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import pytest

from evledger import demo
from ledger.api import open_ledger


def test_same_claim_needs_runner_version_params_and_model() -> None:
    runner = SimpleNamespace(name="static", version="1.2.0")
    subjects = [{"name": "model.safetensors", "digest": {"sha256": "ab" * 32}}]
    stored = {
        "subject": [*subjects, {"name": "extra", "digest": {"sha256": "cd" * 32}}],
        "predicate": {"runner": {"name": "static", "version": "1.2.0"}, "params": {"bits": 4}},
    }
    assert demo.same_claim(stored, runner, {"bits": 4}, subjects)
    assert not demo.same_claim(stored, runner, {"bits": 3}, subjects)
    assert not demo.same_claim(
        stored, SimpleNamespace(name="static", version="1.3.0"), {"bits": 4}, subjects
    )
    other = [{"name": "model.safetensors", "digest": {"sha256": "ef" * 32}}]
    assert not demo.same_claim(stored, runner, {"bits": 4}, other)


def test_rerun_appends_nothing_and_ends_on_the_summary(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(demo, "RUNNERS", ())  # the runners take minutes; the rest is real
    monkeypatch.setenv("COLUMNS", "400")  # long tmp paths on one line
    folder = tmp_path / "demo-ledger"
    assert demo.main([str(folder), "--key", "demo"]) == 0
    first = capsys.readouterr().out
    led = open_ledger(folder)
    entries = [e.seq for e in led.entries()]
    assert entries == [0, 1, 2]  # genesis + the two legacy samples
    assert "created" in first and "appended seq 1" in first
    for part in (
        "verify",
        "OK",
        "3 entries",
        "trust anchor",
        "gates",
        "NO-GO",
        "audit",
        "implausible",
        "REPORT.md",
        "REPORT.pareto.svg",
        "try next",
        f"tui --ledger {folder}",
        "verify --since",
    ):
        assert part in first.replace("\n", " "), part
    assert (folder / "REPORT.md").is_file() and (folder / "REPORT.pareto.svg").is_file()
    head = led.store.resolve()

    monkeypatch.setenv("COLUMNS", "80")  # piped at 80 columns: the commands still stay whole
    assert demo.main([str(folder), "--key", "demo"]) == 0
    second = capsys.readouterr().out
    since = f"--ledger {folder} verify --since {folder}.checkpoint.note"
    assert any(line.endswith(since) for line in second.splitlines()), second
    assert [e.seq for e in open_ledger(folder).entries()] == entries
    assert open_ledger(folder).store.resolve() == head  # not even a checkpoint commit
    assert "reusing" in second and "already in the ledger" in second
    assert "appended nothing" in second
    assert "evledger:" not in first + second  # no error-looking lines in a good run


def test_a_ledger_without_its_key_here_stops_with_one_line(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(demo, "RUNNERS", ())
    folder = tmp_path / "demo-ledger"
    assert demo.main([str(folder), "--key", "demo"]) == 0
    monkeypatch.setenv("EVLEDGER_HOME", str(tmp_path / "another-home"))
    with pytest.raises(SystemExit, match="signing key 'demo' is not in this EVLEDGER_HOME"):
        demo.main([str(folder), "--key", "demo"])


def test_next_commands_name_the_venv_script_they_need(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    (bin_dir / "evledger").write_text("#!/bin/sh\n")
    monkeypatch.setattr(demo.sys, "executable", str(bin_dir / "python"))
    monkeypatch.chdir(tmp_path)
    assert demo.command_name() == ".venv/bin/evledger"  # make demo: not on the user's PATH
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert demo.command_name() == "evledger"  # an environment elsewhere: the PATH has it
