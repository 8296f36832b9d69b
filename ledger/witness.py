"""A witness: cosigns a ledger's newest checkpoint (C2SP tlog-cosignature, cosignature/v1)
only after checking that the ledger only grew since the last checkpoint it cosigned.

State lives under `$EVLEDGER_HOME/witness/NAME/`: `witness.json` (name, keyid, verifier
key), `logs/<origin hash>.json` (the last cosigned checkpoint of each origin, with the
Merkle frontier, chain tip and trust state at that size) and `logs/<origin hash>.jsonl`
(one line per cosignature, with the consistency proof that justified it). The private key is
an ordinary key NAME in the key store.

The first time a witness sees an origin it verifies every entry up to the checkpoint; later
it reads and verifies only the new entries, computes the RFC 6962 consistency proof from its
recorded tree to the new one (from its frontier and the new leaves) and checks it against
both roots. Anything else is refused with a stable code: `not-append-only` (history
rewritten or rolled back), `split-view` (same size, another root), or the verify code of
the first entry or checkpoint problem.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ledger import checkpoint as notes
from ledger import merkle
from ledger.canonical import canonical_bytes, digest_bytes
from ledger.errors import LedgerError, UsageError, VerificationFailed
from ledger.files import PRIVATE_FILE_MODE, write_atomic
from ledger.keys import SigningKey, check_name, evledger_home, generate_key, load_key
from ledger.store import ENTRY_DIR, SHARD_SIZE, Store, entry_path, seq_from_path
from ledger.trust import (
    TRUST_EXTENSION,
    TrustError,
    TrustState,
    check_trust_binding,
    checkpoint_signers,
)
from ledger.verify import Report, Verifier, _State, stored_checkpoints

ProgressFn = Callable[[int, int], None]
_URL_PREFIXES = ("http://", "https://", "ssh://", "git://", "file://")


class WitnessRefused(VerificationFailed):
    """The witness did not cosign; `code` says why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"witness refused ({code}): {message}")
        self.code = code


def witnesses_dir() -> Path:
    """`$EVLEDGER_HOME/witness`."""
    return evledger_home() / "witness"


@dataclass(frozen=True)
class Witness:
    """A witness identity: its name, signing key and state folder."""

    name: str
    key: SigningKey
    folder: Path

    @property
    def vkey(self) -> str:
        """The C2SP verifier key of the witness's cosignatures."""
        return notes.vkey(self.name, self.key.public_key, cosigner=True)


