"""The git object store behind a ledger: sharded entry paths, bounded batch reads, atomic commits.

Reads come from the branch HEAD points at (never the working tree). Appends build the new
shard tree, its parents and the commit as loose objects in-process (gitdb), then move the
branch with `git update-ref NEW OLD` (compare-and-swap) under an exclusive lock, so a process
killed at any point leaves the branch at the old or the new commit. Before the branch moves,
the index (and working tree) are carried from the old commit to the new one with a two-tree
`git read-tree -m -u OLD NEW`, which keeps whatever else a person has staged.

A ledger made by `evledger init` in a new repository keeps `evidence/` out of the working tree
with a cone-mode sparse checkout and a sparse index: the index holds `evidence/` as one
directory entry (the tree id), so an append costs the same at 100 or 100k entries and a
person's `git commit` in the repository still carries every entry (the commit is written from
that directory entry). A ledger inside an existing project repository keeps a full index and
its entry files in the working tree.

Guarantees of the store itself, whatever the caller asks: a commit never overwrites or deletes
an existing entry path (checked against the parent tree, under the lock); no path leaves the
ledger (`..`, absolute, `.git`); nothing is written through a symlink in the working tree; a
reader never holds a git process across a `yield` (objects are read in bounded chunks, each
chunk's process finished and reaped before its first object is handed out).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import io
import os
import re
import subprocess
import time
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
from gitdb import IStream
from gitdb.db.loose import LooseObjectDB

from ledger.errors import LedgerError

ENTRY_DIR = "evidence"
SHARD_SIZE = 1000
FILE_MODE = 0o100644
DIR_MODE = 0o040000
AUTHOR = "evledger <evledger@localhost>"
STALE_LOCK_SECONDS = 60
#: folders a sparse ledger keeps in its working tree (everything else but evidence/ is rare)
SPARSE_CONE = ("checkpoints", "keys", "policies")
#: objects per `git cat-file --batch` run: bounds memory (~2 KB per entry) and process count
READ_CHUNK = 2048
_HEX40 = re.compile(r"[0-9a-f]{40}")
#: one well-formed entry record in a shard tree: mode, 14-char name, NUL, 20-byte id
_RECORD = len(b"100644 000000000.json\0") + 20
VERIFY_HINT = "run `evledger verify` for details"


def entry_path(seq: int) -> str:
    """Path of entry `seq` inside the ledger tree (≤ 1000 entries per shard folder)."""
    return f"{ENTRY_DIR}/{seq // SHARD_SIZE:06d}/{seq:09d}.json"


def seq_from_path(path: str) -> int | None:
    """The seq a well-formed entry path names, else None."""
    parts = path.split("/")
    if len(parts) != 3 or parts[0] != ENTRY_DIR or not parts[2].endswith(".json"):
        return None
    stem = parts[2][:-5]
    if not stem.isdigit() or len(stem) != 9:
        return None
    seq = int(stem)
    return seq if entry_path(seq) == path else None


class UnreadableObjectError(LedgerError):
    """A git object the ledger needs is missing or corrupt."""

    def __init__(self, sha: str, reason: str) -> None:
        super().__init__(f"git object {sha[:12]} is unreadable ({reason}); run `git fsck`")
        self.sha = sha
        self.reason = reason


class UnreadableObject(bytes):
    """Stands in (as empty bytes) for an object `read_blobs(..., mark_unreadable=True)` could
    not read, so a verifier can report that one entry and go on."""

    sha: str
    reason: str

    def __new__(cls, sha: str, reason: str) -> UnreadableObject:
        obj = super().__new__(cls, b"")
        obj.sha, obj.reason = sha, reason
        return obj


@dataclass(frozen=True)
class TreeItem:
    """One blob in a listed tree."""

    path: str
    sha: str
    mode: str


@dataclass(frozen=True)
class ChainListing:
    """What the entry listing at a commit says, checked for shape: `size` entries named
    0..size-1 with nothing else under evidence/, and the blob id of the newest one."""

    size: int
    tip_blob: str | None


class Store:
    """A git repository used as an append-only entry store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
            raise LedgerError("not a git repository", path=root) from e
        self.git_dir = Path(self.repo.git_dir)  # HEAD, index (per working tree)
        self.common_dir = Path(self.repo.common_dir).resolve()  # objects, branches, our lock
        self._loose = LooseObjectDB(str(self.common_dir / "objects"))
        self.bare = self.repo.bare
        self._full_shards: set[tuple[str, str]] | None = None
        self._created: list[Path] = []
        self._trees: dict[bytes, dict[str, tuple[bytes, int]]] = {}
        self._locked = False

    # ---------------------------------------------------------------- reading
    def _git(self, *args: str, input_: bytes | None = None, check: bool = True) -> bytes:
        try:
            proc = subprocess.run(
                ["git", *args],
                cwd=self.root,
                input=input_,
                capture_output=True,
                check=False,
                start_new_session=True,  # a group kill of the appender must not kill git mid-lock
            )
        except OSError as e:
            raise LedgerError(f"cannot run git {args[0]}: {e.strerror or e}") from e
        if check and proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise LedgerError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
        return proc.stdout

    def _head(self) -> tuple[str | None, str | None]:
        """(branch ref HEAD names or None if detached, its commit id or None if unborn),
        read from the ref files in-process: the hot path of every append."""
        try:
            text = (self.git_dir / "HEAD").read_text().strip()
        except OSError as e:
            raise LedgerError(f"cannot read HEAD: {e.strerror or e}", path=self.git_dir) from e
        if text.startswith("ref: "):
            ref = text[5:].strip()
            if not ref.startswith("refs/"):
                raise LedgerError(f"HEAD names {ref!r}, not a branch", path=self.git_dir)
            _check_relpath(ref)
            return ref, self._read_ref(ref)
        if _HEX40.fullmatch(text):
            return None, text
        raise LedgerError("HEAD is neither a branch nor a commit id", path=self.git_dir)

    def branch_ref(self) -> str:
        """The full ref HEAD points at (e.g. refs/heads/main)."""
        ref, _ = self._head()
        if ref is None:
            raise LedgerError("HEAD is detached; check out the ledger branch", path=self.root)
        return ref

    def resolve(self, rev: str = "HEAD") -> str | None:
        """Commit id of `rev`, or None if it does not exist (e.g. an empty repository)."""
        if rev == "HEAD":
            return self._head()[1]
        _check_rev(rev)
        out = self._git("rev-parse", "-q", "--verify", f"{rev}^{{commit}}", check=False).strip()
        return out.decode() or None

    def list_tree(
        self, rev: str, prefix: str = ENTRY_DIR, recursive: bool = True
    ) -> list[TreeItem]:
        """Blobs (or, non-recursive, direct children) under `prefix` at `rev`."""
        _check_rev(rev)
        _check_relpath(prefix.rstrip("/"))
        args = (
            ["ls-tree", "-z", "--full-tree"] + (["-r"] if recursive else []) + [rev, "--", prefix]
        )
        out = self._git(*args)
        items = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            mode, _type, sha = meta.decode().split(" ")
            items.append(TreeItem(path.decode("utf-8", errors="surrogateescape"), sha, mode))
        return items

    def entry_blobs(self, rev: str = "HEAD") -> list[tuple[int, str]]:
        """(seq, blob id) of every well-named entry file at `rev`, in seq order."""
        found = []
        for item in self.list_tree(rev, ENTRY_DIR):
            seq = seq_from_path(item.path)
            if seq is not None:
                found.append((seq, item.sha))
        return sorted(found)

    def read_blobs(self, shas: Iterable[str], *, mark_unreadable: bool = False) -> Iterator[bytes]:
        """Contents of many blobs, in order, read `READ_CHUNK` at a time.

        Each chunk's `git cat-file --batch` has exited before the chunk is handed out, so a
        consumer that stops early (or raises) leaves no process or pipe behind. A missing or
        corrupt object raises `UnreadableObjectError`, or with `mark_unreadable` is yielded as
        an (empty) `UnreadableObject` in its place and reading goes on.
        """
        shas = list(shas)
        for start in range(0, len(shas), READ_CHUNK):
            chunk = shas[start : start + READ_CHUNK]
            for data in self._read_chunk(chunk):
                if isinstance(data, UnreadableObject) and not mark_unreadable:
                    raise UnreadableObjectError(data.sha, data.reason)
                yield data

    def _read_chunk(self, shas: list[str]) -> list[bytes]:
        """Read every object of `shas`; restart after an object git could not stream."""
        out: list[bytes] = []
        while len(out) < len(shas):
            todo = shas[len(out) :]
            valid = [s for s in todo if _HEX40.fullmatch(s)]
            if len(valid) != len(todo):  # only object ids: `rev:path` would read anything
                bad = next(s for s in todo if not _HEX40.fullmatch(s))
                raise UnreadableObjectError(str(bad), "not an object id")
            raw = self._cat_file(todo)
            out.extend(_parse_batch(raw, todo))
        return out

    def _cat_file(self, shas: list[str]) -> bytes:
        try:
            proc = subprocess.run(
                ["git", "cat-file", "--batch"],
                cwd=self.root,
                input="".join(f"{s}\n" for s in shas).encode(),
                capture_output=True,
                check=False,
                start_new_session=True,
            )
        except OSError as e:
            raise LedgerError(f"cannot run git cat-file: {e.strerror or e}") from e
        return proc.stdout

    def read_path(self, rev: str, path: str) -> bytes | None:
        """One file at `rev`, or None if absent."""
        _check_rev(rev)
        _check_relpath(path)
        proc = subprocess.run(
            ["git", "cat-file", "blob", f"{rev}:{path}"],
            cwd=self.root,
            capture_output=True,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def is_ancestor(self, ancestor: str, rev: str) -> bool:
        """True if commit `ancestor` is reachable from `rev`."""
        _check_rev(ancestor)
        _check_rev(rev)
        proc = subprocess.run(
            ["git", "merge-base", "--is-ancestor", ancestor, rev], cwd=self.root, check=False
        )
        return proc.returncode == 0

    def changed_paths(self, old: str, new: str, prefix: str) -> list[tuple[str, str, str]]:
        """(status letter, path, new blob id) for files under `prefix` that differ old→new."""
        _check_rev(old)
        _check_rev(new)
        out = self._git("diff-tree", "-r", "-z", "--no-renames", old, new, "--", prefix)
        fields = out.split(b"\0")
        changes = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if not meta:
                continue
            parts = meta.decode().lstrip(":").split(" ")
            changes.append((parts[4], path.decode("utf-8", errors="surrogateescape"), parts[3]))
        return changes

    # ------------------------------------------------------- objects in-process
    def _object(self, binsha: bytes) -> tuple[bytes, bytes]:
        """(type, data) of one object: loose ones in-process (inflated whole and checked
        against their id), packed ones through git."""
        hexsha = binsha.hex()
        path = self.common_dir / "objects" / hexsha[:2] / hexsha[2:]
        try:
            compressed = path.read_bytes()
        except FileNotFoundError:
            compressed = None  # not loose: packed
        except OSError as e:
            raise UnreadableObjectError(hexsha, e.strerror or str(e)) from e
        if compressed is not None:
            try:
                raw = zlib.decompress(compressed)
            except zlib.error as e:
                raise UnreadableObjectError(hexsha, f"corrupt loose object: {e}") from e
            header, _, data = raw.partition(b"\0")
            kind, _, size = header.partition(b" ")
            digest = hashlib.sha1(raw, usedforsecurity=False).digest()  # git object id
            if not size.isdigit() or int(size) != len(data) or digest != binsha:
                raise UnreadableObjectError(hexsha, "corrupt loose object (id mismatch)")
            return kind, data
        proc = subprocess.run(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            input=f"{hexsha}\n".encode(),
            capture_output=True,
            check=False,
        )
        header, _, rest = proc.stdout.partition(b"\n")
        parts = header.split()
        if len(parts) != 3 or not parts[2].isdigit() or len(rest) < int(parts[2]):
            raise UnreadableObjectError(hexsha, "missing or corrupt")
        return parts[1], rest[: int(parts[2])]

    def read_blob(self, sha: str) -> bytes:
        """One blob by id (in-process when loose); raises `UnreadableObjectError`."""
        if not _HEX40.fullmatch(sha):
            raise UnreadableObjectError(sha, "not an object id")
        kind, data = self._object(bytes.fromhex(sha))
        if kind != b"blob":
            raise UnreadableObjectError(sha, f"a {kind.decode()}, not a blob")
        return data

    def _tree_entries(self, binsha: bytes | None) -> dict[str, tuple[bytes, int]]:
        """name -> (id, mode) of a tree (a copy; parsed trees are kept by their id)."""
        if binsha is None:
            return {}
        cached = self._trees.get(binsha)
        if cached is None:
            kind, data = self._object(binsha)
            if kind != b"tree":
                raise UnreadableObjectError(binsha.hex(), f"a {kind.decode()}, not a tree")
            try:
                cached = _parse_tree(data)
            except ValueError as e:
                raise UnreadableObjectError(binsha.hex(), f"malformed tree: {e}") from e
            if len(self._trees) >= 64:
                self._trees.clear()
            self._trees[binsha] = cached
        return dict(cached)

    def _commit_tree(self, commit: str) -> bytes:
        """The root tree id of `commit`."""
        kind, data = self._object(bytes.fromhex(commit))
        first = data.split(b"\n", 1)[0]
        if kind != b"commit" or not first.startswith(b"tree ") or len(first) != 45:
            raise UnreadableObjectError(commit, "not a well-formed commit")
        return bytes.fromhex(first[5:].decode())

    # -------------------------------------------------------------- chain shape
    def chain_listing(self, rev: str = "HEAD") -> ChainListing:
        """Size and newest entry of the ledger at `rev`, refusing a listing that is not
        exactly `evidence/` shards 0..k holding entries 0..size-1 (a gap, a stray file or
        folder, a shard that is not full before the last one).

        Full shards are compared byte for byte with the names they must hold; a shard tree
        found well-formed is remembered by its (content-addressed) id in
        `.git/evledger/full-shards`, so an append reads only the last shard.
        """
        commit = rev if _HEX40.fullmatch(rev) else self.resolve(rev)
        if commit is None:
            return ChainListing(0, None)
        top = self._tree_entries(self._commit_tree(commit))
        if ENTRY_DIR not in top:
            return ChainListing(0, None)
        evidence_sha, evidence_mode = top[ENTRY_DIR]
        if evidence_mode != DIR_MODE:
            raise _shape_error(f"{ENTRY_DIR} is not a folder")
        shards = self._tree_entries(evidence_sha)
        if not shards:
            return ChainListing(0, None)
        names = sorted(shards)
        expected = [f"{k:06d}" for k in range(len(names))]
        if names != expected:
            odd = next((n for n, e in zip(names, expected, strict=True) if n != e), names[-1])
            raise _shape_error(f"{ENTRY_DIR}/{odd} is not the next shard folder")
        for name in names:
            if shards[name][1] != DIR_MODE:
                raise _shape_error(f"{ENTRY_DIR}/{name} is not a folder")
        known = self._known_full_shards()
        learned = False
        for k, name in enumerate(names[:-1]):
            sha = shards[name][0]
            if (name, sha.hex()) in known:
                continue
            self._check_full_shard(k, sha)
            known.add((name, sha.hex()))
            learned = True
        if learned:
            self._save_full_shards(known)
        last_k = len(names) - 1
        last = self._tree_entries(shards[names[-1]][0])
        first_seq = last_k * SHARD_SIZE
        want = [f"{first_seq + i:09d}.json" for i in range(len(last))]
        if not last:
            raise _shape_error(f"{ENTRY_DIR}/{names[-1]} is empty")
        got = sorted(last)
        if got != want:
            extra = next(g for g in got if g not in want)
            gap = next((int(w[:9]) for w in want if w not in last), None)
            raise _shape_error(
                f"entry {gap} is missing"
                if gap is not None
                and extra.endswith(".json")
                and seq_from_path(f"{ENTRY_DIR}/{names[-1]}/{extra}") is not None
                else f"{ENTRY_DIR}/{names[-1]}/{extra} is not an entry file"
            )
        for name, (_sha, mode) in last.items():
            if mode != FILE_MODE:
                raise _shape_error(f"{ENTRY_DIR}/{names[-1]}/{name} is not a regular file")
        size = first_seq + len(last)
        tip_sha = last[f"{size - 1:09d}.json"][0]
        return ChainListing(size, tip_sha.hex())

    def _check_full_shard(self, k: int, binsha: bytes) -> None:
        kind, data = self._object(binsha)
        first = k * SHARD_SIZE
        if kind != b"tree" or len(data) != SHARD_SIZE * _RECORD:
            raise _shape_error(f"{ENTRY_DIR}/{k:06d} does not hold exactly {SHARD_SIZE} entries")
        view = memoryview(data)
        for i in range(SHARD_SIZE):
            at = i * _RECORD
            if view[at : at + 22] != b"100644 %09d.json\0" % (first + i):
                raise _shape_error(f"{ENTRY_DIR}/{k:06d} is missing entry {first + i}")

    def _full_shards_file(self) -> Path:
        return self.common_dir / "evledger" / "full-shards"

    def _known_full_shards(self) -> set[tuple[str, str]]:
        if self._full_shards is None:
            known: set[tuple[str, str]] = set()
            with contextlib.suppress(OSError, UnicodeDecodeError):
                for line in self._full_shards_file().read_text().splitlines():
                    name, _, sha = line.partition(" ")
                    if len(name) == 6 and name.isdigit() and _HEX40.fullmatch(sha):
                        known.add((name, sha))
            self._full_shards = known
        return self._full_shards

    def _save_full_shards(self, known: set[tuple[str, str]]) -> None:
        """Best effort: a cache that cannot be written only costs time."""
        path = self._full_shards_file()
        tmp = path.with_name(f"full-shards.{os.getpid()}.tmp")
        try:
            path.parent.mkdir(exist_ok=True)
            tmp.write_text("".join(f"{n} {s}\n" for n, s in sorted(known)))
            os.replace(tmp, path)
        except OSError:
            tmp.unlink(missing_ok=True)

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive append lock shared by every evledger process on this repository."""
        try:
            fd = os.open(self.common_dir / "evledger.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:
            raise LedgerError(f"cannot take the append lock: {e.strerror or e}") from e
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._locked = True
            yield
        finally:
            self._locked = False
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _store(self, kind: bytes, data: bytes) -> bytes:
        """Write a loose object in-process (GitCmdObjectDB.store spawns `git hash-object`);
        remember it if it is new, so a failed commit can take it back."""
        header = b"%s %d\0" % (kind, len(data))
        hexsha = hashlib.sha1(header + data, usedforsecurity=False).hexdigest()  # git object id
        path = self.common_dir / "objects" / hexsha[:2] / hexsha[2:]
        existed = path.exists()
        binsha = self._loose.store(IStream(kind, len(data), io.BytesIO(data))).binsha
        if not existed:
            self._created.append(path)
        return binsha

    def enable_sparse_evidence(self) -> bool:
        """Keep `evidence/` out of the working tree behind a sparse index (a new ledger)."""
        proc = subprocess.run(
            ["git", "sparse-checkout", "set", "--cone", "--sparse-index", *SPARSE_CONE],
            cwd=self.root,
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:  # an old git: a full index still works, only slower
            return False
        self.repo.config_writer().set_value("core", "splitIndex", "false").release()
        return True

    def _update_tree(self, tree: bytes | None, files: dict[str, bytes | None]) -> bytes | None:
        """New tree id: `tree` with `files` (relative path -> blob id, None deletes) applied."""
        entries = self._tree_entries(tree)
        nested: dict[str, dict[str, bytes | None]] = {}
        for path, blob in files.items():
            head, sep, rest = path.partition("/")
            if sep:
                nested.setdefault(head, {})[rest] = blob
            elif blob is None:
                entries.pop(head, None)
            else:
                entries[head] = (blob, FILE_MODE)
        for name, sub in nested.items():
            current = entries.get(name)
            sub_tree = current[0] if current and current[1] == DIR_MODE else None
            new = self._update_tree(sub_tree, sub)
            if new is None:
                entries.pop(name, None)
            else:
                entries[name] = (new, DIR_MODE)
        return self._write_tree(entries) if entries else None

    def _write_tree(self, entries: dict[str, tuple[bytes, int]]) -> bytes:
        def key(name: str) -> bytes:  # git orders a folder as if its name ended in '/'
            return name.encode(errors="surrogateescape") + (
                b"/" if entries[name][1] == DIR_MODE else b""
            )

        data = b"".join(
            b"%o %s\0%s" % (entries[n][1], n.encode(errors="surrogateescape"), entries[n][0])
            for n in sorted(entries, key=key)
        )
        return self._store(b"tree", data)

    def _check_no_entry_overwrite(self, parent_tree: bytes | None, paths: Iterable[str]) -> None:
        """Refuse to replace or delete an entry the parent commit holds, or to put anything
        but a well-formed entry file under evidence/."""
        top = self._tree_entries(parent_tree)
        evidence = top.get(ENTRY_DIR)
        shard_cache: dict[str, dict[str, tuple[bytes, int]]] = {}
        for path in paths:
            if not path.startswith(f"{ENTRY_DIR}/") and path != ENTRY_DIR:
                continue
            if seq_from_path(path) is None:
                raise LedgerError(f"refusing to write {path!r}: not an entry path")
            if evidence is None or evidence[1] != DIR_MODE:
                continue
            _, shard, name = path.split("/")
            if shard not in shard_cache:
                shards = self._tree_entries(evidence[0])
                sub = shards.get(shard)
                shard_cache[shard] = (
                    self._tree_entries(sub[0]) if sub and sub[1] == DIR_MODE else {}
                )
            if name in shard_cache[shard]:
                raise LedgerError(
                    f"refusing to overwrite or delete the existing entry {path}; "
                    f"the ledger is append-only ({VERIFY_HINT})"
                )

    def commit_files(self, files: dict[str, bytes | None], message: str, parent: str | None) -> str:
        """Commit `files` on top of `parent` and move the branch (CAS); call under `lock()`.

        Never replaces or deletes an entry that `parent` holds. On any failure before the
        branch moves (a full disk, a git error) the objects this call created are removed
        and the index is left as it was: nothing is written.
        """
        if not self._locked:
            raise LedgerError("internal: commit_files called without the append lock")
        for path in files:
            _check_relpath(path)
        self._clear_stale_git_locks()
        self._recover_pending()
        self._created = []
        commit = None
        try:
            parent_tree = self._commit_tree(parent) if parent is not None else None
            self._check_no_entry_overwrite(parent_tree, files)
            self._check_worktree_paths(files)
            blobs: dict[str, bytes | None] = {
                path: None if data is None else self._store(b"blob", data)
                for path, data in files.items()
            }
            tree = self._update_tree(parent_tree, dict(blobs))
            commit = self._write_commit(tree or self._write_tree({}), parent, message)
            self._sync_worktree(parent, commit, list(files))
            self._update_ref(self.branch_ref(), commit, parent, message.splitlines()[0])
        except OSError as e:
            self._undo_failed_commit(commit)
            raise LedgerError(f"could not write the ledger: {e.strerror or e}") from e
        except Exception:  # not BaseException: a kill runs no cleanup either (see tests)
            self._undo_failed_commit(commit)
            raise
        with contextlib.suppress(OSError):
            self._pending_file().unlink(missing_ok=True)
        return commit

    def _undo_failed_commit(self, commit: str | None) -> None:
        """Put the index back and drop this call's new objects, if the branch did not move."""
        if commit is not None and self.resolve() == commit:
            return
        pending = self._pending_file()
        if pending.is_file():
            try:
                self._recover_pending(strict=True)
            except (LedgerError, OSError):
                return  # the index may still name them: keep the objects
        for path in self._created:
            with contextlib.suppress(OSError):
                path.unlink()
            with contextlib.suppress(OSError):
                path.parent.rmdir()  # only if this left it empty
        self._created = []

    def _pending_file(self) -> Path:
        return self.git_dir / "evledger-pending"

    def _sync_worktree(self, parent: str | None, commit: str, paths: list[str]) -> None:
        """Carry the index and working tree from `parent` to `commit` before the branch moves
        (`.git/evledger-pending` names `commit` until the ref update is done)."""
        if self.bare:
            return
        self._pending_file().write_text(f"{commit}\n" + "".join(f"{p}\n" for p in paths))
        if parent is None:
            self._git("read-tree", "-m", "-u", commit)
        else:
            self._git("read-tree", "-m", "-u", parent, commit)

    def _recover_pending(self, *, strict: bool = False) -> None:
        """Undo what an append killed before its ref update left in the index/working tree.

        A two-tree `read-tree -m -u ABANDONED HEAD` takes back exactly that append's paths
        (an index still at HEAD is left as it is). `strict`: raise if git refuses, instead
        of leaving the rest to the next append's own `read-tree`.
        """
        pending = self._pending_file()
        if self.bare or not pending.is_file():
            return
        lines = pending.read_text(errors="replace").splitlines()
        abandoned, paths = (lines[0], lines[1:]) if lines else ("", [])
        head = self.resolve()
        if _HEX40.fullmatch(abandoned) and abandoned != head:
            if head is None:
                args: tuple[str, ...] = ("read-tree", "--empty")
            else:
                args = ("read-tree", "-m", "-u", abandoned, head)
            self._git(*args, check=strict)
            self._delete_untracked_leftovers(head, paths)
        pending.unlink()

    def _delete_untracked_leftovers(self, head: str | None, paths: list[str]) -> None:
        """Files a killed `read-tree -u` wrote for paths HEAD does not hold (full index)."""
        root = self.root.resolve()
        for path in paths:
            with contextlib.suppress(LedgerError):
                _check_relpath(path)
                if head is not None and self.read_path(head, path) is not None:
                    continue
                target = root / path
                if _no_symlink_on_the_way(root, target) and target.is_file():
                    listed = self._git("ls-files", "--", path, check=False)
                    if not listed.strip():
                        target.unlink()

    def _check_worktree_paths(self, paths: Iterable[str]) -> None:
        """Refuse to commit a path whose folder in the working tree is a symlink (git would
        write through it, or delete it) or that is itself a symlink."""
        if self.bare:
            return
        root = self.root.resolve()
        for path in paths:
            current = root
            for part in path.split("/"):
                current = current / part
                if current.is_symlink():
                    raise LedgerError("refusing to follow a symlink in the ledger", path=current)
                if not current.exists():
                    break

    def _clear_stale_git_locks(self) -> None:
        """Remove index/branch lock files a killed process left behind: older than a minute,
        or the branch lock our own killed append took (it holds that append's commit id).

        Only called under our own append lock, so no evledger process holds them; a lock that
        old is not a live `git` either (they hold such locks for milliseconds).
        """
        ref = self.branch_ref()
        ours = self._pending_commit()
        for lock in (self.git_dir / "index.lock", self.common_dir / f"{ref}.lock"):
            try:
                stale = time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS
                if not stale and ours and lock.name != "index.lock":
                    stale = lock.read_bytes().strip() in (b"", ours.encode())
                if stale:
                    lock.unlink()
            except FileNotFoundError:
                continue

    def _pending_commit(self) -> str | None:
        """The commit of an append that was killed before it finished, if any."""
        try:
            first = self._pending_file().read_text(errors="replace").split("\n", 1)[0]
        except OSError:
            return None
        return first if _HEX40.fullmatch(first) else None

    def _read_ref(self, ref: str) -> str | None:
        """Commit id a branch points at (loose ref file, else packed-refs), or None."""
        try:
            value = (self.common_dir / ref).read_text().strip()
        except FileNotFoundError:
            value = ""
        if value:
            if not _HEX40.fullmatch(value):
                raise LedgerError(f"{ref} does not hold a commit id", path=self.common_dir / ref)
            return value
        try:
            packed = (self.common_dir / "packed-refs").read_text()
        except FileNotFoundError:
            return None
        for line in packed.splitlines():
            sha, _, name = line.partition(" ")
            if name == ref and _HEX40.fullmatch(sha):
                return sha
        return None

    def _update_ref(self, ref: str, new: str, old: str | None, message: str) -> None:
        """Move `ref` from `old` to `new` the way `git update-ref NEW OLD` does: take
        `<ref>.lock` (O_EXCL, git's own protocol), compare, write, log, rename."""
        path = self.common_dir / ref
        lock = path.with_name(path.name + ".lock")
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError as e:
            raise LedgerError(f"{ref} is locked by another git process", path=lock) from e
        try:
            with os.fdopen(fd, "wb") as fh:
                if self._read_ref(ref) != old:
                    raise LedgerError(f"{ref} moved during the append; nothing was written")
                fh.write(f"{new}\n".encode())
            self._append_reflog(ref, old, new, message)
            os.replace(lock, path)
        except BaseException:
            lock.unlink(missing_ok=True)
            raise

    def _append_reflog(self, ref: str, old: str | None, new: str, message: str) -> None:
        """One reflog line for the branch and for HEAD (which points at it), as git writes."""
        stamp = f"{int(time.time())} +0000"
        line = f"{old or '0' * 40} {new} {AUTHOR} {stamp}\t{message}\n".encode()
        for log in (self.common_dir / "logs" / ref, self.git_dir / "logs" / "HEAD"):
            if self.bare and not log.exists():
                continue
            log.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)

    def remove_paths(self, paths: list[str], message: str) -> str:
        """Commit the removal of non-entry files (e.g. a stale .pub); takes the lock."""
        with self.lock():
            parent = self.resolve()
            if parent is None:
                raise LedgerError("nothing to remove from an empty ledger")
            return self.commit_files(dict.fromkeys(paths), message, parent)

    def _write_commit(self, tree: bytes, parent: str | None, message: str) -> str:
        stamp = f"{int(time.time())} +0000"
        lines = [f"tree {tree.hex()}"]
        if parent:
            lines.append(f"parent {parent}")
        lines += [f"author {AUTHOR} {stamp}", f"committer {AUTHOR} {stamp}", "", message]
        return self._store(b"commit", ("\n".join(lines) + "\n").encode()).hex()


