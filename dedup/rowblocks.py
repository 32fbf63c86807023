"""A corpus's rows a pair of blocks of documents at a time, read into two reusable buffers (bounded memory)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from dedup.kernels import doc_ranges

if TYPE_CHECKING:
    from dedup.confirm import CountRows
    from dedup.shingle import ShingleBatch

_STEP = 1 << 24  # values per read when scanning an array on disk


def blocks(counts: CountRows, shingles: ShingleBatch, block_bytes: int | None) -> list[tuple[int, int]]:
    """Consecutive ranges of documents whose count rows and shingle rows take about ``block_bytes``
    each (None: one range, all documents)."""
    n = len(counts.offsets) - 1
    if block_bytes is None or n == 0:
        return [(0, n)]
    per_entry = counts.indices.dtype.itemsize + counts.counts.dtype.itemsize
    return doc_ranges(counts.offsets * per_entry + shingles.offsets * shingles.hashes.dtype.itemsize, block_bytes)


def max_value(values: np.ndarray) -> int:
    """The largest value (0 when empty) of an array in memory or on disk (read a range at a time)."""
    if isinstance(values, np.ndarray):
        return int(np.max(values, initial=0))
    return max((int(np.max(values[lo : lo + _STEP], initial=0)) for lo in range(0, len(values), _STEP)), default=0)


def read_range(source: np.ndarray, lo: int, out: np.ndarray) -> None:
    """``out[:] = source[lo:lo + len(out)]`` for an array in memory or on disk (a DiskArray)."""
    if isinstance(source, np.ndarray):
        out[:] = source[lo : lo + len(out)]
    else:
        source.read_into(lo, out)


@dataclass(frozen=True)
class Rows:
    """The rows of some documents, contiguous in the buffers, with offsets from 0."""

    indices: np.ndarray
    counts: np.ndarray
    offsets: np.ndarray
    hashes: np.ndarray
    shingle_offsets: np.ndarray


@dataclass(frozen=True)
class BlockDocs:
    """The documents of one or two blocks (ascending ranges), numbered 0.. in buffer order; of the second
    block, only the sorted documents ``picked`` when given."""

    ranges: tuple[tuple[int, int], ...]
    picked: np.ndarray | None = None

    def index(self, doc: int) -> int:
        """The local number of document ``doc``."""
        base = 0
        for k, (lo, hi) in enumerate(self.ranges):
            if lo <= doc < hi:
                if k and self.picked is not None:
                    at = int(np.searchsorted(self.picked, doc))
                    if at == len(self.picked) or self.picked[at] != doc:
                        raise KeyError(doc)
                    return base + at
                return base + doc - lo
            base += hi - lo
        raise KeyError(doc)

    def local(self, docs: np.ndarray) -> np.ndarray:
        """Local numbers of ``docs`` (all in these blocks, and among ``picked`` when given)."""
        (lo, hi), *rest = self.ranges
        out = docs - lo
        for second, _ in rest:  # (after the first block)
            later = docs >= second
            out[later] = (docs[later] - second if self.picked is None
                          else np.searchsorted(self.picked, docs[later])) + (hi - lo)
        return out


class RowBuffers:
    """Reusable buffers that the rows of a pair of blocks are read into (block a's first, then block b's),
    sized for the two largest blocks."""

    def __init__(self, counts: CountRows, shingles: ShingleBatch, ranges: list[tuple[int, int]]) -> None:
        self.counts, self.shingles, self.blocks = counts, shingles, ranges

        def room(offsets: np.ndarray) -> int:
            return sum(sorted(int(offsets[hi] - offsets[lo]) for lo, hi in ranges)[-2:])

        self.indices = np.empty(room(counts.offsets), dtype=counts.indices.dtype)
        self.values = np.empty(room(counts.offsets), dtype=counts.counts.dtype)
        self.hashes = np.empty(room(shingles.offsets), dtype=shingles.hashes.dtype)
        self.first = -1  # the block read first

    def load(self, a: int, b: int, picked: np.ndarray | None = None) -> tuple[Rows, BlockDocs]:
        """The rows of blocks ``a`` and ``b`` (``b`` >= ``a``; block a is read again only when it changes); of
        block b only those of the sorted documents ``picked`` when given (a few rows: the pages of the buffer
        that the whole block would fill are not touched, and the rows are read one by one or a few together)."""
        offsets, sh_offsets = self._fill(a, 0, 0, read=self.first != a)
        self.first = a
        if b != a:
            at, sh_at = int(offsets[-1]), int(sh_offsets[-1])
            more, sh_more = self._fill(b, at, sh_at, read=True) if picked is None else self._pick(picked, at, sh_at)
            offsets, sh_offsets = np.concatenate((offsets, more[1:])), np.concatenate((sh_offsets, sh_more[1:]))
        rows = Rows(indices=self.indices, counts=self.values, offsets=offsets, hashes=self.hashes,
                    shingle_offsets=sh_offsets)
        if b == a:
            return rows, BlockDocs((self.blocks[a],))
        return rows, BlockDocs((self.blocks[a], self.blocks[b]), picked=picked)

    def _pick(self, docs: np.ndarray, at: int, sh_at: int) -> tuple[np.ndarray, np.ndarray]:
        """Read the rows of documents ``docs`` into the buffers from positions ``at`` / ``sh_at``; returns
        their offsets in the buffers."""
        from dedup.confirm import gather_rows  # (here: dedup.confirm imports this module)

        indices, offsets = gather_rows(self.counts.indices, self.counts.offsets, docs)
        values, _ = gather_rows(self.counts.counts, self.counts.offsets, docs)
        hashes, sh_offsets = gather_rows(self.shingles.hashes, self.shingles.offsets, docs)
        self.indices[at : at + len(indices)] = indices
        self.values[at : at + len(values)] = values
        self.hashes[sh_at : sh_at + len(hashes)] = hashes
        return offsets + at, sh_offsets + sh_at

    def _fill(self, block: int, at: int, sh_at: int, *, read: bool) -> tuple[np.ndarray, np.ndarray]:
        """Read block ``block``'s rows into the buffers from positions ``at`` / ``sh_at`` (unless ``read``
        is false: they are there); returns their offsets in the buffers."""
        lo, hi = self.blocks[block]
        t0, t1 = int(self.counts.offsets[lo]), int(self.counts.offsets[hi])
        s0, s1 = int(self.shingles.offsets[lo]), int(self.shingles.offsets[hi])
        if read:  # (in threads: reads from the page cache go about twice as fast on two cores)
            with ThreadPoolExecutor(3) as pool:
                for done in [pool.submit(read_range, self.counts.indices, t0, self.indices[at : at + t1 - t0]),
                             pool.submit(read_range, self.counts.counts, t0, self.values[at : at + t1 - t0]),
                             pool.submit(read_range, self.shingles.hashes, s0, self.hashes[sh_at : sh_at + s1 - s0])]:
                    done.result()
        return self.counts.offsets[lo : hi + 1] - t0 + at, self.shingles.offsets[lo : hi + 1] - s0 + sh_at
