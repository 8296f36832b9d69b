"""Helpers for the attacks on real ledgers (tests/security): an attacker who can commit to the
repository, a user who feeds hostile files. They play the attacker; evledger code plays nobody."""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from typing import Any

import orjson
from attacker import commit_raw
from invoke import run

from ledger.api import Ledger
from ledger.canonical import canonical_bytes
from ledger.store import entry_path

#: a policy whose one required claim a static entry at ratio 4.0 / cos_min 0.99 passes
POLICY = """name = "sec"
[[claims]]
id = "C"
title = "static at least 4x"
required = true
evidence = { runner = "static", select = "latest" }
checks = [{ metric = "ratio_fp16_effective", op = ">=", value = 4.0 }]
"""


def statement(metrics: dict[str, Any], runner: str = "static") -> dict[str, Any]:
    """Schema-valid hand-made runner evidence (the generic evidence/v1 predicate)."""
    return {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://evledger.dev/predicates/evidence/v1",
        "predicate": {
            "runner": {"name": runner, "version": "1.0.0"},
            "params": {},
            "metrics": metrics,
            "determinism": {"runs": 2, "delta": 0.0},
            "environment": {"python": "3.11"},
        },
    }


def write_json(path: Path, doc: Any) -> Path:
    """A JSON file a user (or attacker) hands to evledger."""
    path.write_text(json.dumps(doc))
    return path


def cli(led: Ledger, *args: object) -> tuple[int, str, str]:
    """`evledger --ledger LED ARGS` through the real entry point."""
    return run(["--ledger", str(led.root), *[str(a) for a in args]])


def git(led: Ledger, *args: str) -> str:
    """Plain git in the ledger's repository (what an attacker with push access has)."""
    return subprocess.run(
        ["git", *args], cwd=led.root, check=True, capture_output=True, text=True
    ).stdout


def attacker_commit(led: Ledger, files: dict[str, bytes]) -> None:
    """Commit arbitrary bytes with plain git: no evledger check runs (evidence/ is not
    checked out in a sparse ledger, so through git plumbing: tests/attacker.py)."""
    commit_raw(led.root, dict(files))


def raw_entry(led: Ledger, seq: int) -> dict[str, Any]:
    """Entry `seq` as stored, parsed."""
    data = led.store.read_path("HEAD", entry_path(seq))
    assert data is not None
    doc: dict[str, Any] = orjson.loads(data)
    return doc


def payload_of(doc: dict[str, Any]) -> dict[str, Any]:
    """The signed statement inside a stored entry."""
    out: dict[str, Any] = json.loads(base64.b64decode(doc["envelope"]["payload"]))
    return out


def with_payload(doc: dict[str, Any], payload: bytes) -> bytes:
    """The entry with its payload bytes replaced (signature left as it was)."""
    doc["envelope"]["payload"] = base64.b64encode(payload).decode()
    return canonical_bytes(doc)


def state(led: Ledger) -> tuple[str, str]:
    """(HEAD commit, `git status --porcelain`): what must not change when input is refused."""
    return git(led, "rev-parse", "HEAD").strip(), git(led, "status", "--porcelain")
