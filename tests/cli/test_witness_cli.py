"""The documented distribution flow, end to end through the real CLI, with a bare git remote:

claimant → git push → reproducer git clone / evledger pull → witness cosign → checkpoint
cosign → export → auditor import --witness --quorum; and a rewritten remote refused by the
witness, by pull and by the auditor.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from invoke import run

LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


def git(*args: str, cwd: Path) -> str:
    out = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return out.stdout.strip()


class Party:
    """One person: their own EVLEDGER_HOME (key store, witness state)."""

    def __init__(self, name: str, tmp: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.home = tmp / f"home-{name}"
        self.monkeypatch = monkeypatch

    def __call__(self, *args: object) -> tuple[int, str, str]:
        self.monkeypatch.setenv("EVLEDGER_HOME", str(self.home))
        return run([str(a) for a in args])


@pytest.fixture
def people(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Party]:
    for var in ("EVLEDGER_KEY", "EVLEDGER_LEDGER", "EVLEDGER_PASSPHRASE"):
        monkeypatch.delenv(var, raising=False)
    return {n: Party(n, tmp_path, monkeypatch) for n in ("claimant", "witness", "auditor")}


def ok(result: tuple[int, str, str]) -> str:
    code, out, err = result
    assert code == 0, err
    return out


def test_claimant_to_auditor_through_a_git_remote(people: dict[str, Party], tmp_path: Path) -> None:
    claimant, witness, auditor = people["claimant"], people["witness"], people["auditor"]
    remote = tmp_path / "remote.git"
    git("init", "--bare", "--quiet", "--initial-branch=main", str(remote), cwd=tmp_path)
    url = remote.as_uri()

    # claimant: a ledger with evidence and a checkpoint, pushed to the shared remote
    led = tmp_path / "claim"
    ok(claimant("init", led, "--key", "alice"))
    c = ["--ledger", led]
    ok(claimant(*c, "append", *LEGACY, "--key", "alice"))
    ok(claimant(*c, "checkpoint", "--key", "alice"))
    git("remote", "add", "origin", str(remote), cwd=led)
    git("push", "--quiet", "origin", "main", cwd=led)

    # reproducer: clone and verify what was pushed
    repro = tmp_path / "repro"
    git("clone", "--quiet", url, str(repro), cwd=tmp_path)
    assert json.loads(ok(claimant("--ledger", repro, "verify", "--json")))["ok"]

    # witness: first cosign is a full verify of the remote (through a git URL)
    ok(witness("witness", "init", "w1"))
    cosigned = tmp_path / "c1.note"
    doc = json.loads(ok(witness("witness", "cosign", url, "-o", cosigned, "--json")))
    assert doc["mode"] == "full" and doc["entries_checked"] == doc["size"] == 3
    w1_pub = tmp_path / "w1.pub"
    w1_pub.write_text(ok(witness("keys", "export", "w1")))

    # claimant attaches the cosignature, pushes, exports
    ok(claimant(*c, "checkpoint", "cosign", cosigned))
    git("push", "--quiet", "origin", "main", cwd=led)
    bundle = tmp_path / "b1.json"
    ok(claimant(*c, "export", "1", "-o", bundle))
    assert "— w1 " in json.loads(bundle.read_text())["checkpoint"]["note"]

    # auditor: imports only with the witness's cosignature
    aud = tmp_path / "audit"
    ok(auditor("init", aud, "--key", "aud"))
    a = ["--ledger", aud, "import", "--key", "aud"]
    code, _, err = auditor(*a, bundle, "--witness", w1_pub, "--quorum", "2")
    assert code == 2 and "--quorum 2 needs" in err
    doc = json.loads(ok(auditor(*a, bundle, "--witness", w1_pub, "--quorum", "1", "--json")))
    assert len(doc["appended"]) == 1 and "1 of quorum 1 witnesses" in doc["trust_anchor"]

    # the claimant grows the ledger; the reproducer pulls; the witness checks only the growth
    ok(claimant(*c, "append", LEGACY[0], "--key", "alice"))
    ok(claimant(*c, "checkpoint", "--key", "alice"))
    git("push", "--quiet", "origin", "main", cwd=led)
    doc = json.loads(ok(claimant("--ledger", repro, "pull", "origin", "--json")))
    assert doc["since"] == 3 and doc["entries"] == 4
    assert git("rev-parse", "HEAD", cwd=repro) == git("rev-parse", "HEAD", cwd=led)
    doc = json.loads(ok(witness("witness", "cosign", url, "--json")))
    assert (doc["mode"], doc["old_size"], doc["size"], doc["entries_checked"]) == (
        "incremental",
        3,
        4,
        1,
    )
    assert doc["consistency_proof"]

    # a rewritten history, force-pushed: the witness, pull and the auditor all refuse it
    first = git("rev-list", "--max-parents=0", "HEAD", cwd=led)
    git("reset", "--quiet", "--hard", first, cwd=led)
    ok(claimant(*c, "append", LEGACY[1], LEGACY[1], LEGACY[0], LEGACY[0], "--key", "alice"))
    ok(claimant(*c, "checkpoint", "--key", "alice"))
    git("push", "--quiet", "--force", "origin", "main", cwd=led)

    code, _, err = witness("witness", "cosign", url, "-o", tmp_path / "c2.note")
    assert code == 1 and "not-append-only" in err and not (tmp_path / "c2.note").exists()

    before = git("rev-parse", "HEAD", cwd=repro)
    status = git("status", "--porcelain", cwd=repro)
    code, _, err = claimant("--ledger", repro, "pull", "origin")
    assert code == 1 and "not-append-only" in err
    assert git("rev-parse", "HEAD", cwd=repro) == before
    assert git("status", "--porcelain", cwd=repro) == status

    forged = tmp_path / "b2.json"
    ok(claimant(*c, "export", "1", "-o", forged))
    tip = git("rev-parse", "HEAD", cwd=aud)
    code, _, err = auditor(*a, forged, "--witness", w1_pub, "--quorum", "1")
    assert code == 2 and "quorum-not-met" in err
    code, _, err = auditor(*a, forged)  # even unpinned: the origin was seen with another tree
    assert code == 2 and "split-view" in err
    assert git("rev-parse", "HEAD", cwd=aud) == tip


def test_trust_policy_file_names_witnesses_and_quorum(
    people: dict[str, Party], tmp_path: Path
) -> None:
    claimant, witness, auditor = people["claimant"], people["witness"], people["auditor"]
    led = tmp_path / "claim"
    ok(claimant("init", led, "--key", "alice"))
    ok(claimant("--ledger", led, "append", *LEGACY, "--key", "alice"))
    ok(claimant("--ledger", led, "checkpoint", "--key", "alice"))
    vkeys = []
    for name in ("w1", "w2"):
        vkeys.append(json.loads(ok(witness("witness", "init", name, "--json")))["vkey"])
    note = tmp_path / "w1.note"
    ok(witness("witness", "cosign", led, "--key", "w1", "-o", note))
    ok(claimant("--ledger", led, "checkpoint", "cosign", note))
    bundle = tmp_path / "b.json"
    ok(claimant("--ledger", led, "export", "1", "-o", bundle))
    alice = tmp_path / "alice.pub"
    alice.write_text(ok(claimant("keys", "export", "alice")))
    policy = tmp_path / "policy.toml"
    policy.write_text(
        f'trusted_keys = ["alice.pub"]\nwitnesses = ["{vkeys[0]}", "{vkeys[1]}"]\nquorum = 2\n'
    )
    aud = tmp_path / "audit"
    ok(auditor("init", aud, "--key", "aud"))
    a = ["--ledger", aud, "import", bundle, "--key", "aud", "--trust-policy", policy]
    code, _, err = auditor(*a)
    assert code == 2 and "quorum-not-met" in err and "1 valid cosignatures" in err
    policy.write_text(policy.read_text().replace("quorum = 2", "quorum = 1"))
    doc = json.loads(ok(auditor(*a, "--json")))
    assert doc["trust_anchor"].startswith("pinned genesis root key")


def test_witness_refusals_exit_1_with_a_code(people: dict[str, Party], tmp_path: Path) -> None:
    claimant, witness = people["claimant"], people["witness"]
    led = tmp_path / "claim"
    ok(claimant("init", led, "--key", "alice"))
    code, _, err = witness("witness", "cosign", led)
    assert code == 2 and "witness init" in err
    ok(witness("witness", "init", "w1"))
    code, _, err = witness("witness", "cosign", led)
    assert code == 1 and "no-checkpoint" in err
    code, _, err = witness("witness", "init", "w1")
    assert code == 2 and "already exists" in err
    code, _, err = witness("witness", "cosign", tmp_path / "nowhere")
    assert code == 2
    assert os.listdir(people["witness"].home / "witness" / "w1" / "logs") == []


def test_quorum_on_verify_gate_and_report(people: dict[str, Party], tmp_path: Path) -> None:
    claimant, witness = people["claimant"], people["witness"]
    led = tmp_path / "claim"
    ok(claimant("init", led, "--key", "alice"))
    c = ["--ledger", led]
    ok(claimant(*c, "append", *LEGACY, "--key", "alice"))
    ok(claimant(*c, "checkpoint", "--key", "alice"))
    ok(witness("witness", "init", "w1"))
    w1 = tmp_path / "w1.pub"
    w1.write_text(ok(witness("keys", "export", "w1")))
    q = ["--witness", w1, "--quorum", "1"]
    code, out, _ = claimant(*c, "verify", *q, "--json")
    doc = json.loads(out)
    assert code == 1 and [p["code"] for p in doc["problems"]] == ["quorum-not-met"]
    note = tmp_path / "c.note"
    ok(witness("witness", "cosign", led, "-o", note))
    ok(claimant(*c, "checkpoint", "cosign", note))
    doc = json.loads(ok(claimant(*c, "verify", *q, "--json")))
    assert doc["ok"] and "witnessed at size 3 by w1 (quorum 1)" in doc["trust_anchor"]
    ok(claimant(*c, "append", LEGACY[0], "--key", "alice"))  # seq 3: not witnessed yet
    code, out, _ = claimant(*c, "verify", *q, "--json")
    assert code == 1 and [(p["seq"], p["code"]) for p in json.loads(out)["problems"]] == [
        (3, "quorum-not-met")
    ]
    assert claimant(*c, "verify", "--json")[0] == 0  # without the demand it verifies
    code, out, _ = claimant(*c, "gate", *q, "--json")
    trust = json.loads(out)["trust"]
    assert code == 1 and [x["seq"] for x in trust["excluded"]] == [3]
    assert trust["excluded"][0]["codes"] == ["not-witnessed"]
    code, out, _ = claimant(*c, "report", "--md", *q)
    assert code == 1 and "not-witnessed" in out
    ok(claimant(*c, "checkpoint", "--key", "alice"))
    ok(witness("witness", "cosign", led, "-o", note))
    ok(claimant(*c, "checkpoint", "cosign", note))
    gate = json.loads(claimant(*c, "gate", *q, "--json")[1])
    assert gate["trust"]["excluded"] == [] and gate["trust"]["ok"]
    policy = tmp_path / "policy.toml"
    policy.write_text('witnesses = ["w1.pub"]\nquorum = 1\n')
    doc = json.loads(ok(claimant(*c, "verify", "--trust-policy", policy, "--json")))
    assert "witnessed at size 4 by w1 (quorum 1)" in doc["trust_anchor"]
    policy.write_text('witnesses = ["w1.pub"]\nquorum = 2\n')
    code, _, err = claimant(*c, "verify", "--trust-policy", policy)
    assert code == 2 and "quorum must be 0..1" in err
