"""The tamper matrix: every forgery is caught with the right seq and problem code."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import orjson
import pytest
from attacker import commit_raw

from ledger.api import Ledger
from ledger.canonical import canonical_bytes
from ledger.chain import build_entry, parse_entry
from ledger.errors import UsageError
from ledger.keys import generate_key, load_key, public_pem
from ledger.store import entry_path


def raw_entry(led: Ledger, seq: int) -> bytes:
    data = led.store.read_path("HEAD", entry_path(seq))
    assert data is not None
    return data


def commit_as_attacker(led: Ledger, files: dict[str, bytes]) -> None:
    """An attacker with write access commits arbitrary bytes (no evledger checks)."""
    commit_raw(led.root, dict(files))


def codes(led: Ledger, **kwargs: object) -> set[tuple[int | None, str]]:
    report = led.verify(**kwargs)
    assert not report.ok
    return {(p.seq, p.code) for p in report.problems}


def test_clean_ledger_verifies(filled: Ledger) -> None:
    report = filled.verify()
    assert report.ok, report.problems
    assert report.entries == 5
    assert report.verified_entries == 5
    assert [k["name"] for k in report.trusted_keys] == ["alice"]


def test_byte_changed_inside_payload(filled: Ledger) -> None:
    doc = orjson.loads(raw_entry(filled, 2))
    payload = base64.b64decode(doc["envelope"]["payload"])
    forged = payload.replace(b'"go":false', b'"go":true ')
    assert forged != payload
    doc["envelope"]["payload"] = base64.b64encode(forged).decode()
    commit_as_attacker(filled, {entry_path(2): canonical_bytes(doc)})
    found = codes(filled)
    assert (2, "bad-signature") in found
    assert (3, "chain-break") in found  # the next entry no longer chains to the changed bytes


def test_signature_swapped_from_another_entry(filled: Ledger) -> None:
    victim, donor = orjson.loads(raw_entry(filled, 3)), orjson.loads(raw_entry(filled, 1))
    victim["envelope"]["signatures"] = donor["envelope"]["signatures"]
    commit_as_attacker(filled, {entry_path(3): canonical_bytes(victim)})
    assert (3, "bad-signature") in codes(filled)


def test_entry_deleted_and_committed(filled: Ledger) -> None:
    commit_raw(filled.root, {entry_path(2): None}, "drop an entry")
    found = codes(filled)
    assert (2, "missing-entry") in found
    assert (3, "chain-break") in found


def test_tail_entry_dropped_is_caught_by_checkpoint(filled: Ledger) -> None:
    filled.checkpoint(key_name="alice")
    commit_raw(filled.root, {entry_path(4): None}, "drop the newest entry")
    assert (4, "checkpoint-mismatch") in codes(filled)


def test_two_entries_swapped(filled: Ledger) -> None:
    a, b = raw_entry(filled, 2), raw_entry(filled, 3)
    commit_as_attacker(filled, {entry_path(2): b, entry_path(3): a})
    found = codes(filled)
    assert (2, "out-of-order") in found
    assert (3, "out-of-order") in found


def test_entry_resigned_by_untrusted_key(filled: Ledger, home: Path) -> None:
    mallory = generate_key("mallory")
    original = parse_entry(raw_entry(filled, 2))
    statement = dict(original.document)
    forged = build_entry(
        statement, kind=original.kind, seq=2, prev=original.prev, keys=[mallory], time=original.time
    )
    commit_as_attacker(filled, {entry_path(2): forged.raw})
    found = codes(filled)
    assert (2, "untrusted-key") in found
    assert (3, "chain-break") in found


def test_history_rewritten_is_caught_by_since(filled: Ledger, tmp_path: Path) -> None:
    note, cp = filled.checkpoint(key_name="alice")
    kept = tmp_path / "kept.note"
    kept.write_text(note)
    # rewrite: go back to before seq 3 and re-append other (validly signed) evidence
    first_commits = subprocess.run(
        ["git", "rev-list", "--reverse", "HEAD"],
        cwd=filled.root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    subprocess.run(["git", "reset", "-q", "--hard", first_commits[1]], cwd=filled.root, check=True)
    samples = sorted((Path(__file__).parents[1] / "fixtures" / "legacy-poc").glob("*.json"))
    filled.append_files([samples[1], samples[0], samples[1]], key_name="alice")
    assert filled.verify().ok  # on its own the rewritten ledger looks fine ...
    report = filled.verify(since_note=kept.read_text())
    assert [p.code for p in report.problems] == ["not-append-only"]  # ... but not to a reviewer
    assert report.since == {"size": cp.size, "root": cp.root.hex()}


def test_since_accepts_growth(filled: Ledger) -> None:
    note, _ = filled.checkpoint(key_name="alice")
    samples = sorted((Path(__file__).parents[1] / "fixtures" / "legacy-poc").glob("*.json"))
    filled.append_files(samples, key_name="alice")
    report = filled.verify(since_note=note)
    assert report.ok, report.problems


def test_key_used_after_revocation(filled: Ledger, home: Path) -> None:
    bob = generate_key("bob")
    filled.add_key(public_pem(bob.public_key).encode(), "bob", key_name="alice")
    samples = sorted((Path(__file__).parents[1] / "fixtures" / "legacy-poc").glob("*.json"))
    [by_bob] = filled.append_files(samples[:1], key_name="bob")
    assert filled.verify().ok  # bob is trusted once added
    revoke = filled.revoke_key(bob.keyid, "laptop lost", key_name="alice")
    # bob's public key is gone from keys/, so evledger refuses; an attacker forges anyway
    with pytest.raises(Exception, match="not trusted"):
        filled.append_files(samples[:1], key_name="bob")
    tip_seq, tip_digest = filled.tip() or (0, "")
    forged = build_entry(
        by_bob.document, kind="evidence", seq=tip_seq + 1, prev=tip_digest, keys=[bob]
    )
    commit_as_attacker(filled, {entry_path(forged.seq): forged.raw})
    found = codes(filled)
    assert found == {(forged.seq, "revoked-key")}
    assert revoke.seq < forged.seq


def test_genesis_pins(filled: Ledger, home: Path, tmp_path: Path) -> None:
    alice = load_key("alice")
    genesis = filled.verify().genesis
    assert genesis
    assert filled.verify(
        genesis=genesis[:23], pinned_keys=[public_pem(alice.public_key).encode()]
    ).ok
    later = {(seq, "untrusted-key") for seq in range(1, 5)}  # a wrong root vouches for nothing
    other = generate_key("other")
    found = codes(filled, pinned_keys=[public_pem(other.public_key).encode()])
    assert found == {(0, "untrusted-key")} | later
    assert codes(filled, genesis="sha256:" + "0" * 16) == {(0, "genesis-mismatch")} | later
    for too_short in ("sha256:", "s", genesis[:20]):
        with pytest.raises(UsageError, match="16 hex digits"):
            filled.verify(genesis=too_short)


def test_non_canonical_bytes(filled: Ledger) -> None:
    pretty = orjson.dumps(orjson.loads(raw_entry(filled, 1)), option=orjson.OPT_INDENT_2)
    commit_as_attacker(filled, {entry_path(1): pretty})
    found = codes(filled)
    assert (1, "not-canonical") in found
    assert (2, "chain-break") in found


def test_stray_file_under_evidence(filled: Ledger) -> None:
    commit_as_attacker(filled, {"evidence/000000/notes.txt": b"hello"})
    assert (None, "stray-file") in codes(filled)


def test_since_reads_only_new_entries(filled: Ledger) -> None:
    note, cp = filled.checkpoint(key_name="alice")
    samples = sorted((Path(__file__).parents[1] / "fixtures" / "legacy-poc").glob("*.json"))
    filled.append_files(samples, key_name="alice")
    report = filled.verify(since_note=note)
    assert report.ok, report.problems
    assert report.since is not None and report.since["mode"] == "incremental"
    assert report.verified_entries == 2 and report.entries == cp.size + 2
    assert report.root == filled.verify().root  # same tree head as a full verification


def test_since_catches_old_entry_changed_after_checkpoint(filled: Ledger) -> None:
    note, _ = filled.checkpoint(key_name="alice")
    doc = orjson.loads(raw_entry(filled, 1))
    doc["envelope"]["signatures"][0]["sig"] = doc["envelope"]["signatures"][0]["sig"][::-1]
    commit_as_attacker(filled, {entry_path(1): canonical_bytes(doc)})
    report = filled.verify(since_note=note)
    assert {(p.seq, p.code) for p in report.problems} == {(1, "not-append-only")}


def test_since_with_doctored_state_falls_back_to_full(filled: Ledger) -> None:
    note, cp = filled.checkpoint(key_name="alice")
    state_path = f"checkpoints/{cp.size:09d}.state.json"
    state = orjson.loads(filled.store.read_path("HEAD", state_path) or b"{}")
    state["trust"] = []
    commit_as_attacker(filled, {state_path: canonical_bytes(state)})
    report = filled.verify(since_note=note)
    assert report.ok and report.since is not None and "mode" not in report.since
    assert report.verified_entries == report.entries


def test_checkpoint_refused_on_a_broken_ledger(filled: Ledger) -> None:
    a, b = raw_entry(filled, 2), raw_entry(filled, 3)
    commit_as_attacker(filled, {entry_path(2): b, entry_path(3): a})
    with pytest.raises(Exception, match="does not verify"):
        filled.checkpoint(key_name="alice")


@pytest.mark.parametrize(
    "bad_time",
    ["yesterday", "2026-13-01T00:00:00Z", "2026-02-30T10:00:00Z", "2026-12-01 10:00:00"],
)
def test_signed_time_must_be_an_rfc3339_date_time(filled: Ledger, bad_time: str) -> None:
    """The schema says `format: date-time`; verify enforces it, even when the trusted key
    itself signed the odd time (an entry with it is excluded, never shown as verified)."""
    seq, prev = filled.tip()
    original = parse_entry(raw_entry(filled, 2))

    def signed_at(time: str) -> int:
        entry = build_entry(
            dict(original.document),
            kind="evidence",
            seq=seq + 1,
            prev=prev,
            keys=[load_key("alice")],
            time=time,
        )
        commit_as_attacker(filled, {entry_path(entry.seq): entry.raw})
        return entry.seq

    assert (signed_at(bad_time), "schema") in codes(filled)
    signed_at("2026-12-01T10:00:00.5+01:00")
    assert filled.verify().ok
