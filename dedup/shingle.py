"""Turn token batches into per-document sets of 32-bit shingle hashes (flat numpy arrays)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dedup import kernels
from dedup.tokenize import TokenBatch, concat_offsets, token_hash

_MASK64 = (1 << 64) - 1
_MULT = 0x9E3779B97F4A7C15  # odd 64-bit multiplier combining consecutive token hashes
_M1, _M2 = 0xFF51AFD7ED558CCD, 0xC4CEB9FE1A85EC53  # MurmurHash3 fmix64 constants


@dataclass(frozen=True)
class ShingleBatch:
    """Sorted unique shingle hashes of each document: ``hashes[offsets[d]:offsets[d+1]]``."""

    hashes: np.ndarray  # uint32
    offsets: np.ndarray  # int64, len = documents + 1

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def sizes(self) -> np.ndarray:
        """Number of distinct shingles of each document."""
        return np.diff(self.offsets)

    def doc(self, d: int) -> np.ndarray:
        """The sorted distinct shingle hashes of document ``d``."""
        return self.hashes[self.offsets[d] : self.offsets[d + 1]]


def _fmix64(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(_M1)
    x = x ^ (x >> np.uint64(33))
    x = x * np.uint64(_M2)
    return x ^ (x >> np.uint64(33))


def _combine(hashes: np.ndarray, starts: np.ndarray, width: int) -> np.ndarray:
    """64-bit polynomial hash of the ``width`` tokens starting at each of ``starts``."""
    acc = hashes[starts]
    mult = np.uint64(_MULT)
    for k in range(1, width):
        acc = acc * mult + hashes[starts + k]
    return acc


def shingle_batch(batch: TokenBatch, *, n: int, engine: str = "auto") -> ShingleBatch:
    """Hash every word n-gram of every document; a document shorter than ``n``
    tokens (but not empty) gets one shingle of all its tokens.

    ``engine``: "numpy" (the reference below), "numba" (a compiled kernel with
    the same output) or "auto" (numba for large batches when installed)."""
    if n < 1:
        raise ValueError(f"shingle size n must be >= 1, got {n}")
    if kernels.use_kernels(engine, len(batch.ids)):
        none = np.zeros(0, dtype=np.uint32)
        hashes, offsets, _ = kernels.shingle_minhash(batch.ids, batch.hashes, batch.offsets, n=n, a=none, b=none)
        return ShingleBatch(hashes=hashes, offsets=offsets)
    token_hashes = batch.hashes[batch.ids] if len(batch.ids) else np.zeros(0, np.uint64)
    lengths = batch.lengths()
    docs = len(lengths)
    full = lengths >= n
    counts = np.where(full, lengths - n + 1, np.minimum(lengths, 1))
    starts = np.repeat(batch.offsets[:-1], counts)
    within = np.arange(len(starts), dtype=np.int64) - np.repeat(concat_offsets(counts)[:-1], counts)
    starts = starts + within
    doc_of = np.repeat(np.arange(docs, dtype=np.uint64), counts)
    combined = np.empty(len(starts), dtype=np.uint64)
    width_of = np.repeat(np.where(full, n, lengths), counts)
    with np.errstate(over="ignore"):
        for width in np.unique(width_of):
            sel = width_of == width
            combined[sel] = _combine(token_hashes, starts[sel], int(width))
        h32 = _fmix64(combined) >> np.uint64(32)
    keys = kernels.unique((doc_of << np.uint64(32)) | h32)
    doc_sorted = (keys >> np.uint64(32)).astype(np.int64)
    offsets = concat_offsets(np.bincount(doc_sorted, minlength=docs))
    return ShingleBatch(hashes=(keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), offsets=offsets)


def shingle_sequence(batch: TokenBatch, doc: int, *, n: int) -> np.ndarray:
    """The shingle hashes of one document in text order (with repeats), as :func:`shingle_batch` hashes them."""
    hashes = batch.hashes[batch.ids[batch.offsets[doc] : batch.offsets[doc + 1]]]
    if len(hashes) == 0:
        return np.zeros(0, dtype=np.uint32)
    width = min(n, len(hashes))
    with np.errstate(over="ignore"):
        combined = _combine(hashes, np.arange(len(hashes) - width + 1), width)
        return (_fmix64(combined) >> np.uint64(32)).astype(np.uint32)


def longest_run(mask: np.ndarray) -> int:
    """Length of the longest run of True in a boolean array."""
    if not mask.any():
        return 0
    edges = np.diff(np.concatenate(([0], mask.view(np.int8), [0])))
    return int((np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)).max())


def shingle_hash(shingle: bytes | str) -> int:
    """The 32-bit hash of one shingle given as its tokens joined by single spaces.

    This is the scalar reference of :func:`shingle_batch`; pass it as
    ``hashfunc`` to ``datasketch.MinHash`` to get signatures identical to
    dedup's (see :func:`dedup.fingerprint.to_minhash`).
    """
    if isinstance(shingle, bytes):
        shingle = shingle.decode("utf-8")
    parts = shingle.split(" ")
    acc = token_hash(parts[0])
    for part in parts[1:]:
        acc = (acc * _MULT + token_hash(part)) & _MASK64
    acc ^= acc >> 33
    acc = (acc * _M1) & _MASK64
    acc ^= acc >> 33
    acc = (acc * _M2) & _MASK64
    acc ^= acc >> 33
    return acc >> 32


def shingles(tokens: list[str], *, n: int) -> list[str]:
    """The shingles of one token list as space-joined strings (reference path, for datasketch and tests)."""
    if not tokens:
        return []
    if len(tokens) < n:
        return [" ".join(tokens)]
    return [" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]
