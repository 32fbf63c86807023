"""The fast paths of single-article adds give exactly what the plain computations give: the tokenizer's word
cache, the one-group tokenizer, one-article records, the index's in-memory shortcuts and the stored bytes."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import Document, kernels
from dedup.index import Index, _records
from dedup.pipeline import Options, prepare
from dedup.tokenize import WordCache, char_classes, code_points, concat_offsets, plain_words, tokenize_batch

from index_helpers import sample_docs, story_words

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba not installed")

# Pieces on which the tokenizer turns (as in test_speed_paths), with words repeated across texts so that the
# cache is hit, and long runs so that some tokens are too long to be kept.
_PIECES = st.sampled_from(list("ab.,1 2_xz中国日本語ภาษาไทย๑๒٣ü.İ,\n-'é") + [
    "u.s.", "U.S.", "1,000", "12,345,678", "a.b.c.d.e.f", "中.国", "x1,2345", "p.m", "e.g.,", "3.5", " ", "ß",
    "police ", "bomb ", "Baghdad ", "a" * 30, "7" * 12, "kill" * 9])
_TEXT = st.lists(_PIECES, max_size=40).map("".join) | st.text(max_size=40)


def _tokenized(texts: list[str]) -> tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """What _tokenize_compiled hands the word cache: (joined text, code points, keys, starts, stops, ids)."""
    joined = "".join(texts)
    cps = code_points(joined)  # (one byte a character for Latin-1 text, as _tokenize_compiled passes it)
    found = kernels.tokenize(cps, concat_offsets([len(t) for t in texts]), char_classes())
    return joined, cps, found.keys, found.starts, found.stops, np.arange(len(found.keys), dtype=np.int64)


@settings(max_examples=150, deadline=None)
@given(batches=st.lists(st.lists(_TEXT, min_size=1, max_size=4), min_size=1, max_size=6),
       capacity=st.integers(1, 40), chars=st.integers(1, 300), longest=st.integers(1, 40), slots=st.sampled_from([2, 4, 64]),
       collide=st.sampled_from([0, 1, 3, (1 << 64) - 1]))
def test_word_cache_equals_plain_words(batches: list[list[str]], capacity: int, chars: int, longest: int, slots: int,
                                       collide: int) -> None:
    """Through hits, misses, words too long to keep, growing tables and restarts when full; with keys that
    collide (all equal when ``collide`` is 0) the characters must tell the words apart."""
    cache = WordCache(capacity=capacity, chars=chars, longest=longest, slots=slots)
    for texts in batches * 2:  # every batch twice: the second time mostly from the cache
        joined, cps, keys, starts, stops, ids = _tokenized(texts)
        words, hashes = cache.words(joined, cps, keys & np.uint64(collide), starts, stops, ids)
        ref_words, ref_hashes = plain_words(joined, starts, stops, ids)
        assert words == ref_words
        assert hashes.dtype == ref_hashes.dtype and np.array_equal(hashes, ref_hashes)
        assert len(cache) <= capacity


@settings(max_examples=60, deadline=None)
@given(batches=st.lists(st.lists(_TEXT, min_size=1, max_size=4), min_size=1, max_size=6), slots=st.sampled_from([2, 8]))
def test_word_cache_finds_every_word_it_kept(batches: list[list[str]], slots: int) -> None:
    """Once seen, a word is found (through table growth): a second pass over the texts adds nothing."""
    cache = WordCache(slots=slots)
    for rounds in (1, 2):
        for texts in batches:
            joined, cps, keys, starts, stops, ids = _tokenized(texts)
            cache.words(joined, cps, keys, starts, stops, ids)
        if rounds == 1:
            kept = len(cache)
    assert len(cache) == kept and cache.resets == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(_TEXT, min_size=1, max_size=4), min_size=1, max_size=4))
def test_tokenizer_with_a_warm_cache_equals_regex_tokenizer(batches: list[list[str]]) -> None:
    for texts in batches * 2:
        fast, ref = tokenize_batch(texts, engine="numba"), tokenize_batch(texts, engine="numpy")
        assert np.array_equal(fast.ids, ref.ids) and np.array_equal(fast.offsets, ref.offsets)
        assert fast.vocab == ref.vocab and np.array_equal(fast.hashes, ref.hashes)


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_TEXT, min_size=1, max_size=8), slots=st.sampled_from([2, 4, 16]))
def test_tokenizer_that_outgrows_its_table_equals_one_that_does_not(texts: list[str], slots: int) -> None:
    """A table too small for the tokens' ids grows, the document being split is split again: the tokens, their
    ids (in order of first occurrence) and first occurrences are those of a table large enough from the start."""
    cps = np.frombuffer("".join(texts).encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    starts = concat_offsets([len(t) for t in texts])
    small = kernels.tokenize(cps, starts, char_classes(), slots=slots)
    large = kernels.tokenize(cps, starts, char_classes(), slots=1 << 12)
    for a, b in zip(small, large):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    if cps.max(initial=0) < 256:  # Latin-1 text, given one byte a character: the same tokens
        for a, b in zip(kernels.tokenize(cps.astype(np.uint8), starts, char_classes(), slots=slots), large):
            assert a.dtype == b.dtype and np.array_equal(a, b)
    distinct, first = np.unique(small.ids, return_index=True)  # ids 0, 1, ... in order of first occurrence
    assert np.array_equal(distinct, np.arange(len(small.keys))) and np.all(np.diff(first) > 0)
    assert np.array_equal(cps[small.starts[small.ids[first]]], cps[small.starts])  # (each id's span: its first's)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_one_article_record_equals_its_record_in_a_batch(data: st.DataObject) -> None:
    """_records of a batch of one (its whole vocabulary in it) equals the same article's record in a larger batch."""
    a, c, _ = story_words()
    words = data.draw(st.lists(st.sampled_from(a + c + ["1,000", "2026", "U.S.", "42", "中国", "๑๒"]), max_size=200))
    other = data.draw(st.lists(st.sampled_from(c + ["7", "99"]), max_size=80))
    docs = [Document(id="x", text=" ".join(words), date=datetime(2026, 1, 2, tzinfo=timezone.utc)),
            Document(id="y", text=" ".join(other))]
    options = Options()
    alone = _records(docs[:1], prepare(docs[:1], options, engine="numba"), 1.0)[0]
    together = _records(docs, prepare(docs, options, engine="numba"), 1.0)[0]
    for name in ("id", "story", "date", "added", "digest", "numbers"):
        assert getattr(alone, name) == getattr(together, name), name
    for name in ("signature", "shingles", "tokens", "counts"):
        x, y = getattr(alone, name), getattr(together, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1), max_size=3000), st.integers(0, 3000))
