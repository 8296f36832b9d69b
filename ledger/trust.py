"""The trusted key set: rooted in the genesis entry, changed only by signed key entries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger.keys import keyid_of, load_public_pem


@dataclass
class KeyRecord:
    """A key the ledger has named: when it became trusted and whether it was revoked."""

    keyid: str
    name: str
    pem: str
    public_key: Ed25519PublicKey
    added_seq: int
    revoked_seq: int | None = None
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        """JSON form (for checkpoints state, `keys list`, bundles)."""
        return {
            "keyid": self.keyid,
            "name": self.name,
            "public_key": self.pem,
            "added_seq": self.added_seq,
            "revoked_seq": self.revoked_seq,
            "reason": self.reason,
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KeyRecord:
        """Inverse of `to_json`."""
        return cls(
            keyid=doc["keyid"],
            name=doc["name"],
            pem=doc["public_key"],
            public_key=load_public_pem(doc["public_key"]),
            added_seq=doc["added_seq"],
            revoked_seq=doc.get("revoked_seq"),
            reason=doc.get("reason"),
        )


@dataclass
class TrustState:
    """Keys by keyid, as of some position in the chain."""

    keys: dict[str, KeyRecord] = field(default_factory=dict)

    def status(self, keyid: str, seq: int) -> str:
        """'trusted', 'revoked' or 'unknown' for a signature by `keyid` on entry `seq`."""
        record = self.keys.get(keyid)
        if record is None or seq < record.added_seq:
            return "unknown"
        if record.revoked_seq is not None and seq > record.revoked_seq:
            return "revoked"
        return "trusted"

    def add(self, key_doc: dict[str, Any], seq: int) -> KeyRecord:
        """Trust a key (from a genesis/key-add predicate) for entries after `seq`."""
        public_key = load_public_pem(key_doc["public_key"])
        keyid = keyid_of(public_key)
        if keyid != key_doc["keyid"]:
            raise ValueError(f"keyid {key_doc['keyid'][:16]}… does not match the public key")
        record = KeyRecord(keyid, key_doc["name"], key_doc["public_key"], public_key, seq + 1)
        self.keys.setdefault(keyid, record)
        return self.keys[keyid]

    def revoke(self, keyid: str, seq: int, reason: str) -> None:
        """Stop trusting `keyid` for entries after `seq`."""
        record = self.keys.get(keyid)
        if record is None:
            raise ValueError(f"cannot revoke unknown key {keyid[:16]}…")
        if record.revoked_seq is None:
            record.revoked_seq, record.reason = seq, reason

    def active(self, seq: int) -> list[KeyRecord]:
        """Keys trusted for an entry at `seq`."""
        return [r for r in self.keys.values() if self.status(r.keyid, seq) == "trusted"]

    def name_of(self, keyid: str) -> str | None:
        """The name a key was given, if the ledger knows it."""
        record = self.keys.get(keyid)
        return record.name if record else None

    def to_json(self) -> list[dict[str, Any]]:
        """Deterministic JSON form."""
        return [self.keys[k].to_json() for k in sorted(self.keys)]

    @classmethod
    def from_json(cls, docs: list[dict[str, Any]]) -> TrustState:
        """Inverse of `to_json`."""
        return cls({d["keyid"]: KeyRecord.from_json(d) for d in docs})
