"""Nothing lost: a killed append leaves a verifiable, appendable ledger; concurrent appenders
never fork or drop an entry.

What a crash leaves behind, by kill point (see `Store.commit_files`):

- before/while writing objects: only unreachable loose objects; HEAD, index and tree unchanged.
- after `.git/evledger-pending` (the new commit and its paths) is written, before or inside
  `git read-tree -m -u OLD NEW`: the index is at OLD (or, killed mid-way with a full index,
  some new files sit untracked in the working tree).
- between the index update and the ref update: the new entry files are staged (`A  ...`)
  but HEAD is the old commit; the ledger verifies at the old size. The next append reads
  `.git/evledger-pending` and carries the index back (`read-tree -m -u NEW HEAD`), deleting
  untracked leftovers HEAD does not hold.
- a git child killed holding `index.lock` or the branch's `.lock`: the next append removes
  locks older than a minute (it holds the evledger lock, so no evledger process owns them).
- after `update-ref`: the append is complete (new size).
"""

from __future__ import annotations

import inspect
import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import schemas
from ledger.api import Ledger, init_ledger
from ledger.envelope import STATEMENT_TYPE
from ledger.errors import SigningKeyError
from ledger.keys import generate_key, public_pem
from ledger.store import Store

REPO_ROOT = Path(__file__).resolve().parents[2]


class Crash(BaseException):
    """Stands in for the process dying at an injection point (not an Exception on purpose)."""


def statement(tag: str) -> dict[str, Any]:
    """A legacy-wrapped v43 evidence statement, unique per `tag`."""
    doc = {
        "schema_id": "evidence.v43.v1",
        "timestamp_utc": "2026-02-01T14:13:27Z",
        "summary": {"go": False, "cos_min": 0.9991, "ratio_fp16_effective_min": 4.0},
        "rows": [{"tag": tag}],
    }
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": tag, "digest": {"sha256": "ab" * 32}}],
        "predicateType": schemas.predicate_type("legacy"),
        "predicate": {"schema_id": "evidence.v43.v1", "document": doc},
    }


def git(led: Ledger, *args: str) -> str:
    """Run git in the ledger and return stdout."""
    return subprocess.run(
        ["git", *args], cwd=led.root, capture_output=True, text=True, check=True
    ).stdout


def status_lines(led: Ledger) -> list[str]:
    """`git status --porcelain` lines (untracked files listed one by one)."""
    return [line for line in git(led, "status", "--porcelain", "-uall").splitlines() if line]


def assert_ok(led: Ledger, sizes: set[int] | None = None) -> int:
    """Verify the ledger; return its size (and check it is one of `sizes`)."""
    report = led.verify()
    assert report.ok, report.problems
    if sizes is not None:
        assert report.entries in sizes, (report.entries, sizes)
    return report.entries


def assert_sane_status(led: Ledger) -> None:
    """Leftovers of a crash may only be entry files not (yet) in HEAD, never other changes."""
    for line in status_lines(led):
        code, path = line[:2], line[3:]
        assert path.startswith("evidence/"), line
        assert code in ("A ", "??"), line


# --------------------------------------------------------------- kill at any point

APPENDER = (
    textwrap.dedent(
        """
    import sys
    from typing import Any
    import schemas
    from ledger.api import open_ledger
    from ledger.envelope import STATEMENT_TYPE
    """
    )
    + inspect.getsource(statement)
    + textwrap.dedent(
        """

    led = open_ledger(sys.argv[1])
    tag = sys.argv[2]
    print("ready", flush=True)
    i = 0
    while True:
        [entry] = led.append([statement(f"{tag}-{i}")], key_name="alice")
        print(entry.seq, flush=True)
        i += 1
        if len(sys.argv) > 3 and i >= int(sys.argv[3]):
            break
    """
    )
)


def spawn_appender(
    led: Ledger, tag: str, count: int | None = None, *, new_session: bool = False
) -> subprocess.Popen[str]:
    """A child process appending one entry per commit (forever, or `count` times)."""
    args = [sys.executable, "-c", APPENDER, str(led.root), tag]
    if count is not None:
        args.append(str(count))
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    return subprocess.Popen(
        args,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=new_session,
    )


def wait_ready(proc: subprocess.Popen[str]) -> None:
    """Block until the child has imported everything and is about to append."""
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.strip() == "ready", (line, proc.stderr.read() if proc.stderr else "")


def group_alive(pgid: int) -> bool:
    """True while a live (non-zombie) process is left in process group `pgid`."""
    proc = Path("/proc")
    if not proc.is_dir():  # not Linux: zombies count as alive, only slower
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return False
        return True
    for stat in proc.glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            return True
    return False


def wait_group_gone(pgid: int, timeout: float = 30.0) -> None:
    """Wait for the killed appender's orphaned git children (same process group) to exit:
    a `git update-ref` outliving its parent may still move the branch after the kill."""
    deadline = time.monotonic() + timeout
    while group_alive(pgid):
        if time.monotonic() > deadline:
            raise AssertionError(f"process group {pgid} still alive after {timeout} s")
        time.sleep(0.005)


