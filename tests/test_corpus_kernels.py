"""The compiled corpus-wide passes (pair scoring from count rows, the digest guard's residual scan)
give exactly what the plain computations give: scikit-learn's TF-IDF and per-pair set
intersections of the pairs LSH finds."""

from __future__ import annotations

import os
import tempfile
from unittest import mock

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import kernels
from dedup.candidates import query_pairs
from dedup.confirm import CountRows, score_corpus_pairs, score_pairs, tfidf_matrix, document_frequency
from dedup.digests import residual_sources
from dedup.fingerprint import signatures
from dedup.parallel import DiskArray
from dedup.shingle import ShingleBatch
from dedup.tokenize import TokenBatch, concat_offsets

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba not installed")

# Documents as lists of small integers: few distinct values, so that documents overlap a lot.
_DOCS = st.lists(st.lists(st.integers(0, 40), max_size=30), min_size=2, max_size=25)


def _tokens(docs: list[list[int]]) -> TokenBatch:
    words = [f"w{v}" if v % 5 else str(v) for v in range(41)]  # every fifth token is a number
    ids = np.array([v for d in docs for v in d], dtype=np.int32)
    return TokenBatch(ids=ids, offsets=concat_offsets([len(d) for d in docs]), vocab=words,
                      hashes=np.arange(1, 42, dtype=np.uint64))


def _shingles(docs: list[list[int]]) -> ShingleBatch:
    # few distinct values (overlapping documents), spread over the whole uint32 range
    rows = [np.unique(np.array(d, dtype=np.uint64) * 2654435761 % 1000 * 4294967).astype(np.uint32) for d in docs]
    return ShingleBatch(hashes=np.concatenate(rows).astype(np.uint32), offsets=concat_offsets([len(r) for r in rows]))


def _corpus(docs: list[list[int]], data: st.DataObject) -> tuple[TokenBatch, ShingleBatch, np.ndarray, np.ndarray, CountRows,
                                                              np.ndarray]:
    """(tokens, shingles, signatures, some sorted pairs, count rows, numeric tokens) of documents."""
    tokens = _tokens(docs)
    shingles = _shingles(docs)
    n = len(docs)
    pairs = np.array(sorted(data.draw(st.sets(st.tuples(st.integers(0, n - 1), st.integers(0, n - 1)), min_size=1))),
                     dtype=np.int64)
    counts = CountRows.of(tokens, columns=len(tokens.vocab), engine="numpy")
    return tokens, shingles, signatures(shingles, num_perm=16), pairs, counts, np.array([w.isdigit() for w in tokens.vocab])


@settings(max_examples=150, deadline=None)
@given(_DOCS, st.data())
def test_scoring_from_count_rows_equals_scikit_learn(docs: list[list[int]], data: st.DataObject) -> None:
    tokens, shingles, sigs, pairs, counts, is_number = _corpus(docs, data)
    n = len(docs)
    expected = score_pairs(pairs, signatures=sigs, tfidf=tfidf_matrix(tokens), shingles=shingles, tokens=tokens,
                           engine="numpy")
    got = score_corpus_pairs(pairs, signatures=sigs, counts=counts, shingles=shingles, df=document_frequency(tokens),
                             documents=n, is_number=is_number)
    for name in expected.__dataclass_fields__:
        assert np.array_equal(getattr(got, name), getattr(expected, name)), name
    # A pair of blocks of documents at a time, with the rows in memory or read from files.
    block_bytes = data.draw(st.sampled_from([1, 24, 100, 400]))
    with tempfile.TemporaryDirectory() as tmp:
        def disk(values: np.ndarray, name: str) -> DiskArray:
            values.tofile(os.path.join(tmp, name))
            return DiskArray(os.path.join(tmp, name), values.dtype, len(values))

        on_disk = (CountRows(indices=disk(counts.indices, "i"), counts=disk(counts.counts, "c"), offsets=counts.offsets),
                   ShingleBatch(hashes=disk(shingles.hashes, "s"), offsets=shingles.offsets))
        for rows, shingle_rows in ((counts, shingles), on_disk):
            got = score_corpus_pairs(pairs, signatures=sigs, counts=rows, shingles=shingle_rows,
                                     df=document_frequency(tokens), documents=n, is_number=is_number,
                                     block_bytes=block_bytes)
            for name in expected.__dataclass_fields__:
                assert np.array_equal(getattr(got, name), getattr(expected, name)), (block_bytes, name)
        for array in (on_disk[0].indices, on_disk[0].counts, on_disk[1].hashes):
            array.close()


