"""Every failure is one line on stderr and an exit code, nothing is written; `-v` adds the
traceback. Built with the real CLI entry point on real ledgers and real keys."""

from __future__ import annotations

import errno
import subprocess
from pathlib import Path

import pytest
from invoke import run
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger
from ledger.keys import keys_dir
from ledger.store import Store

POLICY = """name = "bad"
description = "one claim"

[[claims]]
id = "C"
title = "t"
required = true
evidence = {{ runner = "static" }}
checks = [{{ metric = "{metric}", op = ">=", value = {value} }}]
"""


def git_state(led: Ledger) -> tuple[str, str]:
    """(commit count, `git status --porcelain`): both must be unchanged by a failure."""
    count = subprocess.run(
        ["git", "-C", str(led.root), "rev-list", "--count", "--all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    status = subprocess.run(
        ["git", "-C", str(led.root), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return count, status


def one_line_failure(led: Ledger, args: list[str], code: int = 2) -> str:
    """Run `evledger --ledger LED ARGS`; assert exit `code`, one stderr line, no stdout, no
    commit and an unchanged working tree; return the line."""
    before = git_state(led)
    exit_code, out, err = run(["--ledger", led.root, *args])
    assert exit_code == code, (exit_code, err)
    assert out == "", out
    assert err.count("\n") == 1 and err.startswith("evledger: "), err
    assert "Traceback" not in err
    assert git_state(led) == before
    return err.strip()


BAD_JSON = {
    "nested 500 deep": (b"[" * 500 + b"]" * 500, "nested deeper than 64"),
    "nested 100000 deep": (b"[" * 100_000 + b"]" * 100_000, "nested deeper than 64"),
    "lone surrogate": (b'{"schema_id": "evidence.v43.v1", "x": "\\ud800"}', "lone surrogate"),
    "lone surrogate key": (b'{"\\udc00": 1}', "lone surrogate"),
    "duplicate key": (b'{"schema_id": "evidence.v43.v1", "a": 1, "a": 2}', "duplicate key 'a'"),
    "5000-digit number": (b'{"x": ' + b"7" * 5000 + b"}", "5000 characters"),
    "5000-digit float": (b'{"x": 0.' + b"7" * 5000 + b"}", "5002 characters"),
}


@pytest.mark.parametrize("name", list(BAD_JSON))
def test_hostile_json_is_one_line_exit_2(filled: Ledger, tmp_path: Path, name: str) -> None:
    data, reason = BAD_JSON[name]
    bad = tmp_path / "bad.json"
    bad.write_bytes(data)
    line = one_line_failure(filled, ["append", LEGACY_SAMPLES[0], bad])
    assert str(bad) in line and reason in line, line


BAD_POLICIES = {
    "5000-digit value": ("cos_min", "9" * 5000, "more than 4300 digits"),
    "4000-digit value": ("cos_min", "9" * 4000, "beyond ±(2^53−1)"),
    "long float": ("cos_min", "0." + "9" * 5000, "characters is refused"),
    "nan": ("cos_min", "nan", "not a finite number"),
    "inf": ("ratio_fp16_effective", "inf", "not a finite number"),
    "cosine above 1": ("cos_min", "1.5", "is not a cosine"),
    "negative ratio": ("ratio_fp16_effective", "-2", "cannot be negative"),
    "deep array": ("cos_min", "[" * 2000 + "]" * 2000, "nested deeper than 64"),
}


@pytest.mark.parametrize("name", list(BAD_POLICIES))
@pytest.mark.parametrize("command", ["gate", "policy check"])
def test_hostile_policy_is_one_line_exit_2(
    filled: Ledger, tmp_path: Path, name: str, command: str
) -> None:
    metric, value, reason = BAD_POLICIES[name]
    policy = tmp_path / "bad.toml"
    policy.write_text(POLICY.format(metric=metric, value=value))
    args = ["gate", "--policy", policy] if command == "gate" else ["policy", "check", policy]
    line = one_line_failure(filled, args)
    assert reason in line and str(policy) in line, line


def test_good_policy_still_loads(filled: Ledger, tmp_path: Path) -> None:
    """The limits refuse hostile policies, not ordinary ones."""
    policy = tmp_path / "ok.toml"
    policy.write_text(POLICY.format(metric="cos_min", value="0.99"))
    code, out, err = run(["--ledger", filled.root, "policy", "check", policy])
    assert code == 0 and "1 claim —" in out, err


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_corrupted_private_key_is_one_line(filled: Ledger, damage: str) -> None:
    key = keys_dir() / "alice.key"
    pem = key.read_bytes()
    key.write_bytes({"truncated": pem[:40], "garbage": b"\x00\xff junk", "empty": b""}[damage])
    line = one_line_failure(filled, ["append", LEGACY_SAMPLES[0]])
    assert "alice" in line, line
    one_line_failure(filled, ["checkpoint"])


@pytest.mark.parametrize(
    "flags", [["-v", "--ledger"], ["--ledger"], ["-qv", "--ledger"]], ids=["-v", "after", "-qv"]
)
def test_verbose_shows_the_traceback_then_the_line(
    filled: Ledger, tmp_path: Path, flags: list[str]
) -> None:
    bad = tmp_path / "deep.json"
    bad.write_bytes(b"[" * 500 + b"]" * 500)
    args = [*flags, filled.root, *(["-v"] if flags == ["--ledger"] else []), "append", bad]
    code, out, err = run(args)
    assert code == 2 and out == ""
    assert err.startswith("Traceback (most recent call last):")
    assert "InputError" in err
    assert err.strip().splitlines()[-1] == f"evledger: {bad}: JSON is nested deeper than 64 levels"


def test_unexpected_error_is_one_line_and_names_v(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bug (or a library's ValueError) still ends as one line; -v is the way to see more."""

    def broken(*_a: object, **_k: object) -> None:
        raise ValueError("line one\nline two \x1b[2J")

    monkeypatch.setattr(Store, "commit_files", broken)
    line = one_line_failure(filled, ["append", LEGACY_SAMPLES[0]])
    assert line == (
        "evledger: ValueError: line one line two \\x1b[2J (rerun with -v for the traceback)"
    )


def test_disk_full_is_one_line(filled: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    def full(*_a: object, **_k: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "objects/ab")

    monkeypatch.setattr(Store, "commit_files", full)
    line = one_line_failure(filled, ["append", LEGACY_SAMPLES[0]])
    assert line == "evledger: objects/ab: No space left on device"


@pytest.mark.parametrize("error", [RecursionError, MemoryError])
def test_recursion_and_memory_errors_are_one_line(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch, error: type[BaseException]
) -> None:
    def boom(*_a: object, **_k: object) -> None:
        raise error()

    monkeypatch.setattr(Ledger, "view", boom)
    one_line_failure(filled, ["log"])


@pytest.mark.parametrize(
    "args",
    [["show"], ["log", "--nope"], ["nosuch"], ["diff", "1"], ["gate", "--rev", "nope"]],
    ids=["missing argument", "unknown option", "unknown command", "one ref", "bad rev"],
)
def test_usage_errors_are_one_line(filled: Ledger, args: list[str]) -> None:
    one_line_failure(filled, args)
