"""MinHash signatures of shingle sets, computed in vectorised batches, bit-identical to datasketch."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from dedup.shingle import ShingleBatch, shingle_batch, shingle_hash
from dedup.tokenize import TokenBatch

if TYPE_CHECKING:  # datasketch is imported where it is used: importing it loads scipy.integrate (~0.25 s)
    from datasketch import LeanMinHash, MinHash

SCHEME = "affine32"  # datasketch >= 2.0's default permutation scheme
EMPTY = np.uint32(0xFFFFFFFF)  # the value of every slot of an empty MinHash
_CHUNK_CELLS = 1 << 23  # shingles x permutations per vectorised step (~32 MB of uint32)


def permutations(*, num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The (a, b) parameters datasketch's ``MinHash(num_perm, seed)`` uses (affine32 scheme)."""
    a, b = _drawn_permutations(num_perm, seed)
    return a.copy(), b.copy()


@lru_cache(maxsize=16)
def _drawn_permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """permutations(), memoised: drawing them costs ~80 us, a tenth of indexing one article."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=np.uint32) * np.uint32(2) + np.uint32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=np.uint32)
    return a, b


def _fmix32(x: np.ndarray) -> np.ndarray:
    x = x ^ (x >> np.uint32(16))
    x = x * np.uint32(0x85EBCA6B)
    x = x ^ (x >> np.uint32(13))
    x = x * np.uint32(0xC2B2AE35)
    return x ^ (x >> np.uint32(16))


def signatures(shingles: ShingleBatch, *, num_perm: int = 128, seed: int = 1, engine: str = "auto") -> np.ndarray:
    """MinHash signatures, shape (documents, num_perm), dtype uint32.

    Row ``d`` equals ``MinHash(num_perm, seed, hashfunc=shingle_hash)``
    updated with document ``d``'s shingles. A document without shingles
    gets the empty signature (all slots ``EMPTY``). ``engine`` as in
    :func:`dedup.shingle.shingle_batch`; the numpy code below is the reference.
    """
    a, b = permutations(num_perm=num_perm, seed=seed)
    from dedup import kernels

    if kernels.use_kernels(engine, len(shingles.hashes)):
        return kernels.minhash_sets(np.asarray(shingles.hashes, dtype=np.uint32), shingles.offsets, a=a, b=b)
    sizes = shingles.sizes()
    out = np.full((len(sizes), num_perm), EMPTY, dtype=np.uint32)
    nonempty = np.flatnonzero(sizes)
    if len(nonempty) == 0:
        return out
    with np.errstate(over="ignore"):
        mixed = _fmix32(shingles.hashes)
        # Process whole documents in chunks of about _CHUNK_CELLS cells.
        per_chunk = max(1, _CHUNK_CELLS // num_perm)
        ends = shingles.offsets[1:][nonempty]
        starts = shingles.offsets[:-1][nonempty]
        i = 0
        while i < len(nonempty):
            j = int(np.searchsorted(ends, starts[i] + per_chunk, side="right"))
            j = max(j, i + 1)
            lo, hi = int(starts[i]), int(ends[j - 1])
            block = np.multiply.outer(mixed[lo:hi], a)
            block += b
            out[nonempty[i:j]] = np.minimum.reduceat(block, starts[i:j] - lo, axis=0)
            i = j
    return out


def shingle_signatures(
    tokens: TokenBatch, *, n: int, num_perm: int = 128, seed: int = 1, engine: str = "auto"
) -> tuple[ShingleBatch, np.ndarray]:
    """``shingle_batch(tokens, n=n)`` and its ``signatures`` in one pass (one fused kernel with numba)."""
    from dedup import kernels

    if kernels.use_kernels(engine, len(tokens.ids)):
        a, b = _drawn_permutations(num_perm, seed)  # (read only: no copies)
        hashes, offsets, sigs = kernels.shingle_minhash(tokens.ids, tokens.hashes, tokens.offsets, n=n, a=a, b=b)
        return ShingleBatch(hashes=hashes, offsets=offsets), sigs
    shingles = shingle_batch(tokens, n=n, engine="numpy")
    return shingles, signatures(shingles, num_perm=num_perm, seed=seed, engine="numpy")


def estimate_jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> np.ndarray:
    """Estimated Jaccard similarity of row pairs (fraction of equal slots)."""
    return np.count_nonzero(sig_a == sig_b, axis=-1) / sig_a.shape[-1]


def to_minhash(signature: np.ndarray, *, seed: int = 1) -> LeanMinHash:
    """A datasketch ``LeanMinHash`` holding one dedup signature."""
    from datasketch import LeanMinHash

    return LeanMinHash(seed=seed, hashvalues=np.asarray(signature, dtype=np.uint32), scheme=SCHEME)


def from_minhash(minhash: MinHash | LeanMinHash) -> np.ndarray:
    """The signature row of a datasketch MinHash made with ``hashfunc=shingle_hash``."""
    if getattr(minhash, "scheme", SCHEME) != SCHEME:
        raise ValueError(
            f"MinHash uses scheme {minhash.scheme!r}; dedup signatures use {SCHEME!r}. "
            "Create it with datasketch >= 2.0's default scheme."
        )
    return np.asarray(minhash.hashvalues, dtype=np.uint32)


def reference_minhash(shingle_strings: list[str], *, num_perm: int = 128, seed: int = 1) -> MinHash:
    """The plain datasketch computation that :func:`signatures` must equal (for tests and benchmarks)."""
    from datasketch import MinHash

    m = MinHash(num_perm=num_perm, seed=seed, hashfunc=shingle_hash)
    for s in shingle_strings:
        m.update(s)
    return m
