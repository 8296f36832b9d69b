"""Regenerate the README's results section (and docs/REPORT.md with its Pareto plot) from
the example ledger at the project root.

Usage: .venv/bin/python scripts/readme-results.py   (tests/test_example_ledger.py checks it)
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
START, END = "<!-- results:start -->", "<!-- results:end -->"


def report_markdown() -> str:
    """`evledger report --md` of the project's own ledger."""
    cmd = [sys.executable, "-m", "evledger", "--ledger", str(ROOT), "report", "--md"]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()


def readme_section(readme: str) -> str:
    """The text between the results markers."""
    return readme.split(START, 1)[1].split(END, 1)[0].strip()


def main() -> None:
    """Rewrite docs/REPORT.md and the README section in place."""
    cmd = [sys.executable, "-m", "evledger", "--ledger", str(ROOT), "report", "--md"]
    subprocess.run([*cmd, "-o", str(ROOT / "docs" / "REPORT.md")], check=True)
    path = ROOT / "README.md"
    text = path.read_text()
    head, rest = text.split(START, 1)
    tail = rest.split(END, 1)[1]
    path.write_text(f"{head}{START}\n{report_markdown()}\n{END}{tail}")


if __name__ == "__main__":
    main()
