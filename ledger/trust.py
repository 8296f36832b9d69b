"""The trusted key set: rooted in the genesis entry, changed only by signed key entries.

Every key has roles (TUF-style), fixed when the key is added:

- `root`: may add and revoke keys; a trust change needs `root_threshold` distinct root keys;
- `checkpoint`: may sign tree heads (checkpoint notes);
- `evidence`: may sign entries (evidence, reproduction, import, policy).

The genesis root key holds all three unless the genesis names its roles; a key-add entry
without `roles` (older ledgers) gives the `evidence` role only.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from ledger import checkpoint as notes
from ledger.canonical import digest_of
from ledger.envelope import b64decode, pae
from ledger.keys import keyid_of, load_public_pem, verify_signature

ROLES = ("root", "checkpoint", "evidence")
GENESIS_ROLES = ROLES
DEFAULT_ROLES = ("evidence",)
TRUST_KINDS = ("genesis", "key-add", "key-revoke")
#: extension line of a checkpoint note that binds the trust history below its size
TRUST_EXTENSION = "evledger-trust"


class TrustError(ValueError):
    """A trust rule was broken; `code` is a stable problem code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_roles(roles: Iterable[str]) -> tuple[str, ...]:
    """Validate and order a set of roles (raises ValueError)."""
    chosen = set(roles)
    if not chosen or not chosen <= set(ROLES):
        raise ValueError(f"roles must be a non-empty subset of {', '.join(ROLES)}")
    return tuple(r for r in ROLES if r in chosen)


@dataclass
class KeyRecord:
    """A key the ledger has named: when it became trusted, its roles, whether revoked."""

    keyid: str
    name: str
    pem: str
    public_key: Ed25519PublicKey
    added_seq: int
    revoked_seq: int | None = None
    reason: str | None = None
    roles: tuple[str, ...] = DEFAULT_ROLES

    def to_json(self) -> dict[str, Any]:
        """JSON form (for checkpoints state, `keys list`, bundles)."""
        return {
            "keyid": self.keyid,
            "name": self.name,
            "public_key": self.pem,
            "added_seq": self.added_seq,
            "revoked_seq": self.revoked_seq,
            "reason": self.reason,
            "roles": list(self.roles),
        }

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> KeyRecord:
        """Inverse of `to_json` (records without roles: genesis key all, others evidence)."""
        default = GENESIS_ROLES if doc["added_seq"] == 0 else DEFAULT_ROLES
        return cls(
            keyid=doc["keyid"],
            name=doc["name"],
            pem=doc["public_key"],
            public_key=load_public_pem(doc["public_key"]),
            added_seq=doc["added_seq"],
            revoked_seq=doc.get("revoked_seq"),
            reason=doc.get("reason"),
            roles=check_roles(doc.get("roles") or default),
        )


