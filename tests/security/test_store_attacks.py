"""Issue 8, store findings, tried as an attacker (or a full disk) would, through the real CLI on
real ledgers: each asserts the exact outcome — exit code, one stderr line, nothing written."""

from __future__ import annotations

import errno
import json
import os
import stat
import subprocess
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from attacker import commit_raw
from invoke import run
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger, Prepared
from ledger.canonical import canonical_bytes
from ledger.store import READ_CHUNK, entry_path

REPO_ROOT = Path(__file__).resolve().parents[2]


def git(root: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=root, capture_output=True, text=True, check=True
    ).stdout


def state(led: Ledger) -> tuple[int, str, str]:
    """Commit count, `git status`, and the branch's tree: all must stay as they were."""
    return (
        int(git(led.root, "rev-list", "--count", "HEAD")),
        git(led.root, "status", "--porcelain", "-uall"),
        git(led.root, "rev-parse", "HEAD^{tree}"),
    )


def one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def cli(led: Ledger, *args: object) -> tuple[int, str, str]:
    return run(["--ledger", str(led.root), *map(str, args)])


def raw_entry(led: Ledger, seq: int) -> bytes:
    data = led.store.read_path("HEAD", entry_path(seq))
    assert data is not None
    return data


# ---------------------------------------------- 1. a stray file must not cause an overwrite


def test_stray_high_shard_does_not_make_append_overwrite_entry_3(filled: Ledger) -> None:
    """A committed evidence/999999/x.json (a copy of seq 2) made the next append write seq 3
    over the existing entry 3. The tip now comes from the chain: refused, nothing written."""
    entry3 = raw_entry(filled, 3)
    commit_raw(filled.root, {"evidence/999999/x.json": raw_entry(filled, 2)}, "stray")
    before = state(filled)
    code, out, err = cli(filled, "append", LEGACY_SAMPLES[0])
    assert code == 2 and out == ""
    line = one_line(err)
    assert "evidence/999999" in line and "evledger verify" in line
    assert state(filled) == before
    assert raw_entry(filled, 3) == entry3


@pytest.mark.parametrize(
    "files, problem",
    [
        ({entry_path(2): None}, "entry 2 is missing"),
        ({entry_path(4): "seq3"}, "position 4 says it is seq 3"),
        ({"evidence/000000/notes.txt": "seq3"}, "notes.txt is not an entry file"),
    ],
    ids=["gap", "tip-claims-another-seq", "stray-file-in-last-shard"],
)
def test_append_refuses_a_listing_that_is_not_the_chain(
    filled: Ledger, files: dict[str, str | None], problem: str
) -> None:
    seq3 = raw_entry(filled, 3)
    commit_raw(filled.root, {p: None if v is None else seq3 for p, v in files.items()})
    before = state(filled)
    code, _, err = cli(filled, "append", LEGACY_SAMPLES[0])
    assert code == 2 and problem in one_line(err) and "evledger verify" in err
    assert state(filled) == before


# ----------------------------------------------------------------- 2. a full disk


def fail_writes_under(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    """Every `os.write` to a file under `folder` fails with ENOSPC (as a full disk does)."""
    real = os.write

    def write(fd: int, data: Any) -> int:
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            target = ""
        if target.startswith(str(folder)):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    monkeypatch.setattr("gitdb.stream.write", write)


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if "logs" not in p.parts}


@pytest.mark.parametrize("command", ["append", "checkpoint"])
def test_disk_full_during_a_ledger_write(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch, command: str
) -> None:
    before, files = state(filled), files_under(filled.root)
    fail_writes_under(monkeypatch, filled.store.common_dir / "objects")
    args = ["append", LEGACY_SAMPLES[0]] if command == "append" else ["checkpoint"]
    code, out, err = cli(filled, *args)
    assert code == 2 and out == ""
    assert "No space left on device" in one_line(err)
    assert state(filled) == before
    assert files_under(filled.root) == files  # no temp file, object or pending file left


@pytest.mark.parametrize("command", ["report", "export", "checkpoint"])
def test_disk_full_while_writing_an_output_file(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, command: str
) -> None:
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    filled.checkpoint(key_name="alice")
    target = out_dir / "result.out"
    args = {
        "report": ["report", "--json", "-o", target],
        "export": ["export", "1", "-o", target],
        "checkpoint": ["checkpoint", "-o", target],
    }[command]
    fail_writes_under(monkeypatch, out_dir)
    code, _, err = cli(filled, *args)
    assert code == 2
    assert "No space left on device" in one_line(err)
    assert list(out_dir.iterdir()) == []  # neither the file nor its temp


