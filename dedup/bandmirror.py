"""In-memory LSH buckets for the embedded index: band key -> document numbers, as sorted numpy runs."""

from __future__ import annotations

import numpy as np

_BUFFER_DOCS = 2048  # documents kept in the dict buffer before it becomes a sorted run


class BandMirror:
    """Maps 64-bit band keys to document numbers (SQLite rowids).

    New entries go to a small dict; full buffers become sorted numpy runs
    that are merged geometrically (like an LSM tree), so adding is cheap and
    a lookup is a few ``searchsorted`` calls. Removed documents are only
    marked dead and dropped when runs are merged or compacted.
    """

    def __init__(self) -> None:
        self._runs: list[tuple[np.ndarray, np.ndarray]] = []  # (sorted uint64 keys, int64 docs)
        self._buffer: dict[int, list[int]] = {}
        self._buffered = 0
        self._docs = 0  # documents stored, dead ones included
        self._dead: set[int] = set()
        self._dead_array: np.ndarray | None = None

    def load(self, docs: np.ndarray, keys: np.ndarray) -> None:
        """Add many documents at once: ``keys[k]`` are the band keys of ``docs[k]``."""
        if len(docs) == 0:
            return
        self._docs += len(docs)
        flat_docs = np.repeat(np.asarray(docs, dtype=np.int64), keys.shape[1])
        self._push(keys.ravel().astype(np.uint64), flat_docs)

    def add(self, doc: int, keys: np.ndarray) -> None:
        """Index one document under its band keys."""
        buffer = self._buffer
        for key in keys.tolist():
            bucket = buffer.get(key)
            if bucket is None:
                buffer[key] = [doc]
            else:
                bucket.append(doc)
        self._docs += 1
        self._buffered += 1
        if self._buffered >= _BUFFER_DOCS:
            self._flush()

    def remove(self, doc: int) -> None:
        """Forget a document (lazily: it is filtered from lookups and dropped at the next compaction)."""
        self._dead.add(doc)
        self._dead_array = None
        if len(self._dead) * 4 > max(self._docs, 4096):
            self.compact()

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Distinct live documents stored under any of ``keys``."""
        found: list[np.ndarray] = []
        for run_keys, run_docs in self._runs:
            lo = np.searchsorted(run_keys, keys, side="left")
            hi = np.searchsorted(run_keys, keys, side="right")
            hits = hi - lo
            if hits.any():
                total = int(hits.sum())
                offsets = np.arange(total) - np.repeat(np.cumsum(hits) - hits, hits)
                found.append(run_docs[np.repeat(lo, hits) + offsets])
        if self._buffer:
            extra = [d for key in keys.tolist() for d in self._buffer.get(key, ())]
            if extra:
                found.append(np.asarray(extra, dtype=np.int64))
        if not found:
            return np.zeros(0, dtype=np.int64)
        docs = np.unique(np.concatenate(found))
        if self._dead:
            docs = docs[~np.isin(docs, self._dead_docs())]
        return docs

    def compact(self) -> None:
        """Drop dead documents and merge everything into one sorted run."""
        self._flush()
        if self._runs:
            keys = np.concatenate([k for k, _ in self._runs])
            docs = np.concatenate([d for _, d in self._runs])
            if self._dead:
                live = ~np.isin(docs, self._dead_docs())
                keys, docs = keys[live], docs[live]
            order = np.argsort(keys, kind="stable")
            self._runs = [(keys[order], docs[order])] if len(keys) else []
        self._docs -= len(self._dead)
        self._dead, self._dead_array = set(), None

    def entries(self) -> int:
        """Stored (key, document) pairs, dead ones included."""
        return sum(len(k) for k, _ in self._runs) + sum(len(v) for v in self._buffer.values())

    def nbytes(self) -> int:
        """Memory of the sorted runs (the dict buffer is bounded and not counted)."""
        return sum(k.nbytes + d.nbytes for k, d in self._runs)

    def _dead_docs(self) -> np.ndarray:
        if self._dead_array is None:
            self._dead_array = np.fromiter(self._dead, dtype=np.int64, count=len(self._dead))
        return self._dead_array

    def _flush(self) -> None:
        if not self._buffer:
            return
        count = sum(map(len, self._buffer.values()))
        keys = np.fromiter((k for k, ds in self._buffer.items() for _ in ds), dtype=np.uint64, count=count)
        docs = np.fromiter((d for ds in self._buffer.values() for d in ds), dtype=np.int64, count=count)
        self._buffer, self._buffered = {}, 0
        self._push(keys, docs)

    def _push(self, keys: np.ndarray, docs: np.ndarray) -> None:
        order = np.argsort(keys, kind="stable")
        self._runs.append((keys[order], docs[order]))
        # Geometric merging: the last run is merged into the one before while not much smaller.
        while len(self._runs) > 1 and len(self._runs[-2][0]) <= 4 * len(self._runs[-1][0]):
            (k1, d1), (k2, d2) = self._runs[-2], self._runs.pop()
            keys, docs = np.concatenate((k1, k2)), np.concatenate((d1, d2))
            order = np.argsort(keys, kind="stable")
            self._runs[-1] = (keys[order], docs[order])