@settings(max_examples=150, deadline=None)
@given(_DOCS, st.data())
def test_bounded_scoring_passes_over_only_pairs_that_cannot_be_copies(docs: list[list[int]], data: st.DataObject) -> None:
    """With bounds, a pair is either scored exactly as without them, or skipped (all zeros) because its
    exact cosine and containment fail worded_alike: the confirmed pairs cannot change. In memory and by
    blocks from files."""
    from dedup.confirm import Bounds, worded_alike

    tokens, shingles, sigs, pairs, counts, is_number = _corpus(docs, data)
    common = dict(signatures=sigs, shingles=shingles, df=document_frequency(tokens), documents=len(docs), is_number=is_number)
    expected = score_corpus_pairs(pairs, counts=counts, **common)
    rule = dict(zip(("cosine", "overlap", "strong_cosine", "containment"),
                    data.draw(st.tuples(*[st.sampled_from([0.0, 0.3, 0.55, 0.8, 1.0, 2.0])] * 4))))  # (2: never met)
    bounds = Bounds(sketches=kernels.sketch_rows(tokens.ids, tokens.offsets, tokens.hashes, shingles.hashes, shingles.offsets),
                    token_buckets=kernels.hash_buckets(tokens.hashes, kernels.TOKEN_SKETCH_BUCKETS), **rule)
    # (Levels of 0 or 1: the shared shingles are bounded bucket by bucket, as for documents with many in one bucket.)
    levels = data.draw(st.sampled_from([0, 1, kernels.SHINGLE_LEVELS]))
    # (Pairs as candidate_pairs gives them, sorted, and in any order.)
    shuffled = np.array(data.draw(st.permutations(range(len(pairs)))), dtype=np.int64)
    block_bytes = data.draw(st.sampled_from([1, 24, 100, 400]))
    for order, blocks in ((np.arange(len(pairs)), None), (np.arange(len(pairs)), block_bytes), (shuffled, block_bytes)):
        skipped = np.empty(len(pairs), dtype=bool)
        with mock.patch.object(kernels, "SHINGLE_LEVELS", levels):
            got = score_corpus_pairs(pairs[order], counts=counts, block_bytes=blocks, bounds=bounds, skipped=skipped,
                                     **common)
        kept = ~skipped
        for name in ("jaccard", "cosine", "containment", "common", "numbers", "few_numbers"):
            assert np.array_equal(getattr(got, name)[kept], getattr(expected, name)[order][kept]), name
        assert not worded_alike(expected.cosine[order][skipped], expected.containment[order][skipped], **rule).any()
        assert not got.cosine[skipped].any() and not got.containment[skipped].any() and not got.common[skipped].any()
        assert (got.left == expected.left[order]).all() and (got.right == expected.right[order]).all()


