"""The ledger facade used by the CLI, the runners and the TUI."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import git

import schemas
from ledger import checkpoint as notes
from ledger.canonical import canonical_bytes, digest_of, loads_strict, sha256_digest
from ledger.chain import Entry, build_entry, parse_entry
from ledger.envelope import STATEMENT_TYPE, parse_envelope, verify_foreign
from ledger.errors import InputError, LedgerError, SigningKeyError, UsageError
from ledger.files import read_regular_file
from ledger.gate import packaged_policy_files
from ledger.keys import (
    SigningKey,
    default_key_name,
    generate_key,
    keyid_of,
    load_key,
    load_public_pem,
    public_pem,
)
from ledger.statement import Genesis
from ledger.store import Store, entry_path
from ledger.trust import TRUST_EXTENSION
from ledger.verify import (
    CHECKPOINT_DIR,
    STATE_EXTENSION,
    Report,
    checkpoint_state,
    entry_problems,
    iter_entries,
    verify_ledger,
)
from ledger.view import TrustAnchor, VerifiedView, verified_view


@dataclass(frozen=True)
class Prepared:
    """A validated input waiting to be appended."""

    statement: dict[str, Any]
    kind: str
    source: str


def find_ledger_root(path: Path | None = None) -> Path:
    """`path`, else $EVLEDGER_LEDGER, else the git root of the current folder."""
    if path is not None:
        return Path(path)
    if env := os.environ.get("EVLEDGER_LEDGER"):
        return Path(env)
    try:
        repo = git.Repo(Path.cwd(), search_parent_directories=True)
    except git.InvalidGitRepositoryError as e:
        raise UsageError("not inside a ledger (no git repository here); use --ledger PATH") from e
    return Path(repo.working_tree_dir or repo.git_dir)


def open_ledger(path: Path | str | None = None) -> Ledger:
    """Open an existing ledger."""
    return Ledger(find_ledger_root(Path(path) if path else None))


def init_ledger(path: Path, key_name: str | None = None) -> tuple[Ledger, Entry]:
    """Create a ledger: git repository, genesis entry naming the root key, keys/ and evidence/."""
    path.mkdir(parents=True, exist_ok=True)
    if (path / ".git").exists():
        repo = git.Repo(path)
        if Ledger(path).tip() is not None:
            raise UsageError(f"{path} is already a ledger")
        with repo.config_writer() as cfg:
            # a project repository keeps its full index and entry files in the working
            # tree; a split, v4 index keeps each append's index write small
            cfg.set_value("core", "splitIndex", "true")
            cfg.set_value("index", "version", "4")
    else:
        git.Repo.init(path, initial_branch="main")
        # a new ledger keeps evidence/ as one sparse-index entry: appends stay O(1) in size
        Store(path).enable_sparse_evidence()
    key = _signing_key(key_name, create=True)
    ledger = Ledger(path)
    origin = f"evledger.dev/ledger/{secrets.token_hex(8)}"
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"key:{key.name}", "digest": {"sha256": key.keyid}}],
        "predicateType": schemas.predicate_type("genesis"),
        "predicate": {"origin": origin, "root_key": _key_doc(key.name, key)},
    }
    with ledger.store.lock():
        entry = build_entry(statement, kind="genesis", seq=0, prev=None, keys=[key])
        files = {
            entry_path(0): entry.raw,
            f"keys/{key.name}.pub": public_pem(key.public_key).encode(),
        }
        files.update(packaged_policy_files())  # default gate policies -> policies/*.toml
        ledger.store.commit_files(files, f"evledger: genesis ({origin})", ledger.store.resolve())
    return ledger, entry


def _key_doc(name: str, key: SigningKey) -> dict[str, str]:
    return {"keyid": key.keyid, "name": name, "public_key": public_pem(key.public_key)}


def signing_key(name: str | None) -> SigningKey:
    """The local signing key `name` (default $EVLEDGER_KEY, else the only key)."""
    return _signing_key(name)


def _signing_key(name: str | None, *, create: bool = False) -> SigningKey:
    name = name or default_key_name()
    try:
        return load_key(name)
    except SigningKeyError:
        if not create:
            raise
        return generate_key(name)


@dataclass(frozen=True)
class ForeignKey:
    """A public key a foreign DSSE envelope may be verified with, and why it is believed."""

    keyid: str
    name: str
    pem: str
    how: str  # "signer-key" (named by the user) | "ledger-key" (trusted by this ledger)

    def doc(self) -> dict[str, str]:
        """The `foreign_keys` item an import records."""
        return {"keyid": self.keyid, "name": self.name, "public_key": self.pem}


def foreign_keys_from_pems(pems: Sequence[bytes], *, how: str = "signer-key") -> list[ForeignKey]:
    """ForeignKeys from PEM public keys (named `signer-1`, `signer-2`, ...)."""
    from ledger.keys import load_public_pem

    out = []
    for i, pem in enumerate(pems, 1):
        public = load_public_pem(pem)
        out.append(ForeignKey(keyid_of(public), f"signer-{i}", public_pem(public), how))
    return out


def prepare_input(path: Path, *, foreign_keys: Sequence[ForeignKey] = ()) -> Prepared:
    """Read and validate one input file: our statement, legacy POC evidence or a DSSE envelope
    (which must carry a signature that verifies under one of `foreign_keys`)."""
    raw = read_regular_file(path, what="evidence")
    doc = loads_strict(raw, path=path)
    if not isinstance(doc, dict):
        raise InputError("not a JSON object", path=path)
    if "schema_id" in doc:
        return _prepare_legacy(doc, raw, path)
    if "payloadType" in doc:
        return _prepare_import(doc, path, foreign_keys)
    if doc.get("_type") == STATEMENT_TYPE:
        return _prepare_statement(doc, path)
    raise InputError("not an in-toto statement, DSSE envelope or legacy POC evidence", path=path)


def _prepare_legacy(doc: dict[str, Any], raw: bytes, path: Path) -> Prepared:
    schema_id = doc["schema_id"]
    rel = schemas.legacy_schema_path(str(schema_id))
    if rel is None:
        raise InputError(f"unknown schema_id {schema_id!r}", path=path)
    if errs := schemas.errors(rel, doc):
        raise InputError(f"does not match {schema_id}: {errs[0]}", path=path)
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": path.name, "digest": {"sha256": sha256_digest(raw)[7:]}}],
        "predicateType": schemas.predicate_type("legacy"),
        "predicate": {"schema_id": schema_id, "document": doc, "source": {"file": path.name}},
    }
    return Prepared(statement, "evidence", str(path))


def _prepare_import(
    doc: dict[str, Any], path: Path, foreign_keys: Sequence[ForeignKey]
) -> Prepared:
    try:
        env = parse_envelope(doc)
        inner = loads_strict(env.payload, path=path)
    except ValueError as e:
        raise InputError(f"not a DSSE envelope: {e}", path=path) from e
    by_id = {k.keyid: k for k in foreign_keys}
    try:
        keyid = verify_foreign(doc, {k: load_public_pem(v.pem) for k, v in by_id.items()})
    except ValueError as e:
        raise InputError(
            f"foreign envelope not verified: {e}; pass its signer's public key with "
            "--signer-key PUB (or have a trusted key add it with `evledger keys trust`)",
            path=path,
        ) from e
    subject = [
        s
        for s in (inner.get("subject") if isinstance(inner, dict) else None) or []
        if isinstance(s, dict) and schemas.is_valid("subject.v1.schema.json", s)
    ]
    if not subject:  # no usable subject inside: the statement is about the payload itself
        subject = [{"name": path.name, "digest": {"sha256": sha256_digest(env.payload)[7:]}}]
    signer = by_id[keyid]
    statement = {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": schemas.predicate_type("import"),
        "predicate": {
            "envelope": doc,
            "source": {"file": path.name, "verified_with": signer.how},
            "foreign_keys": [signer.doc()],
        },
    }
    return Prepared(statement, "import", str(path))


def _is_envelope_file(path: Path) -> bool:
    """Cheap sniff: does the file look like a DSSE envelope (decides whether trust is loaded)."""
    try:
        return b'"payloadType"' in read_regular_file(path, what="evidence")
    except InputError:
        return False


def _prepare_statement(doc: dict[str, Any], path: Path | None) -> Prepared:
    probe = dict(doc)
    probe["predicate"] = {**doc.get("predicate", {}), "ledger": _PROBE_BINDING}
    if errs := schemas.errors("statement.v1.schema.json", probe):
        raise InputError(f"not a valid statement: {errs[0]}", path=path)
    rel = schemas.predicate_schema_path(str(doc["predicateType"]))
    if rel is None:
        raise InputError(f"no schema for predicateType {doc['predicateType']}", path=path)
    if errs := schemas.errors(rel, probe["predicate"]):
        raise InputError(f"predicate does not match its schema: {errs[0]}", path=path)
    if rel.startswith(("predicates/genesis", "predicates/key-")):
        raise InputError("key and genesis entries are made by `evledger keys`/`init`", path=path)
    kind = "reproduction" if "reproduction" in rel else "policy" if "policy" in rel else "evidence"
    return Prepared(doc, kind, str(path) if path else "<statement>")


_PROBE_BINDING = {"seq": 0, "prev": None, "kind": "evidence", "time": "2000-01-01T00:00:00Z"}


class Ledger:
    """An evledger ledger in a git repository."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = Store(root)

    # ------------------------------------------------------------- reading
    def view(
        self, anchor: TrustAnchor | None = None, *, rev: str = "HEAD", progress: Any = None
    ) -> VerifiedView:
        """The verified view: what every command that decides reads (see `ledger.view`)."""
        return verified_view(self, anchor, rev=rev, progress=progress)

    def entries(self, rev: str = "HEAD") -> Iterator[Entry]:
        """All entries in seq order, NOT verified: for the store's own bookkeeping only;
        anything that decides or shows a verdict reads `view()`."""
        if self.store.resolve(rev) is None:
            return iter(())
        return iter_entries(self.store, rev)

    def tip(self, rev: str = "HEAD") -> tuple[int, str] | None:
        """(seq, digest) of the newest entry, or None for an empty ledger.

        It comes from the chain, not from the highest file name: the listing must be
        exactly entries 0..n-1 (`Store.chain_listing`) and the newest entry must say it is
        seq n-1; otherwise this raises `LedgerError` (appending would fork or overwrite).
        """
        listing = self.store.chain_listing(rev)
        if listing.size == 0 or listing.tip_blob is None:
            return None
        seq = listing.size - 1
        raw = self.store.read_blob(listing.tip_blob)
        try:
            entry = parse_entry(raw, entry_path(seq))
        except ValueError as e:
            raise LedgerError(
                f"refusing to append: the newest entry (seq {seq}) is not an entry ({e}); "
                "run `evledger verify` for details"
            ) from e
        if entry.seq != seq:
            raise LedgerError(
                f"refusing to append: the entry at position {seq} says it is seq {entry.seq}; "
                "run `evledger verify` for details"
            )
        return seq, sha256_digest(raw)

    def resolve(self, ref: str) -> Entry:
        """A verified entry by seq, digest (prefix), `latest` or `RUNNER@latest`."""
        return self.view().resolve(ref)

    # ------------------------------------------------------------- writing
    def append(
        self, statements: Sequence[dict[str, Any]], *, key_name: str | None = None
    ) -> list[Entry]:
        """Validate, sign and append our statements (all in one commit, or none)."""
        prepared = [_prepare_statement(s, None) for s in statements]
        return self.append_prepared(prepared, key_name=key_name)

    def append_files(
        self,
        paths: Sequence[Path],
        *,
        key_name: str | None = None,
        signer_keys: Sequence[bytes] = (),
    ) -> list[Entry]:
        """Validate every file first, then append them all in one commit. A DSSE envelope must
        verify under one of `signer_keys` (PEM) or a key this ledger trusts."""
        for path in paths:
            self._check_outside_git_dir(path)
        foreign = foreign_keys_from_pems(signer_keys)
        if any(_is_envelope_file(p) for p in paths):
            foreign += [
                ForeignKey(k["keyid"], k["name"], k["public_key"], "ledger-key")
                for k in self.trusted_keys()
            ]
        prepared = [prepare_input(p, foreign_keys=foreign) for p in paths]
        return self.append_prepared(prepared, key_name=key_name)

    def _check_outside_git_dir(self, path: Path) -> None:
        resolved = Path(os.path.abspath(path))
        if resolved.is_relative_to(self.store.git_dir.resolve()):
            raise InputError("refusing to read inside the ledger's .git folder", path=path)

    def append_prepared(
        self,
        prepared: Sequence[Prepared],
        *,
        key_name: str | None = None,
        kind: str | None = None,
        extra_files: dict[str, bytes | None] | None = None,
        also_sign: Sequence[str] = (),
    ) -> list[Entry]:
        """Sign and append already-validated inputs in one commit, under the append lock.

        `also_sign` names more keys that sign every entry (a root threshold above one).
        """
        if not prepared:
            raise UsageError("nothing to append")
        key = _signing_key(key_name)
        self._check_signer(key)
        signers = [key, *(_signing_key(n) for n in also_sign if n != key.name)]
        with self.store.lock():
            parent = self.store.resolve()
            tip = self.tip(parent) if parent is not None else None  # the locked commit
            if tip is None:
                raise LedgerError(
                    "the ledger has no genesis entry; run `evledger init`", path=self.root
                )
            seq, prev = tip[0] + 1, tip[1]
            entries, files = [], dict(extra_files or {})
            for item in prepared:
                entry = build_entry(
                    item.statement, kind=kind or item.kind, seq=seq, prev=prev, keys=signers
                )
                if problems := entry_problems(entry):  # what verify would refuse is never signed
                    first = problems[0]
                    raise InputError(f"{first.code}: {first.message}", path=item.source)
                entry.signer = key.keyid
                entries.append(entry)
                files[entry_path(seq)] = entry.raw
                seq, prev = seq + 1, entry.digest
            first, last = entries[0].seq, entries[-1].seq
            span = f"seq {first}" if first == last else f"seq {first}..{last}"
            noun = "entry" if len(entries) == 1 else "entries"
            message = f"evledger: append {len(entries)} {noun} ({span})"
            self.store.commit_files(files, message, parent)
        return entries

    def _check_signer(self, key: SigningKey) -> None:
        """Refuse early if the signing key is not one the ledger lists as trusted."""
        listed = {keyid_of_pem(data) for data in self._public_key_files().values()}
        if listed and key.keyid not in listed:
            raise SigningKeyError(
                f"key {key.name!r} ({key.keyid[:16]}…) is not trusted by this ledger; "
                "a trusted key must add it with `evledger keys trust`"
            )

    def _public_key_files(self) -> dict[str, bytes]:
        """keys/*.pub at HEAD (read through GitPython's persistent cat-file: no process spawn)."""
        commit = self.store.resolve()
        if commit is None:
            return {}
        try:
            folder = self.store.repo.commit(commit).tree / "keys"
        except KeyError:
            return {}
        return {b.path: b.data_stream.read() for b in folder.blobs if b.name.endswith(".pub")}

    def add_key(
        self,
        pem: bytes,
        name: str,
        *,
        key_name: str | None = None,
        roles: Sequence[str] = ("evidence",),
        also_sign: Sequence[str] = (),
        root_threshold: int | None = None,
    ) -> Entry:
        """Append a key-add entry giving the key `roles`, signed by enough root keys."""
        from ledger.keys import check_name, load_public_pem
        from ledger.trust import check_roles

        check_name(name)
        public = load_public_pem(pem)
        try:
            chosen = check_roles(roles)
        except ValueError as e:
            raise UsageError(str(e)) from e
        doc = {
            "keyid": keyid_of(public),
            "name": name,
            "public_key": public_pem(public),
            "roles": list(chosen),
        }
        known = self.verify().trusted_keys  # every key the trust history named, revoked too
        for record in known:
            if record["name"] == name:
                raise UsageError(
                    f"a key named {name!r} is already in this ledger's trust history "
                    f"({record['keyid'][:16]}…); choose another --name"
                )
            if record["keyid"] == doc["keyid"] and record["revoked_seq"] is None:
                raise UsageError(f"that key is already trusted as {record['name']!r}")
        if self.store.read_path("HEAD", f"keys/{name}.pub") is not None:
            raise UsageError(f"keys/{name}.pub already exists; choose another --name")
        predicate: dict[str, Any] = {"key": doc}
        if root_threshold is not None:
            predicate["root_threshold"] = root_threshold
        statement = {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": f"key:{name}", "digest": {"sha256": doc["keyid"]}}],
            "predicateType": schemas.predicate_type("key-add"),
            "predicate": predicate,
        }
        self._check_trust_change("key-add", predicate, key_name, also_sign)
        files = {f"keys/{name}.pub": doc["public_key"].encode()}
        [entry] = self.append_prepared(
            [Prepared(statement, "key-add", name)],
            key_name=key_name,
            extra_files=files,
            also_sign=also_sign,
        )
        return entry

    def _check_trust_change(
        self, kind: str, predicate: dict[str, Any], key_name: str | None, also_sign: Sequence[str]
    ) -> None:
        """Refuse a trust change before it is made unless it would verify (roles, threshold)."""
        from ledger.envelope import PAYLOAD_TYPE, sign_envelope
        from ledger.trust import TrustError, apply_trust_entry

        report = self.verify()
        tip = self.tip()
        if report.trust is None or tip is None:
            raise LedgerError("the ledger has no verifiable genesis", path=self.root)
        keys = [_signing_key(key_name)]
        keys += [_signing_key(n) for n in also_sign if n != keys[0].name]
        probe = sign_envelope(b"{}", keys, PAYLOAD_TYPE)
        try:
            apply_trust_entry(report.trust.copy(), kind, predicate, probe, tip[0] + 1)
        except TrustError as e:
            raise SigningKeyError(f"refused ({e.code}): {e}") from e

    def revoke_key(
        self,
        keyid: str,
        reason: str,
        *,
        key_name: str | None = None,
        also_sign: Sequence[str] = (),
    ) -> Entry:
        """Append a key-revoke entry; later signatures by that key are rejected."""
        if not reason.strip():
            raise UsageError("a revocation needs a --reason")
        trusted = self.trusted_keys()
        matches = [k for k in trusted if k["keyid"].startswith(keyid)]
        if len(matches) != 1:
            raise UsageError(
                f"{'no' if not matches else 'more than one'} trusted key matches {keyid!r}"
            )
        target = matches[0]
        if len(trusted) == 1:
            raise UsageError("refusing to revoke the last trusted key")
        statement = {
            "_type": STATEMENT_TYPE,
            "subject": [{"name": f"key:{target['name']}", "digest": {"sha256": target["keyid"]}}],
            "predicateType": schemas.predicate_type("key-revoke"),
            "predicate": {"keyid": target["keyid"], "reason": reason},
        }
        self._check_trust_change("key-revoke", statement["predicate"], key_name, also_sign)
        [entry] = self.append_prepared(
            [Prepared(statement, "key-revoke", keyid)],
            key_name=key_name,
            extra_files={f"keys/{target['name']}.pub": None},  # same commit: no window
            also_sign=also_sign,
        )
        return entry

    def trusted_keys(self) -> list[dict[str, Any]]:
        """Keys trusted at the tip (from a full walk of the trust entries)."""
        report = self.verify()
        return [k for k in report.trusted_keys if k["revoked_seq"] is None]

    # ------------------------------------------------------------- verifying
    def verify(self, **kwargs: Any) -> Report:
        """Full verification (see `ledger.verify.verify_ledger`)."""
        return verify_ledger(self.store, **kwargs)

    def checkpoint(self, *, key_name: str | None = None) -> tuple[str, notes.Checkpoint]:
        """Verify, then sign a tree head over all entries and store it under checkpoints/.

        Beside the note goes a state file (Merkle frontier, tip digest, trust state, the
        commit that holds exactly these entries); the note binds its digest in an extension
        line, so `verify --since` can resume from it and read only the newer entries.
        """
        key = _signing_key(key_name)
        self._check_signer(key)
        with self.store.lock():
            parent = self.store.resolve()
            report = self.verify(rev=parent or "HEAD")
            if not report.ok:
                first = report.problems[0]
                raise LedgerError(
                    f"refusing to sign a checkpoint over a ledger that does not verify "
                    f"(seq {first.seq}: {first.code})",
                    path=self.root,
                )
            record = next(
                (
                    k
                    for k in report.trusted_keys
                    if k["keyid"] == key.keyid and k["revoked_seq"] is None
                ),
                None,
            )
            if record is None:
                raise SigningKeyError(
                    f"key {key.name!r} ({key.keyid[:16]}…) is not trusted by this ledger; "
                    "only a trusted key may sign its checkpoints"
                )
            raw_genesis = self.store.read_path(parent, entry_path(0)) if parent else None
            if raw_genesis is None or parent is None or report.trust is None:
                raise LedgerError("the ledger has no genesis entry", path=self.root)
            if not report.trust.has_role(key.keyid, "checkpoint", report.entries):
                raise SigningKeyError(
                    f"refused (wrong-role): key {key.name!r} does not hold the checkpoint role "
                    f"at size {report.entries}"
                )
            state = checkpoint_state(report, parent)
            genesis = parse_entry(raw_genesis).predicate
            origin = genesis.origin if isinstance(genesis, Genesis) else "evledger"
            ext = (
                f"{STATE_EXTENSION} {digest_of(state)}",
                f"{TRUST_EXTENSION} {report.trust.history_digest(report.entries)}",
            )
            cp = notes.Checkpoint(origin, report.entries, bytes.fromhex(report.root), ext)
            # the note names the signer as the ledger knows it (verify looks it up by that name)
            text = notes.sign_note(cp, record["name"], key.private_key)
            base = f"{CHECKPOINT_DIR}/{cp.size:09d}"
            stored = self.store.read_path(parent, f"{base}.note")
            if stored is not None:  # no entry since the last checkpoint: nothing to commit
                kept = stored.decode("utf-8", errors="replace")
                return kept, notes.parse_note(kept)[0]
            files = {f"{base}.note": text.encode(), f"{base}.state.json": canonical_bytes(state)}
            self.store.commit_files(files, f"evledger: checkpoint {cp.size}", parent)
        return text, cp

    def attach_cosignatures(self, paths: Sequence[Path]) -> tuple[str, int]:
        """Add witness cosignature lines from files to the newest stored checkpoint note.

        Each file is a cosigned copy of that note or bare signature lines; a file for another
        checkpoint text is refused. Returns the new note and how many lines were added.
        """
        from ledger.verify import stored_checkpoints

        with self.store.lock():
            parent = self.store.resolve()
            stored = stored_checkpoints(self.store, parent or "HEAD") if parent else []
            if not stored:
                raise UsageError("the ledger has no checkpoint; run `evledger checkpoint` first")
            size, note = stored[-1]
            merged = note
            for path in paths:
                other = read_regular_file(path, what="cosigned note", max_bytes=1 << 20)
                try:
                    merged = notes.merge_signatures(merged, other.decode("utf-8"))
                except (notes.CheckpointError, UnicodeDecodeError) as e:
                    raise InputError(
                        f"not a cosignature of checkpoint {size}: {e}", path=path
                    ) from e
            added = len(notes.split_note(merged)[1]) - len(notes.split_note(note)[1])
            if added:
                files: dict[str, bytes | None] = {
                    f"{CHECKPOINT_DIR}/{size:09d}.note": merged.encode()
                }
                self.store.commit_files(
                    files, f"evledger: cosignatures on checkpoint {size}", parent
                )
        return merged, added


def keyid_of_pem(data: bytes) -> str:
    """Keyid of a PEM public key."""
    from ledger.keys import load_public_pem

    return keyid_of(load_public_pem(data))


__all__ = ["Ledger", "canonical_bytes", "init_ledger", "open_ledger", "prepare_input"]
