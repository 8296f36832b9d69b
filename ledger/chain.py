"""Ledger entries: building a signed, chained entry, and parsing one back."""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from typing import Any

import orjson

from ledger.canonical import canonical_bytes, check_json_safe, sha256_digest
from ledger.envelope import PAYLOAD_TYPE, b64decode, sign_envelope
from ledger.keys import SigningKey

KINDS = ("genesis", "evidence", "reproduction", "import", "key-add", "key-revoke", "policy")


def utc_now() -> str:
    """RFC 3339 UTC timestamp with second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    """One ledger entry as stored: the canonical bytes and what they say."""

    seq: int
    prev: str | None
    kind: str
    envelope: dict[str, Any]
    raw: bytes
    digest: str
    path: str = ""
    _statement: dict[str, Any] | None = field(default=None, repr=False)
    signer: str | None = None
    """The keyid whose signature verified (set only by verification; None when unverified)."""

    @cached_property
    def statement(self) -> dict[str, Any]:
        """The decoded in-toto statement (the signed payload)."""
        if self._statement is None:
            doc = orjson.loads(b64decode(self.envelope["payload"]))
            if not isinstance(doc, dict):
                raise ValueError("payload is not a JSON object")
            self._statement = doc
        return self._statement

    def set_statement(self, statement: dict[str, Any]) -> None:
        """Record the statement a verifier already decoded (no second decode)."""
        self._statement = statement
        self.__dict__.pop("statement", None)

    @property
    def predicate_type(self) -> str:
        """The statement's predicateType."""
        return str(self.statement.get("predicateType", ""))

    @property
    def predicate(self) -> dict[str, Any]:
        """The statement's predicate (empty dict if absent)."""
        pred = self.statement.get("predicate")
        return pred if isinstance(pred, dict) else {}

    @property
    def time(self) -> str:
        """When the entry was appended (from the signed ledger block)."""
        return str(self.predicate.get("ledger", {}).get("time", ""))

    @property
    def runner(self) -> str | None:
        """Runner name for runner evidence, the legacy schema_id for legacy evidence."""
        runner = self.predicate.get("runner")
        if isinstance(runner, dict) and isinstance(runner.get("name"), str):
            return runner["name"]
        schema_id = self.predicate.get("schema_id")
        return schema_id if isinstance(schema_id, str) else None

    @property
    def signer_keyids(self) -> list[str]:
        """Keyids named by the envelope's signatures."""
        return [
            s.get("keyid", "") for s in self.envelope.get("signatures", []) if isinstance(s, dict)
        ]

    @property
    def subjects(self) -> list[dict[str, Any]]:
        """The statement's subject list."""
        subject = self.statement.get("subject")
        return subject if isinstance(subject, list) else []


def build_entry(
    statement: dict[str, Any],
    *,
    kind: str,
    seq: int,
    prev: str | None,
    keys: list[SigningKey],
    time: str | None = None,
) -> Entry:
    """Bind `statement` to its chain position, sign it, and return the canonical entry."""
    if kind not in KINDS:
        raise ValueError(f"unknown entry kind {kind!r}")
    statement = copy.deepcopy(statement)
    check_json_safe(statement)
    predicate = statement.setdefault("predicate", {})
    predicate["ledger"] = {"seq": seq, "prev": prev, "kind": kind, "time": time or utc_now()}
    payload = canonical_bytes(statement)
    envelope = sign_envelope(payload, keys, PAYLOAD_TYPE)
    doc = {"seq": seq, "prev": prev, "kind": kind, "envelope": envelope}
    raw = canonical_bytes(doc)
    return Entry(seq, prev, kind, envelope, raw, sha256_digest(raw), _statement=statement)


def parse_entry(raw: bytes, path: str = "") -> Entry:
    """Parse stored entry bytes (raises ValueError if they are not an entry object)."""
    return entry_from_doc(orjson.loads(raw), raw, sha256_digest(raw), path)


def entry_from_doc(doc: Any, raw: bytes, digest: str, path: str = "") -> Entry:
    """An Entry from its already-parsed JSON (raises ValueError if it is not an entry)."""
    if not isinstance(doc, dict):
        raise ValueError("entry is not a JSON object")
    seq, kind, envelope = doc.get("seq"), doc.get("kind"), doc.get("envelope")
    if not isinstance(seq, int) or isinstance(seq, bool) or not isinstance(kind, str):
        raise ValueError("entry lacks an integer seq or a kind")
    if not isinstance(envelope, dict):
        raise ValueError("entry lacks an envelope")
    prev = doc.get("prev")
    return Entry(seq, prev if isinstance(prev, str) else None, kind, envelope, raw, digest, path)
