"""Shared fixtures: paths to samples/ and (optionally) ../shared/data."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import strategies as st

REPO = Path(__file__).resolve().parents[1]
SAMPLES = REPO / "samples"
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """The shared dev data directory; skips the test when it is absent."""
    if not (SHARED_DATA / "syndication-dev.jsonl.gz").exists():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


# Short multilingual news-like texts for property tests of the fast paths.
news_words = st.sampled_from("the a of police Baghdad car bomb killed 24 people 100 km U.S. 北京 中国 العراق Москва é".split())


def news_texts(*, max_words: int, max_docs: int) -> st.SearchStrategy[list[str]]:
    """Lists of 1..max_docs texts of up to max_words words."""
    return st.lists(st.lists(news_words, max_size=max_words).map(" ".join), min_size=1, max_size=max_docs)
