"""Fixtures for the TUI: real git ledgers with real (fixed) Ed25519 keys, clean and tampered."""

from __future__ import annotations

import base64
import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from attacker import commit_raw
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from legacy import LEGACY_SAMPLES

import schemas
from ledger.api import Ledger, Prepared, init_ledger
from ledger.canonical import canonical_bytes
from ledger.envelope import STATEMENT_TYPE
from ledger.store import entry_path

#: predicate types of the hand-made statements below; their schemas are stubbed so the test
#: ledgers stay valid whatever the runners' schemas become
TEST_RUNNERS = ("static", "pareto", "memory", "reproduction")
_STUB = "tui-test-stub"
FIXED_KEY = bytes(range(32))


@pytest.fixture(autouse=True)
def stub_runner_schemas(monkeypatch: pytest.MonkeyPatch) -> None:
    """Hand-made runner statements validate against a permissive stub schema."""
    real_path, real_valid, real_errors = (
        schemas.predicate_schema_path,
        schemas.is_valid,
        schemas.errors,
    )
    test_types = {schemas.predicate_type(n) for n in TEST_RUNNERS}

    def path(ptype: str) -> str | None:
        return _STUB if ptype in test_types else real_path(ptype)

    def valid(rel: str, instance: Any) -> bool:
        return True if rel == _STUB else real_valid(rel, instance)

    def errors(rel: str, instance: Any) -> list[str]:
        return [] if rel == _STUB else real_errors(rel, instance)

    monkeypatch.setattr(schemas, "predicate_schema_path", path)
    monkeypatch.setattr(schemas, "is_valid", valid)
    monkeypatch.setattr(schemas, "errors", errors)


@pytest.fixture
def fixed_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """Entry times and the genesis origin are deterministic (so are digests: Ed25519 is)."""
    counter = itertools.count()
    monkeypatch.setattr(
        "ledger.chain.utc_now", lambda: f"2026-03-01T12:{next(counter) % 60:02d}:00Z"
    )
    monkeypatch.setattr("ledger.api.secrets.token_hex", lambda n=8: "5eed" * (n // 2))


def write_fixed_key(home: Path, name: str = "alice", seed: bytes = FIXED_KEY) -> None:
    """Put a fixed Ed25519 key into $EVLEDGER_HOME/keys (same keyid on every run)."""
    key = Ed25519PrivateKey.from_private_bytes(seed)
    folder = home / "keys"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (folder / f"{name}.key").write_bytes(pem)
    (folder / f"{name}.key").chmod(0o600)
    pub = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (folder / f"{name}.pub").write_bytes(pub)


def runner_statement(
    runner: str,
    params: dict[str, Any],
    metrics: dict[str, Any],
    *,
    rows: list[dict[str, Any]] | None = None,
    model: str = "model.safetensors",
    threads: int = 2,
) -> dict[str, Any]:
    """A hand-made runner evidence statement (the shape runners/statement.py writes)."""
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": model, "digest": {"sha256": "ab" * 32}}],
        "predicateType": schemas.predicate_type(runner),
        "predicate": {
            "runner": {"name": runner, "version": "1.0.0"},
            "params": params,
            "metrics": metrics,
            "rows": rows or [],
            "determinism": {
                "runs": 2,
                "delta": 0.0,
                "deltas": dict.fromkeys(metrics, 0.0),
                "reconstruction_digest": "sha256:" + "cd" * 32,
                "digests_equal": True,
            },
            "environment": {"python": "3.11.9", "torch": "2.4.0", "threads": threads},
        },
    }


def reproduction_statement(claim_seq: int, claim_digest: str, verdict: str) -> dict[str, Any]:
    """A hand-made reproduction of `claim_seq`."""
    st = runner_statement("reproduction", {"bits": 4, "group_size": 64}, dict(STATIC_4BIT))
    st["predicate"]["runner"] = {"name": "static", "version": "1.0.0"}
    st["predicate"].update(
        {
            "claim": {
                "seq": claim_seq,
                "digest": claim_digest,
                "predicate_type": schemas.predicate_type("static"),
            },
            "deltas": {
                k: {"claim": v, "reproduced": v, "delta": 0.0} for k, v in STATIC_4BIT.items()
            },
            "verdict": verdict,
        }
    )
    return st


STATIC_4BIT = {
    "ratio_fp16_effective": 3.9,
    "cos_min": 0.995,
    "out_cos": 0.998,
    "determinism_delta": 0.0,
}


def rows(cos: float, nbytes: int) -> list[dict[str, Any]]:
    """Per-matrix rows with real MiniLM-style names (long keys) and byte counts (7 digits)."""
    return [
        {"name": "encoder.layer.0.attention.self.query.weight", "cos": cos, "bytes": nbytes},
        {
            "name": "encoder.layer.0.intermediate.dense.weight",
            "cos": cos - 0.002,
            "bytes": 4 * nbytes,
        },
    ]


def fill_review_ledger(led: Ledger) -> None:
    """Genesis + 2 legacy samples + runner evidence + a reproduction (seq 0..8)."""
    led.append_files(LEGACY_SAMPLES, key_name="alice")  # seq 1, 2
    prepared = [
        runner_statement(
            "static", {"bits": 4, "group_size": 64}, dict(STATIC_4BIT), rows=rows(0.995, 6054912)
        ),
        runner_statement(
            "static",
            {"bits": 3, "group_size": 64},
            {
                "ratio_fp16_effective": 5.1,
                "cos_min": 0.985,
                "out_cos": 0.99,
                "determinism_delta": 0.0,
            },
            rows=rows(0.985, 4541184),
            threads=4,
        ),
        runner_statement("pareto", {"points": 12}, {"ratio_fp16_effective": 5.5, "cos_min": 0.99}),
        runner_statement("memory", {"stream": True}, {"peak_rss_mb": 512.5}),
        runner_statement(
            "static", {"bits": 2, "group_size": 32}, {"ratio_fp16_effective": 30.0, "cos_min": 0.99}
        ),
    ]
    led.append_prepared([Prepared(s, "evidence", "test") for s in prepared], key_name="alice")
    claim = next(e for e in led.entries() if e.seq == 3)
    led.append_prepared(
        [Prepared(reproduction_statement(3, claim.digest, "reproduced"), "reproduction", "test")],
        key_name="alice",
    )


@pytest.fixture
def review_ledger(home: Path, tmp_path: Path, fixed_time: None) -> Ledger:
    """A small, clean, deterministic ledger (fixed key, fixed times)."""
    write_fixed_key(home)
    led, _ = init_ledger(tmp_path / "review", "alice")
    fill_review_ledger(led)
    return led


def tamper_payload(led: Ledger, seq: int) -> None:
    """Change one byte of entry `seq`'s signed payload and commit it (an attacker's edit)."""
    raw = led.store.read_path("HEAD", entry_path(seq))
    assert raw is not None
    doc = orjson.loads(raw)
    payload = bytearray(base64.b64decode(doc["envelope"]["payload"]))
    at = payload.index(b'"ratio_fp16_effective":') + len(b'"ratio_fp16_effective":')
    payload[at] = ord("9") if payload[at] != ord("9") else ord("8")
    doc["envelope"]["payload"] = base64.b64encode(bytes(payload)).decode()
    commit_raw(led.root, {entry_path(seq): canonical_bytes(doc)})


@pytest.fixture
def tampered_ledger(review_ledger: Ledger) -> Iterator[Ledger]:
    """The review ledger with entry 4's payload changed after signing."""
    tamper_payload(review_ledger, 4)
    yield review_ledger
