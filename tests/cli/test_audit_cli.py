"""`evledger audit` through the real CLI entry point: formats and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ledger.api import Ledger
from ledger.cli import main
from tests.ledger.test_reproduce import append_claim, static_claim, tiny_model


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Run the CLI; return (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as exc:
        main(argv)
    out = capsys.readouterr()
    return int(exc.value.code or 0), out.out, out.err


def test_audit_exit_codes_and_formats(
    ledger: Ledger, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    a = ["--ledger", str(ledger.root), "audit"]
    model = tiny_model(tmp_path / "m.safetensors")
    append_claim(ledger, static_claim(model))
    code, out, _ = run([*a, "--json"], capsys)
    doc = json.loads(out)
    assert code == 0 and doc["ok"] and doc["claims"][0]["verdict"] == "unreproduced"
    ledger.append_files(
        [Path(__file__).resolve().parents[1] / "fixtures/legacy-poc/v43_evidence_sample.json"],
        key_name="alice",
    )
    code, out, err = run([*a, "--md"], capsys)
    assert code == 1 and "| implausible |" in out and "implausible" in err
    code, out, _ = run(a, capsys)
    assert code == 1 and "exceeds the Gaussian bound 2.387x" in out
    code, _, err = run([*a, "--json", "--md"], capsys)
    assert code == 2