def _plain_residual_sources(residuals, shingles, *, story, owner, owner_story, res_sigs, sigs, threshold, candidates):
    """The digest guard's lookup as first written: LSH query of the residual signatures plus the known
    candidates, then a set intersection per pair, best (most shared, then latest document) per row."""
    n = len(sigs)
    found = {tuple(p) for p in query_pairs(res_sigs, sigs, threshold=threshold).tolist()}
    found |= {(int(c) // n, int(c) % n) for c in candidates}
    best = {}
    for r, d in sorted(found):
        if d == owner[r] or story[d] == owner_story[r]:
            continue
        common = len(np.intersect1d(residuals.doc(r), shingles.doc(d)))
        if common and (common, d) > best.get(r, (0, -1)):
            best[r] = (common, d)
    rows = len(residuals)
    return (np.array([best.get(r, (0, -1))[0] for r in range(rows)]), np.array([best.get(r, (0, -1))[1] for r in range(rows)]))


@settings(max_examples=150, deadline=None)
@given(_DOCS, _DOCS, st.data())
def test_residual_scan_equals_lsh_query_and_intersections(docs, residual_docs, data: st.DataObject) -> None:
    shingles = _shingles(docs)
    residuals = _shingles(residual_docs)
    n, rows = len(docs), len(residual_docs)
    sigs = signatures(shingles, num_perm=32)
    res_sigs = signatures(residuals, num_perm=32)
    story = np.array(data.draw(st.lists(st.integers(0, 3), min_size=n, max_size=n)), dtype=np.int64)
    owner = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=rows, max_size=rows)), dtype=np.int64)
    owner_story = np.array(data.draw(st.lists(st.integers(0, 3), min_size=rows, max_size=rows)), dtype=np.int64)
    candidates = np.unique(np.array(data.draw(st.lists(st.integers(0, rows * n - 1), max_size=10)), dtype=np.int64))
    threshold = data.draw(st.sampled_from([0.05, 0.3, 0.7]))
    args = dict(story=story, owner=owner, owner_story=owner_story, residual_signatures=res_sigs, signatures=sigs,
                threshold=threshold, candidates=candidates)
    plain = _plain_residual_sources(residuals, shingles, story=story, owner=owner, owner_story=owner_story,
                                    res_sigs=res_sigs, sigs=sigs, threshold=threshold, candidates=candidates)
    bits = data.draw(st.sampled_from([7, 12, 20, 26]))  # (the prefilter's size: dense or sparse)
    for engine in ("numpy", "numba"):
        with mock.patch.object(kernels, "_RESIDUAL_MIN_BITS", bits), mock.patch.object(kernels, "_RESIDUAL_BITS", bits):
            common, doc = residual_sources(residuals, shingles, engine=engine, **args)
        assert np.array_equal(common, plain[0]), engine
        assert np.array_equal(doc, plain[1]), engine
    # Spilled shingles (a DiskArray), scanned in blocks of a few documents read from the file.
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(kernels, "_SCAN_ENTRIES", data.draw(st.integers(1, 40))):
        path = os.path.join(tmp, "shingles.u32")
        shingles.hashes.astype(np.uint32).tofile(path)
        disk = DiskArray(path, np.uint32, len(shingles.hashes))
        try:
            common, doc = residual_sources(residuals, ShingleBatch(hashes=disk, offsets=shingles.offsets),
                                           engine="numba", **args)
        finally:
            disk.close()
        assert np.array_equal(common, plain[0])
        assert np.array_equal(doc, plain[1])


@settings(max_examples=100, deadline=None)
@given(_DOCS, st.data())
def test_residuals_are_each_suspects_shingles_its_partners_lack(docs, data: st.DataObject) -> None:
    """The residual rows, a batch of suspects at a time (in memory or read from a spilled file), are the plain
    set differences of each suspect's shingles and its partners'."""
    from dedup import digests

    shingles = _shingles(docs)
    n = len(docs)
    suspects = np.array(data.draw(st.lists(st.integers(0, n - 1), max_size=6, unique=True)), dtype=np.int64)
    partners = [np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=4)), dtype=np.int64)
                for _ in suspects]
    expected = [np.setdiff1d(shingles.doc(int(d)), np.concatenate([shingles.doc(int(m)) for m in mates]))
                for d, mates in zip(suspects.tolist(), partners)]
    with tempfile.TemporaryDirectory() as tmp, \
            mock.patch.object(digests, "_RESIDUAL_CODES", data.draw(st.sampled_from([1, 30, 1 << 22]))):
        path = os.path.join(tmp, "shingles.u32")
        shingles.hashes.astype(np.uint32).tofile(path)
        disk = DiskArray(path, np.uint32, len(shingles.hashes))
        try:
            for held in (shingles, ShingleBatch(hashes=disk, offsets=shingles.offsets)):
                got = digests._residuals(held, suspects, partners)
                assert len(got) == len(suspects)
                for k, want in enumerate(expected):
                    assert got.doc(k).dtype == np.uint32 and np.array_equal(got.doc(k), want)
        finally:
            disk.close()