def test_distinct_documents_equal_numpy_unique(values: list[int], extra: int) -> None:
    from dedup import bandmirror

    found = np.array(values + [0] * extra, dtype=np.uint32)
    n = len(values)
    out = bandmirror._distinct(found, n)
    ref = np.unique(found[:n]).astype(np.int64)
    assert out.dtype == ref.dtype and np.array_equal(out, ref)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=200), st.integers(-3, 3), st.booleans())
def test_token_counts_add_one_delta_equals_per_token_deltas(tokens: list[int], delta: int, zero: bool) -> None:
    from dedup.bandmirror import TokenCounts

    values = np.array(sorted(set(tokens) | {0}) if zero else tokens, dtype=np.uint64)  # (0 is kept aside)
    one, many = TokenCounts(), TokenCounts()
    for counts in (one, many):
        counts.add(values[::2], 5)
    one.add(values, delta)
    many.add(values, np.full(len(values), delta, dtype=np.int64))
    assert one.items() == many.items()
    assert np.array_equal(one.get(values), many.get(values))


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 6), st.integers(0, 2**32 - 1), st.sampled_from([(0.1, 128), (0.05, 128), (0.3, 64)]),
       st.booleans())
def test_band_keys_equal_the_salted_band_hash(docs: int, seed: int, lsh: tuple[float, int], compiled: bool) -> None:
    from dedup import bandmirror
    from dedup.candidates import _band_keys, lsh_params
    from dedup.store import _BAND_SALT, band_keys

    options = Options(lsh_threshold=lsh[0], num_perm=lsh[1])
    sigs = np.random.default_rng(seed).integers(0, 2**32, (docs, options.num_perm), dtype=np.uint32)
    bands, rows = lsh_params(options.lsh_threshold, options.num_perm)
    with np.errstate(over="ignore"):
        ref = np.stack([_band_keys(sigs, b * rows, (b + 1) * rows) ^ (np.uint64(b + 1) * _BAND_SALT)
                        for b in range(bands)], axis=1)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bandmirror, "_NUMBA", compiled)
        keys, first = band_keys(sigs, options), band_keys(sigs[0], options)
    assert keys.dtype == ref.dtype and np.array_equal(keys, ref)
    assert np.array_equal(first, ref[:1])


