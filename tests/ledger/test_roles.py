"""Roles in the signed key entries: root changes keys, checkpoint signs tree heads, evidence
signs entries; refused when made, reported by verify."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from invoke import run

from ledger import checkpoint as notes
from ledger import merkle
from ledger.api import Ledger
from ledger.canonical import digest_bytes
from ledger.chain import build_entry
from ledger.errors import SigningKeyError
from ledger.keys import generate_key, load_key, public_pem
from ledger.store import entry_path
from ledger.trust import KeyRecord

LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


def pem(name: str) -> bytes:
    return public_pem(load_key(name).public_key).encode()


def test_defaults_genesis_holds_all_roles_added_keys_evidence(ledger: Ledger) -> None:
    generate_key("bob")
    ledger.add_key(pem("bob"), "bob", key_name="alice")
    roles = {k["name"]: k["roles"] for k in ledger.verify().trusted_keys}
    assert roles == {"alice": ["root", "checkpoint", "evidence"], "bob": ["evidence"]}
    # state files written before roles existed read back with the same defaults
    old = {k: v for k, v in ledger.verify().trusted_keys[0].items() if k != "roles"}
    assert KeyRecord.from_json({**old, "added_seq": 0}).roles == ("root", "checkpoint", "evidence")
    assert KeyRecord.from_json({**old, "added_seq": 4}).roles == ("evidence",)


def test_keys_trust_role_through_the_cli(ledger: Ledger, tmp_path: Path) -> None:
    generate_key("cp")
    pub = tmp_path / "cp.pub"
    pub.write_bytes(pem("cp"))
    at = ["--ledger", str(ledger.root)]
    code, out, _ = run([*at, "keys", "trust", str(pub), "--role", "checkpoint", "--key", "alice"])
    assert code == 0 and "(checkpoint)" in out
    code, _, err = run([*at, "keys", "trust", str(pub), "--role", "owner", "--key", "alice"])
    assert code == 2 and "owner" in err
    ledger.append_files(LEGACY, key_name="alice")
    code, out, _ = run([*at, "checkpoint", "--key", "cp", "--json"])
    assert code == 0 and json.loads(out)["size"] == 4
    code, out, _ = run([*at, "keys", "list", "--json"])
    assert {k["name"]: k["roles"] for k in json.loads(out)["ledger"]}["cp"] == ["checkpoint"]


def test_an_evidence_key_may_not_change_keys_or_sign_checkpoints(ledger: Ledger) -> None:
    generate_key("bob")
    generate_key("carol")
    ledger.add_key(pem("bob"), "bob", key_name="alice")
    tip = ledger.tip()
    with pytest.raises(SigningKeyError, match="wrong-role"):
        ledger.add_key(pem("carol"), "carol", key_name="bob")
    with pytest.raises(SigningKeyError, match="wrong-role"):
        ledger.checkpoint(key_name="bob")
    assert ledger.tip() == tip
    # both done by hand anyway: verify names them
    seq, prev = tip  # type: ignore[misc]
    add = copy.deepcopy(next(e for e in ledger.entries() if e.kind == "key-add").document)
    add["predicate"]["key"] = {
        "keyid": load_key("carol").keyid,
        "name": "carol",
        "public_key": pem("carol").decode(),
        "roles": ["root"],
    }
    entry = build_entry(add, kind="key-add", seq=seq + 1, prev=prev, keys=[load_key("bob")])
    with ledger.store.lock():
        ledger.store.commit_files({entry_path(entry.seq): entry.raw}, "x", ledger.store.resolve())
    assert {(p.seq, p.code) for p in ledger.verify().problems} == {(entry.seq, "wrong-role")}


def test_a_checkpoint_signed_by_a_non_checkpoint_key_is_reported(ledger: Ledger) -> None:
    generate_key("bob")
    ledger.add_key(pem("bob"), "bob", key_name="alice")
    ledger.append_files(LEGACY, key_name="bob")
    frontier = merkle.Frontier()
    frontier.extend(merkle.leaf_hash(digest_bytes(e.digest)) for e in ledger.entries())
    origin = ledger.resolve("0").predicate.to_dict()["origin"]
    note = notes.sign_note(
        notes.Checkpoint(origin, frontier.size, frontier.root()), "bob", load_key("bob").private_key
    )
    with ledger.store.lock():
        ledger.store.commit_files(
            {f"checkpoints/{frontier.size:09d}.note": note.encode()}, "cp", ledger.store.resolve()
        )
    assert {(p.seq, p.code) for p in ledger.verify().problems} == {(None, "wrong-role")}
    assert len(ledger.view().entries) == frontier.size  # a bad note condemns no entry


def test_entries_need_the_evidence_role(ledger: Ledger) -> None:
    generate_key("cp")
    ledger.add_key(pem("cp"), "cp", key_name="alice", roles=("checkpoint",))
    seq, prev = ledger.tip()  # type: ignore[misc]
    statement = copy.deepcopy(ledger.append_files(LEGACY[:1], key_name="alice")[0].document)
    seq, prev = ledger.tip()  # type: ignore[misc]
    entry = build_entry(statement, kind="evidence", seq=seq + 1, prev=prev, keys=[load_key("cp")])
    with ledger.store.lock():
        ledger.store.commit_files({entry_path(entry.seq): entry.raw}, "x", ledger.store.resolve())
    assert {(p.seq, p.code) for p in ledger.verify().problems} == {(entry.seq, "wrong-role")}


def test_root_threshold_through_the_cli(ledger: Ledger, tmp_path: Path) -> None:
    at = ["--ledger", str(ledger.root)]
    for name in ("r2", "r3", "e1"):
        generate_key(name)
        (tmp_path / f"{name}.pub").write_bytes(pem(name))
    trust = [*at, "keys", "trust"]
    assert run([*trust, tmp_path / "r2.pub", "--role", "root", "--key", "alice"])[0] == 0
    code, _, _ = run(
        [*trust, tmp_path / "r3.pub", "--role", "root", "--root-threshold", "2", "--key", "alice"]
    )
    assert code == 0
    tip = ledger.tip()
    code, _, err = run([*trust, tmp_path / "e1.pub", "--key", "alice"])
    assert code == 2 and "threshold-not-met" in err and ledger.tip() == tip
    code, _, err = run([*trust, tmp_path / "e1.pub", "--key", "alice", "--also-sign", "r3"])
    assert code == 0, err
    e1 = load_key("e1").keyid
    code, _, err = run([*at, "keys", "revoke", e1, "--reason", "test", "--key", "r2"])
    assert code == 2 and "threshold-not-met" in err
    code, _, err = run(
        [*at, "keys", "revoke", e1, "--reason", "t", "--key", "r2", "--also-sign", "alice"]
    )
    assert code == 0, err
    assert ledger.verify().ok
