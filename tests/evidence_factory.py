"""Hand-made runner evidence for gate/diff/report tests (no runner needed)."""

from __future__ import annotations

from typing import Any

from ledger.api import Ledger, Prepared
from ledger.chain import Entry

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"


def statement(
    runner: str,
    metrics: dict[str, Any],
    *,
    params: dict[str, Any] | None = None,
    rows: list[dict[str, Any]] | None = None,
    environment: dict[str, Any] | None = None,
    subject: tuple[str, str] = ("model.safetensors", "ab" * 32),
) -> dict[str, Any]:
    """A runner evidence statement shaped like runners/statement.py makes them."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject[0], "digest": {"sha256": subject[1]}}],
        "predicateType": f"https://evledger.dev/predicates/{runner}/v1",
        "predicate": {
            "runner": {"name": runner, "version": "1.0.0"},
            "params": params or {},
            "metrics": metrics,
            "rows": rows or [],
            "determinism": {"runs": 2, "delta": 0.0, "deltas": {}, "digests_equal": True},
            "environment": environment or {"python": "3.11.9", "torch": "2.4.0", "threads": 2},
        },
    }


def add(ledger: Ledger, *statements: dict[str, Any], kind: str = "evidence") -> list[Entry]:
    """Append statements without predicate-schema validation (runner schemas may not exist)."""
    prepared = [Prepared(s, kind, "test") for s in statements]
    return ledger.append_prepared(prepared, key_name="alice")