def _stored(path: str) -> tuple[list, list]:
    with sqlite3.connect(path) as db:
        docs = db.execute("SELECT seq, id, story, date, digest, signature, shingles, tokens, counts, numbers, sketch "
                          "FROM docs ORDER BY seq").fetchall()
        df = db.execute("SELECT token, docs, seed FROM df ORDER BY token").fetchall()
    return docs, df


def _feed() -> list[Document]:
    """Copies and rewrites of the samples, some dated, one empty, one a digest of two stories."""
    a, b, c = sample_docs()
    t0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
    docs = [a, b, c]
    for k, base in enumerate([a, c, b, a, c, a, b, c]):
        words = base.text.split()
        docs.append(Document(id=f"copy{k}", text=" ".join(words[k % 5 :] + ["1,000", str(k)]),
                             date=t0 + timedelta(hours=k) if k % 2 else None))
    docs.append(Document(id="empty", text=""))
    docs.append(Document(id="digest", text=a.text[:1500] + "\n\n" + c.text[:1500]))
    return docs


def test_single_adds_store_the_bytes_one_batch_stores(tmp_path: Path) -> None:
    """Adds of one article (word cache, one-article records, known-absent ids, lazy checkpoints) return and
    store what one add_many of the same articles returns and stores (the times added aside)."""
    docs = _feed()
    one, many = str(tmp_path / "one.db"), str(tmp_path / "many.db")
    with Index.open(one) as index:
        singles = []
        for d in docs:
            checked = index.check(d)  # read-only: asks the file whether d is indexed
            singles.append(index.add(d))
            best = singles[-1]
            assert (best is None) == (not checked)
            if best is not None:
                assert (best.id, best.jaccard, best.cosine, best.containment, best.numbers) == (
                    checked[0].id, checked[0].jaccard, checked[0].cosine, checked[0].containment, checked[0].numbers)
        assert index.add(Document(id="copy3", text=docs[4].text), replace=True) is not None
        assert index.integrity() == []
    with Index.open(many) as index:
        batched = index.add_many(docs)
        index.remove("copy3")
        index.add(Document(id="copy3", text=docs[4].text))
        assert index.integrity() == []
    assert singles == batched and any(singles) and not all(singles)
    (one_docs, one_df), (many_docs, many_df) = _stored(one), _stored(many)
    assert one_df == many_df
    assert [r[1:] for r in one_docs] == [r[1:] for r in many_docs]  # (seq differs only after the replacement)


def test_checkpointer_is_woken_every_few_articles_and_after_other_changes(tmp_path: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from dedup import store_sqlite

    monkeypatch.setattr(store_sqlite, "_WAL_BYTES", 3 * store_sqlite._ARTICLE_WAL_BYTES)  # wake every 3 articles
    docs = _feed()
    with Index.open(str(tmp_path / "feed.db")) as index:
        woken = []
        monkeypatch.setattr(index._store._checkpointer, "poke", lambda: woken.append(len(index)))
        for d in docs[:7]:
            index.add(d)
        assert woken == [3, 6]
        index.remove(docs[0].id)
        assert woken == [3, 6, 6]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), min_size=1, max_size=100), st.lists(st.integers(0, 2**32 - 1), max_size=100))
def test_compiled_sketch_bounds_bucket_as_numpy_does(tokens: list[int], shingles: list[int]) -> None:
    """The compiled bounds bucket the query's shingles and tokens themselves (as the sketches were made);
    they agree with the numpy path, which buckets them with kernels.hash_buckets."""
    from dedup import bandmirror
    from dedup._jit import sketch_bucket as _bucket
    from dedup.bandmirror import SKETCH_SHINGLE_BITS, SKETCH_TOKEN_BITS, sketch, sketch_bounds
    from dedup.kernels import hash_buckets as _buckets

    q_tokens = np.array(tokens, dtype=np.uint64)
    q_shingles = np.array(shingles, dtype=np.uint32)
    assert [_bucket(t, 64 - 9) for t in q_tokens] == _buckets(q_tokens, SKETCH_TOKEN_BITS).tolist()
    assert [_bucket(s, 64 - 10) for s in q_shingles] == _buckets(q_shingles, SKETCH_SHINGLE_BITS).tolist()
    rng = np.random.default_rng(len(tokens))
    sketches = np.stack([sketch(np.unique(rng.choice(q_shingles, len(q_shingles) // 2)) if len(q_shingles) else q_shingles,
                                np.unique(rng.choice(q_tokens, k))) for k in (1, len(tokens))])
    weights = rng.random(len(tokens)) + 0.1
    rows = np.array([0, 1, 0], dtype=np.int64)
    common, cosine = sketch_bounds(sketches, rows, q_shingles, q_tokens, weights)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bandmirror, "_NUMBA", False)
        ref_common, ref_cosine = sketch_bounds(sketches, rows, q_shingles, q_tokens, weights)
    assert np.array_equal(common, ref_common) and np.allclose(cosine, ref_cosine, rtol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 5000), st.integers(0, 5000), st.integers(0, 2**32 - 1))
