"""`evledger reproduce` through the real CLI entry point: JSON output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import run
from test_reproduce import append_claim, static_claim, tiny_model

from ledger.api import Ledger


def test_reproduce_json_and_exit_codes(ledger: Ledger, tmp_path: Path) -> None:
    model = tiny_model(tmp_path / "m.safetensors")
    seq = append_claim(ledger, static_claim(model))
    base = ["--ledger", str(ledger.root), "reproduce", str(seq), "--model", str(model)]
    code, out, _ = run([*base, "--key", "alice", "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["verdict"] == "reproduced" and doc["claim"]["seq"] == seq
    code, out, err = run([*base, "--key", "alice", "--param", "bits=3", "--json"])
    assert code == 1 and json.loads(out)["verdict"] == "diverged" and "diverged" in err
    other = tiny_model(tmp_path / "o.safetensors", seed=5)
    tip = ledger.tip()
    code, _, err = run(["--ledger", str(ledger.root), "reproduce", str(seq), "--model", str(other)])
    assert code == 2 and "not a subject of the claim" in err and ledger.tip() == tip
    code, _, err = run([*base, "--tolerance", "cos_min"])
    assert code == 2 and "METRIC=X" in err


def test_reproduce_and_export_read_through_the_reviewers_pins(
    ledger: Ledger, tmp_path: Path
) -> None:
    model = tiny_model(tmp_path / "m.safetensors")
    seq = append_claim(ledger, static_claim(model))
    ledger.checkpoint(key_name="alice")
    genesis = ledger.resolve("0").digest
    wrong = "sha256:" + "0" * 64
    a = ["--ledger", str(ledger.root)]
    tip = ledger.tip()
    code, _, err = run([*a, "reproduce", str(seq), "--model", str(model), "--genesis", wrong])
    assert code != 0 and "genesis" in err and ledger.tip() == tip  # nothing re-run or appended
    bundle = tmp_path / "b.json"
    code, _, err = run([*a, "export", str(seq), "-o", str(bundle), "--genesis", wrong])
    assert code != 0 and "genesis" in err and not bundle.exists()
    code, _, err = run([*a, "export", str(seq), "-o", str(bundle), "--genesis", genesis])
    assert code == 0 and bundle.is_file(), err
    code, out, err = run([*a, "reproduce", str(seq), "--model", str(model), "--genesis", genesis])
    assert code == 0 and "REPRODUCED" in out, err
