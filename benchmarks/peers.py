"""The clustering pipelines people use today, as they are documented, for side-by-side benchmarks."""

from __future__ import annotations

import re
from typing import Callable

from dedup import Document

_WORD = re.compile(r"\w+")


def word_shingles(text: str, n: int) -> list[str]:
    """Lower-cased word n-grams (the usual preprocessing in the peers' docs)."""
    words = _WORD.findall(text.lower())
    if len(words) < n:
        return [" ".join(words)] if words else []
    return [" ".join(words[i : i + n]) for i in range(len(words) - n + 1)]


class UnionFind:
    """Plain union-find over document indices."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _assign(docs: list[Document], uf: UnionFind) -> dict[str, str]:
    return {d.id: docs[uf.find(i)].id for i, d in enumerate(docs)}


def datasketch_method(*, n: int, num_perm: int, threshold: float) -> Callable[[list[Document]], dict[str, str]]:
    """datasketch MinHash + MinHashLSH(threshold, num_perm) on word n-shingles, union-find over query results."""

    def run(docs: list[Document]) -> dict[str, str]:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        hashes = []
        for i, d in enumerate(docs):
            m = MinHash(num_perm=num_perm)
            m.update_batch([s.encode("utf-8") for s in word_shingles(d.text, n)])
            hashes.append(m)
            lsh.insert(i, m)
        uf = UnionFind(len(docs))
        for i, m in enumerate(hashes):
            for j in lsh.query(m):
                uf.union(i, j)
        return _assign(docs, uf)

    return run


def rensa_method(*, n: int = 5, num_perm: int = 128, threshold: float = 0.5, bands: int = 16) -> Callable[[list[Document]], dict[str, str]]:
    """rensa RMinHash + RMinHashLSH, candidates verified by estimated Jaccard >= threshold, union-find."""

    def run(docs: list[Document]) -> dict[str, str]:
        from rensa import RMinHash, RMinHashLSH

        lsh = RMinHashLSH(threshold=threshold, num_perm=num_perm, num_bands=bands)
        hashes = []
        for i, d in enumerate(docs):
            m = RMinHash(num_perm=num_perm, seed=42)
            m.update(word_shingles(d.text, n))
            hashes.append(m)
            lsh.insert(i, m)
        uf = UnionFind(len(docs))
        for i, m in enumerate(hashes):
            for j in lsh.query(m):
                if j != i and m.jaccard(hashes[j]) >= threshold:
                    uf.union(i, j)
        return _assign(docs, uf)

    return run


PEERS = {
    "datasketch MinHashLSH(0.5, 128), word 5-shingles": datasketch_method(n=5, num_perm=128, threshold=0.5),
    "text-dedup NEWS-COPY (word 2-grams, 256 perms, 0.45)": datasketch_method(n=2, num_perm=256, threshold=0.45),
    "rensa RMinHashLSH (16 bands, 0.5), word 5-shingles": rensa_method(),
}
