"""Hand-made runner evidence for gate/diff/report tests (no runner needed)."""

from __future__ import annotations

from typing import Any

from legacy import LEGACY_SAMPLES

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
    """A runner evidence statement shaped like runners/statement.py makes them, under the
    generic `evidence/v1` predicate (hand-made figures do not fill a runner's own schema)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": subject[0], "digest": {"sha256": subject[1]}}],
        "predicateType": "https://evledger.dev/predicates/evidence/v1",
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
    """Append statements signed by alice (validated like every append)."""
    prepared = [Prepared(s, kind, "test") for s in statements]
    return ledger.append_prepared(prepared, key_name="alice")


def example_ledger(ledger: Ledger) -> Ledger:
    """Legacy samples plus hand-made runner evidence shaped like the snapshot's figures."""
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    add(
        ledger,
        statement("memory", {"peak_rss_mb": 412.5, "model_mb": 2300.0}),
        statement(
            "static",
            {
                "ratio_fp16_effective": 4.69,
                "out_cos": 0.991,
                "embedding_cos_min": 0.991,
                "cos_min": 0.97,
            },
        ),
        statement(
            "pareto",
            {
                "ratio_at_cos_094": 9.6,
                "feasible_at_cos_094": True,
                "ratio_at_cos_099": 5.65,
                "feasible_at_cos_099": True,
                "ratio_fp16_effective": 5.65,
                "cos_min": 0.99,
            },
        ),
        statement(
            "hessian",
            {
                "ratio_fp16_effective": 5.88,
                "cos_min": 0.985,
                "out_cos": 0.993,
                "embedding_cos_min": 0.992,
            },
        ),
        statement("pq", {"ratio_fp16_effective": 8.1, "cos_min": 0.958}),
    )
    return ledger
