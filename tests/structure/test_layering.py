"""The core stands alone: `ledger` imports neither `runners` nor `tui` (nor torch, nor textual)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FORBIDDEN = ("runners", "tui", "evledger", "torch", "textual")


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    out: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.append((node.lineno, node.module))
    return out


@pytest.mark.parametrize(
    "path", sorted((ROOT / "ledger").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT))
)
def test_core_module_imports_no_outer_layer(path: Path) -> None:
    """Every import statement in ledger/, lazy ones included, stays inside the core."""
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for line, name in _imports(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert not bad, bad


def test_the_walk_sees_lazy_imports(tmp_path: Path) -> None:
    """The walker is not blind to an import inside a function (the check can fail)."""
    sample = tmp_path / "m.py"
    sample.write_text("def f():\n    from runners.registry import get_runner\n")
    assert _imports(sample) == [(2, "runners.registry")]


def test_importing_the_core_loads_no_heavy_layer() -> None:
    """A fresh interpreter that imports every core module has no torch, textual or runners."""
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts)
        for p in (ROOT / "ledger").rglob("*.py")
        if p.name != "__main__.py"
    )
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    loaded = set(json.loads(proc.stdout))
    assert not loaded & {"torch", "textual", "runners", "tui", "evledger"}, loaded