def test_compiled_sketch_bounds_count_crowded_buckets_exactly(query: int, stored: int, seed: int) -> None:
    """With thousands of shingles most of the 1,024 buckets hold several of the query's shingles (the compiled
    path counts buckets of one and two by popcount and visits the others): the shared-shingle bound is still
    exactly the numpy path's."""
    from dedup import bandmirror
    from dedup.bandmirror import sketch, sketch_bounds

    rng = np.random.default_rng(seed)
    q_shingles = np.unique(rng.integers(0, 2**32, query, dtype=np.uint64).astype(np.uint32))
    q_tokens = np.unique(rng.integers(1, 2**64, 50, dtype=np.uint64))
    shared = rng.choice(q_shingles, min(len(q_shingles), stored // 2), replace=False) if len(q_shingles) else q_shingles
    rows = [np.unique(np.concatenate((shared, rng.integers(0, 2**32, stored, dtype=np.uint64).astype(np.uint32)))),
            q_shingles, np.zeros(0, dtype=np.uint32)]
    sketches = np.stack([sketch(s, q_tokens[: 10 * k]) for k, s in enumerate(rows)])
    weights = rng.random(len(q_tokens)) + 0.1
    order = np.array([0, 1, 2, 0], dtype=np.int64)
    common, cosine = sketch_bounds(sketches, order, q_shingles, q_tokens, weights)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bandmirror, "_NUMBA", False)
        ref_common, ref_cosine = sketch_bounds(sketches, order, q_shingles, q_tokens, weights)
    assert np.array_equal(common, ref_common) and np.allclose(cosine, ref_cosine, rtol=1e-12)
    assert common[1] == len(q_shingles)  # the query's own sketch holds all of its shingles


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 40), max_size=300), st.integers(1, 5), st.integers(0, 30), st.integers(0, 2**32 - 1))
def test_one_article_shingle_minhash_equals_the_batch_path(ids: list[int], n: int, shift: int, seed: int) -> None:
    """kernels.shingle_minhash of one document (no ranges, no compacting pass) gives what the general path gives
    for the same document in a batch, whatever its offsets start at."""
    from dedup.fingerprint import _drawn_permutations

    rng = np.random.default_rng(seed)
    vocab = rng.integers(0, 2**64, 41, dtype=np.uint64)
    a, b = _drawn_permutations(64, seed % 5)
    before = rng.integers(0, 41, shift).astype(np.int32)
    flat = np.concatenate((before, np.array(ids, dtype=np.int32)))
    one = kernels.shingle_minhash(flat, vocab, np.array([shift, len(flat)], dtype=np.int64), n=n, a=a, b=b)
    many = kernels.shingle_minhash(flat, vocab, np.array([0, shift, len(flat)], dtype=np.int64), n=n, a=a, b=b, threads=2)
    hashes, offsets, sigs = many
    assert one[0].dtype == hashes.dtype and np.array_equal(one[0], hashes[offsets[1] : offsets[2]])
    assert one[1].dtype == offsets.dtype and one[1].tolist() == [0, offsets[2] - offsets[1]]
    assert one[2].dtype == sigs.dtype and np.array_equal(one[2], sigs[1:])


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**64 - 1), st.integers(1, 300)), unique_by=lambda t: t[0], max_size=120),
       st.lists(st.integers(0, 2**32 - 1), unique=True, max_size=150), st.integers(0, 50), st.integers(0, 10**6),
       st.sampled_from([0, 1]), st.integers(0, 2**32 - 1))
