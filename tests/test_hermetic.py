"""Tests read nothing outside the checkout, their temp folders and the interpreter."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import legacy
from hermetic import CHECKOUT, READS, OpenRecorder


def test_the_recorder_catches_an_outside_read(tmp_path: Path) -> None:
    inside, outside = tmp_path / "inside", tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    (inside / "ok.txt").write_text("ok")
    (outside / "secret.txt").write_text("no")
    (inside / "link").symlink_to(outside / "secret.txt")
    rec = OpenRecorder([str(inside)])
    rec.active = True
    sys.addaudithook(rec.hook)
    try:
        (inside / "ok.txt").read_text()
        (outside / "secret.txt").read_text()
        (inside / "link").read_text()  # a symlink out counts as outside
        os.listdir(outside)
        sorted(outside.glob("*.txt"))  # scandir
        fd = os.open(outside / "secret.txt", os.O_RDONLY)
        os.close(fd)
    finally:
        rec.active = False
    paths = [p for _, p in rec.outside]
    assert str(inside / "ok.txt") not in paths
    assert paths.count(str(outside / "secret.txt")) == 2  # open() and os.open()
    assert str(inside / "link") in paths
    assert paths.count(str(outside)) == 2  # listdir and scandir


def test_the_session_recorder_is_on_and_allows_only_the_expected_roots() -> None:
    rec = READS
    assert rec.active
    assert rec.is_allowed(CHECKOUT / "tests" / "legacy.py")
    assert rec.is_allowed(Path(tempfile.gettempdir()) / "x")
    assert rec.is_allowed(Path(os.__file__))  # the stdlib
    # a folder beside the checkout is outside unless the checkout sits in temp itself
    assert not rec.is_allowed("/evledger-outside/shared/legacy-poc")
    if not rec.is_allowed(CHECKOUT.parent):
        assert not rec.is_allowed(CHECKOUT.parent.joinpath("shared", "legacy-poc"))
    assert not rec.is_allowed("/etc/gitconfig")


def test_no_test_so_far_read_outside() -> None:
    """Every test is checked at its teardown; this also covers collection-time reads."""
    assert READS.outside == []


def test_legacy_samples_come_from_the_checkout() -> None:
    assert legacy.LEGACY_DIR == CHECKOUT / "tests" / "fixtures" / "legacy-poc"
    assert len(legacy.LEGACY_SAMPLES) == 2
    assert all(p.is_relative_to(CHECKOUT) for p in legacy.LEGACY_SAMPLES)


def test_home_and_git_identity_are_the_tests_own() -> None:
    assert READS.is_allowed(os.environ["HOME"])
    assert not Path(os.environ["HOME"]).is_relative_to(CHECKOUT)
    assert os.environ["GIT_CONFIG_NOSYSTEM"] == "1"
    assert os.environ["GIT_AUTHOR_EMAIL"] == "tests@evledger.invalid"
