"""`evledger gate` and `evledger policy check`: exit codes, JSON/MD shapes, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

from evidence_factory import add, statement
from invoke import run
from legacy import LEGACY_SAMPLES

from ledger.api import Ledger


def passing_policy(tmp_path: Path) -> Path:
    path = tmp_path / "ok.toml"
    path.write_text(
        'name = "ok"\n[[claims]]\nid = "MEM"\ntitle = "memory"\nrequired = true\n'
        'evidence = { runner = "memory" }\n'
        'checks = [{ metric = "peak_rss_mb", op = "<", value = 1024 }]\n'
    )
    return path


def test_gate_go_exit_0(ledger: Ledger, tmp_path: Path) -> None:
    add(ledger, statement("memory", {"peak_rss_mb": 300.0}))
    code, out, err = run(
        ["--ledger", str(ledger.root), "gate", "--policy", str(passing_policy(tmp_path)), "--json"]
    )
    assert code == 0 and err == ""
    doc = json.loads(out)
    assert doc["outcome"] == "GO" and doc["go"] is True
    claim = doc["claims"][0]
    assert claim["state"] == "pass" and claim["checks"][0]["observed"] == 300.0
    assert claim["source"]["seq"] == 1 and claim["source"]["digest"].startswith("sha256:")


def test_default_v37_is_no_go_exit_1(ledger: Ledger) -> None:
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    code, out, err = run(["--ledger", str(ledger.root), "gate", "--json"])
    assert code == 1 and err == ""
    doc = json.loads(out)
    assert doc["policy"] == "v37" and doc["outcome"] == "NO-GO"
    states = {c["id"]: c["state"] for c in doc["claims"]}
    assert states["TNSEC"] == "pass" and states["V43"] == "fail"  # above the Gaussian bound
    assert states["FFN_SOTA"] == "missing" and "FFN_SOTA" in doc["blocking"]


def test_gate_text_and_markdown(ledger: Ledger) -> None:
    ledger.append_files(LEGACY_SAMPLES, key_name="alice")
    code, out, _ = run(["--ledger", str(ledger.root), "gate"])
    assert code == 1
    assert "TNSEC" in out and out.strip().splitlines()[-1].startswith("NO-GO: ")
    code, out, _ = run(["--ledger", str(ledger.root), "gate", "--md", "--policy", "v38"])
    assert code == 1
    assert out.startswith("_trust: ledger genesis (unpinned); 3 of 3 entries verified_")
    assert "\n**Gate `v38`: NO-GO**" in out
    assert "| claim | title | required | state | observed | entry |" in out


def test_gate_bad_input_exit_2_one_line(ledger: Ledger, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\n[[claims]]\nid = "X"\ntitle = "x"\nrequired = true\n'
        'evidence = { runner = "static" }\nchecks = [{ metric = "cos_min", op = "~", '
        "value = 1 }]\n"
    )
    for args in (
        ["gate", "--policy", str(bad)],
        ["gate", "--policy", "nope"],
        ["gate", "--json", "--md"],
        ["gate", "--rev", "no-such-rev"],
    ):
        code, out, err = run(["--ledger", str(ledger.root), *args])
        assert code == 2, args
        assert out == "" and len(err.strip().splitlines()) == 1, (args, err)
        assert err.startswith("evledger: ")


def test_policy_check(tmp_path: Path) -> None:
    code, out, err = run(["policy", "check", str(passing_policy(tmp_path))])
    assert code == 0 and err == ""
    assert "MEM" in out and "peak_rss_mb < 1024" in out
    code, out, _ = run(["policy", "check", str(passing_policy(tmp_path)), "--json"])
    assert json.loads(out)["claims"][0]["id"] == "MEM"


def test_policy_check_errors_and_warnings(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'name = "b"\n[[claims]]\nid = "X"\nrequired = true\n'
        'evidence = { predicate_type = "https://evledger.dev/predicates/zzz/v1" }\n'
        'checks = [{ metric = "cos_min", op = "=<", value = 1 }]\n'
    )
    code, out, err = run(["policy", "check", str(bad)])
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1
    assert str(bad) in err
    for part in ("missing field 'title'", "bad predicate type", "unknown op '=<'"):
        assert part in err
    warn = tmp_path / "warn.toml"
    warn.write_text(passing_policy(tmp_path).read_text().replace("peak_rss_mb", "peak_rss_gb"))
    code, out, err = run(["policy", "check", str(warn)])
    assert code == 0 and "unknown metric 'peak_rss_gb'" in err
    code, _, err = run(["policy", "check", str(tmp_path / "absent.toml")])
    assert code == 2 and "no such policy file" in err
