"""The example ledger at the project root verifies, and the README shows its real results."""

from __future__ import annotations

import importlib.util
import subprocess
from pathlib import Path

import pytest

from ledger.api import Ledger, open_ledger
from ledger.evidence import runner_of

ROOT = Path(__file__).resolve().parents[1]
RUNNERS = {"memory", "static", "pareto", "pq", "proxy", "entropy", "hessian", "ecsq", "tcq"}


@pytest.fixture(scope="module")
def example() -> Ledger:
    inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse"], capture_output=True)
    if inside.returncode != 0:
        pytest.skip("not a git checkout (e.g. an sdist)")
    led = open_ledger(ROOT)
    if led.tip() is None:
        pytest.skip("the checkout holds no example ledger")
    return led


def test_example_ledger_verifies(example: Ledger) -> None:
    report = example.verify()
    assert report.ok, report.problems[:5]
    kinds = [e.kind for e in example.entries()]
    runners = {runner_of(e) for e in example.view() if e.kind == "evidence"}
    assert RUNNERS <= runners
    assert "reproduction" in kinds


def test_readme_results_are_the_ledgers_report(example: Ledger) -> None:
    spec = importlib.util.spec_from_file_location(
        "readme_results", ROOT / "scripts" / "readme-results.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    readme = (ROOT / "README.md").read_text()
    assert module.readme_section(readme) == module.report_markdown()
