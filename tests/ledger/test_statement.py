"""The typed statement model: every family reads its fields, and every statement, odd or not,
round-trips to the same canonical bytes (unknown fields survive)."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from evidence_factory import add, statement
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger
from ledger.canonical import canonical_bytes
from ledger.statement import (
    Genesis,
    Import,
    KeyAdd,
    Legacy,
    Predicate,
    Reproduction,
    RunnerEvidence,
    Statement,
    runner_statement,
)

ODD = {
    "unknown top-level field": {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "ab" * 32}, "uri": "x"}],
        "predicateType": "https://evledger.dev/predicates/static/v1",
        "predicate": {"runner": {"name": "static", "version": "1"}, "future": [1, 2]},
        "later": {"nested": True},
    },
    "foreign predicate": {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"digest": {"sha512": "cd"}}],
        "predicateType": "https://slsa.dev/provenance/v1",
        "predicate": {"buildDefinition": {"buildType": "x"}},
    },
    "wrong types everywhere": {
        "_type": 1,
        "subject": "not a list",
        "predicateType": 7,
        "predicate": ["not", "an", "object"],
    },
    "subject of odd shape": {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": 3, "digest": {"sha256": 5}}, "junk"],
        "predicateType": "https://evledger.dev/predicates/genesis/v1",
        "predicate": {"origin": 5, "root_key": "nope"},
    },
}


@pytest.mark.parametrize("doc", ODD.values(), ids=ODD.keys())
def test_odd_statements_round_trip_byte_for_byte(doc: dict[str, Any]) -> None:
    typed = Statement.from_dict(doc)
    assert canonical_bytes(typed.to_dict()) == canonical_bytes(doc)


def test_every_stored_entry_round_trips(filled: Ledger) -> None:
    for entry in filled.view():
        payload = base64.b64decode(entry.envelope["payload"])
        assert canonical_bytes(entry.statement.to_dict()) == payload


def test_families_read_their_fields(filled: Ledger) -> None:
    [genesis, *rest] = filled.view().entries
    assert isinstance(genesis.predicate, Genesis)
    assert genesis.predicate.root_key is not None and genesis.predicate.root_key.name == "alice"
    assert genesis.predicate.origin.startswith("evledger.dev/ledger/")
    legacy = [e.predicate for e in rest if isinstance(e.predicate, Legacy)]
    assert {p.schema_id for p in legacy} == {"evidence.v43.v1", "evidence.breakthrough.v1"}
    assert {p.family for p in legacy} == {"proxy", "entropy"}


def test_runner_evidence_and_reproduction(ledger: Ledger) -> None:
    [claim] = add(ledger, statement("static", {"cos_min": 0.99}, params={"bits": 4}))
    pred = claim.predicate
    assert isinstance(pred, RunnerEvidence) and not isinstance(pred, Reproduction)
    assert pred.runner is not None and (pred.runner.name, pred.runner.version) == (
        "static",
        "1.0.0",
    )
    assert pred.params == {"bits": 4} and pred.metrics == {"cos_min": 0.99}
    repro = Statement.from_dict(
        {
            "predicateType": "https://evledger.dev/predicates/reproduction/v1",
            "predicate": {
                "runner": {"name": "static", "version": "1.0.0"},
                "claim": {
                    "seq": 1,
                    "digest": claim.digest,
                    "imported_from": {"digest": "sha256:x"},
                },
                "verdict": "reproduced",
            },
        }
    ).predicate
    assert isinstance(repro, Reproduction) and repro.verdict == "reproduced"
    assert repro.claim is not None and repro.claim.digests == {claim.digest, "sha256:x"}


def test_import_exposes_the_foreign_statement() -> None:
    inner = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "m", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://example.org/theirs/v1",
        "predicate": {"runner": "theirs", "metrics": {"ratio_fp16_effective": 3.0}},
    }
    payload = base64.urlsafe_b64encode(json.dumps(inner).encode()).decode().rstrip("=")
    pred = Import.from_dict(
        {
            "envelope": {"payload": payload, "payloadType": "x", "signatures": []},
            "foreign_keys": [{"keyid": "k" * 64, "name": "them", "public_key": "-----BEGIN"}],
        }
    )
    assert isinstance(pred, Import) and pred.signer == "k" * 64
    assert pred.inner is not None and pred.inner.predicate.metrics == {"ratio_fp16_effective": 3.0}
    assert pred.inner.predicate.runner is not None and pred.inner.predicate.runner.name == "theirs"
    broken = Import.from_dict({"envelope": {"payload": "%%%"}})
    assert isinstance(broken, Import) and broken.inner is None


def test_unknown_predicate_keeps_everything_and_claims_nothing() -> None:
    pred = Statement.from_dict(ODD["foreign predicate"]).predicate
    assert type(pred) is Predicate and pred.metrics == {} and pred.runner is None
    assert pred.extra == {"buildDefinition": {"buildType": "x"}}


def test_key_add_and_the_binding(filled: Ledger, home: Any) -> None:
    pred = KeyAdd.from_dict({"key": {"keyid": "a", "name": "b", "public_key": "c"}, "ledger": {}})
    assert isinstance(pred, KeyAdd) and pred.key is not None and pred.key.name == "b"
    entry = filled.view().entries[1]
    assert entry.predicate.binding is not None
    assert (entry.predicate.binding.seq, entry.predicate.binding.kind) == (1, "evidence")
    assert entry.time == entry.predicate.binding.time != ""


def test_runner_statement_goes_through_the_model() -> None:
    doc = runner_statement(
        runner="static",
        version="1.2.0",
        subjects=[{"name": "m", "digest": {"sha256": "ab" * 32}}],
        predicate={"params": {}, "metrics": {"cos_min": 0.9}},
    )
    pred = Statement.from_dict(doc).predicate
    assert isinstance(pred, RunnerEvidence) and pred.runner is not None
    assert pred.runner.version == "1.2.0" and doc["predicateType"].endswith("/static/v1")


def test_legacy_samples_are_read_the_same_everywhere(ledger: Ledger) -> None:
    entries = ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    for entry in entries:
        assert isinstance(entry.predicate, Legacy)
        assert entry.predicate.metrics  # via LEGACY_METRICS, the one mapping
