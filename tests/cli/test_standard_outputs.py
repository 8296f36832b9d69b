"""gate --attest is an in-toto Test Result attestation that securesystemslib verifies, and
report --model-index is a model card block that a YAML parser reads back exactly."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import yaml
from cryptography.hazmat.primitives import serialization
from evidence_factory import add, statement
from invoke import run
from securesystemslib.dsse import Envelope
from securesystemslib.signer import SSlibKey

from ledger.api import Ledger
from ledger.attestation import TEST_RESULT_TYPE
from ledger.keys import keyid_of, load_key

PASSING = """name = "ok"
[[claims]]
id = "STATIC"
title = "static at least 4x"
required = true
evidence = { runner = "static", select = "latest" }
checks = [{ metric = "ratio_fp16_effective", op = ">=", value = 4.0 }]
[[claims]]
id = "PQ"
title = "optional: pq at 8x"
required = false
evidence = { runner = "pq", select = "latest" }
checks = [{ metric = "ratio_fp16_effective", op = ">=", value = 8.0 }]
"""


def _sslib_key(name: str) -> SSlibKey:
    public = load_key(name).public_key
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return SSlibKey(keyid_of(public), "ed25519", "ed25519", {"public": raw.hex()})


def _statement(path: Path) -> dict:  # type: ignore[type-arg]
    envelope = json.loads(path.read_text())
    assert Envelope.from_dict(envelope).verify([_sslib_key("alice")], threshold=1)
    doc: dict = json.loads(base64.b64decode(envelope["payload"]))  # type: ignore[type-arg]
    return doc


def test_gate_attestation_passed_warned_failed(ledger: Ledger, tmp_path: Path) -> None:
    policy = tmp_path / "ok.toml"
    policy.write_text(PASSING)
    [claim] = add(ledger, statement("static", {"ratio_fp16_effective": 4.5, "cos_min": 0.99}))
    base = ["--ledger", ledger.root, "gate", "--policy", policy, "--key", "alice"]
    code, out, err = run([*base, "--attest", tmp_path / "warned.json", "--json"])
    assert code == 0, err
    gate = json.loads(out)
    st = _statement(tmp_path / "warned.json")
    assert st["predicateType"] == TEST_RESULT_TYPE
    pred = st["predicate"]
    assert pred["result"] == "WARNED"  # GO, but the optional PQ claim has no evidence
    assert (pred["passedTests"], pred["warnedTests"], pred["failedTests"]) == (
        ["STATIC"],
        ["PQ"],
        [],
    )
    assert st["subject"] == [{"name": f"entry:{claim.seq}", "digest": {"sha256": claim.digest[7:]}}]
    policy_desc, tree = pred["configuration"]
    assert policy_desc["digest"]["sha256"] == gate["policy_sha256"]
    assert tree["digest"]["sha256"] == ledger.verify().root
    add(ledger, statement("pq", {"ratio_fp16_effective": 8.1, "cos_min": 0.95}))
    assert run([*base, "--attest", tmp_path / "passed.json"])[0] == 0
    assert _statement(tmp_path / "passed.json")["predicate"]["result"] == "PASSED"
    code, _, _ = run(["--ledger", ledger.root, "gate", "--attest", tmp_path / "failed.json"])
    assert code == 1  # v37: NO-GO
    failed = _statement(tmp_path / "failed.json")["predicate"]
    assert failed["result"] == "FAILED" and "FFN_SOTA" in failed["failedTests"]


def test_model_index_block_reads_back(ledger: Ledger, tmp_path: Path) -> None:
    add(ledger, statement("pareto", {"ratio_fp16_effective": 3.7, "cos_min": 0.992}))
    hostile = 'MiniLM" (q)\n  injected: true\n- name: other'
    code, out, err = run(["--ledger", ledger.root, "report", "--model-index", hostile])
    assert code == 0, err
    doc = yaml.safe_load(out)
    [model] = doc["model-index"]  # the name's newlines and quotes stayed inside its scalar
    assert model["name"] == hostile and set(doc) == {"model-index"}
    tasks = {r["task"]["name"].split(":")[0]: r for r in model["results"]}
    assert set(tasks) == {"FFN_SOTA"}  # the only claim with verified evidence and figures
    ffn = tasks["FFN_SOTA"]
    values = {m["type"]: m["value"] for m in ffn["metrics"]}
    assert values["ratio_fp16_effective"] == 3.7 and values["cos_min"] == 0.992
    assert all(m["verified"] is False for r in model["results"] for m in r["metrics"])
    out_file = tmp_path / "card.yaml"
    assert run(["--ledger", ledger.root, "report", "--model-index", "m", "-o", out_file])[0] == 0
    assert yaml.safe_load(out_file.read_text())["model-index"][0]["name"] == "m"
