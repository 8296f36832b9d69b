"""The git object store behind a ledger: sharded entry paths, fast batch reads, atomic commits.

Reads come from the branch HEAD points at (never the working tree). Appends build the new
shard tree, its parents and the commit as loose objects in-process (GitPython's object
database), then move the branch with `git update-ref NEW OLD` (compare-and-swap) under an
exclusive lock, so a process killed at any point leaves the branch at the old or the new
commit. The working tree and index are updated alongside so `git status` stays clean.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import subprocess
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import git
from git.objects.fun import tree_entries_from_data, tree_to_stream
from gitdb import IStream
from gitdb.db.loose import LooseObjectDB

from ledger.errors import LedgerError

ENTRY_DIR = "evidence"
SHARD_SIZE = 1000
FILE_MODE = 0o100644
DIR_MODE = 0o040000
AUTHOR = "evledger <evledger@localhost>"
STALE_LOCK_SECONDS = 60


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


@dataclass(frozen=True)
class TreeItem:
    """One blob in a listed tree."""

    path: str
    sha: str
    mode: str


class Store:
    """A git repository used as an append-only entry store."""

    def __init__(self, root: Path) -> None:
        self.root = root
        try:
            self.repo = git.Repo(root)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as e:
            raise LedgerError("not a git repository", path=root) from e
        self.git_dir = Path(self.repo.git_dir)
        self._loose = LooseObjectDB(str(self.git_dir / "objects"))
        self.bare = self.repo.bare

    # ---------------------------------------------------------------- reading
    def _git(self, *args: str, input_: bytes | None = None, check: bool = True) -> bytes:
        proc = subprocess.run(
            ["git", *args],
            cwd=self.root,
            input=input_,
            capture_output=True,
            check=False,
            start_new_session=True,  # a group kill of the appender must not kill git mid-lock
        )
        if check and proc.returncode != 0:
            msg = proc.stderr.decode(errors="replace").strip().splitlines()
            raise LedgerError(f"git {args[0]} failed: {msg[-1] if msg else proc.returncode}")
        return proc.stdout

    def branch_ref(self) -> str:
        """The full ref HEAD points at (e.g. refs/heads/main)."""
        head = self.repo.head
        if head.is_detached:
            raise LedgerError("HEAD is detached; check out the ledger branch", path=self.root)
        return str(head.reference.path)

    def resolve(self, rev: str = "HEAD") -> str | None:
        """Commit id of `rev`, or None if it does not exist (e.g. an empty repository)."""
        if rev == "HEAD":  # the hot path of every append: read the ref files in-process
            try:
                return str(self.repo.head.commit.hexsha)
            except ValueError:
                return None
        out = self._git("rev-parse", "-q", "--verify", f"{rev}^{{commit}}", check=False).strip()
        return out.decode() or None

    def list_tree(
        self, rev: str, prefix: str = ENTRY_DIR, recursive: bool = True
    ) -> list[TreeItem]:
        """Blobs (or, non-recursive, direct children) under `prefix` at `rev`."""
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

    def read_blobs(self, shas: Iterable[str]) -> Iterator[bytes]:
        """Contents of many objects through one `git cat-file --batch` process, in order."""
        shas = list(shas)
        if not shas:
            return
        proc = subprocess.Popen(
            ["git", "cat-file", "--batch"],
            cwd=self.root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            bufsize=1 << 20,
            start_new_session=True,
        )
        assert proc.stdin is not None and proc.stdout is not None

        def feed() -> None:
            assert proc.stdin is not None
            try:
                proc.stdin.write("".join(f"{s}\n" for s in shas).encode())
                proc.stdin.close()
            except BrokenPipeError:
                pass

        writer = threading.Thread(target=feed, daemon=True)
        writer.start()
        out = proc.stdout
        try:
            for _ in shas:
                header = out.readline().split()
                if len(header) != 3:
                    raise LedgerError(f"object {header[0].decode() if header else '?'} is missing")
                size = int(header[2])
                data = out.read(size)
                out.read(1)
                yield data
        finally:
            out.close()
            proc.wait()
            writer.join()

    def read_path(self, rev: str, path: str) -> bytes | None:
        """One file at `rev`, or None if absent."""
        proc = subprocess.run(
            ["git", "cat-file", "blob", f"{rev}:{path}"],
            cwd=self.root,
            capture_output=True,
            check=False,
        )
        return proc.stdout if proc.returncode == 0 else None

    def is_ancestor(self, ancestor: str, rev: str) -> bool:
        """True if commit `ancestor` is reachable from `rev`."""
        proc = subprocess.run(
            ["git", "merge-base", "--is-ancestor", ancestor, rev], cwd=self.root, check=False
        )
        return proc.returncode == 0

    def changed_paths(self, old: str, new: str, prefix: str) -> list[tuple[str, str, str]]:
        """(status letter, path, new blob id) for files under `prefix` that differ old→new."""
        out = self._git("diff-tree", "-r", "-z", "--no-renames", old, new, "--", prefix)
        fields = out.split(b"\0")
        changes = []
        for meta, path in zip(fields[0::2], fields[1::2], strict=False):
            if not meta:
                continue
            parts = meta.decode().lstrip(":").split(" ")
            changes.append((parts[4], path.decode("utf-8", errors="surrogateescape"), parts[3]))
        return changes

    # ---------------------------------------------------------------- writing
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Exclusive append lock shared by every evledger process on this repository."""
        fd = os.open(self.git_dir / "evledger.lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def _store(self, kind: bytes, data: bytes) -> bytes:
        """Write a loose object in-process (GitCmdObjectDB.store spawns `git hash-object`)."""
        return self._loose.store(IStream(kind, len(data), io.BytesIO(data))).binsha

    def _tree_entries(self, binsha: bytes | None) -> dict[str, tuple[bytes, int]]:
        if binsha is None:
            return {}
        data = self.repo.odb.stream(binsha).read()
        return {name: (sha, mode) for sha, mode, name in tree_entries_from_data(data)}

    def _write_tree(self, entries: dict[str, tuple[bytes, int]]) -> bytes:
        def key(name: str) -> bytes:
            return name.encode() + (b"/" if entries[name][1] == DIR_MODE else b"")

        ordered = [(entries[n][0], entries[n][1], n) for n in sorted(entries, key=key)]
        buf = io.BytesIO()
        tree_to_stream(ordered, buf.write)
        return self._store(b"tree", buf.getvalue())

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

    def commit_files(self, files: dict[str, bytes | None], message: str, parent: str | None) -> str:
        """Commit `files` on top of `parent` and move the branch (CAS); call under `lock()`."""
        for path in files:
            _check_relpath(path)
        blobs: dict[str, bytes | None] = {
            path: None if data is None else self._store(b"blob", data)
            for path, data in files.items()
        }
        parent_tree = None
        if parent is not None:
            parent_tree = self.repo.commit(parent).tree.binsha
        tree = self._update_tree(parent_tree, dict(blobs))
        commit = self._write_commit(tree or self._write_tree({}), parent, message)
        self._clear_stale_git_locks()
        pending = self.git_dir / "evledger-pending"
        if not self.bare:
            self._discard_pending(pending, parent)
            pending.write_text("".join(f"{p}\n" for p in files))
        self._sync_worktree(files, blobs)
        ref = self.branch_ref()
        self._git("update-ref", "-m", "evledger append", ref, commit, parent or "0" * 40)
        pending.unlink(missing_ok=True)
        return commit

    def _clear_stale_git_locks(self) -> None:
        """Remove index/branch lock files a killed git child left behind (older than a minute).

        Only called under our own append lock, so no evledger process holds them; a lock that
        old is not a live `git` either (they hold such locks for milliseconds).
        """
        ref = self.branch_ref()
        for lock in (self.git_dir / "index.lock", self.git_dir / f"{ref}.lock"):
            try:
                if time.time() - lock.stat().st_mtime > STALE_LOCK_SECONDS:
                    lock.unlink()
            except FileNotFoundError:
                continue

    def _discard_pending(self, pending: Path, head: str | None) -> None:
        """Unstage and delete what an append killed before its ref update left behind."""
        if not pending.is_file():
            return
        paths = [p for p in pending.read_text().splitlines() if p]
        listed = b""
        if head:
            args = ("ls-tree", "-r", "-z", "--name-only", "--full-tree", head, "--", *paths)
            listed = self._git(*args)
        in_head = {p.decode() for p in listed.split(b"\0") if p}
        gone = [p for p in paths if p not in in_head]
        kept = [p for p in paths if p in in_head]
        if gone:
            self._git("update-index", "--force-remove", "--", *gone)
            for path in gone:
                target = self.root / path
                if target.is_file() and not target.is_symlink():
                    target.unlink()
        if kept:
            self._git("checkout", head or "HEAD", "--", *kept)
        pending.unlink()

    def remove_paths(self, paths: list[str], message: str) -> str:
        """Commit the removal of non-entry files (e.g. a revoked key's .pub); takes the lock."""
        with self.lock():
            parent = self.resolve()
            if parent is None:
                raise LedgerError("nothing to remove from an empty ledger")
            tree = self._update_tree(self.repo.commit(parent).tree.binsha, dict.fromkeys(paths))
            commit = self._write_commit(tree or self._write_tree({}), parent, message)
            if not self.bare:
                self._git("update-index", "--force-remove", "--", *paths)
                for path in paths:
                    target = self.root / path
                    if target.is_file() and not target.is_symlink():
                        target.unlink()
            self._git("update-ref", "-m", "evledger", self.branch_ref(), commit, parent)
            return commit

    def _write_commit(self, tree: bytes, parent: str | None, message: str) -> str:
        stamp = f"{int(time.time())} +0000"
        lines = [f"tree {tree.hex()}"]
        if parent:
            lines.append(f"parent {parent}")
        lines += [f"author {AUTHOR} {stamp}", f"committer {AUTHOR} {stamp}", "", message]
        return self._store(b"commit", ("\n".join(lines) + "\n").encode()).hex()

    def _sync_worktree(
        self, files: dict[str, bytes | None], blobs: dict[str, bytes | None]
    ) -> None:
        """Write the files into the working tree and stage them, before the branch moves."""
        if self.bare:
            return
        root = self.root.resolve()
        tmp_dir = self.git_dir / "evledger-tmp"  # a crash mid-write leaves nothing in the worktree
        tmp_dir.mkdir(exist_ok=True)
        for path, data in files.items():
            target = root / path
            _safe_parent(root, target)
            if data is None:
                if target.is_file():
                    target.unlink()
                continue
            tmp = tmp_dir / f"{target.name}.{os.getpid()}"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        info = "".join(
            f"{FILE_MODE:o} {sha.hex()}\t{p}\n" if sha else f"0 {'0' * 40}\t{p}\n"
            for p, sha in blobs.items()
        ).encode()  # mode 0 removes the path from the index
        self._git("update-index", "--add", "--index-info", input_=info)


def _check_relpath(path: str) -> None:
    if path.startswith("/") or any(part in ("", ".", "..", ".git") for part in path.split("/")):
        raise LedgerError(f"refusing to write outside the ledger: {path!r}")


def _safe_parent(root: Path, target: Path) -> None:
    """Create the parents of `target` inside `root`, refusing symlinks anywhere on the way."""
    current = root
    for part in target.relative_to(root).parts[:-1]:
        current = current / part
        if current.is_symlink():
            raise LedgerError("refusing to follow a symlink in the ledger", path=current)
        if not current.exists():
            current.mkdir()
        elif not current.is_dir():
            raise LedgerError("expected a folder", path=current)
    if target.is_symlink():
        raise LedgerError("refusing to overwrite a symlink in the ledger", path=target)