def test_compiled_score_bounds_equal_the_numpy_bounds(tokens: list[tuple[int, int]], shingles: list[int], stored: int,
                                                      documents: int, extra: int, seed: int) -> None:
    """score_bounds in one compiled pass equals tfidf_weights + sketch_bounds + containment (the numpy path,
    as SqliteStore.lookup computed them) up to rounding, and the bounds really bound the exact scores."""
    from dedup import bandmirror
    from dedup.bandmirror import score_bounds, score_candidates, sketch

    rng = np.random.default_rng(seed)
    q_tokens = np.array(sorted(t for t, _ in tokens), dtype=np.uint64)
    q_counts = np.array([c for _, c in sorted(tokens)], dtype=np.uint32)
    q_shingles = np.array(sorted(shingles), dtype=np.uint32)
    q_df = rng.integers(0, documents + 1, len(q_tokens)).astype(np.float64)
    rows_tokens = [np.unique(rng.choice(q_tokens, min(len(q_tokens), k)) if len(q_tokens) else q_tokens)
                   for k in (0, 3, len(q_tokens))]
    rows_shingles = [np.unique(np.concatenate((rng.choice(q_shingles, min(len(q_shingles), k)) if len(q_shingles)
                                                else q_shingles, rng.integers(0, 2**32, stored).astype(np.uint32))))
                     for k in (len(q_shingles), 5, 0)]
    sketches = np.stack([sketch(s, t) for s, t in zip(rows_shingles, rows_tokens)])
    sizes = np.array([len(s) for s in rows_shingles], dtype=np.uint32)
    rows = np.array([2, 0, 1, 0], dtype=np.int64)
    containment, cosine = score_bounds(sketches, sizes, rows, q_shingles, q_tokens, q_counts, q_df, documents + extra,
                                       extra, 1e-9)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bandmirror, "_NUMBA", False)
        ref_containment, ref_cosine = score_bounds(sketches, sizes, rows, q_shingles, q_tokens, q_counts, q_df,
                                                   documents + extra, extra, 1e-9)
    assert containment.dtype == ref_containment.dtype and cosine.dtype == ref_cosine.dtype
    assert np.allclose(containment, ref_containment, rtol=1e-13, atol=0)
    assert np.allclose(cosine, ref_cosine, rtol=1e-12, atol=1e-15)
    # the bounds bound the exact scores (counts 1 and document frequencies 0 for the stored rows)
    order = [rows_tokens[r] for r in rows.tolist()]
    t_off = np.concatenate(([0], np.cumsum([len(t) for t in order]))).astype(np.int64)
    s_rows = [rows_shingles[r] for r in rows.tolist()]
    s_off = np.concatenate(([0], np.cumsum([len(s) for s in s_rows]))).astype(np.int64)
    flat_tokens = np.concatenate(order).astype(np.uint64)
    exact_cos, common = score_candidates(
        q_tokens, q_counts, q_df, flat_tokens, np.ones(len(flat_tokens), np.uint32),
        np.full(len(flat_tokens), float(documents)), t_off, q_shingles,
        np.concatenate(s_rows).astype(np.uint32), s_off, documents=documents + extra, extra=extra)
    smaller = np.minimum(len(q_shingles), sizes[rows])
    exact_containment = np.divide(common, smaller, out=np.zeros(len(rows)), where=smaller > 0)
    assert (exact_containment <= containment).all() and (exact_cos <= cosine).all()


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 2**64 - 1), unique=True, max_size=200), st.lists(st.integers(0, 2**64 - 1), max_size=50),
       st.integers(-3, 3))
def test_token_counts_get_float_equals_get(stored: list[int], queried: list[int], delta: int) -> None:
    from dedup.bandmirror import TokenCounts

    counts = TokenCounts()
    values = np.array(stored, dtype=np.uint64)
    counts.add(values, 2)
    counts.add(values[::3], delta)
    query = np.array(queried + stored[::2], dtype=np.uint64)
    got, ref = counts.get_float(query), counts.get(query).astype(np.float64)
    assert got.dtype == ref.dtype and np.array_equal(got, ref)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 60), max_size=400), st.integers(0, 5), st.integers(0, 2**32 - 1))
def test_one_article_token_counts_equal_numpy(ids: list[int], missing: int, seed: int) -> None:
    """kernels.token_counts (one compiled pass for Index.add) gives the numpy path's sorted hashes and counts,
    and None on both paths when some id of the vocabulary never occurs."""
    rng = np.random.default_rng(seed)
    size = (max(ids) + 1 if ids else 0) + missing  # ids beyond the largest used one never occur
    hashes = rng.choice(np.arange(1, 10**6, dtype=np.uint64) * np.uint64(2**40 + 7), size, replace=False)
    flat = np.array(ids, dtype=np.int32)
    fast = kernels.token_counts(flat, hashes)
    plain = kernels.token_counts(flat, hashes, use_numba=False)
    if size and (missing or len(set(ids)) < size):
        assert fast is None and plain is None
        return
    assert fast is not None and plain is not None
    assert fast[0].dtype == plain[0].dtype == np.uint64 and fast[1].dtype == plain[1].dtype == np.uint32
    assert np.array_equal(fast[0], plain[0]) and np.array_equal(fast[1], plain[1])
    assert np.all(fast[0][1:] > fast[0][:-1]) and int(fast[1].sum()) == len(ids)