# ---------------------------------------------------------- 3. a corrupt git object


def corrupt_loose_object(led: Ledger, seq: int) -> None:
    """Cut the end off entry `seq`'s loose blob (its header still reads)."""
    sha = git(led.root, "rev-parse", f"HEAD:{entry_path(seq)}").strip()
    path = led.store.common_dir / "objects" / sha[:2] / sha[2:]
    data = zlib.decompress(path.read_bytes())
    path.chmod(0o644)
    path.write_bytes(zlib.compress(data)[:-40])


def test_corrupt_object_verify_json_is_one_document(filled: Ledger) -> None:
    corrupt_loose_object(filled, 2)
    code, out, err = cli(filled, "verify", "--json")
    assert code == 1 and "Traceback" not in err
    report = json.loads(out)  # exactly one JSON document
    assert (2, "unreadable-object") in {(p["seq"], p["code"]) for p in report["problems"]}


@pytest.mark.parametrize(
    "args",
    [["show", "2"], ["log"], ["log", "--json"], ["gate"], ["report"], ["audit"], ["verify"]],
    ids=" ".join,
)
def test_corrupt_object_other_commands_fail_cleanly(filled: Ledger, args: list[str]) -> None:
    corrupt_loose_object(filled, 2)
    code, _, err = cli(filled, *args)
    assert code != 0
    assert "Traceback" not in err and len(err.strip().splitlines()) <= 1


def test_corrupt_tip_object_refuses_append(filled: Ledger) -> None:
    corrupt_loose_object(filled, 4)
    before = state(filled)
    code, _, err = cli(filled, "append", LEGACY_SAMPLES[0])
    assert code == 2 and "unreadable" in one_line(err) and "git fsck" in err
    assert state(filled) == before


# ------------------------------------------ 4. a consumer that fails must not hang a reader


@pytest.fixture
def long_ledger_bad_payload(ledger: Ledger) -> Iterator[Ledger]:
    """More entries than one read chunk; entry 2's payload is not base64."""
    from test_nothing_lost import statement

    items = [Prepared(statement(f"s{i}"), "evidence", "t") for i in range(READ_CHUNK + 100)]
    ledger.append_prepared(items, key_name="alice")
    doc = orjson.loads(raw_entry(ledger, 2))
    doc["envelope"]["payload"] = "!!!not base64!!!"
    commit_raw(ledger.root, {entry_path(2): canonical_bytes(doc)})
    yield ledger


