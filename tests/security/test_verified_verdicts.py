"""Verdicts only from verified evidence: one test per attack of issue 8 on the deciding
commands (gate, report, audit, diff, log, show, export, checkpoint), with the exact outcome."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from security_ledger import (
    attacker_commit,
    cli,
    payload_of,
    raw_entry,
    state,
    statement,
    with_payload,
    write_json,
)

from ledger.api import Ledger
from ledger.canonical import canonical_bytes
from ledger.chain import build_entry
from ledger.envelope import b64encode, pae
from ledger.keys import generate_key, keyid_of, load_key, public_pem
from ledger.store import entry_path

DECIDING = [
    ("gate", "--policy", "sec"),
    ("report", "--policy", "sec"),
    ("audit",),
    ("log",),
]


def _forged_payload(doc: dict) -> bytes:  # type: ignore[type-arg]
    """The statement with its ratio raised, canonical: only the signature gives it away."""
    statement = payload_of(doc)
    statement["predicate"]["metrics"]["ratio_fp16_effective"] = 9.5
    return canonical_bytes(statement)


def _json(led: Ledger, *args: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    code, out, err = cli(led, *args, "--json")
    assert len(err.strip().splitlines()) <= 1, err
    return code, json.loads(out)


def test_clean_ledger_is_go_and_fully_verified(led: Ledger) -> None:
    code, doc = _json(led, "gate", "--policy", "sec")
    assert code == 0 and doc["outcome"] == "GO"
    assert doc["trust"]["verified"] == doc["trust"]["entries"] == 3 and not doc["trust"]["excluded"]
    assert doc["source"].startswith("signed policy entry seq 1")


def test_tip_payload_edited_without_resigning_is_excluded_everywhere(led: Ledger) -> None:
    doc = raw_entry(led, 2)
    forged = _forged_payload(doc)
    attacker_commit(led, {entry_path(2): with_payload(doc, forged)})
    code, gate = _json(led, "gate", "--policy", "sec")
    assert code == 1 and gate["outcome"] == "NO-GO"  # the only claim is excluded, not counted
    assert gate["trust"]["excluded"] == [
        {"seq": 2, "codes": ["bad-signature"], "message": gate["trust"]["excluded"][0]["message"]}
    ]
    code, out, _ = cli(led, "report", "--md", "--policy", "sec")
    assert code == 1 and "**GO**" not in out and "excluded: seq 2 (bad-signature)" in out
    for args in DECIDING:
        code, out, _ = cli(led, *args)
        assert code == 1, args
        first = [line.strip("_") for line in out.splitlines()[:3]]  # report: under its heading
        assert any(line.startswith("trust: ledger genesis (unpinned); 2 of 3") for line in first)


def test_claim_signed_by_a_revoked_key_is_excluded(led: Ledger, tmp_path: Path) -> None:
    bob = generate_key("bob")
    pub = tmp_path / "bob.pub"
    pub.write_text(public_pem(bob.public_key))
    assert cli(led, "keys", "trust", pub, "--key", "alice")[0] == 0
    assert cli(led, "keys", "revoke", bob.keyid[:16], "--reason", "lost", "--key", "alice")[0] == 0
    tip = led.tip()
    assert tip is not None
    claim = statement({"ratio_fp16_effective": 8.0})
    entry = build_entry(claim, kind="evidence", seq=tip[0] + 1, prev=tip[1], keys=[bob])
    attacker_commit(led, {entry_path(entry.seq): entry.raw})
    code, gate = _json(led, "gate", "--policy", "sec")
    assert code == 1
    assert [x["codes"] for x in gate["trust"]["excluded"]] == [["revoked-key"]]
    assert gate["claims"][0]["source"]["seq"] == 2  # alice's claim, not bob's forged 8x


def test_relaxed_policy_file_committed_is_not_obeyed(led: Ledger, tmp_path: Path) -> None:
    code, before = _json(led, "gate")
    assert code == 1 and before["outcome"] == "NO-GO"  # v37 wants much more than one claim
    v37 = (led.root / "policies" / "v37.toml").read_text()
    attacker_commit(led, {"policies/v37.toml": v37.replace("value = 16", "value = 1").encode()})
    code, out, err = cli(led, "gate")
    assert code == 1 and "NO-GO" in out
    assert "policies/v37.toml in the ledger is an unsigned file" in err
    code, doc = _json(led, "gate")
    assert doc["policy_sha256"] == before["policy_sha256"]  # the packaged text still decides


def test_policy_given_by_path_is_marked_unsigned(led: Ledger, tmp_path: Path) -> None:
    path = tmp_path / "mine.toml"
    path.write_text(Path(tmp_path / "sec.toml").read_text())
    code, doc = _json(led, "gate", "--policy", path)
    assert code == 0 and not doc["policy_signed"]
    assert doc["source"].startswith(f"unsigned file {path} (sha256:")


@pytest.mark.parametrize(
    ("value", "reason"),
    [("nan", "not a finite number"), ("inf", "not a finite number"), ("1.5", "not a cosine")],
)
def test_policy_thresholds_must_be_meant(
    led: Ledger, tmp_path: Path, value: str, reason: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(
        'name = "bad"\n[[claims]]\nid = "C"\ntitle = "t"\nrequired = true\n'
        'evidence = { runner = "static" }\n'
        f'checks = [{{ metric = "cos_min", op = ">=", value = {value} }}]\n'
    )
    before = state(led)
    for args in (("gate", "--policy", path), ("policy", "add", path, "--key", "alice")):
        code, out, err = cli(led, *args)
        assert code == 2 and out == "" and reason in err and len(err.splitlines()) == 1
    assert state(led) == before


def _junk_envelope(tmp_path: Path) -> Path:
    inner = statement({"ratio_fp16_effective": 4.5})
    payload = base64.b64encode(json.dumps(inner).encode()).decode()
    env = {
        "payload": payload,
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": "ff" * 32, "sig": "AAAA"}],
    }
    return write_json(tmp_path / "junk.dsse.json", env)


def test_junk_signed_envelope_is_refused_on_the_way_in(led: Ledger, tmp_path: Path) -> None:
    before = state(led)
    code, out, err = cli(led, "append", _junk_envelope(tmp_path), "--key", "alice")
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "not verified" in err and "--signer-key" in err
    assert state(led) == before


def test_junk_import_committed_by_hand_counts_for_nothing(led: Ledger, tmp_path: Path) -> None:
    """An attacker signs an import of a junk envelope with a real key, skipping the check."""
    env = json.loads(_junk_envelope(tmp_path).read_text())
    tip = led.tip()
    assert tip is not None
    imported = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model.safetensors", "digest": {"sha256": "ab" * 32}}],
        "predicateType": "https://evledger.dev/predicates/import/v1",
        "predicate": {"envelope": env, "source": {"file": "junk.dsse.json"}},
    }
    alice = load_key("alice")
    entry = build_entry(imported, kind="import", seq=tip[0] + 1, prev=tip[1], keys=[alice])
    attacker_commit(led, {entry_path(entry.seq): entry.raw})
    code, audit = _json(led, "audit")
    assert code == 1
    assert [x["codes"] for x in audit["trust"]["excluded"]] == [["unverified-import"]]
    assert all(c["verdict"] == "unreproduced" for c in audit["claims"])
    kinds_import = tmp_path / "imp.toml"
    kinds_import.write_text(
        (tmp_path / "sec.toml")
        .read_text()
        .replace('select = "latest" }', 'select = "latest", kinds = ["import"] }')
    )
    code, gate = _json(led, "gate", "--policy", kinds_import)
    assert code == 1 and gate["outcome"] == "NO-GO"  # the junk import cannot turn it GO


def test_verified_foreign_envelope_is_credited_to_its_real_signer(
    led: Ledger, tmp_path: Path
) -> None:
    foreign = Ed25519PrivateKey.generate()
    pub = tmp_path / "theirs.pub"
    pub.write_text(public_pem(foreign.public_key()))
    payload = json.dumps(statement({"ratio_fp16_effective": 4.5})).encode()
    sig = foreign.sign(pae("application/vnd.in-toto+json", payload))
    env = {
        "payload": b64encode(payload),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": "made-up", "sig": b64encode(sig)}],
    }
    path = write_json(tmp_path / "theirs.dsse.json", env)
    code, out, err = cli(led, "append", path, "--key", "alice", "--signer-key", pub, "--json")
    assert code == 0, err
    [row] = json.loads(out)
    code, doc = _json(led, "audit")
    assert code == 0
    imported = next(c for c in doc["claims"] if c["seq"] == row["seq"])
    assert imported["signer"] == keyid_of(foreign.public_key())  # not the made-up keyid
    assert imported["verdict"] == "reproduced"  # corroborates alice's claim: another key


def test_envelope_with_subject_lacking_digest_leaves_a_verifiable_ledger(
    led: Ledger, tmp_path: Path
) -> None:
    foreign = Ed25519PrivateKey.generate()
    pub = tmp_path / "theirs.pub"
    pub.write_text(public_pem(foreign.public_key()))
    inner = statement({"ratio_fp16_effective": 4.5})
    inner["subject"] = [{"name": "no-digest"}]
    payload = json.dumps(inner).encode()
    sig = foreign.sign(pae("application/vnd.in-toto+json", payload))
    env = {
        "payload": b64encode(payload),
        "payloadType": "application/vnd.in-toto+json",
        "signatures": [{"keyid": "", "sig": b64encode(sig)}],
    }
    path = write_json(tmp_path / "nodigest.dsse.json", env)
    assert cli(led, "append", path, "--key", "alice", "--signer-key", pub)[0] == 0
    assert cli(led, "verify")[0] == 0
    assert cli(led, "checkpoint", "--key", "alice")[0] == 0
    assert cli(led, "verify")[0] == 0


def test_checkpoint_by_a_key_trusted_under_another_name(led: Ledger, tmp_path: Path) -> None:
    bob = generate_key("bob")
    pub = tmp_path / "bob-laptop.pub"
    pub.write_text(public_pem(bob.public_key))
    assert cli(led, "keys", "trust", pub, "--key", "alice", "--role", "checkpoint")[0] == 0
    code, _, err = cli(led, "checkpoint", "--key", "bob")
    assert code == 0, err
    code, out, _ = cli(led, "verify")
    assert code == 0, out


def test_keys_trust_never_overwrites_a_name(led: Ledger, tmp_path: Path) -> None:
    other = generate_key("other")
    pub = tmp_path / "other.pub"
    pub.write_text(public_pem(other.public_key))
    before = state(led)
    root_pem = (led.root / "keys" / "alice.pub").read_text()
    code, out, err = cli(led, "keys", "trust", pub, "--name", "alice", "--key", "alice")
    assert code == 2 and out == "" and "already" in err and len(err.splitlines()) == 1
    assert state(led) == before and (led.root / "keys" / "alice.pub").read_text() == root_pem


@pytest.mark.parametrize("pin", ["sha256:", "s", "sha256:0123abcd"])
def test_genesis_pin_must_pin_something(led: Ledger, pin: str) -> None:
    for args in (("verify",), ("gate", "--policy", "sec"), ("report",), ("audit",)):
        code, out, err = cli(led, *args, "--genesis", pin)
        assert code == 2 and out == "" and "16 hex digits" in err, args


def test_pinned_genesis_is_reported_as_such_and_a_wrong_one_trusts_nothing(led: Ledger) -> None:
    genesis = raw_entry(led, 0)
    digest = led.view().report.genesis
    assert digest is not None and genesis["kind"] == "genesis"
    code, doc = _json(led, "gate", "--policy", "sec", "--genesis", digest)
    assert code == 0 and doc["trust"]["anchor"].startswith("pinned genesis")
    code, doc = _json(led, "gate", "--genesis", "sha256:" + "0" * 64)
    assert code == 1 and doc["trust"]["verified"] == 0 and doc["entries"] == 0
    code, _, err = cli(led, "gate", "--policy", "sec", "--genesis", "sha256:" + "0" * 64)
    assert code == 2 and "no verified policy entry named 'sec'" in err  # its entry is untrusted


@pytest.mark.parametrize(
    ("metrics", "status"),
    [
        ({"ratio_fp16_effective": 16.0, "cos_min": 1.0}, "implausible"),
        ({"ratio_fp16_effective": 4.5, "cos_min": 0.995, "cos_mean": 0.99}, "contradictory"),
    ],
)
def test_physics_catches_lossless_and_contradictory_claims(
    led: Ledger, tmp_path: Path, metrics: dict[str, float], status: str
) -> None:
    path = write_json(tmp_path / "claim.json", statement(metrics))
    assert cli(led, "append", path, "--key", "alice")[0] == 0
    code, gate = _json(led, "gate", "--policy", "sec")
    assert code == 1 and gate["claims"][0]["state"] == "fail"
    code, audit = _json(led, "audit")
    latest = max(audit["claims"], key=lambda c: c["seq"])
    assert code == 1 and latest["physics"]["status"] == status


def _resigned(led: Ledger, seq: int, **change: object) -> bytes:
    doc = raw_entry(led, seq)
    env = doc["envelope"]
    for key, value in change.items():
        env[key] = value
    return canonical_bytes(doc)


def test_extra_signature_by_an_untrusted_key_is_excluded(led: Ledger) -> None:
    doc = raw_entry(led, 2)
    mallory = Ed25519PrivateKey.generate()
    payload = base64.b64decode(doc["envelope"]["payload"])
    extra = {
        "keyid": keyid_of(mallory.public_key()),
        "sig": b64encode(mallory.sign(pae(doc["envelope"]["payloadType"], payload))),
    }
    signatures = [*doc["envelope"]["signatures"], extra]
    attacker_commit(led, {entry_path(2): _resigned(led, 2, signatures=signatures)})
    code, rows = _json(led, "log")
    assert code == 1
    assert [r["codes"] for r in rows if not r["verified"]] == [["extra-signature"]]
    alice = load_key("alice").keyid
    assert {r["signer"] for r in rows if r["verified"]} == {alice}


@pytest.mark.parametrize(
    ("field", "code"),
    [("payload", "bad-entry"), ("sig", "unverifiable-signature")],
)
def test_junk_after_base64_padding_is_not_the_same_entry(
    led: Ledger, field: str, code: str
) -> None:
    doc = raw_entry(led, 2)
    env = doc["envelope"]
    if field == "payload":
        env["payload"] = env["payload"] + "QQ=="  # decodes leniently, is not canonical
    else:
        env["signatures"][0]["sig"] = env["signatures"][0]["sig"] + "QQ=="
    attacker_commit(led, {entry_path(2): canonical_bytes(doc)})
    status, rows = _json(led, "log")
    assert status == 1
    assert [r["codes"] for r in rows if not r["verified"]] == [[code]]


def test_duplicate_key_in_a_signed_payload_is_not_canonical(led: Ledger) -> None:
    """A payload with a duplicate key, validly signed by a trusted key, is still refused."""
    alice = load_key("alice")
    doc = raw_entry(led, 2)
    text = json.dumps(payload_of(doc), sort_keys=True, separators=(",", ":"))
    dup = text.replace('"metrics":{', '"metrics":{"ratio_fp16_effective":99,', 1).encode()
    sig = alice.sign(pae(doc["envelope"]["payloadType"], dup))
    doc["envelope"]["payload"] = b64encode(dup)
    doc["envelope"]["signatures"] = [{"keyid": alice.keyid, "sig": b64encode(sig)}]
    attacker_commit(led, {entry_path(2): canonical_bytes(doc)})
    code, gate = _json(led, "gate", "--policy", "sec")
    assert code == 1 and gate["trust"]["excluded"][0]["codes"] == ["not-canonical"]
    assert gate["claims"][0]["state"] == "missing"


def test_checkpoint_of_another_origin_is_bad(led: Ledger) -> None:
    assert cli(led, "checkpoint", "--key", "alice")[0] == 0
    from ledger import checkpoint as notes

    note_path = sorted((led.root / "checkpoints").glob("*.note"))[-1]
    cp, _ = notes.parse_note(note_path.read_text())
    forged = notes.sign_note(
        notes.Checkpoint("evil.example/log", cp.size, cp.root, cp.extensions),
        "alice",
        load_key("alice").private_key,
    )
    attacker_commit(led, {f"checkpoints/{note_path.name}": forged.encode()})
    code, doc = _json(led, "verify")
    assert code == 1
    assert [p["code"] for p in doc["problems"]] == ["bad-checkpoint"]
    assert "origin 'evil.example/log'" in doc["problems"][0]["message"]


def test_show_and_diff_refuse_an_excluded_entry(led: Ledger) -> None:
    doc = raw_entry(led, 2)
    forged = _forged_payload(doc)
    attacker_commit(led, {entry_path(2): with_payload(doc, forged)})
    for args in (("show", "2"), ("diff", "1", "2")):
        code, out, err = cli(led, *args)
        assert code == 2 and out == "" and "seq 2 does not verify (bad-signature)" in err, args


def test_export_refuses_a_ledger_that_does_not_verify(led: Ledger, tmp_path: Path) -> None:
    assert cli(led, "checkpoint", "--key", "alice")[0] == 0
    doc = raw_entry(led, 2)
    forged = _forged_payload(doc)
    attacker_commit(led, {entry_path(2): with_payload(doc, forged)})
    out = tmp_path / "b.json"
    code, _, err = cli(led, "export", "1", "-o", out)
    assert code == 1 and "refusing to export" in err and not out.exists()


def test_doctored_index_cache_is_checked_not_trusted(led: Ledger) -> None:
    from ledger.index import checked_index, load_index

    index = load_index(led.store)
    rows = [index.row(i) for i in range(len(index))]
    doctored = type(index).from_rows(
        index.commit,
        [
            r if r.seq != 2 else type(r)(**{**r.__dict__, "metrics": {"cos_min": 0.9999}})
            for r in rows
        ],
    )
    checked, differed = checked_index(doctored, led.view())
    assert differed == 1
    assert checked.row(2).metrics == index.row(2).metrics != {"cos_min": 0.9999}
    same, none = checked_index(index, led.view())
    assert none == 0 and same is index


def test_an_unforged_ledger_keeps_every_entry_in_the_view(led: Ledger, tmp_path: Path) -> None:
    """The control: none of the checks above excludes honest entries."""
    view = led.view()
    assert view.ok and [e.seq for e in view.entries] == [0, 1, 2]
    assert all(e.signer == load_key("alice").keyid for e in view.entries)
    assert keyid_of(load_key("alice").public_key) == view.entries[0].signer


def test_a_missing_key_error_names_the_flag_that_fixes_it(led: Ledger, tmp_path: Path) -> None:
    generate_key("bob")  # two local keys: no default any more
    path = write_json(tmp_path / "c.json", statement({"ratio_fp16_effective": 4.5}))
    before = state(led)
    code, out, err = cli(led, "append", path)
    assert code == 2 and out == "" and len(err.splitlines()) == 1
    assert "--key NAME or EVLEDGER_KEY (you have: alice, bob)" in err
    assert state(led) == before
