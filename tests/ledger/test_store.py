"""The store on real git repositories: chain-shaped tip, no entry overwritten, sparse index,
bounded reads that leave no process behind, paths and symlinks refused, full disks undone."""

from __future__ import annotations

import errno
import os
import subprocess
import zlib
from pathlib import Path
from typing import Any

import pytest
from attacker import commit_raw
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger, init_ledger
from ledger.errors import LedgerError
from ledger.store import (
    READ_CHUNK,
    Store,
    UnreadableObject,
    UnreadableObjectError,
    entry_path,
)


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def commits(led: Ledger) -> int:
    return int(git(led.root, "rev-list", "--count", "HEAD"))


def raw_entry(led: Ledger, seq: int) -> bytes:
    data = led.store.read_path("HEAD", entry_path(seq))
    assert data is not None
    return data


def children() -> set[int]:
    """Live child processes of this test process (Linux /proc)."""
    out = set()
    for task in Path(f"/proc/{os.getpid()}/task").iterdir():
        text = (task / "children").read_text().split()
        out |= {int(pid) for pid in text}
    return out


def corrupt_loose_object(led: Ledger, sha: str) -> None:
    """Cut the end off a loose object's zlib stream (its header still reads)."""
    path = led.store.common_dir / "objects" / sha[:2] / sha[2:]
    data = zlib.decompress(path.read_bytes())
    path.chmod(0o644)
    path.write_bytes(zlib.compress(data)[:-40])


# ------------------------------------------------------------------ the tip


def test_tip_is_the_chain_tip(filled: Ledger) -> None:
    seq, digest = filled.tip()  # type: ignore[misc]
    assert seq == 4
    assert digest == filled.resolve("4").digest


@pytest.mark.parametrize(
    "files, problem",
    [
        ({"evidence/999999/x.json": "copy-2"}, "evidence/999999 is not the next shard folder"),
        ({"evidence/000000/junk.json": "copy-2"}, "evidence/000000/junk.json is not an entry"),
        ({entry_path(2): None}, "entry 2 is missing"),
        ({entry_path(7): "copy-2"}, "entry 5 is missing"),
        ({"evidence/000001/000001000.json": "copy-2"}, "evidence/000000 does not hold"),
        ({entry_path(4): "copy-3"}, "position 4 says it is seq 3"),
        ({entry_path(4): "junk"}, "the newest entry (seq 4) is not an entry"),
    ],
    ids=["stray-shard", "stray-file", "gap", "beyond-gap", "short-shard", "wrong-seq", "junk"],
)
def test_tip_refuses_a_listing_that_is_not_the_chain(
    filled: Ledger, files: dict[str, str | None], problem: str
) -> None:
    data = {"copy-2": raw_entry(filled, 2), "copy-3": raw_entry(filled, 3), "junk": b"{}"}
    commit_raw(filled.root, {p: None if v is None else data[v] for p, v in files.items()})
    with pytest.raises(LedgerError, match="refusing to append") as caught:
        filled.tip()
    assert problem in str(caught.value) and "evledger verify" in str(caught.value)


def test_full_shards_are_checked_once_and_remembered(ledger: Ledger) -> None:
    """A shard of 1000 entries is compared name by name once; its tree id is then known."""
    from test_nothing_lost import statement as legacy_statement

    from ledger.api import Prepared

    items = [Prepared(legacy_statement(f"s{i}"), "evidence", "t") for i in range(1001)]
    ledger.append_prepared(items, key_name="alice")
    store = Store(ledger.root)
    assert store.chain_listing().size == 1002
    cache = ledger.store.common_dir / "evledger" / "full-shards"
    assert cache.read_text().startswith("000000 ")
    [entry] = ledger.append([legacy_statement("after")], key_name="alice")
    assert entry.seq == 1002
    assert ledger.verify().ok


# ------------------------------------------------------- never overwrite an entry


@pytest.mark.parametrize("change", ["replace", "delete"])
def test_commit_never_overwrites_or_deletes_an_entry(filled: Ledger, change: str) -> None:
    before, head = commits(filled), filled.store.resolve()
    files: dict[str, bytes | None] = {entry_path(3): b"{}" if change == "replace" else None}
    with filled.store.lock(), pytest.raises(LedgerError, match="existing entry"):
        filled.store.commit_files(files, "overwrite", head)
    with pytest.raises(LedgerError, match="existing entry"):
        filled.store.remove_paths([entry_path(4)], "drop")
    assert commits(filled) == before and git(filled.root, "status", "--porcelain") == ""
    assert filled.verify().ok


