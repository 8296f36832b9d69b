"""Fixtures for the attacks on real ledgers, through the real CLI (helpers: security_ledger)."""

from __future__ import annotations

from pathlib import Path

import pytest
from security_ledger import POLICY, cli, statement, write_json

from ledger.api import Ledger, init_ledger


@pytest.fixture
def led(home: Path, tmp_path: Path) -> Ledger:
    """A ledger by alice with one passing static claim (seq 1) and a signed policy `sec`."""
    ledger, _ = init_ledger(tmp_path / "ledger", "alice")
    policy = tmp_path / "sec.toml"
    policy.write_text(POLICY)
    code, _, err = cli(ledger, "policy", "add", policy, "--key", "alice")
    assert code == 0, err
    good = write_json(tmp_path / "good.json", statement({"ratio_fp16_effective": 4.5}))
    code, _, err = cli(ledger, "append", good, "--key", "alice")
    assert code == 0, err
    return ledger