def _bits(words: np.ndarray) -> np.ndarray:
    return np.unpackbits(words.astype("<u8").view(np.uint8), bitorder="little").astype(bool)


@settings(max_examples=60, deadline=None)
@given(_DOCS)
def test_sketches_set_the_buckets_of_each_documents_tokens_and_shingles(docs: list[list[int]]) -> None:
    """kernels.sketch_rows sets, in each document's row, exactly the bits of its tokens' buckets (kernels.hash_buckets
    of their hashes, as the scorer buckets each token id), then those of its shingles' buckets."""
    tokens, shingles = _tokens(docs), _shingles(docs)
    got = kernels.sketch_rows(tokens.ids, tokens.offsets, tokens.hashes, shingles.hashes, shingles.offsets)
    assert got.shape == (len(docs), kernels.TOKEN_SKETCH_WORDS + kernels.SHINGLE_SKETCH_WORDS)
    buckets = kernels.hash_buckets(tokens.hashes, kernels.TOKEN_SKETCH_BUCKETS)
    for d in range(len(docs)):
        expected = np.zeros(kernels.TOKEN_SKETCH_BUCKETS, dtype=bool)
        expected[buckets[tokens.ids[tokens.offsets[d] : tokens.offsets[d + 1]]]] = True
        assert np.array_equal(_bits(got[d, : kernels.TOKEN_SKETCH_WORDS]), expected), d
        expected = np.zeros(kernels.SHINGLE_SKETCH_BUCKETS, dtype=bool)
        expected[kernels.hash_buckets(shingles.doc(d), kernels.SHINGLE_SKETCH_BUCKETS)] = True
        assert np.array_equal(_bits(got[d, kernels.TOKEN_SKETCH_WORDS :]), expected), d


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), unique=True, max_size=600), st.lists(st.integers(0, 2**32 - 1), max_size=300),
       st.sampled_from([0, 1, 2, 16]))
def test_shared_shingle_bound_counts_the_left_shingles_in_the_right_buckets(left: list[int], extra: list[int],
                                                                           levels: int) -> None:
    """The scorer's bound of two documents' shared shingles (by popcounts of levels, or bucket by bucket past
    ``levels`` shingles in one bucket) is the number of the left document's shingles whose bucket the right one's
    sketch has, never below the shared count. (Hundreds of shingles in 2,048 buckets: some hold several.)"""
    from dedup import _jit

    left_values = np.array(left, dtype=np.uint32)
    right_values = np.unique(np.concatenate([left_values[::2], np.array(extra, dtype=np.uint32)]))
    offsets = np.array([0, len(right_values)], dtype=np.int64)
    sketch = kernels.sketch_rows(np.zeros(0, np.int32), np.zeros(2, np.int64), np.ones(1, np.uint64), right_values, offsets)[0]
    words = kernels.SHINGLE_SKETCH_WORDS
    counts, mask = np.zeros(words * 64, np.int64), np.zeros(words, np.uint64)
    level_bits = np.zeros((max(levels, 1), words), np.uint64)
    for bucket in kernels.hash_buckets(left_values, kernels.SHINGLE_SKETCH_BUCKETS).tolist():
        bit = np.uint64(1) << np.uint64(bucket & 63)
        if counts[bucket] < levels:
            level_bits[counts[bucket], bucket >> 6] |= bit
        counts[bucket] += 1
        mask[bucket >> 6] |= bit
    got = _jit._shared_bound(sketch, counts, mask, level_bits, int(counts.max(initial=0)), levels)
    right_buckets = set(kernels.hash_buckets(right_values, kernels.SHINGLE_SKETCH_BUCKETS).tolist())
    expected = sum(b in right_buckets for b in kernels.hash_buckets(left_values, kernels.SHINGLE_SKETCH_BUCKETS).tolist())
    assert got == expected
    assert got >= len(np.intersect1d(left_values, right_values))


