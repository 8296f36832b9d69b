"""The legacy POC evidence samples: the copies in tests/fixtures/legacy-poc (never a folder
outside the checkout)."""

from __future__ import annotations

from pathlib import Path

LEGACY_DIR = Path(__file__).resolve().parent / "fixtures" / "legacy-poc"
LEGACY_SAMPLES = sorted(LEGACY_DIR.glob("*.json"))