def test_log_json_with_a_non_base64_payload_finishes(long_ledger_bad_payload: Ledger) -> None:
    """`log --json` used to hang on such a ledger; as a real process (interpreter shutdown
    included) it must end, with one JSON document and no traceback."""
    led = long_ledger_bad_payload
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.run(
        [sys.executable, "-m", "evledger", "--ledger", str(led.root), "log", "--json"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr
    rows = json.loads(proc.stdout)
    assert isinstance(rows, list | dict)
    assert proc.returncode in (0, 1)


# -------------------------------------------------------- 6. output file permissions


@pytest.mark.parametrize("umask, expected", [(0o022, 0o644), (0o077, 0o600)])
@pytest.mark.parametrize("command", ["report", "export", "checkpoint"])
def test_public_outputs_respect_the_umask(
    filled: Ledger, tmp_path: Path, command: str, umask: int, expected: int
) -> None:
    filled.checkpoint(key_name="alice")
    target = tmp_path / f"{command}.out"
    args = {
        "report": ["report", "--json", "-o", target],
        "export": ["export", "1", "-o", target],
        "checkpoint": ["checkpoint", "-o", target],
    }[command]
    old = os.umask(umask)
    try:
        code, _, err = cli(filled, *args)
    finally:
        os.umask(old)
    assert code in (0, 1), err  # report may exit 1 on a NO-GO gate; the file is written
    assert stat.S_IMODE(target.stat().st_mode) == expected


def test_private_keys_stay_owner_only(home: Path) -> None:
    old = os.umask(0o022)
    try:
        code, _, err = run(["keys", "generate", "carol"])
    finally:
        os.umask(old)
    assert code == 0, err
    assert stat.S_IMODE((home / "keys" / "carol.key").stat().st_mode) == 0o600


# ------------------------------------------------------- 7. paths and symlinks


def test_symlinked_evidence_folder_is_refused(filled: Ledger, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (filled.root / "evidence").symlink_to(outside)
    before = state(filled)
    code, _, err = cli(filled, "append", LEGACY_SAMPLES[0])
    assert code == 2 and "symlink" in one_line(err)
    assert state(filled) == before and list(outside.iterdir()) == []


def test_symlinked_keys_folder_is_refused(home: Path, filled: Ledger, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    keys = filled.root / "keys"
    for f in keys.iterdir():
        f.rename(outside / f.name)
    keys.rmdir()
    keys.symlink_to(outside)
    assert run(["keys", "generate", "bob"])[0] == 0
    before = state(filled)
    code, _, err = cli(filled, "keys", "trust", home / "keys" / "bob.pub", "--key", "alice")
    assert code == 2 and "symlink" in one_line(err)
    assert state(filled) == before
    assert sorted(p.name for p in outside.iterdir()) == ["alice.pub"]


def test_key_name_with_dots_cannot_leave_keys(home: Path, filled: Ledger) -> None:
    assert run(["keys", "generate", "bob"])[0] == 0
    before = state(filled)
    code, _, err = cli(filled, "keys", "trust", home / "keys" / "bob.pub", "--name", "../x")
    assert code == 2 and one_line(err)
    assert state(filled) == before


# ---------------------------------------------------------- a corrupt private key


@pytest.mark.parametrize("damage", ["truncated", "empty", "junk", "one-digit-changed"])
def test_corrupt_private_key_is_one_line(filled: Ledger, home: Path, damage: str) -> None:
    key = home / "keys" / "alice.key"
    pem = key.read_bytes()
    body = pem.splitlines()
    changed = body[1][:10] + (b"A" if body[1][10:11] != b"A" else b"B") + body[1][11:]
    key.write_bytes(
        {
            "truncated": pem[: len(pem) // 2],
            "empty": b"",
            "junk": bytes(range(256)),
            "one-digit-changed": b"\n".join([body[0], changed, *body[2:]]) + b"\n",
        }[damage]
    )
    before = state(filled)
    code, _, err = cli(filled, "append", LEGACY_SAMPLES[0], "--key", "alice")
    assert code == 2
    line = one_line(err)
    assert "alice" in line and ("corrupt" in line or "not a PEM" in line)
    assert state(filled) == before


def _signed_nested_entry(led: Ledger, depth: int) -> int:
    """Append, as the trusted key itself, a schema-valid statement whose params nest `depth`
    levels (raw bytes: evledger's own writers refuse such a document)."""
    from evidence_factory import statement

    from ledger.chain import PAYLOAD_TYPE
    from ledger.envelope import sign_envelope
    from ledger.keys import load_key

    seq, prev = led.tip()
    st = statement("static", {"cos_min": 0.99}, params={"x": {}})
    st["predicate"]["ledger"] = {
        "seq": seq + 1,
        "prev": prev,
        "kind": "evidence",
        "time": "2026-12-01T00:00:00Z",
    }
    text = json.dumps(st, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    nested = '{"a":' * depth + "{}" + "}" * depth
    text = text.replace('"params":{"x":{}}', '"params":{"x":' + nested + "}")
    envelope = sign_envelope(text.encode(), [load_key("alice")], PAYLOAD_TYPE)
    doc = {"seq": seq + 1, "prev": prev, "kind": "evidence", "envelope": envelope}
    commit_raw(led.root, {entry_path(seq + 1): canonical_bytes(doc)})
    return seq + 1


@pytest.mark.parametrize("depth", [250, 300, 2000])
def test_deeply_nested_signed_payload_is_excluded_or_read_never_a_crash(
    filled: Ledger, depth: int
) -> None:
    """orjson parses 1024 levels but re-serialises 255: a payload between the two crashed
    every reader (TypeError: Recursion limit reached) before verify caught it."""
    seq = _signed_nested_entry(filled, depth)
    for args in (["verify"], ["log"], ["gate"], ["audit"], ["report"], ["show", str(seq)]):
        code, _, err = run(["--ledger", filled.root, *args])
        assert code in (0, 1, 2) and "Traceback" not in err and "Recursion" not in err, err
        if depth > 255 and args[0] != "show":
            assert code == 1, (args, err)
    report = filled.verify()
    if depth > 255:
        assert (seq, "bad-entry") in {(p.seq, p.code) for p in report.problems}
    else:
        assert report.ok, report.problems  # deep but within reach: verified and shown
