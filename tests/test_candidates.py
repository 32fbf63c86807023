"""Vectorised LSH banding returns exactly MinHashLSH's candidate pairs."""

from __future__ import annotations

import numpy as np
import pytest
from datasketch import MinHashLSH
from hypothesis import example, given, settings
from hypothesis import strategies as st

from dedup.candidates import candidate_pairs, lsh_params, query_pairs
from dedup.fingerprint import EMPTY, signatures, to_minhash
from dedup.shingle import shingle_batch
from dedup.tokenize import tokenize_batch

VOCAB = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu".split()


def _corpus(draw_docs: list[list[int]]) -> list[str]:
    return [" ".join(VOCAB[i] for i in doc) for doc in draw_docs]


def _reference(sigs: np.ndarray, threshold: float) -> set[tuple[int, int]]:
    lsh = MinHashLSH(threshold=threshold, num_perm=sigs.shape[1])
    live = [i for i in range(len(sigs)) if not np.all(sigs[i] == EMPTY)]
    for i in live:
        lsh.insert(i, to_minhash(sigs[i]))
    pairs = set()
    for i in live:
        for j in lsh.query(to_minhash(sigs[i])):
            if j != i:
                pairs.add((min(i, j), max(i, j)))
    return pairs


docs_strategy = st.lists(st.lists(st.integers(0, len(VOCAB) - 1), max_size=25), min_size=2, max_size=25)


@settings(max_examples=40, deadline=None)
@given(docs=docs_strategy, threshold=st.sampled_from([0.1, 0.3, 0.5, 0.8]), n=st.integers(1, 3),
       engine=st.sampled_from(["numpy", "numpy threaded", "numba", "numba threaded"]))
def test_candidate_pairs_equal_minhashlsh(docs: list[list[int]], threshold: float, n: int, engine: str) -> None:
    from dedup import candidates, kernels

    if engine.startswith("numba") and not kernels.available():
        pytest.skip("numba not installed")
    sigs = signatures(shingle_batch(tokenize_batch(_corpus(docs)), n=n), num_perm=64)
    limit, threads = candidates._THREADED_DOCS, kernels._threads()
    candidates._THREADED_DOCS = 0 if engine == "numpy threaded" else limit  # bands in threads (as for large corpora) or not
    kernels.set_threads(2 if engine == "numba threaded" else 1)
    try:
        found = candidate_pairs(sigs, threshold=threshold, engine=engine.split()[0])
    finally:
        candidates._THREADED_DOCS = limit
        kernels.set_threads(threads)
    got = {tuple(p) for p in found.tolist()}
    assert got == _reference(sigs, threshold)
    assert np.array_equal(found, np.unique(found, axis=0))  # sorted, no repeats


@settings(max_examples=60, deadline=None)
@given(rows=st.integers(2, 400), values=st.integers(1, 4), bands=st.integers(1, 6), width=st.integers(1, 3),
       empty=st.integers(0, 5), threads=st.integers(1, 3), seed=st.integers(0, 2**32 - 1))
@example(rows=400, values=1, bands=3, width=1, empty=2, threads=2, seed=0)  # (79,401 pairs a band: the buffers grow)
def test_compiled_banding_finds_the_pairs_sorting_finds(rows: int, values: int, bands: int, width: int, empty: int,
                                                        threads: int, seed: int) -> None:
    """The compiled hash tables find the pairs that sorting each band's keys finds, with bands shared by thousands
    of rows (few distinct values: the code buffers grow, a band is done again), empty rows and 1-3 threads."""
    from dedup import kernels

    if not kernels.available():
        pytest.skip("numba not installed")
    sigs = np.random.default_rng(seed).integers(0, values, size=(rows, bands * width + 1), dtype=np.uint32)
    sigs[:empty] = EMPTY
    expected = candidate_pairs(sigs, threshold=0.5, bands=bands, rows=width, engine="numpy")
    before = kernels._threads()
    kernels.set_threads(threads)
    try:
        found = candidate_pairs(sigs, threshold=0.5, bands=bands, rows=width, engine="numba")
        codes = kernels.band_pairs(sigs, np.arange(empty, rows, dtype=np.int64), bands=bands, rows=width)
    finally:
        kernels.set_threads(before)
    assert np.array_equal(found, expected)
    # a code per band a pair shares
    shared = sum(int(np.all(sigs[i, b * width:(b + 1) * width] == sigs[j, b * width:(b + 1) * width]))
                 for i, j in expected.tolist() for b in range(bands))
    assert len(codes) == shared


@settings(max_examples=30, deadline=None)
@given(index=docs_strategy, queries=docs_strategy, threshold=st.sampled_from([0.05, 0.2, 0.5]))
def test_query_pairs_equal_minhashlsh_query(index: list[list[int]], queries: list[list[int]], threshold: float) -> None:
    isigs = signatures(shingle_batch(tokenize_batch(_corpus(index)), n=2), num_perm=64)
    qsigs = signatures(shingle_batch(tokenize_batch(_corpus(queries)), n=2), num_perm=64)
    lsh = MinHashLSH(threshold=threshold, num_perm=64)
    for i, sig in enumerate(isigs):
        if not np.all(sig == EMPTY):
            lsh.insert(i, to_minhash(sig))
    expected = set()
    for q, sig in enumerate(qsigs):
        if not np.all(sig == EMPTY):
            expected.update((q, i) for i in lsh.query(to_minhash(sig)))
    got = {tuple(p) for p in query_pairs(qsigs, isigs, threshold=threshold).tolist()}
    assert got == expected


def test_params_are_minhashlsh_params() -> None:
    from dedup.candidates import KNOWN_PARAMS

    for threshold, num_perm in [(0.1, 128), (0.5, 128), (0.9, 128), (0.3, 64), *KNOWN_PARAMS]:
        lsh = MinHashLSH(threshold=threshold, num_perm=num_perm)
        assert lsh_params(threshold, num_perm) == (lsh.b, lsh.r)


def test_identical_documents_are_candidates_and_empty_ones_are_not() -> None:
    sigs = signatures(shingle_batch(tokenize_batch(["a b c d", "a b c d", "", ""]), n=2), num_perm=32)
    assert candidate_pairs(sigs, threshold=0.5).tolist() == [[0, 1]]
