"""Candidate pairs by LSH banding of MinHash signatures, with datasketch MinHashLSH's semantics."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import numpy as np

from dedup import kernels
from dedup.fingerprint import EMPTY

_MULT = np.uint64(0x9E3779B97F4A7C15)


# What datasketch chooses for the default settings (candidates and the digest residual lookup), so that
# a run need not import datasketch.lsh, which loads scipy.integrate (~0.25 s); a test checks them.
KNOWN_PARAMS = {(0.1, 128): (64, 2), (0.05, 128): (32, 1)}
_THREADED_DOCS = 20_000  # from this many documents, bands are worked on in threads


@lru_cache(maxsize=64)
def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) that ``MinHashLSH(threshold, num_perm)`` chooses (equal weights)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1 (exclusive), got {threshold}")
    if (threshold, num_perm) in KNOWN_PARAMS:
        return KNOWN_PARAMS[(threshold, num_perm)]
    from datasketch.lsh import _optimal_param

    return _optimal_param(threshold, num_perm, 0.5, 0.5)


def _band_keys(sigs: np.ndarray, lo: int, hi: int) -> np.ndarray:
    """A 64-bit key per row summarising the band ``sigs[:, lo:hi]`` (collisions are re-checked)."""
    acc = np.zeros(len(sigs), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for col in range(lo, hi):
            acc = acc * _MULT + sigs[:, col].astype(np.uint64)
            acc ^= acc >> np.uint64(29)
    return acc


def _pairs_within_runs(order: np.ndarray, run_starts: np.ndarray, run_lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (left, right) pairs of elements sharing a run of the sorted ``order``."""
    lengths = run_lengths.astype(np.int64)
    # Element at local position u of a run of length L pairs with the L-1-u elements after it.
    members = np.repeat(run_starts, lengths) + (
        np.arange(lengths.sum(), dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
    )
    local = members - np.repeat(run_starts, lengths)
    after = np.repeat(lengths, lengths) - 1 - local
    left_pos = np.repeat(members, after)
    step = np.arange(after.sum(), dtype=np.int64) - np.repeat(np.cumsum(after) - after, after) + 1
    right_pos = left_pos + step
    return order[left_pos], order[right_pos]


def candidate_pairs(sigs: np.ndarray, *, threshold: float, bands: int | None = None, rows: int | None = None,
                    engine: str = "auto") -> np.ndarray:
    """Every pair of rows that share at least one LSH band, as an (m, 2) int64 array with i < j, sorted.

    Without ``bands``/``rows`` they are ``MinHashLSH(threshold, num_perm)``'s
    optimal parameters; the result is then exactly the set of pairs
    ``MinHashLSH.query`` would return. Rows with the empty signature (documents
    without shingles) are never candidates. ``engine``: "numba" finds the rows
    sharing a band with a compiled hash table per band (:func:`dedup.kernels.band_pairs`),
    "numpy" by sorting each band's keys, "auto" takes numba once the kernels are in use
    (or for large inputs); the pairs are the same.
    """
    docs, num_perm = sigs.shape
    if bands is None or rows is None:
        bands, rows = lsh_params(threshold, num_perm)
    if bands * rows > num_perm:
        raise ValueError(
            f"The product of bands ({bands}) and rows ({rows}) must be at most num_perm ({num_perm})."
        )
    live = np.flatnonzero(~np.all(sigs == EMPTY, axis=1))
    if kernels.use_kernels(kernels.when_loaded(engine), len(live) * bands):
        codes = kernels.unique(kernels.band_pairs(sigs, live, bands=bands, rows=rows))
        return np.stack((codes // docs, codes % docs), axis=1)
    live_sigs = sigs[live]

    def band_codes(band: int) -> np.ndarray:
        lo, hi = band * rows, (band + 1) * rows
        keys = _band_keys(live_sigs, lo, hi)
        order = np.argsort(keys)  # (the order within a run does not matter: pairs are de-duplicated)
        sorted_keys = keys[order]
        boundary = np.flatnonzero(np.diff(sorted_keys)) + 1
        starts = np.concatenate(([0], boundary))
        lengths = np.diff(np.concatenate((starts, [len(keys)])))
        multi = lengths > 1
        if not multi.any():
            return np.zeros(0, dtype=np.int64)
        left, right = _pairs_within_runs(order, starts[multi], lengths[multi])
        # Re-check the band itself: equal 64-bit keys with different bands are dropped.
        same = np.all(live_sigs[left, lo:hi] == live_sigs[right, lo:hi], axis=1)
        left, right = live[left[same]], live[right[same]]
        return kernels.unique(np.minimum(left, right) * docs + np.maximum(left, right))

    # Bands are independent and numpy's sorts release the GIL: one thread per CPU for large inputs.
    threads = min(os.cpu_count() or 1, bands) if len(live) >= _THREADED_DOCS else 1
    if threads > 1:
        with ThreadPoolExecutor(threads) as pool:
            codes = list(pool.map(band_codes, range(bands)))
    else:
        codes = [band_codes(band) for band in range(bands)]
    unique = kernels.unique(np.concatenate(codes)) if codes else np.zeros(0, dtype=np.int64)
    return np.stack((unique // docs, unique % docs), axis=1)


def query_pairs(queries: np.ndarray, index: np.ndarray, *, threshold: float) -> np.ndarray:
    """Pairs (query row, index row) sharing at least one LSH band, as an (m, 2) int64 array, sorted.

    The bands and rows are ``MinHashLSH(threshold, num_perm)``'s, so this is
    what ``MinHashLSH.query`` returns for each query against an LSH holding
    the index rows. Empty signatures never match.
    """
    if queries.shape[1] != index.shape[1]:
        raise ValueError(f"queries have {queries.shape[1]} permutations but the index has {index.shape[1]}")
    bands, rows = lsh_params(threshold, index.shape[1])
    q_live = np.flatnonzero(~np.all(queries == EMPTY, axis=1))
    i_live = np.flatnonzero(~np.all(index == EMPTY, axis=1))
    q_sigs, i_sigs = queries[q_live], index[i_live]
    found: list[np.ndarray] = []
    count = len(index)
    for band in range(bands):
        lo, hi = band * rows, (band + 1) * rows
        i_keys = _band_keys(i_sigs, lo, hi)
        order = np.argsort(i_keys, kind="stable")
        sorted_keys = i_keys[order]
        q_keys = _band_keys(q_sigs, lo, hi)
        start = np.searchsorted(sorted_keys, q_keys, side="left")
        stop = np.searchsorted(sorted_keys, q_keys, side="right")
        hits = stop - start
        if not hits.any():
            continue
        q_rows = np.repeat(np.arange(len(q_keys)), hits)
        offsets = np.arange(hits.sum()) - np.repeat(np.cumsum(hits) - hits, hits)
        i_rows = order[np.repeat(start, hits) + offsets]
        same = np.all(q_sigs[q_rows, lo:hi] == i_sigs[i_rows, lo:hi], axis=1)
        found.append(q_live[q_rows[same]] * count + i_live[i_rows[same]])
    if not found:
        return np.zeros((0, 2), dtype=np.int64)
    unique = kernels.unique(np.concatenate(found))
    return np.stack((unique // count, unique % count), axis=1)
