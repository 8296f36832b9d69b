"""metrics_of / runner_of / is_compression_claim over runner and legacy evidence."""

from __future__ import annotations

from evidence_factory import add, statement
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger
from ledger.evidence import (
    direction,
    is_compression_claim,
    metrics_of,
    runner_family,
    runner_of,
)
from ledger.statement import Legacy


def test_runner_evidence_metrics(ledger: Ledger) -> None:
    [e] = add(
        ledger,
        statement(
            "static",
            {
                "cos_min": 0.99,
                "ratio_fp16_effective": 4.5,
                "bytes_total": "12345678901234567",
                "name": "x",
            },
        ),
    )
    m = metrics_of(e)
    assert m == {"cos_min": 0.99, "ratio_fp16_effective": 4.5, "bytes_total": 12345678901234567}
    assert runner_of(e) == "static" and runner_family(e) == "static"
    assert is_compression_claim(e)


def test_legacy_samples_map(ledger: Ledger) -> None:
    entries = ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    by = {runner_of(e): e for e in entries}
    v43 = metrics_of(by["evidence.v43.v1"])
    assert v43["cos_min"] == 0.999954 and v43["ratio_fp16_effective"] == 4.0
    assert v43["go"] is False
    assert "ppl_change" not in v43  # null is not a metric
    tn = metrics_of(by["evidence.breakthrough.v1"])
    assert tn["go"] is True and tn["entropy_gain_ok"] is True
    assert tn["determinism_delta"] == 0.0 and tn["bytes_entropy"] == 3546376
    assert runner_family(by["evidence.breakthrough.v1"]) == "entropy"
    assert is_compression_claim(by["evidence.v43.v1"])
    assert not is_compression_claim(by["evidence.breakthrough.v1"])


def test_v300_mapping() -> None:
    doc = {"compression_results": {"compression_ratio": 30.0, "cosine_similarity": 0.98}}
    legacy = Legacy.from_dict({"schema_id": "evidence.v300.vajra.v1", "document": doc})
    assert legacy.metrics == {"ratio_fp16_effective": 30.0, "cos_min": 0.98}


def test_direction() -> None:
    assert direction("cos_min") == 1 and direction("ratio_fp16_effective") == 1
    assert direction("peak_rss_mb") == -1 and direction("determinism_delta") == -1
    assert direction("bytes_total") == -1 and direction("n_matrices") == 0
