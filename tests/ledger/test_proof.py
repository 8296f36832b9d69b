"""`prove inclusion` / `prove consistency`: C2SP text formats, checked by evledger's own
parser and by the stand-alone checker printed in docs/proofs.md (run here verbatim)."""

from __future__ import annotations

import base64
import re
import subprocess
import sys
from pathlib import Path

import pytest
from invoke import run

from ledger import merkle
from ledger.api import Ledger
from ledger.errors import UsageError
from ledger.proof import (
    check_consistency,
    check_inclusion,
    parse_consistency,
    parse_inclusion,
    prove_consistency,
    prove_inclusion,
)
from ledger.witness import cosign, init_witness

DOCS = Path(__file__).resolve().parents[2] / "docs" / "proofs.md"
LEGACY = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "legacy-poc").glob("*.json"))


def docs_checker() -> str:
    """The python block of docs/proofs.md, as a reviewer would copy it."""
    blocks = re.findall(r"```python\n(.*?)```", DOCS.read_text(), re.S)
    assert len(blocks) == 1
    assert len([line for line in blocks[0].splitlines() if line.strip()]) <= 25
    return blocks[0]


@pytest.fixture
def grown(filled: Ledger) -> Ledger:
    """seq 0..4, checkpoint 5 (cosigned), 3 more, checkpoint 8."""
    filled.checkpoint(key_name="alice")
    w = init_witness("w1")
    note = cosign(w, str(filled.root)).note
    (filled.root.parent / "c.note").write_text(note)
    filled.attach_cosignatures([filled.root.parent / "c.note"])
    filled.append_files(LEGACY + LEGACY[:1], key_name="alice")
    filled.checkpoint(key_name="alice")
    return filled


def test_inclusion_proof_is_tlog_proof_and_checks(grown: Ledger) -> None:
    for seq in range(8):
        proof = prove_inclusion(grown, str(seq))
        text = proof.text()
        assert text.startswith("c2sp.org/tlog-proof@v1\nextra ")
        assert f"\nindex {seq}\n" in text
        parsed = parse_inclusion(text)
        assert parsed == proof
        assert check_inclusion(parsed).size == 8
    wrong = parse_inclusion(prove_inclusion(grown, "3").text().replace("index 3", "index 2"))
    with pytest.raises(merkle.ProofError):
        check_inclusion(wrong)


def test_the_docs_checker_accepts_real_proofs_and_rejects_altered_ones(
    grown: Ledger, tmp_path: Path
) -> None:
    script = tmp_path / "check_proof.py"
    script.write_text(docs_checker())

    def check(proof: str, entry: bytes) -> subprocess.CompletedProcess[str]:
        (tmp_path / "p").write_text(proof)
        (tmp_path / "e").write_bytes(entry)
        cmd = [sys.executable, "-I", str(script), str(tmp_path / "p"), str(tmp_path / "e")]
        return subprocess.run(cmd, capture_output=True, text=True, check=False)

    for seq in range(8):
        entry = grown.resolve(str(seq))
        code, out, _ = run(["--ledger", str(grown.root), "prove", "inclusion", str(seq)])
        assert code == 0
        result = check(out, entry.raw)
        assert result.returncode == 0 and result.stdout == f"entry is leaf {seq}\n"
    text = prove_inclusion(grown, "2").text()
    entry = grown.resolve("2").raw
    assert check(text, grown.resolve("3").raw).returncode != 0  # another entry
    assert check(text.replace("index 2", "index 3"), entry).returncode != 0
    lines = text.split("\n")
    lines[3] = base64.b64encode(bytes(32)).decode()  # a changed sibling hash
    assert check("\n".join(lines), entry).returncode != 0
    lines = text.split("\n")
    del lines[3]  # a shortened path
    assert check("\n".join(lines), entry).returncode != 0


def test_consistency_proof_between_two_kept_notes(grown: Ledger, tmp_path: Path) -> None:
    from ledger.verify import stored_checkpoints

    (old_size, old), (_, new) = stored_checkpoints(grown.store, "HEAD")
    proof = prove_consistency(grown, old, None)
    text = proof.text()
    assert text.startswith(f"old {old_size}\n") and text.endswith(new)
    assert check_consistency(parse_consistency(text), old).size == 8
    (tmp_path / "old.note").write_text(old)
    code, out, _ = run(["--ledger", str(grown.root), "prove", "consistency", tmp_path / "old.note"])
    assert code == 0 and out == text
    # a note of a tree this ledger never had: refused, no proof printed
    fake = old.replace(old.split("\n")[2], base64.b64encode(bytes(32)).decode())
    with pytest.raises(UsageError, match="not-append-only"):
        prove_consistency(grown, fake, None)
    (tmp_path / "fake.note").write_text(fake)
    code, out, err = run(
        ["--ledger", str(grown.root), "prove", "consistency", tmp_path / "fake.note"]
    )
    assert code == 2 and out == "" and "not-append-only" in err
    lying = parse_consistency(
        text.replace(text.split("\n")[1], base64.b64encode(bytes(32)).decode())
    )
    with pytest.raises(merkle.ProofError):
        check_consistency(lying, old)


def test_uncovered_entry_has_no_proof(filled: Ledger) -> None:
    with pytest.raises(UsageError, match="no checkpoint covers"):
        prove_inclusion(filled, "1")