def test_commit_checks_the_parent_it_is_given(filled: Ledger) -> None:
    """The check is against the parent tree at commit time, not a listing read earlier."""
    old = git(filled.root, "rev-parse", "HEAD~1").strip()  # holds seq 0..2
    with filled.store.lock(), pytest.raises(LedgerError, match="existing entry"):
        filled.store.commit_files({entry_path(2): b"{}"}, "x", old)


def test_only_entry_files_go_under_evidence(filled: Ledger) -> None:
    with filled.store.lock(), pytest.raises(LedgerError, match="not an entry path"):
        filled.store.commit_files({"evidence/000000/x.json": b"{}"}, "x", filled.store.resolve())


# ------------------------------------------------------------- sparse layout


def test_new_ledger_keeps_evidence_as_one_sparse_index_entry(filled: Ledger) -> None:
    assert not (filled.root / "evidence").exists()
    listed = git(filled.root, "ls-files", "--sparse", "-s").splitlines()
    assert any(line.startswith("040000 ") and line.endswith("\tevidence/") for line in listed)
    assert len(listed) < 10  # not one index line per entry
    assert git(filled.root, "status", "--porcelain") == ""


def test_a_persons_commit_keeps_every_entry(filled: Ledger) -> None:
    """`git add` + `git commit` by a person in a sparse ledger writes evidence/ from the
    index's directory entry: nothing dropped, and appends go on."""
    (filled.root / "NOTES.md").write_text("reviewed\n")
    git(filled.root, "add", "NOTES.md")
    git(filled.root, "commit", "-qm", "notes")
    report = filled.verify()
    assert report.ok and report.entries == 5
    filled.append_files(LEGACY_SAMPLES[:1], key_name="alice")
    git(filled.root, "commit", "-qam", "nothing staged", "--allow-empty")
    report = filled.verify()
    assert report.ok and report.entries == 6
    assert git(filled.root, "status", "--porcelain") == ""


def test_full_index_ledger_in_a_project_repo(home: Path, tmp_path: Path) -> None:
    """A ledger added to an existing repository keeps its entry files in the working tree."""
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "README.md").write_text("x\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-qm", "code")
    led, _ = init_ledger(repo, "alice")
    led.append_files(LEGACY_SAMPLES, key_name="alice")
    assert (repo / entry_path(2)).read_bytes() == raw_entry(led, 2)
    (repo / "README.md").write_text("y\n")
    git(repo, "commit", "-qam", "person")
    assert led.verify().ok and led.verify().entries == 3
    assert git(repo, "status", "--porcelain") == ""
    assert git(repo, "fsck", "--strict", "--no-dangling").strip() == ""


def test_objects_we_write_are_what_git_writes(filled: Ledger) -> None:
    """Trees, commits and the ref update made in-process pass `git fsck --strict`."""
    assert git(filled.root, "fsck", "--strict", "--no-dangling").strip() == ""
    log = git(filled.root, "reflog", "-n", "1", "--format=%gs")
    assert log.startswith("evledger: append")


# ------------------------------------------------------------------- reading