@dataclass
class TrustState:
    """Keys by keyid, the root threshold and the key-entry history, as of some seq."""

    keys: dict[str, KeyRecord] = field(default_factory=dict)
    root_threshold: int = 1
    #: (seq, digest) of the genesis and every key entry applied so far
    history: list[tuple[int, str]] = field(default_factory=list)

    def status(self, keyid: str, seq: int) -> str:
        """'trusted', 'revoked' or 'unknown' for a signature by `keyid` on entry `seq`."""
        record = self.keys.get(keyid)
        if record is None or seq < record.added_seq:
            return "unknown"
        if record.revoked_seq is not None and seq > record.revoked_seq:
            return "revoked"
        return "trusted"

    def has_role(self, keyid: str, role: str, seq: int) -> bool:
        """True if `keyid` is trusted at `seq` and holds `role`."""
        return self.status(keyid, seq) == "trusted" and role in self.keys[keyid].roles

    def add(
        self, key_doc: dict[str, Any], seq: int, *, default_roles: tuple[str, ...] = DEFAULT_ROLES
    ) -> KeyRecord:
        """Trust a key (from a genesis/key-add predicate) for entries after `seq`."""
        public_key = load_public_pem(key_doc["public_key"])
        keyid = keyid_of(public_key)
        if keyid != key_doc["keyid"]:
            raise ValueError(f"keyid {key_doc['keyid'][:16]}… does not match the public key")
        roles = check_roles(key_doc.get("roles") or default_roles)
        record = KeyRecord(
            keyid, key_doc["name"], key_doc["public_key"], public_key, seq + 1, roles=roles
        )
        if keyid in self.keys:
            raise ValueError(f"key {keyid[:16]}… is already known to the ledger")
        self.keys[keyid] = record
        return record

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

    def with_role(self, role: str, seq: int) -> list[KeyRecord]:
        """Keys trusted at `seq` that hold `role`."""
        return [r for r in self.active(seq) if role in r.roles]

    def name_of(self, keyid: str) -> str | None:
        """The name a key was given, if the ledger knows it."""
        record = self.keys.get(keyid)
        return record.name if record else None

    def history_digest(self, size: int | None = None) -> str:
        """Digest of the key-entry history below `size` (all of it if None)."""
        rows = [[s, d] for s, d in self.history if size is None or s < size]
        return digest_of(rows)

    def copy(self) -> TrustState:
        """An independent copy."""
        return TrustState.from_doc(self.to_doc())

    def to_json(self) -> list[dict[str, Any]]:
        """Deterministic JSON form of the keys."""
        return [self.keys[k].to_json() for k in sorted(self.keys)]

    @classmethod
    def from_json(cls, docs: list[dict[str, Any]]) -> TrustState:
        """Inverse of `to_json`."""
        return cls({d["keyid"]: KeyRecord.from_json(d) for d in docs})

    def to_doc(self) -> dict[str, Any]:
        """Everything, for state files (keys, threshold, history)."""
        return {
            "keys": self.to_json(),
            "root_threshold": self.root_threshold,
            "history": [[s, d] for s, d in self.history],
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TrustState:
        """Inverse of `to_doc`."""
        state = cls.from_json(doc["keys"])
        state.root_threshold = int(doc.get("root_threshold", 1))
        state.history = [(int(s), str(d)) for s, d in doc.get("history", [])]
        return state


def valid_signers(envelope: dict[str, Any], trust: TrustState, seq: int, role: str) -> set[str]:
    """Distinct keyids holding `role` at `seq` whose DSSE signature on `envelope` verifies."""
    try:
        message = pae(envelope["payloadType"], b64decode(envelope["payload"]))
        sigs = list(envelope["signatures"])
    except (KeyError, TypeError, ValueError):
        return set()
    found: set[str] = set()
    for item in sigs:
        keyid = item.get("keyid", "") if isinstance(item, dict) else ""
        if keyid in found or not trust.has_role(keyid, role, seq):
            continue
        try:
            sig = b64decode(item["sig"])
        except (KeyError, TypeError, ValueError):
            continue
        if verify_signature(trust.keys[keyid].public_key, sig, message):
            found.add(keyid)
    return found


def apply_trust_entry(
    trust: TrustState, kind: str, predicate: dict[str, Any], envelope: dict[str, Any], seq: int
) -> None:
    """Apply a key-add or key-revoke entry after checking its root signatures.

    Raises TrustError: `wrong-role` (no signer holds the root role), `threshold-not-met`
    (fewer distinct root signers than the threshold), `bad-trust-entry` (unusable content).
    """
    signers = valid_signers(envelope, trust, seq, "root")
    if not signers:
        raise TrustError("wrong-role", f"{kind} at seq {seq} is not signed by a root key")
    if len(signers) < trust.root_threshold:
        raise TrustError(
            "threshold-not-met",
            f"{kind} at seq {seq} has {len(signers)} of the {trust.root_threshold} root "
            "signatures it needs",
        )
    try:
        if kind == "key-add":
            trust.add(predicate["key"], seq)
            threshold = predicate.get("root_threshold")
        else:
            record = trust.keys.get(str(predicate["keyid"]))
            if record is not None and "root" in record.roles:
                left = len(trust.with_role("root", seq + 1)) - 1
                if left < max(trust.root_threshold, 1):
                    raise ValueError(
                        f"revoking it leaves {left} root keys, threshold is {trust.root_threshold}"
                    )
            trust.revoke(predicate["keyid"], seq, str(predicate.get("reason", "")))
            threshold = None
    except (KeyError, TypeError, ValueError) as e:
        raise TrustError("bad-trust-entry", f"{kind} at seq {seq}: {e}") from e
    if threshold is not None:
        roots = len(trust.with_role("root", seq + 1))
        if not isinstance(threshold, int) or not 1 <= threshold <= roots:
            raise TrustError(
                "bad-trust-entry", f"root_threshold {threshold!r} needs 1..{roots} root keys"
            )
        trust.root_threshold = threshold


def genesis_trust(predicate: dict[str, Any], digest: str) -> TrustState:
    """The trust a genesis entry establishes: its root key (all roles unless it says)."""
    trust = TrustState()
    trust.add(predicate["root_key"], -1, default_roles=GENESIS_ROLES)
    trust.keys[predicate["root_key"]["keyid"]].added_seq = 0
    trust.history.append((0, digest))
    return trust


def checkpoint_signers(note: str, trust: TrustState, size: int) -> list[KeyRecord]:
    """Keys holding the checkpoint role at `size` whose signature on the note verifies.

    Raises TrustError: `bad-checkpoint` (malformed, or a checkpoint key's signature fails),
    `revoked-key` / `wrong-role` / `untrusted-key` (signed only by a key revoked before
    `size`, by a key without the checkpoint role, or by no key the ledger knows).
    """
    try:
        _, sigs = notes.split_note(note)
    except notes.CheckpointError as e:
        raise TrustError("bad-checkpoint", str(e)) from e
    allowed = {r.name: r.public_key for r in trust.with_role("checkpoint", size)}
    try:
        notes.verify_note(note, allowed)
    except notes.CheckpointError as e:
        if "does not verify" in str(e) or "no signature" not in str(e):
            raise TrustError("bad-checkpoint", str(e)) from e
        for sig in sigs:  # why no allowed key signed: name the closest reason
            for record in trust.keys.values():
                if notes.note_key_id(sig.name, record.public_key) != sig.key_id:
                    continue
                if trust.status(record.keyid, size) == "revoked":
                    raise TrustError(
                        "revoked-key",
                        f"checkpoint {size} is signed by {record.name!r}, revoked at seq "
                        f"{record.revoked_seq}",
                    ) from None
                raise TrustError(
                    "wrong-role",
                    f"checkpoint {size} is signed by {record.name!r}, which does not hold "
                    f"the checkpoint role (roles: {', '.join(record.roles)})",
                ) from None
        raise TrustError(
            "untrusted-key", f"checkpoint {size} is not signed by any key the ledger trusts"
        ) from None
    ids = {sig.key_id for sig in sigs}
    return [
        r
        for r in trust.with_role("checkpoint", size)
        if notes.note_key_id(r.name, r.public_key) in ids
    ]


def check_trust_binding(cp: notes.Checkpoint, trust: TrustState) -> None:
    """Raise TrustError `trust-mismatch` unless the note's trust line matches the history."""
    lines = [e for e in cp.extensions if e.startswith(TRUST_EXTENSION + " ")]
    if len(lines) != 1:
        raise TrustError("trust-unbound", f"checkpoint {cp.size} has no {TRUST_EXTENSION} line")
    if lines[0].split(" ", 1)[1] != trust.history_digest(cp.size):
        raise TrustError(
            "trust-mismatch",
            f"checkpoint {cp.size} binds another key history than the key entries given "
            "(a key entry was left out or altered)",
        )


@dataclass(frozen=True)
class TrustPolicy:
    """What a reader demands: pinned keys (PEM bytes), a genesis, witnesses and a quorum."""

    pinned_keys: tuple[bytes, ...] = ()
    genesis: str | None = None
    witnesses: tuple[Ed25519PublicKey, ...] = ()
    quorum: int = 0


def load_witness_key(data: bytes, *, path: Any = None) -> Ed25519PublicKey:
    """A witness public key from PEM or from a C2SP cosignature verifier key (vkey)."""
    from ledger.errors import InputError

    text = data.decode("utf-8", errors="replace").strip()
    if text.startswith("-----BEGIN"):
        return load_public_pem(data, path=path)
    try:
        _, key, cosigner = notes.parse_vkey(text)
    except notes.CheckpointError as e:
        raise InputError(f"not a witness key (PEM or verifier key): {e}", path=path) from e
    if not cosigner:
        raise InputError("verifier key is a log key, not a cosignature key", path=path)
    return key


def load_trust_policy(path: Any) -> TrustPolicy:
    """Read a trust policy TOML file: `trusted_keys`, `genesis`, `witnesses`, `quorum`.

    Key entries are file paths (relative to the policy file) or inline verifier keys.
    """
    import tomllib
    from pathlib import Path

    from ledger.errors import InputError
    from ledger.files import MAX_KEY_BYTES, read_regular_file

    path = Path(path)
    try:
        doc = tomllib.loads(read_regular_file(path, what="trust policy").decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"not a TOML trust policy: {e}", path=path) from e
    unknown = set(doc) - {"trusted_keys", "genesis", "witnesses", "quorum"}
    if unknown:
        raise InputError(f"unknown trust policy fields: {', '.join(sorted(unknown))}", path=path)

    def read(item: Any) -> bytes:
        if not isinstance(item, str):
            raise InputError("key entries must be strings", path=path)
        if "+" in item and not (path.parent / item).exists():
            return item.encode()
        return read_regular_file(path.parent / item, max_bytes=MAX_KEY_BYTES, what="key")

    pinned = tuple(read(k) for k in doc.get("trusted_keys", []))
    for key in pinned:
        load_public_pem(key, path=path)
    witnesses = tuple(load_witness_key(read(k), path=path) for k in doc.get("witnesses", []))
    quorum = doc.get("quorum", len(witnesses) and 1)
    genesis = doc.get("genesis")
    if not isinstance(quorum, int) or not 0 <= quorum <= len(witnesses):
        raise InputError(f"quorum must be 0..{len(witnesses)} (the witnesses named)", path=path)
    if genesis is not None and not isinstance(genesis, str):
        raise InputError("genesis must be a digest string", path=path)
    return TrustPolicy(pinned, genesis, witnesses, quorum)