def _parse_batch(raw: bytes, shas: list[str]) -> list[bytes]:
    """Objects of one `cat-file --batch` output, stopping after the first one git could not
    stream (that one is marked; the caller restarts after it)."""
    out: list[bytes] = []
    at = 0
    for sha in shas:
        end = raw.find(b"\n", at)
        if end < 0:  # git stopped before this object's header: it could not read it
            out.append(UnreadableObject(sha, "corrupt or unreadable"))
            return out
        header = raw[at:end].split()
        at = end + 1
        if len(header) == 2 and header[1] in (b"missing", b"ambiguous"):
            out.append(UnreadableObject(sha, header[1].decode()))
            continue
        if len(header) != 3 or not header[2].isdigit() or header[0].decode() != sha:
            out.append(UnreadableObject(sha, "unexpected answer from git cat-file"))
            return out
        size = int(header[2])
        if len(raw) < at + size + 1:  # git died mid-object: a corrupt body
            out.append(UnreadableObject(sha, "corrupt object"))
            return out
        if header[1] != b"blob":
            out.append(UnreadableObject(sha, f"a {header[1].decode()}, not a blob"))
        else:
            out.append(raw[at : at + size])
        at += size + 1
    return out


def _parse_tree(data: bytes) -> dict[str, tuple[bytes, int]]:
    """Entries of a raw tree object (raises ValueError if it is malformed)."""
    out: dict[str, tuple[bytes, int]] = {}
    at, end = 0, len(data)
    while at < end:
        space = data.index(b" ", at)
        nul = data.index(b"\0", space)
        if nul + 21 > end:
            raise ValueError("truncated entry")
        name = data[space + 1 : nul].decode("utf-8", errors="surrogateescape")
        if not name or "/" in name or name in (".", ".."):
            raise ValueError(f"bad entry name {name!r}")
        out[name] = (data[nul + 1 : nul + 21], int(data[at:space], 8))
        at = nul + 21
    return out


def _shape_error(problem: str) -> LedgerError:
    return LedgerError(
        f"refusing to append: the entry listing is not a clean sequence ({problem}); {VERIFY_HINT}"
    )


def _check_rev(rev: str) -> None:
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n "):
        raise LedgerError(f"not a revision: {rev!r}")


def _check_relpath(path: str) -> None:
    if path.startswith("/") or any(part in ("", ".", "..", ".git") for part in path.split("/")):
        raise LedgerError(f"refusing a path outside the ledger: {path!r}")


def _no_symlink_on_the_way(root: Path, target: Path) -> bool:
    current = root
    for part in target.relative_to(root).parts:
        current = current / part
        if current.is_symlink():
            return False
    return True
