"""Golden RFC 6962 proof vectors from transparency-dev/merkle testdata."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from ledger.merkle import ProofError, verify_consistency, verify_inclusion

HERE = Path(__file__).parent / "rfc6962"
INCLUSION = sorted((HERE / "inclusion").rglob("*.json"))
CONSISTENCY = sorted((HERE / "consistency").rglob("*.json"))


def _id(path: Path) -> str:
    """Return the pytest id: the path relative to the vector folder."""
    return path.relative_to(HERE).as_posix()


def _load(path: Path) -> dict[str, Any]:
    """Load one vector case."""
    return json.loads(path.read_text(encoding="utf-8"))


def _b(s: str) -> bytes:
    """Decode a base64 field."""
    return base64.b64decode(s, validate=True)


def _proof(case: dict[str, Any]) -> list[bytes]:
    """Decode the proof list; the Go encoder writes null for an empty proof."""
    return [_b(p) for p in case["proof"] or []]


def test_vector_counts() -> None:
    assert len(INCLUSION) == 98
    assert len(CONSISTENCY) == 98


@pytest.mark.parametrize("path", INCLUSION + CONSISTENCY, ids=_id)
def test_happy_path_naming_matches_want_err(path: Path) -> None:
    case = _load(path)
    if path.name == "happy-path.json":
        assert case["wantErr"] is False
    elif path.parent.name not in {"additional", "single-entry"}:
        # Inside a numbered folder every non-happy case is a corruption of the happy one.
        assert case["wantErr"] is True


@pytest.mark.parametrize("path", INCLUSION, ids=_id)
def test_inclusion_vector(path: Path) -> None:
    case = _load(path)
    args = (_b(case["leafHash"]), case["leafIdx"], case["treeSize"], _proof(case), _b(case["root"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_inclusion(*args)
    else:
        verify_inclusion(*args)


@pytest.mark.parametrize("path", CONSISTENCY, ids=_id)
def test_consistency_vector(path: Path) -> None:
    case = _load(path)
    args = (case["size1"], case["size2"], _proof(case), _b(case["root1"]), _b(case["root2"]))
    if case["wantErr"]:
        with pytest.raises(ProofError):
            verify_consistency(*args)
    else:
        verify_consistency(*args)