def init_witness(name: str) -> Witness:
    """Create witness NAME: a new key NAME in the key store and its state folder."""
    check_name(name)
    folder = witnesses_dir() / name
    if (folder / "witness.json").exists():
        raise UsageError(f"witness {name!r} already exists in {folder}")
    key = generate_key(name)
    (folder / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    witness = Witness(name, key, folder)
    info = {"name": name, "keyid": key.keyid, "vkey": witness.vkey}
    write_atomic(folder / "witness.json", canonical_bytes(info), mode=PRIVATE_FILE_MODE)
    return witness


def load_witness(name: str | None = None) -> Witness:
    """Witness NAME, or the only witness under $EVLEDGER_HOME/witness."""
    if name is None:
        found = sorted(p.parent.name for p in witnesses_dir().glob("*/witness.json"))
        if len(found) != 1:
            raise UsageError(
                "name the witness with --key NAME"
                if found
                else "no witness here; run `evledger witness init NAME` first"
            )
        name = found[0]
    check_name(name)
    folder = witnesses_dir() / name
    if not (folder / "witness.json").is_file():
        raise UsageError(f"no witness {name!r}; run `evledger witness init {name}`")
    return Witness(name, load_key(name), folder)


@dataclass
class WitnessState:
    """The last checkpoint a witness cosigned for one origin, and what it needs to resume."""

    origin: str
    size: int
    root: str
    note: str
    genesis: str
    tip: str
    frontier: list[str]
    trust: dict[str, Any]
    cosigned_at: int

    def to_json(self) -> dict[str, Any]:
        """Canonical-JSON-ready form."""
        return dict(self.__dict__)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WitnessState:
        """Inverse of `to_json`."""
        return cls(**{k: doc[k] for k in cls.__dataclass_fields__})


@dataclass
class CosignResult:
    """What `cosign` did."""

    note: str
    line: str
    checkpoint: notes.Checkpoint
    old_size: int
    proof: list[bytes] = field(default_factory=list)
    mode: str = "full"
    entries_checked: int = 0

    def to_json(self) -> dict[str, Any]:
        """The `witness cosign --json` document."""
        return {
            "origin": self.checkpoint.origin,
            "size": self.checkpoint.size,
            "root": self.checkpoint.root.hex(),
            "old_size": self.old_size,
            "mode": self.mode,
            "entries_checked": self.entries_checked,
            "consistency_proof": [base64.b64encode(h).decode() for h in self.proof],
            "cosignature": self.line,
            "note": self.note,
        }


def _origin_file(witness: Witness, origin: str, suffix: str) -> Path:
    return witness.folder / "logs" / (hashlib.sha256(origin.encode()).hexdigest()[:32] + suffix)


def load_state(witness: Witness, origin: str) -> WitnessState | None:
    """The recorded state for `origin`, or None if the witness never cosigned it."""
    path = _origin_file(witness, origin, ".json")
    if not path.is_file():
        return None
    state = WitnessState.from_json(json.loads(path.read_text()))
    if state.origin != origin:
        raise LedgerError("witness state names another origin", path=path)
    return state


@contextlib.contextmanager
def _locked(witness: Witness) -> Iterator[None]:
    """Check-then-record under one lock, so two cosigns can never roll the state back."""
    (witness.folder / "logs").mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(witness.folder / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def open_source(witness: Witness, source: str) -> Store:
    """The ledger at a path (working tree or bare repository), or a mirror of a git URL."""
    path = Path(source)
    if not source.startswith(_URL_PREFIXES) and path.exists():
        return Store(path)
    if not (source.startswith(_URL_PREFIXES) or ":" in source):
        raise UsageError(f"{source}: neither a ledger folder nor a git URL")
    mirror = (
        witness.folder / "mirrors" / (hashlib.sha256(source.encode()).hexdigest()[:16] + ".git")
    )
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    if not mirror.exists():
        mirror.parent.mkdir(parents=True, exist_ok=True)
        cmd = ["git", "clone", "--bare", "--quiet", "--", source, str(mirror)]
    else:  # forced: a rewritten remote must reach the checks below, which refuse it
        cmd = ["git", "-C", str(mirror), "fetch", "--quiet", "--force", "--prune", source]
        cmd += ["+refs/heads/*:refs/heads/*"]
    proc = subprocess.run(cmd, capture_output=True, env=env, check=False)
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise UsageError(
            f"{source}: git could not fetch it ({msg[-1] if msg else proc.returncode})"
        )
    return Store(mirror)


def _empty_state() -> _State:
    return _State(TrustState(), merkle.Frontier(), None, 0)


def _resume(state: WitnessState) -> _State:
    frontier = merkle.Frontier.from_hashes(state.size, [bytes.fromhex(h) for h in state.frontier])
    return _State(TrustState.from_doc(state.trust), frontier, state.tip, state.size)


def _entry_blobs(store: Store, commit: str, start: int, end: int) -> dict[int, str]:
    """Blob ids of entries [start, end): only the shard folders that hold them are listed."""
    first, last = start // SHARD_SIZE, max(end - 1, start) // SHARD_SIZE
    prefixes = (
        [ENTRY_DIR]
        if last - first > 8
        else [f"{ENTRY_DIR}/{k:06d}" for k in range(first, last + 1)]
    )
    found: dict[int, str] = {}
    for prefix in prefixes:
        for item in store.list_tree(commit, prefix):
            seq = seq_from_path(item.path)
            if seq is not None and start <= seq < end and item.mode == "100644":
                found[seq] = item.sha
    return found


def _check_range(
    store: Store, commit: str, vstate: _State, end: int, progress: ProgressFn | None
) -> tuple[Report, list[bytes]]:
    """Verify entries [vstate.expected_seq, end) at `commit`; return the report and new leaves."""
    report = Report()
    verifier = Verifier(report)
    start = vstate.expected_seq
    blobs = _entry_blobs(store, commit, start, end)
    names = [blobs.get(s, f"{commit}:{entry_path(s)}") for s in range(start, end)]
    leaves: list[bytes] = []
    try:
        for i, raw in enumerate(store.read_blobs(names)):
            seq = start + i
            verifier.check(raw, seq, vstate)
            leaves.append(merkle.leaf_hash(digest_bytes(report.digests[-1])))
            if progress and (i % 256 == 0 or seq + 1 == end):
                progress(i + 1, end - start)
    except LedgerError as e:
        report.add(start + len(leaves), "missing-entry", f"entry {start + len(leaves)}: {e}")
    vstate.expected_seq = end
    return report, leaves


def cosign(
    witness: Witness,
    source: str,
    *,
    now: int | None = None,
    genesis_pin: str | None = None,
    progress: ProgressFn | None = None,
) -> CosignResult:
    """Check the ledger's newest checkpoint against the witness's record, then cosign it.

    `genesis_pin` (a digest prefix): the genesis the witness expects for this origin, for the
    first contact (later, the recorded genesis is what binds the origin).
    """
    store = open_source(witness, source)
    commit = store.resolve("HEAD")
    if commit is None:
        raise WitnessRefused("no-genesis", f"{source} has no commits")
    stored = stored_checkpoints(store, commit)
    if not stored:
        raise WitnessRefused("no-checkpoint", f"{source} holds no checkpoint")
    _, note = stored[-1]
    try:
        cp, _ = notes.parse_note(note)
    except notes.CheckpointError as e:
        raise WitnessRefused("bad-checkpoint", str(e)) from e
    with _locked(witness):
        old = load_state(witness, cp.origin)
        result, resume = _check(store, commit, cp, note, old, progress)
        pinned = genesis_pin and not str(resume["genesis"]).startswith(genesis_pin)
        if pinned or (old is not None and genesis_pin and not old.genesis.startswith(genesis_pin)):
            raise WitnessRefused(
                "genesis-mismatch",
                f"{cp.origin}: genesis {resume['genesis']}, pinned {genesis_pin}",
            )
        timestamp = int(time.time()) if now is None else now
        line = notes.cosign_line(note, witness.name, witness.key.private_key, timestamp)
        result.line = line
        result.note = notes.merge_signatures(note, line)
        _record(witness, cp, note, result, resume, timestamp)
    return result


def _check(
    store: Store,
    commit: str,
    cp: notes.Checkpoint,
    note: str,
    old: WitnessState | None,
    progress: ProgressFn | None,
) -> tuple[CosignResult, dict[str, Any]]:
    """Every check before a cosignature (raises WitnessRefused); returns what to record."""
    if old is not None and cp.size < old.size:
        raise WitnessRefused(
            "not-append-only",
            f"{cp.origin}: newest checkpoint has {cp.size} entries, the witness cosigned "
            f"{old.size} (history rolled back)",
        )
    if old is not None and cp.size == old.size and cp.root.hex() != old.root:
        raise WitnessRefused(
            "split-view", f"{cp.origin}: a second root for size {cp.size} (cosigned {old.root})"
        )
    vstate = _resume(old) if old is not None else _empty_state()
    old_root = vstate.frontier.root()
    report, leaves = _check_range(store, commit, vstate, cp.size, progress)
    result = CosignResult("", "", cp, old.size if old else 0, mode="incremental" if old else "full")
    result.entries_checked = len(leaves)
    new_root = vstate.frontier.root()
    if old is not None:
        broken = [p for p in report.problems if p.code == "chain-break" and p.seq == old.size]
        if new_root != cp.root or broken:
            where = report.problems[0] if report.problems else None
            detail = f" (seq {where.seq}: {where.code})" if where else ""
            raise WitnessRefused(
                "not-append-only",
                f"{cp.origin}: checkpoint {cp.size} does not extend the cosigned checkpoint "
                f"{old.size}{detail}",
            )
        previous = merkle.Frontier.from_hashes(old.size, [bytes.fromhex(h) for h in old.frontier])
        proof = merkle.consistency_proof_from_frontier(previous, leaves)
        try:
            merkle.verify_consistency(old.size, cp.size, proof, old_root, cp.root)
        except merkle.ProofError as e:
            raise WitnessRefused("not-append-only", f"consistency proof fails: {e}") from e
        result.proof = proof
    if report.problems:
        first = report.problems[0]
        raise WitnessRefused(first.code, f"seq {first.seq}: {first.message}")
    if new_root != cp.root:
        raise WitnessRefused(
            "checkpoint-mismatch", f"the first {cp.size} entries do not have the checkpoint root"
        )
    try:
        checkpoint_signers(note, vstate.trust, cp.size)
        if any(e.startswith(TRUST_EXTENSION + " ") for e in cp.extensions):
            check_trust_binding(cp, vstate.trust)
    except TrustError as e:
        raise WitnessRefused(e.code, str(e)) from e
    resume = {
        "genesis": report.genesis if old is None else old.genesis,
        "frontier": [h.hex() for h in vstate.frontier.hashes()],
        "tip": vstate.prev_digest,
        "trust": vstate.trust.to_doc(),
    }
    return result, resume


def _record(
    witness: Witness,
    cp: notes.Checkpoint,
    note: str,
    result: CosignResult,
    nxt: dict[str, Any],
    timestamp: int,
) -> None:
    """Persist the new state (atomically) and log the cosignature with its proof."""
    state = WitnessState(
        origin=cp.origin,
        size=cp.size,
        root=cp.root.hex(),
        note=note,
        genesis=str(nxt["genesis"]),
        tip=str(nxt["tip"]),
        frontier=nxt["frontier"],
        trust=nxt["trust"],
        cosigned_at=timestamp,
    )
    state_file = _origin_file(witness, cp.origin, ".json")  # the witness's own 0700 folder
    write_atomic(state_file, canonical_bytes(state.to_json()), mode=PRIVATE_FILE_MODE)
    row = {
        "time": timestamp,
        "origin": cp.origin,
        "old_size": result.old_size,
        "size": cp.size,
        "root": cp.root.hex(),
        "proof": [base64.b64encode(h).decode() for h in result.proof],
    }
    with _origin_file(witness, cp.origin, ".jsonl").open("ab") as fh:
        fh.write(canonical_bytes(row) + b"\n")


__all__ = [
    "CosignResult",
    "QuorumCheck",
    "Witness",
    "WitnessRefused",
    "WitnessState",
    "apply_quorum",
    "check_quorum",
    "cosign",
    "init_witness",
    "load_state",
    "load_witness",
    "open_source",
]


@dataclass(frozen=True)
class QuorumCheck:
    """Which stored checkpoint a quorum of witnesses vouches for, if any."""

    size: int | None
    cosigners: tuple[str, ...]
    problem: str | None

    @property
    def ok(self) -> bool:
        """True when a checkpoint with the quorum covers the whole ledger."""
        return self.problem is None


def check_quorum(
    store: Store, rev: str, witnesses: list[Any], quorum: int, entries: int
) -> QuorumCheck:
    """The newest stored checkpoint with `quorum` valid cosignatures by `witnesses`.

    A checkpoint counts only with the quorum; entries at or past its size (or all of them,
    when none counts) are not vouched for, and `problem` says so. The log's own signature
    on the note is verify's job (roles, trust at that size), not this function's.
    """
    if quorum <= 0:
        return QuorumCheck(None, (), None)
    for size, note in reversed(stored_checkpoints(store, rev)):
        try:
            found = notes.verify_cosignatures(note, witnesses)
        except notes.CheckpointError as e:
            return QuorumCheck(None, (), f"checkpoint {size}: {e}")
        if len(found) >= quorum:
            names = tuple(c.name for c in found)
            if size < entries:
                return QuorumCheck(
                    size,
                    names,
                    f"entries from seq {size} on are not covered by a checkpoint with "
                    f"{quorum} witness cosignatures (newest such: {size})",
                )
            return QuorumCheck(size, names, None)
    return QuorumCheck(None, (), f"no checkpoint has {quorum} valid cosignatures by the witnesses")


def apply_quorum(
    store: Store, rev: str, witnesses: Any, quorum: int, report: Report
) -> QuorumCheck:
    """Add the quorum's outcome to a verify report: `quorum-not-met` and the anchor it gives."""
    check = check_quorum(store, rev, list(witnesses), quorum, report.entries)
    if check.size is not None:
        names = ", ".join(check.cosigners)
        report.trust_anchor += f"; witnessed at size {check.size} by {names} (quorum {quorum})"
    if check.problem is not None:
        covered = check.size or 0
        report.add(covered if covered < report.entries else None, "quorum-not-met", check.problem)
    return check