@settings(max_examples=100, deadline=None)
@given(_DOCS, st.data())
def test_related_candidates_are_candidate_pairs_sharing_a_fifth(docs: list[list[int]], data: st.DataObject) -> None:
    """The digest guard's test of two partners (is the pair a candidate, sharing _RELATED of the smaller one's
    shingles?) equals reading the containment that score_pairs gives every candidate pair."""
    from dedup.digests import _RELATED, _related_candidates

    shingles = _shingles(docs)
    n = len(docs)
    candidates = np.array(sorted(data.draw(st.sets(st.tuples(st.integers(0, n - 2), st.integers(1, n - 1)).filter(
        lambda p: p[0] < p[1]), min_size=1))), dtype=np.int64)
    a = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=1, max_size=40)), dtype=np.int64)
    b = np.array(data.draw(st.lists(st.integers(0, n - 1), min_size=len(a), max_size=len(a))), dtype=np.int64)
    ask = np.array(data.draw(st.lists(st.booleans(), min_size=len(a), max_size=len(a))))
    tokens = _tokens(docs)
    scores = score_pairs(candidates, signatures=signatures(shingles, num_perm=16), tfidf=tfidf_matrix(tokens),
                         shingles=shingles, tokens=tokens, engine="numpy")
    related = {(int(x), int(y)) for x, y, c in zip(candidates[:, 0], candidates[:, 1], scores.containment) if c >= _RELATED}
    expected = [bool(k) and (min(x, y), max(x, y)) in related for x, y, k in zip(a.tolist(), b.tolist(), ask.tolist())]
    assert _related_candidates(shingles, candidates, a, b, ask=ask).tolist() == expected
    shuffled = candidates[::-1, ::-1]  # any order and orientation
    assert _related_candidates(shingles, shuffled, a, b, ask=ask).tolist() == expected


def test_bounds_refuse_sketches_of_another_width() -> None:
    """Sketches without the shingle part (the token sketches of older versions) are refused with a clear error,
    never read past their rows."""
    tokens, shingles = _tokens([[1, 2, 3], [1, 2, 4]]), _shingles([[1, 2, 3], [1, 2, 4]])
    counts = CountRows.of(tokens, columns=len(tokens.vocab), engine="numpy")
    sketches = kernels.sketch_rows(tokens.ids, tokens.offsets, tokens.hashes, shingles.hashes, shingles.offsets)
    pairs = np.array([0], dtype=np.int64), np.array([1], dtype=np.int64)
    args = (counts.indices, counts.counts, counts.offsets, shingles.hashes, shingles.offsets, signatures(shingles, num_perm=16))
    weights = dict(tf=kernels.sublinear_tf(4), idf=np.ones(len(tokens.vocab)), is_number=np.zeros(len(tokens.vocab), bool),
                   norms=np.ones(2), left=pairs[0], right=pairs[1],
                   token_buckets=kernels.hash_buckets(tokens.hashes, kernels.TOKEN_SKETCH_BUCKETS), rule=(0.5, 0.5, 0.8, 0.7))
    kernels.score_rows(*args, sketches=sketches, **weights)
    with pytest.raises(ValueError, match="sketch_rows"):
        kernels.score_rows(*args, sketches=sketches[:, : kernels.TOKEN_SKETCH_WORDS], **weights)


def test_the_kernels_sketch_layout_is_the_one_kernels_describes() -> None:
    """The compiled scorer's sketch layout (words and buckets of each part) is the one dedup.kernels sizes arrays by."""
    from dedup import _jit

    assert _jit.TOKEN_SKETCH_WORDS == kernels.TOKEN_SKETCH_WORDS
    assert _jit.SHINGLE_SKETCH_WORDS == kernels.SHINGLE_SKETCH_WORDS
    assert 1 << (64 - _jit.TOKEN_SKETCH_SHIFT) == kernels.TOKEN_SKETCH_BUCKETS == 64 * kernels.TOKEN_SKETCH_WORDS
    assert 1 << (64 - _jit.SHINGLE_SKETCH_SHIFT) == kernels.SHINGLE_SKETCH_BUCKETS == 64 * kernels.SHINGLE_SKETCH_WORDS
