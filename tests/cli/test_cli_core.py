"""CLI contract: exit codes, one-line errors, nothing written on bad input, --json output."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from attacker import commit_raw
from invoke import run
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger


def commits(led: Ledger) -> int:
    out = subprocess.run(
        ["git", "rev-list", "--count", "HEAD"], cwd=led.root, capture_output=True, text=True
    )
    return int(out.stdout)


def status(led: Ledger) -> str:
    return subprocess.run(
        ["git", "status", "--porcelain"], cwd=led.root, capture_output=True, text=True
    ).stdout


def test_init_append_log_show_verify(home: Path, tmp_path: Path) -> None:
    path = tmp_path / "L"
    code, out, err = run(["init", str(path), "--key", "alice", "--json"])
    assert code == 0, err
    genesis = json.loads(out)["genesis"]
    code, out, _ = run(["--ledger", str(path), "append", "--json", *map(str, LEGACY_SAMPLES)])
    assert code == 0
    assert [e["seq"] for e in json.loads(out)] == [1, 2]
    code, out, _ = run(["--ledger", str(path), "log", "--json"])
    rows = json.loads(out)
    assert {"seq", "digest", "kind", "predicate_type", "signer", "time"} <= set(rows[0])
    assert [r["kind"] for r in rows] == ["genesis", "evidence", "evidence"]
    code, out, _ = run(["--ledger", str(path), "show", "evidence.v43.v1@latest", "--json"])
    assert code == 0
    assert json.loads(out)["statement"]["predicate"]["document"]["summary"]["cos_min"] == 0.999954
    code, out, err = run(["--ledger", str(path), "verify", "--json", "--genesis", genesis])
    report = json.loads(out)
    assert code == 0 and report["ok"] and report["entries"] == 3 and err == ""
    assert {"ok", "entries", "trusted_keys", "problems"} <= set(report)


def test_verify_failure_exits_1_with_problems(filled: Ledger) -> None:
    commit_raw(filled.root, {"evidence/000000/000000002.json": None}, "drop")
    code, out, _ = run(["--ledger", str(filled.root), "verify", "--json"])
    assert code == 1
    problems = json.loads(out)["problems"]
    assert {"seq": 2, "code": "missing-entry"} in [
        {k: p[k] for k in ("seq", "code")} for p in problems
    ]


BAD_INPUTS = {
    "not json": (b"{not json", "not JSON"),
    "nan": (
        b'{"schema_id": "evidence.v43.v1", "timestamp_utc": "x", "summary": {"go": NaN}}',
        "NaN",
    ),
    "overflow": (b'{"schema_id": "evidence.v43.v1", "x": 1e400}', "overflows"),
    "big int": (b'{"schema_id": "evidence.v43.v1", "seed": 9007199254740993}', "2^53"),
    "unknown schema_id": (b'{"schema_id": "evidence.v999.v1"}', "unknown schema_id"),
    "wrong schema": (b'{"schema_id": "evidence.v43.v1", "timestamp_utc": "t"}', "summary"),
    "not an object": (b"[1, 2]", "not a JSON object"),
    "unknown shape": (b'{"hello": 1}', "not an in-toto statement"),
    "statement no schema": (
        b'{"_type": "https://in-toto.io/Statement/v1", "subject": [{"digest": {"sha256": "ab"}}],'
        b' "predicateType": "https://example.org/x/v1", "predicate": {}}',
        "no schema for predicateType",
    ),
}


@pytest.mark.parametrize("name", list(BAD_INPUTS))
def test_bad_input_exits_2_and_writes_nothing(filled: Ledger, tmp_path: Path, name: str) -> None:
    data, reason = BAD_INPUTS[name]
    bad = tmp_path / "bad.json"
    bad.write_bytes(data)
    before = commits(filled)
    # a good file first: all files in one commit, or none of them
    code, out, err = run(["--ledger", str(filled.root), "append", str(LEGACY_SAMPLES[0]), str(bad)])
    assert code == 2
    assert err.count("\n") == 1 and str(bad) in err and reason in err, err
    assert out == ""
    assert commits(filled) == before
    assert status(filled) == ""


def test_symlink_and_git_dir_inputs_refused(filled: Ledger, tmp_path: Path) -> None:
    link = tmp_path / "link.json"
    link.symlink_to(LEGACY_SAMPLES[0])
    code, _, err = run(["--ledger", str(filled.root), "append", str(link)])
    assert code == 2 and "symlink" in err
    inside = filled.root / ".git" / "config"
    code, _, err = run(["--ledger", str(filled.root), "append", str(inside)])
    assert code == 2 and ".git" in err
    code, _, err = run(["--ledger", str(filled.root), "append", str(tmp_path / "missing.json")])
    assert code == 2 and "no such file" in err


def test_symlinked_shard_folder_in_worktree_is_refused(filled: Ledger, tmp_path: Path) -> None:
    shard = filled.root / "evidence" / "000000"  # not checked out in a sparse ledger
    outside = tmp_path / "outside"
    outside.mkdir()
    shard.parent.mkdir(exist_ok=True)
    shard.symlink_to(outside)
    before = commits(filled)
    code, _, err = run(["--ledger", str(filled.root), "append", str(LEGACY_SAMPLES[0])])
    assert code == 2 and "symlink" in err
    assert commits(filled) == before


def test_keys_commands(home: Path, filled: Ledger, tmp_path: Path) -> None:
    code, out, _ = run(["keys", "generate", "bob", "--json"])
    bob = json.loads(out)
    key_file = home / "keys" / "bob.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    code, out, _ = run(["keys", "export", "bob"])
    assert out.startswith("-----BEGIN PUBLIC KEY-----") and "PRIVATE" not in out
    pub = tmp_path / "bob.pub"
    pub.write_text(out)
    at = ["--ledger", str(filled.root)]
    assert run([*at, "keys", "trust", str(pub), "--key", "alice"])[0] == 0
    code, out, _ = run([*at, "keys", "list", "--json"])
    names = {k["name"] for k in json.loads(out)["ledger"]}
    assert names == {"alice", "bob"}
    assert run([*at, "append", "--key", "bob", str(LEGACY_SAMPLES[0])])[0] == 0
    assert (
        run([*at, "keys", "revoke", bob["keyid"][:12], "--reason", "rotated", "--key", "alice"])[0]
        == 0
    )
    code, _, err = run([*at, "append", "--key", "bob", str(LEGACY_SAMPLES[0])])
    assert code == 2 and "not trusted" in err
    assert run([*at, "verify"])[0] == 0
    # no private key material in the ledger repository, ever
    tracked = subprocess.run(
        ["git", "grep", "-l", "PRIVATE KEY", "HEAD"], cwd=filled.root, capture_output=True
    )
    assert tracked.stdout == b""


def test_private_key_refused_inside_a_repo(filled: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EVLEDGER_HOME", str(filled.root / "home"))
    code, _, err = run(["keys", "generate", "carol"])
    assert code == 2 and "inside the git repository" in err


def test_encrypted_key_needs_passphrase(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EVLEDGER_PASSPHRASE", "correct horse")
    assert run(["init", str(tmp_path / "E"), "--key", "enc"])[0] == 0
    assert b"ENCRYPTED" in (home / "keys" / "enc.key").read_bytes()
    monkeypatch.delenv("EVLEDGER_PASSPHRASE")
    code, _, err = run(
        ["--ledger", str(tmp_path / "E"), "append", "--key", "enc", str(LEGACY_SAMPLES[0])]
    )
    assert code == 2 and "EVLEDGER_PASSPHRASE" in err
    monkeypatch.setenv("EVLEDGER_PASSPHRASE", "wrong")
    code, _, err = run(
        ["--ledger", str(tmp_path / "E"), "append", "--key", "enc", str(LEGACY_SAMPLES[0])]
    )
    assert code == 2 and "passphrase" in err


def test_checkpoint_json_and_since(filled: Ledger, tmp_path: Path) -> None:
    kept = tmp_path / "cp.note"
    code, out, _ = run(["--ledger", str(filled.root), "checkpoint", "-o", str(kept), "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["size"] == 5 and len(bytes.fromhex(doc["root"])) == 32
    assert kept.read_text() == doc["note"]
    assert run(["--ledger", str(filled.root), "append", str(LEGACY_SAMPLES[0])])[0] == 0
    code, out, _ = run(["--ledger", str(filled.root), "verify", "--since", str(kept), "--json"])
    assert code == 0 and json.loads(out)["since"]["size"] == 5


def test_bad_ref_and_usage(filled: Ledger) -> None:
    code, _, err = run(["--ledger", str(filled.root), "show", "999"])
    assert code == 2 and err.count("\n") == 1
    code, _, err = run(["--ledger", str(filled.root), "show", "nosuchrunner@latest"])
    assert code == 2


def test_python_dash_m_evledger(filled: Ledger) -> None:
    env = {**os.environ, "EVLEDGER_LEDGER": str(filled.root)}
    proc = subprocess.run(
        [sys.executable, "-m", "evledger", "verify", "--json"], capture_output=True, env=env
    )
    assert proc.returncode == 0 and json.loads(proc.stdout)["ok"]


def test_ledger_cli_never_imports_textual() -> None:
    code = "import sys, evledger.cli, ledger.api, ledger.verify; print('textual' in sys.modules)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"


def test_init_in_an_existing_project_repo(home: Path, tmp_path: Path) -> None:
    """The example ledger lives in the project repository: init must add to it, once."""
    repo = tmp_path / "project"
    repo.mkdir()
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    (repo / "README.md").write_text("# my project\n")
    (repo / "evidence").mkdir()  # an empty folder is not a ledger
    subprocess.run(["git", "-C", str(repo), "add", "README.md"], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-qm", "code"], check=True)
    assert run(["init", str(repo), "--key", "alice"])[0] == 0
    assert (repo / "README.md").read_text() == "# my project\n"
    assert run(["--ledger", str(repo), "verify"])[0] == 0
    code, _, err = run(["init", str(repo), "--key", "alice"])
    assert code == 2 and "already a ledger" in err
    status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain"], capture_output=True)
    assert status.stdout == b""


def test_tui_takes_ledger_after_the_command_too(
    filled: Ledger, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`evledger tui --ledger PATH` (what newcomers type) opens PATH, like `--ledger PATH tui`."""
    from tui.app import EvledgerApp

    opened: list[Path] = []
    monkeypatch.setattr(EvledgerApp, "run", lambda self: opened.append(self.ledger.root))
    monkeypatch.chdir(filled.root.parent)
    for args in (["tui", "--ledger", filled.root], ["--ledger", filled.root, "tui"]):
        code, _, err = run(args)
        assert code == 0, err
    assert opened == [filled.root, filled.root]