def kill_and_check(
    led: Ledger, delays: list[tuple[float, bool]], *, group: bool = False
) -> list[tuple[float, int]]:
    """Kill an appender after each (delay, warm) — warm: counted from its first finished
    append, so the kill lands inside a later one; after each kill the ledger verifies at the
    old or new size and takes one more append."""
    rounds = []
    for n, (delay, warm) in enumerate(delays):
        before = assert_ok(led)
        proc = spawn_appender(led, f"kill{n}", new_session=True)
        wait_ready(proc)
        assert proc.stdout is not None
        first = proc.stdout.readline() if warm else ""
        time.sleep(delay)
        if group:
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()
        out = proc.stdout.read()  # buffered reads: communicate() would skip readline's buffer
        proc.wait()
        wait_group_gone(proc.pid)
        printed = [int(x) for x in (first + out).split()]
        # every append the child reported is in; at most one more may have landed
        low = (printed[-1] + 1) if printed else before
        after = assert_ok(led, {low, low + 1})
        assert_sane_status(led)
        [entry] = led.append([statement(f"after{n}")], key_name="alice")
        assert entry.seq == after
        assert_ok(led, {after + 1})
        rounds.append((delay, after - before))
    return rounds


def test_kill_appender_short(ledger: Ledger) -> None:
    """Three SIGKILLs: at start-up, and twice in the middle of a stream of appends."""
    rounds = kill_and_check(ledger, [(0.0, False), (0.004, True), (0.017, True)])
    assert sum(grown for _, grown in rounds) >= 2


@pytest.mark.slow
def test_kill_appender_many(ledger: Ledger) -> None:
    """Fifteen SIGKILLs at random delays (0-150 ms) into a stream of appends."""
    rng = random.Random(20260201)
    delays = [(0.0, False), (0.001, True), (0.005, True)]
    delays += [(rng.uniform(0.0, 0.15), rng.random() < 0.8) for _ in range(12)]
    rounds = kill_and_check(ledger, delays)
    assert sum(grown for _, grown in rounds) >= 10


@pytest.mark.slow
def test_kill_appender_process_group(ledger: Ledger) -> None:
    """SIGKILL of the whole process group (the appender and its git children)."""
    rng = random.Random(7)
    kill_and_check(ledger, [(rng.uniform(0.0, 0.1), True) for _ in range(15)], group=True)


# --------------------------------------------------------------- deterministic kill points


def crash_on_git(monkeypatch: pytest.MonkeyPatch, command: str, *, after: bool = False) -> None:
    """Make `Store._git(command, ...)` die before (or right after) git runs."""
    original = Store._git

    def patched(self: Store, *args: str, **kwargs: Any) -> bytes:
        if args and args[0] == command:
            if after:
                original(self, *args, **kwargs)
            raise Crash(command)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Store, "_git", patched)


def crash_on_ref_update(monkeypatch: pytest.MonkeyPatch, *, after: bool = False) -> None:
    """Make `Store._update_ref` die before (or right after) the branch moves."""
    original = Store._update_ref

    def patched(self: Store, *args: Any, **kwargs: Any) -> None:
        if after:
            original(self, *args, **kwargs)
        raise Crash("update-ref")

    monkeypatch.setattr(Store, "_update_ref", patched)


def crash_in_sync(monkeypatch: pytest.MonkeyPatch) -> None:
    """Die after the objects are written, before the working tree and index are touched."""

    def patched(self: Store, *args: Any) -> None:
        raise Crash("sync")

    monkeypatch.setattr(Store, "_sync_worktree", patched)


KILL_POINTS: dict[str, tuple[Callable[[pytest.MonkeyPatch], None], bool]] = {
    # name: (injector, does the append land?)
    "objects-written": (crash_in_sync, False),
    "pending-written": (lambda mp: crash_on_git(mp, "read-tree"), False),
    "index-updated": (lambda mp: crash_on_git(mp, "read-tree", after=True), False),
    "before-ref-update": (lambda mp: crash_on_ref_update(mp), False),
    "ref-updated": (lambda mp: crash_on_ref_update(mp, after=True), True),
}


@pytest.fixture(params=["sparse", "full-index"])
def any_ledger(request: pytest.FixtureRequest, home: Path, tmp_path: Path) -> Ledger:
    """A new ledger (sparse index) or one added to a project repository (full index)."""
    if request.param == "sparse":
        return init_ledger(tmp_path / "ledger", "alice")[0]
    repo = tmp_path / "project"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("project\n")
    subprocess.run(["git", "-C", str(repo), "add", "README.md"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "code"], check=True)
    return init_ledger(repo, "alice")[0]


