"""Where the legacy POC evidence samples are (shared/ beside the checkout, else the test copy)."""

from __future__ import annotations

from pathlib import Path

LEGACY_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "legacy-poc" / "evidence"
if not LEGACY_DIR.is_dir():
    LEGACY_DIR = Path(__file__).parent / "fixtures" / "legacy-poc"
LEGACY_SAMPLES = sorted(LEGACY_DIR.glob("*.json"))
