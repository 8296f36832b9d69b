"""`evledger export` / `evledger import` through the real CLI entry point."""

from __future__ import annotations

import json
from pathlib import Path

from invoke import run

from ledger.api import Ledger, init_ledger
from ledger.keys import load_key, public_pem

LEGACY = Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc"


def test_export_import_round_trip(ledger: Ledger, tmp_path: Path) -> None:
    ledger.append_files(sorted(LEGACY.glob("*.json")), key_name="alice")
    bundle = tmp_path / "b.json"
    a = ["--ledger", str(ledger.root)]
    code, _, err = run([*a, "export", "1", "-o", str(bundle)])
    assert code == 2 and "evledger checkpoint" in err and not bundle.exists()
    ledger.checkpoint(key_name="alice")
    code, out, _ = run([*a, "export", "1", "2", "-o", str(bundle), "--json"])
    assert code == 0 and [e["seq"] for e in json.loads(out)["entries"]] == [1, 2]
    sink, _ = init_ledger(tmp_path / "bob", "bob")
    pub = tmp_path / "alice.pub"
    pub.write_text(public_pem(load_key("alice").public_key))
    b = ["--ledger", str(sink.root), "import", str(bundle), "--key", "bob"]
    code, out, _ = run([*b, "--trusted-key", str(pub), "--json"])
    doc = json.loads(out)
    assert code == 0 and len(doc["appended"]) == 2 and doc["trust_anchor"].startswith("pinned")
    bad = tmp_path / "bad.json"
    bad.write_text(bundle.read_text().replace('"proof":', '"proofs":', 1))
    tip = sink.tip()
    code, _, err = run(["--ledger", str(sink.root), "import", str(bad)])
    assert code == 2 and "bundle refused" in err and sink.tip() == tip