def test_read_blobs_in_chunks_returns_everything_in_order(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("ledger.store.READ_CHUNK", 2)
    shas = [sha for _, sha in filled.store.entry_blobs()]
    assert list(filled.store.read_blobs(shas)) == [raw_entry(filled, s) for s in range(5)]
    assert READ_CHUNK >= 1000  # the real chunk amortises the process start


def test_a_reader_that_stops_or_raises_leaves_no_process_behind(filled: Ledger) -> None:
    shas = [sha for _, sha in filled.store.entry_blobs()] * 3
    before = children()
    reader = filled.store.read_blobs(shas)
    next(reader)
    assert children() == before  # no cat-file alive while the consumer holds an object
    with pytest.raises(ValueError):
        for _ in filled.store.read_blobs(shas):
            raise ValueError("consumer fails")
    assert children() == before


def test_corrupt_and_missing_objects_are_marked_or_raised(filled: Ledger) -> None:
    shas = [sha for _, sha in filled.store.entry_blobs()]
    corrupt_loose_object(filled, shas[2])
    missing = "0" * 40
    got = list(filled.store.read_blobs([*shas, missing], mark_unreadable=True))
    assert [isinstance(g, UnreadableObject) for g in got] == [False] * 2 + [True] + [False] * 2 + [
        True
    ]
    assert got[3] == raw_entry(filled, 3)  # reading went on after the corrupt one
    with pytest.raises(UnreadableObjectError, match="unreadable"):
        list(filled.store.read_blobs(shas))


def test_only_object_ids_are_read(filled: Ledger) -> None:
    """`cat-file --batch` would read `rev:path`; the store passes object ids only."""
    with pytest.raises(UnreadableObjectError, match="not an object id"):
        list(filled.store.read_blobs(["HEAD:keys/alice.pub"]))


# ------------------------------------------------------------ paths and symlinks


@pytest.mark.parametrize(
    "path", ["../outside.txt", "keys/../../x", "/etc/x", ".git/config", "keys//x", "keys/./x"]
)
def test_paths_outside_the_ledger_are_refused(filled: Ledger, path: str) -> None:
    with filled.store.lock(), pytest.raises(LedgerError, match="outside the ledger"):
        filled.store.commit_files({path: b"x"}, "x", filled.store.resolve())
    with pytest.raises(LedgerError, match="outside the ledger"):
        filled.store.read_path("HEAD", path)


def test_revisions_that_look_like_options_are_refused(filled: Ledger) -> None:
    for rev in ("--output=/tmp/x", "-p", "HEAD\nHEAD"):
        with pytest.raises(LedgerError, match="not a revision"):
            filled.store.resolve(rev)


@pytest.mark.parametrize("where", ["evidence", "keys"])
def test_symlinked_folder_in_the_working_tree_is_refused(
    filled: Ledger, tmp_path: Path, where: str
) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    target = filled.root / where
    if target.exists():
        for f in target.iterdir():
            f.rename(outside / f.name)
        target.rmdir()
    target.symlink_to(outside)
    before = commits(filled)
    path = entry_path(5) if where == "evidence" else "keys/bob.pub"
    with filled.store.lock(), pytest.raises(LedgerError, match="symlink"):
        filled.store.commit_files({path: b"x"}, "x", filled.store.resolve())
    assert commits(filled) == before
    assert sorted(p.name for p in outside.iterdir()) == (["alice.pub"] if where == "keys" else [])


# ---------------------------------------------------------------- full disk


def fail_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path, after: int = 0) -> None:
    """`os.write` to any file under `folder` fails with ENOSPC (after `after` good writes)."""
    real = os.write
    count = {"n": 0}

    def write(fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.startswith(str(folder)):
            count["n"] += 1
            if count["n"] > after:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr("gitdb.stream.write", write)  # gitdb bound os.write at import


def snapshot(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "logs" not in p.parts}


@pytest.mark.parametrize("after", [0, 1, 3])
def test_disk_full_during_append_leaves_nothing(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch, after: int
) -> None:
    before, files = commits(filled), snapshot(filled.root)
    with monkeypatch.context() as mp:
        fail_writes_under(mp, filled.store.common_dir / "objects", after)
        with pytest.raises(LedgerError, match="No space left on device"):
            filled.append_files(LEGACY_SAMPLES, key_name="alice")
    assert commits(filled) == before
    assert snapshot(filled.root) == files  # no temp file, no stray object, no pending file
    assert git(filled.root, "status", "--porcelain") == ""
    [entry] = filled.append_files(LEGACY_SAMPLES[:1], key_name="alice")
    assert entry.seq == 5 and filled.verify().ok


def test_commit_needs_the_append_lock(filled: Ledger) -> None:
    with pytest.raises(LedgerError, match="without the append lock"):
        filled.store.commit_files({"keys/x.pub": b"x"}, "x", filled.store.resolve())


def test_append_after_gc_and_packed_refs(filled: Ledger) -> None:
    """Objects in a pack and the branch only in packed-refs: the in-process reads and the
    ref update still work, and git agrees with the result."""
    git(filled.root, "gc", "-q")
    git(filled.root, "pack-refs", "--all")
    assert not (filled.store.common_dir / "refs" / "heads" / "main").exists()
    [entry] = filled.append_files(LEGACY_SAMPLES[:1], key_name="alice")
    assert entry.seq == 5 and filled.tip() == (5, entry.digest)
    assert filled.verify().ok
    assert git(filled.root, "rev-parse", "HEAD").strip() == filled.store.resolve()
    assert git(filled.root, "fsck", "--strict", "--no-dangling").strip() == ""
