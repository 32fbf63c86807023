"""Shared helpers of the index tests: sample documents, synthetic stories, agreement measures."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

from sklearn.metrics import adjusted_rand_score

from dedup import Document
from dedup.clusters import order_key
from dedup.document import date_sort_key

from conftest import SAMPLES, SHARED_DATA

A, B, C = "000_9eee5088534f1115", "001_9f742d745c6bb0a4", "002_a7efc2d8e7d45ecd"


def sample_docs() -> list[Document]:
    return [Document(id=p.stem, text=p.read_text()) for p in sorted(SAMPLES.glob("*.txt"))]


def words_of(text: str) -> list[str]:
    return text.split()


def story_words() -> tuple[list[str], list[str], list[str]]:
    """Words of two long sample-like stories and a short one (from the samples; no shared data needed)."""
    a = words_of((SAMPLES / f"{A}.txt").read_text())
    c = words_of((SAMPLES / f"{C}.txt").read_text())
    return a, c, c[: max(40, len(c) // 5)]


def date_ordered(docs: list[Document]) -> list[Document]:
    """Documents in ``dedup cluster``'s naming order: by date (missing last), then input position."""
    import numpy as np

    dates = np.array([date_sort_key(d.date) for d in docs])
    return [docs[i] for i in order_key(dates)]


def agreement(batch: dict[str, str], stream: dict[str, str]) -> tuple[float, float]:
    """(adjusted Rand index, fraction of identical cluster ids) of two assignments of the same ids."""
    ids = sorted(batch)
    ari = adjusted_rand_score([batch[i] for i in ids], [stream[i] for i in ids])
    same = sum(batch[i] == stream[i] for i in ids) / len(ids)
    return float(ari), same


def syndication_sample(n: int) -> list[Document]:
    """The first ``n`` articles of the syndication dev set, in cluster naming order."""
    from dedup.read import read_documents

    path = SHARED_DATA / "syndication-dev.jsonl.gz"
    docs = []
    for doc in read_documents([path]):
        docs.append(doc)
        if len(docs) >= n:
            break
    return date_ordered(docs)


def reuters_texts(n: int) -> list[str]:
    path = SHARED_DATA / "reuters21578.jsonl.gz"
    out = []
    with gzip.open(path, "rt") as f:
        for line in f:
            out.append(json.loads(line)["text"])
            if len(out) >= n:
                break
    return out


__all__ = ["A", "B", "C", "Path", "agreement", "date_ordered", "sample_docs", "story_words", "syndication_sample"]
