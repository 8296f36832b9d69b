"""CLI output that fits a terminal and pipes cleanly (issue 10): no padding or cropping when
piped, folding instead of cropping on a terminal, `--quiet`, progress only on a TTY, plural
forms, `run --dry-run` compact, `checkpoint` without new entries commits nothing."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from evidence_factory import add, statement
from invoke import run
from safetensors.torch import save_file

from evledger.cli import output
from ledger.api import Ledger

SGR = re.compile(r"\x1b\[[0-9;]*m")
LONG = "a-parameter-value-much-longer-than-any-terminal-is-wide-" * 4


def commits(led: Ledger) -> int:
    out = subprocess.run(
        ["git", "-C", str(led.root), "rev-list", "--count", "HEAD"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out)


@pytest.fixture
def wide(ledger: Ledger) -> Ledger:
    """A ledger whose seq 1 holds a line far wider than 200 columns."""
    add(ledger, statement("static", {"cos_min": 0.97}, params={"note": LONG}))
    return ledger


def test_piped_show_has_no_padding_and_full_digests(wide: Ledger) -> None:
    entry = wide.resolve("1")
    code, out, err = run(["--ledger", wide.root, "show", "1"])
    assert code == 0, err
    lines = out.splitlines()
    assert all(line == line.rstrip() for line in lines)  # no padding to 200 columns
    assert entry.digest in lines[0]  # the whole digest
    assert f'"note": "{LONG}"' in out  # the payload line, uncut
    assert entry.prev in out
    assert "\x1b" not in out  # no colour codes into a pipe


def test_terminal_show_folds_instead_of_cropping(
    wide: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "80")
    code, out, err = run(["--ledger", wide.root, "show", "1"])
    assert code == 0, err
    plain = SGR.sub("", out)
    body = plain.splitlines()[3:]  # the JSON, rendered by Rich
    assert body and all(len(line.rstrip()) <= 80 for line in body)
    assert LONG in "".join(line.strip() for line in body)  # folded onto lines, not cut
    assert wide.resolve("1").digest in plain.splitlines()[0]


def test_piped_log_one_row_per_entry_without_padding(wide: Ledger) -> None:
    code, out, _ = run(["--ledger", wide.root, "log"])
    lines = out.splitlines()
    assert code == 0 and len(lines) == 4  # trust line, header, genesis, seq 1
    assert all(line == line.rstrip() for line in lines)
    assert lines[0].startswith("trust: ")
    assert lines[1].split() == ["seq", "time", "kind", "runner", "digest", "signer"]
    assert lines[3].split()[0] == "1" and lines[3].endswith("✓")


def test_log_help_lists_the_columns_it_prints() -> None:
    code, out, _ = run(["log", "-h"])
    assert code == 0
    text = " ".join(out.split())
    assert "seq, time (as signed), kind, runner, digest" in text and "signer" in text
    assert "predicate type" not in text.split("--json")[0]


def test_table_folds_on_a_terminal_and_never_ellipsizes(monkeypatch: pytest.MonkeyPatch) -> None:
    grid = output.table("key", "value")
    grid.add_row(output.cell("k"), output.cell("sha256:" + "f" * 64))
    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=40, color_system=None).print(grid)
    assert "…" not in buffer.getvalue()
    assert "f" * 30 in buffer.getvalue().replace("\n", "").replace(" ", "")
    assert output.render_plain(grid).splitlines()[1] == "k    sha256:" + "f" * 64


def test_checkpoint_without_new_entries_makes_no_commit(wide: Ledger) -> None:
    code, first, _ = run(["--ledger", wide.root, "checkpoint"])
    assert code == 0
    before = commits(wide)
    code, again, err = run(["--ledger", wide.root, "checkpoint"])
    assert code == 0
    assert commits(wide) == before
    assert err == "no new entries since checkpoint 2 (2 entries); nothing committed\n"
    assert again == first  # the stored note
    code, out, _ = run(["--ledger", wide.root, "checkpoint", "--json"])
    assert code == 0 and json.loads(out)["created"] is False
    add(wide, statement("static", {"cos_min": 0.9}))
    code, out, _ = run(["--ledger", wide.root, "checkpoint", "--json"])
    assert code == 0 and json.loads(out)["created"] is True and commits(wide) == before + 2


def test_terminal_gate_folds_long_lines(ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    add(ledger, statement("static", {"cos_min": 0.97, "ratio_fp16_effective": 3.5}))
    _, piped, _ = run(["--ledger", ledger.root, "gate"])
    assert max(len(line) for line in piped.splitlines()) > 80  # one line per claim when piped
    monkeypatch.setattr(output, "stdout_is_tty", lambda: True)
    monkeypatch.setenv("COLUMNS", "80")
    _, folded, _ = run(["--ledger", ledger.root, "gate"])
    lines = folded.splitlines()
    assert all(len(line) <= 80 for line in lines)
    assert " ".join(folded.split()) == " ".join(piped.split())  # the same words, none cut
    assert any(line.startswith("      ") for line in lines)  # continuations hang indented


def test_plural_forms(ledger: Ledger, tmp_path: Path) -> None:
    assert output.plural(1, "candidate") == "1 candidate"
    assert output.plural(2, "candidate") == "2 candidates"
    assert output.plural(1, "entry", "entries") == "1 entry"
    assert output.plural(0, "entry", "entries") == "0 entries"
    add(ledger, statement("static", {"cos_min": 0.97}))
    _, out, _ = run(["--ledger", ledger.root, "gate"])
    assert out.splitlines()[1].endswith(", 1 verified evidence entry")
    policy = tmp_path / "one.toml"
    policy.write_text(
        'name = "one"\ndescription = "d"\n[[claims]]\nid = "C"\ntitle = "t"\nrequired = true\n'
        'evidence = { runner = "static" }\n'
        'checks = [{ metric = "cos_min", op = ">=", value = 0.9 }]\n'
    )
    _, out, _ = run(["policy", "check", policy])
    assert out.startswith("policy one: 1 claim — d")


def test_quiet_silences_notes_not_results(ledger: Ledger, tmp_path: Path) -> None:
    add(ledger, statement("static", {"cos_min": 0.97}))
    report = tmp_path / "R.md"
    code, out, err = run(["--ledger", ledger.root, "report", "-o", report])
    assert code == 0 and err.startswith("wrote ")
    code, out, err = run(["--quiet", "--ledger", ledger.root, "report", "-o", report])
    assert code == 0 and err == "" and report.is_file()
    code, out, err = run(["-q", "--ledger", ledger.root, "gate"])
    assert out.splitlines()[1].startswith("policy v37") and err == ""


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("tty", "enabled", "quiet", "drawn"),
    [
        (True, True, False, True),
        (False, True, False, False),
        (True, False, False, False),
        (True, True, True, False),
    ],
    ids=["terminal", "piped", "json", "quiet"],
)
def test_progress_bar_only_on_a_terminal(
    monkeypatch: pytest.MonkeyPatch, tty: bool, enabled: bool, quiet: bool, drawn: bool
) -> None:
    stream = _Tty() if tty else io.StringIO()
    monkeypatch.setattr(sys, "stderr", stream)
    monkeypatch.setattr(output, "quiet", lambda: quiet)
    with output.progress_bar("verifying", enabled=enabled) as update:
        update(1, 4)
        update(4, 4)
    assert ("verifying" in stream.getvalue()) is drawn


def test_dry_run_prints_a_compact_summary(tmp_path: Path) -> None:
    import torch

    model = tmp_path / "m.safetensors"
    gen = torch.Generator().manual_seed(3)
    save_file(
        {f"layers.{i}.mlp.up_proj.weight": torch.randn(64, 32, generator=gen) for i in range(24)},
        str(model),
    )
    args = ["run", "static", "--model", model, "--param", "bits=8", "--dry-run"]
    code, out, err = run(args)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) < 20, out  # not one line per matrix and field
    assert lines[0].startswith("static ")
    assert any(line.split()[:1] == ["cos_min"] for line in lines)
    assert "24 per-matrix rows (see --json, or evledger show once appended)" in lines
    labels = [line.rsplit(None, 1)[0].strip() for line in lines]
    # the Gaussian figure is named a reference; the weights' own bound is shown beside it
    assert "Gaussian reference at cos_min" in labels and "data-dependent bound (weights)" in labels
    assert not any("gaussian bound" in line.lower() for line in lines)
    assert lines[-1] == "dry run: nothing appended (--json prints the whole statement)"
    code, out, _ = run([*args, "--json"])
    assert code == 0 and len(json.loads(out)["predicate"]["rows"]) == 24
