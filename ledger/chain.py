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
from ledger.statement import Predicate, Statement, Subject

KINDS = ("genesis", "evidence", "reproduction", "import", "key-add", "key-revoke", "policy")


def utc_now() -> str:
    """RFC 3339 UTC timestamp with second precision."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Entry:
    """One ledger entry as stored: the canonical bytes, and the statement they carry."""

    seq: int
    prev: str | None
    kind: str
    envelope: dict[str, Any]
    raw: bytes
    digest: str
    path: str = ""
    _document: dict[str, Any] | None = field(default=None, repr=False)
    signer: str | None = None
    """The keyid whose signature verified (set only by verification; None when unverified)."""

    @cached_property
    def document(self) -> dict[str, Any]:
        """The signed payload, decoded: the statement object exactly as signed."""
        if self._document is None:
            doc = orjson.loads(b64decode(self.envelope["payload"]))
            if not isinstance(doc, dict):
                raise ValueError("payload is not a JSON object")
            self._document = doc
        return self._document

    @cached_property
    def statement(self) -> Statement:
        """The typed statement (see `ledger.statement`)."""
        return Statement.from_dict(self.document)

    def set_document(self, document: dict[str, Any]) -> None:
        """Record the payload a verifier already decoded (no second decode)."""
        self._document = document
        self.__dict__.pop("document", None)
        self.__dict__.pop("statement", None)

    @property
    def predicate(self) -> Predicate:
        """The statement's typed predicate."""
        return self.statement.predicate

    @property
    def predicate_type(self) -> str:
        """The statement's predicateType."""
        return self.statement.predicate_type

    @property
    def time(self) -> str:
        """When the entry was appended (from the signed ledger block)."""
        binding = self.predicate.binding
        return binding.time if binding is not None else ""

    @property
    def signer_keyids(self) -> list[str]:
        """Keyids named by the envelope's signatures (unverified hints; see `signer`)."""
        return [
            s.get("keyid", "") for s in self.envelope.get("signatures", []) if isinstance(s, dict)
        ]

    @property
    def subjects(self) -> tuple[Subject, ...]:
        """The statement's subjects."""
        return self.statement.subject


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
    return Entry(seq, prev, kind, envelope, raw, sha256_digest(raw), _document=statement)


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