@pytest.mark.parametrize("point", list(KILL_POINTS))
@pytest.mark.parametrize("batch", [1, 3])
def test_crash_point_leaves_verifiable_appendable_ledger(
    any_ledger: Ledger, monkeypatch: pytest.MonkeyPatch, point: str, batch: int
) -> None:
    ledger = any_ledger
    """A crash at each step verifies at the old (or new) size and the next append works."""
    ledger.append([statement("base")], key_name="alice")
    inject, lands = KILL_POINTS[point]
    with monkeypatch.context() as mp:
        inject(mp)
        with pytest.raises(Crash):
            ledger.append([statement(f"crash{i}") for i in range(batch)], key_name="alice")
    assert_ok(ledger, {2 + batch} if lands else {2})
    assert_sane_status(ledger)
    [entry] = ledger.append([statement("next")], key_name="alice")
    assert entry.seq == (2 + batch if lands else 2)
    assert_ok(ledger, {entry.seq + 1})
    assert_sane_status(ledger)
    assert git(ledger, "rev-list", "--min-parents=2", "HEAD") == ""


def test_batch_crash_then_append_leaves_clean_status(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a crashed batch and one good append, `git status` should be clean again."""
    with monkeypatch.context() as mp:
        crash_on_ref_update(mp)
        with pytest.raises(Crash):
            ledger.append([statement(f"crash{i}") for i in range(3)], key_name="alice")
    ledger.append([statement("next")], key_name="alice")
    assert status_lines(ledger) == []


def test_index_crash_then_append_leaves_clean_status(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash right after the index update leaves nothing once the next append is done."""
    with monkeypatch.context() as mp:
        crash_on_git(mp, "read-tree", after=True)
        with pytest.raises(Crash):
            ledger.append([statement("crash")], key_name="alice")
    ledger.append([statement("next")], key_name="alice")
    assert status_lines(ledger) == []


def test_single_crash_then_append_leaves_clean_status(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A single append killed after staging is fully superseded by the next append."""
    with monkeypatch.context() as mp:
        crash_on_ref_update(mp)
        with pytest.raises(Crash):
            ledger.append([statement("crash")], key_name="alice")
    assert status_lines(ledger) == ["A  evidence/000000/000000001.json"]
    ledger.append([statement("next")], key_name="alice")
    assert status_lines(ledger) == []


@pytest.mark.parametrize("lock", ["index.lock", "refs/heads/main.lock"])
def test_stale_git_lock_after_killed_child(ledger: Ledger, lock: str) -> None:
    """A stale (hour-old) lock left by a killed `git update-index`/`update-ref` must not
    block appends."""
    path = Path(ledger.store.git_dir) / lock
    path.write_bytes(b"")
    hour_ago = time.time() - 3600
    os.utime(path, (hour_ago, hour_ago))
    ledger.append([statement("after-stale-lock")], key_name="alice")
    assert_ok(ledger, {2})


def test_crash_inside_revoke_keeps_revoked_key_out(
    ledger: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revocation killed after its entry lands must still stop the revoked key signing."""
    bob = generate_key("bob")
    ledger.add_key(public_pem(bob.public_key).encode(), "bob", key_name="alice")
    with monkeypatch.context() as mp:
        crash_on_ref_update(mp, after=True)  # die once the key-revoke entry landed
        with pytest.raises(Crash):
            ledger.revoke_key(bob.keyid, "laptop lost", key_name="alice")
    assert_ok(ledger, {3})
    try:
        ledger.append([statement("by-revoked-bob")], key_name="bob")
    except SigningKeyError:
        pass  # refused: what should happen
    assert_ok(ledger)


# --------------------------------------------------------------- concurrent appenders


def run_concurrent(led: Ledger, per_process: int, processes: int = 2) -> None:
    """`processes` children append `per_process` entries each at once: one linear chain."""
    procs = [spawn_appender(led, f"p{p}", per_process) for p in range(processes)]
    for proc in procs:
        wait_ready(proc)
    # read through the same buffered streams wait_ready used: communicate() reads the raw
    # pipes and would drop output already buffered by readline()
    outs = []
    for proc in procs:
        assert proc.stdout is not None and proc.stderr is not None
        outs.append((proc.stdout.read(), proc.stderr.read()))
        proc.wait(timeout=600)
    for proc, (_out, err) in zip(procs, outs, strict=True):
        assert proc.returncode == 0, err
    seqs = sorted(int(x) for out, _ in outs for x in out.split())
    total = per_process * processes
    assert seqs == list(range(1, total + 1))  # every append got its own seq, none twice
    report = led.verify()
    assert report.ok, report.problems
    assert report.entries == total + 1
    tags = sorted(str(e.subjects[0].name) for e in led.entries() if e.seq > 0)
    expected = sorted(f"p{p}-{i}" for p in range(processes) for i in range(per_process))
    assert tags == expected  # nothing dropped, nothing duplicated
    assert int(git(led, "rev-list", "--count", "HEAD")) == total + 1
    assert git(led, "rev-list", "--min-parents=2", "HEAD") == ""  # linear: no merges
    assert status_lines(led) == []


def test_two_concurrent_appenders_short(ledger: Ledger) -> None:
    """Two processes, 15 single appends each, interleave into one chain (default run)."""
    run_concurrent(ledger, 15)


@pytest.mark.slow
def test_two_concurrent_appenders_200(ledger: Ledger) -> None:
    """Two processes appending 200 entries each at the same time give 400 entries, no fork."""
    run_concurrent(ledger, 200)
