"""Shared fixtures: real keys in a temp EVLEDGER_HOME, real git ledgers in tmp_path."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hermetic import READS
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger, init_ledger

# every file or folder a test opens outside the checkout, temp and interpreter is recorded
if not READS.active:
    READS.install()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty EVLEDGER_HOME (private keys live here, never in a repo)."""
    path = tmp_path / "home"
    monkeypatch.setenv("EVLEDGER_HOME", str(path))
    monkeypatch.delenv("EVLEDGER_KEY", raising=False)
    monkeypatch.delenv("EVLEDGER_PASSPHRASE", raising=False)
    monkeypatch.delenv("EVLEDGER_LEDGER", raising=False)
    return path


@pytest.fixture
def ledger(home: Path, tmp_path: Path) -> Ledger:
    """A fresh ledger signed by key 'alice' (genesis only)."""
    led, _ = init_ledger(tmp_path / "ledger", "alice")
    return led


@pytest.fixture
def filled(ledger: Ledger) -> Ledger:
    """A ledger with the legacy POC samples appended twice (seq 1..4)."""
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    return ledger


@pytest.fixture(autouse=True, scope="session")
def _hermetic_git(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Tests never see the machine's git config or HOME: their own identity, an empty HOME."""
    home = tmp_path_factory.mktemp("home")
    for key, value in {
        "HOME": str(home),
        "XDG_CONFIG_HOME": str(home / ".config"),
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "evledger tests",
        "GIT_AUTHOR_EMAIL": "tests@evledger.invalid",
        "GIT_COMMITTER_NAME": "evledger tests",
        "GIT_COMMITTER_EMAIL": "tests@evledger.invalid",
    }.items():
        os.environ[key] = value


@pytest.fixture(autouse=True, scope="session")
def _allow_basetemp(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The pytest temp root is allowed wherever --basetemp puts it."""
    base = os.path.realpath(tmp_path_factory.getbasetemp())
    if base not in READS.roots:
        READS.roots.append(base)


@pytest.fixture(autouse=True)
def _reads_inside(request: pytest.FixtureRequest, _allow_basetemp: None) -> object:
    """A test that opens anything outside the allowed roots fails (at teardown)."""
    READS.current = request.node.nodeid
    mark = len(READS.outside)
    yield
    outside = READS.since(mark)
    READS.current = "(between tests)"
    if outside:
        pytest.fail(f"read outside the checkout and temp folders: {sorted(set(outside))}")
