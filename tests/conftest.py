"""Shared fixtures: paths to samples/ and (optionally) ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared dev data directory; skips the test when it is absent."""
    if not (SHARED_DATA / "syndication-dev.jsonl.gz").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA
