"""`evledger audit` through the real CLI entry point: formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import run
from test_reproduce import append_claim, static_claim, tiny_model

from ledger.api import Ledger


def test_audit_exit_codes_and_formats(ledger: Ledger, tmp_path: Path) -> None:
    a = ["--ledger", str(ledger.root), "audit"]
    model = tiny_model(tmp_path / "m.safetensors")
    append_claim(ledger, static_claim(model))
    code, out, _ = run([*a, "--json"])
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["claims"][0]["verdict"] == "unreproduced"
    ledger.append_files(
        [Path(__file__).resolve().parents[1] / "fixtures/legacy-poc/v43_evidence_sample.json"],
        key_name="alice",
    )
    code, out, err = run([*a, "--md"])
    assert code == 1 and "| needs-reproduction |" in out and "needing reproduction" in err
    code, out, _ = run(a)
    assert code == 1 and "above the Gaussian reference 2.387x" in out
    code, _, err = run([*a, "--json", "--md"])
    assert code == 2
