"""The fast paths (numba kernels, worker processes, spilled corpora, batched scoring) give exactly
the results of the numpy reference code."""

from __future__ import annotations

import functools
import os
import re

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from scipy import sparse

from dedup import Document, cluster, kernels, parallel, pipeline
from dedup.confirm import CountRows, common_shingles, count_matrix, document_frequency, number_agreement, row_dots, score_pairs, tfidf_matrix
from dedup.fingerprint import shingle_signatures, signatures
from dedup.candidates import candidate_pairs
from dedup.parallel import DiskArray, prepare_corpus
from dedup.shingle import shingle_batch
from dedup.tokenize import TokenBatch, tokenize_batch

from conftest import SAMPLES, news_texts

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba not installed")

texts = news_texts(max_words=60, max_docs=8)


def _same_tokens(fast, ref) -> None:
    assert np.array_equal(fast.offsets, ref.offsets)
    assert np.array_equal(fast.ids, ref.ids)
    assert fast.vocab == ref.vocab
    assert np.array_equal(fast.hashes, ref.hashes)


# Characters and pieces on which the tokenizer's rules turn: dotted abbreviations, thousands commas,
# underscores, digits of other scripts (Arabic-Indic, Thai), scripts split into bigrams, Turkish dotted I.
_TRICKY = st.lists(st.sampled_from(list("ab.,1 2_xz中国日本語ภาษาไทย๑๒٣ü.İ,\n-'é") + [
    "u.s.", "U.S.", "1,000", "12,345,678", "a.b.c.d.e.f", "中.国", "x1,2345", "p.m", "e.g.,", "3.5", " ", "ß"]), max_size=40).map("".join)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TRICKY, min_size=1, max_size=5))
def test_compiled_tokenizer_equals_regex_tokenizer(texts: list[str]) -> None:
    _same_tokens(tokenize_batch(texts, engine="numba"), tokenize_batch(texts, engine="numpy"))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.text(max_size=60), min_size=1, max_size=5))
def test_compiled_tokenizer_equals_regex_tokenizer_on_any_text(texts: list[str]) -> None:
    _same_tokens(tokenize_batch(texts, engine="numba"), tokenize_batch(texts, engine="numpy"))


def test_compiled_tokenizer_equals_regex_tokenizer_on_samples(monkeypatch: pytest.MonkeyPatch) -> None:
    from dedup.normalize import normalize

    texts = [normalize(p.read_text()) for p in sorted(SAMPLES.glob("*.txt"))] * 3
    _same_tokens(tokenize_batch([*texts, ""], engine="numba"), tokenize_batch([*texts, ""], engine="numpy"))
    monkeypatch.setattr(kernels, "tokenize", functools.partial(kernels.tokenize, slots=2))  # (a table that grows)
    _same_tokens(tokenize_batch(texts, engine="numba"), tokenize_batch(texts, engine="numpy"))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 0x10FFFF) | st.integers(0xD7F0, 0xE010) | st.sampled_from([0, 0x10FFFF, 0xFFFF, 0x10000]),
                min_size=1, max_size=50))
def test_char_classes_are_the_regex_classes_of_each_code_point(points: list[int]) -> None:
    """The compiled tokenizer's class table (built from one string of every code point) says of each code point,
    surrogates included, what the regular expressions of tokens() say of it alone."""
    from dedup.tokenize import _UNSPACED, char_classes

    table = char_classes()
    assert table.shape == (0x110000,)
    for cp in points:
        c = chr(cp)
        want = ((re.fullmatch(r"\w", c) is not None) | 2 * (re.fullmatch(r"\d", c) is not None)
                | 4 * (re.fullmatch(f"[{_UNSPACED}]", c) is not None) | 8 * (re.fullmatch(r"[^\W\d_]", c) is not None))
        assert table[cp] == want, hex(cp)


def test_char_classes_are_kept_on_disk_and_read_back(tmp_path, monkeypatch) -> None:
    """The class table is computed once, saved in the cache directory and read back by later processes;
    a file that is not a whole table is not used (it is computed and saved again)."""
    from dedup import tokenize

    monkeypatch.setenv("DEDUP_CACHE_DIR", str(tmp_path))
    computed = tokenize.compute_char_classes()
    tokenize.char_classes.cache_clear()
    try:
        assert np.array_equal(tokenize.char_classes(), computed)
        (path,) = tmp_path.glob("char_classes_*.u8")
        assert path == tokenize._char_classes_path()
        assert np.array_equal(tokenize.load_char_classes(path), computed)
        tokenize.char_classes.cache_clear()
        with monkeypatch.context() as m:  # the next process reads the file: no computing
            m.setattr(tokenize, "compute_char_classes", lambda: pytest.fail("computed again"))
            assert np.array_equal(tokenize.char_classes(), computed)
        for bad in (computed[:-1], computed | 16, np.where(np.arange(len(computed)) == ord("a"), 0, computed)):
            path.write_bytes(bad.astype(np.uint8).tobytes())
            assert tokenize.load_char_classes(path) is None
        tokenize.char_classes.cache_clear()
        assert np.array_equal(tokenize.char_classes(), computed)  # (and saved whole again)
        assert np.array_equal(tokenize.load_char_classes(path), computed)
        assert tokenize.load_char_classes(tmp_path / "missing.u8") is None
        assert not tokenize.save_char_classes(path / "not-a-directory" / "x.u8", computed)
        assert [p.name for p in tmp_path.iterdir()] == [path.name]  # (no temporary file left)
    finally:
        tokenize.char_classes.cache_clear()


def test_token_ids_grow_their_table() -> None:
    """200,000 distinct tokens, then 100,000 of them again: numbered as they first come, from a small table."""
    texts = [" ".join(map(str, range(200_000))), " ".join(map(str, range(100_000)))]
    cps = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32)
    from dedup.tokenize import char_classes, concat_offsets

    found = kernels.tokenize(cps, concat_offsets([len(t) for t in texts]), char_classes(), slots=64)
    assert np.array_equal(found.offsets, [0, 200_000, 300_000]) and len(found.keys) == 200_000
    assert np.array_equal(found.ids[:200_000], np.arange(200_000)) and np.array_equal(found.ids[200_000:], np.arange(100_000))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 255, 256, 2**24, 2**32 - 1]), max_size=3000),
       st.integers(0, 5))
def test_radix_sort_of_shingles_equals_numpy_unique(values: list[int], at: int) -> None:
    """The fingerprint kernel's sort: the distinct values, ascending, written at ``at`` (what np.unique gives)."""
    from dedup import _jit

    data = np.array(values, dtype=np.uint32)
    out = np.full(at + len(values) + 2, 7, dtype=np.uint32)
    tmp = np.empty(len(values), dtype=np.uint32)
    u = _jit._sort_distinct(data.copy(), tmp, len(values), np.empty((4, 256), np.int32), out, at)
    assert np.array_equal(out[at : at + u], np.unique(data))
    assert (out[:at] == 7).all() and (out[at + len(values):] == 7).all()  # nothing written outside its place


@settings(max_examples=60, deadline=None)
@given(texts=texts, n=st.integers(1, 5), num_perm=st.sampled_from([16, 64, 128]), seed=st.integers(0, 2**16))
def test_kernel_shingles_and_signatures_equal_numpy(texts: list[str], n: int, num_perm: int, seed: int) -> None:
    batch = tokenize_batch([t.lower() for t in texts])
    ref_shingles = shingle_batch(batch, n=n, engine="numpy")
    ref_sigs = signatures(ref_shingles, num_perm=num_perm, seed=seed, engine="numpy")
    fast_shingles, fast_sigs = shingle_signatures(batch, n=n, num_perm=num_perm, seed=seed, engine="numba")
    assert np.array_equal(fast_shingles.hashes, ref_shingles.hashes)
    assert np.array_equal(fast_shingles.offsets, ref_shingles.offsets)
    assert np.array_equal(fast_sigs, ref_sigs)
    assert np.array_equal(shingle_batch(batch, n=n, engine="numba").hashes, ref_shingles.hashes)
    assert np.array_equal(signatures(ref_shingles, num_perm=num_perm, seed=seed, engine="numba"), ref_sigs)


@settings(max_examples=60, deadline=None)
@given(texts=texts, data=st.data())
def test_kernel_pair_scores_equal_scipy(texts: list[str], data: st.DataObject) -> None:
    batch = tokenize_batch([t.lower() for t in texts])
    assume(len(batch.vocab) > 0)  # scikit-learn's TfidfTransformer needs one feature
    shingles = shingle_batch(batch, n=2)
    docs = len(texts)
    pairs = np.array(data.draw(st.lists(st.tuples(st.integers(0, docs - 1), st.integers(0, docs - 1)), min_size=1, max_size=30)))
    left, right = pairs[:, 0], pairs[:, 1]
    tfidf = tfidf_matrix(batch)
    assert np.array_equal(row_dots(tfidf, left, right, engine="numba"), row_dots(tfidf, left, right, engine="numpy"))
    assert np.array_equal(common_shingles(shingles, left, right, engine="numba"),
                          common_shingles(shingles, left, right, engine="numpy"))


@settings(max_examples=60, deadline=None)
@given(texts=st.lists(_TRICKY, min_size=1, max_size=8), data=st.data())
def test_kernel_count_matrix_and_scores_equal_scipy(texts: list[str], data: st.DataObject) -> None:
    batch = tokenize_batch(texts)
    ref, fast = count_matrix(batch, engine="numpy"), count_matrix(batch, engine="numba")
    assert fast.has_canonical_format and ref.has_canonical_format
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(fast, name), getattr(ref, name))
    # Count rows (no matrix made), also with the columns a chunk's ids have in the corpus (distinct, any order).
    vocab = len(batch.vocab)
    labels = np.array(data.draw(st.permutations(range(3 * vocab)))[:vocab], dtype=np.int64)
    relabelled = count_matrix(TokenBatch(ids=labels[batch.ids], offsets=batch.offsets, vocab=[], hashes=batch.hashes),
                              columns=3 * vocab, engine="numpy")
    for column_of, matrix in ((None, ref), (labels, relabelled)):
        rows, ref_rows = (CountRows.of(batch, engine=engine, labels=column_of, columns=3 * vocab) for engine in ("numba", "numpy"))
        for name, want in (("indices", matrix.indices), ("counts", matrix.data), ("offsets", matrix.indptr)):
            assert getattr(rows, name).dtype == getattr(ref_rows, name).dtype
            assert np.array_equal(getattr(rows, name), getattr(ref_rows, name)) and np.array_equal(getattr(rows, name), want)
    if vocab > 1:
        with pytest.raises(ValueError, match="distinct"):
            kernels.count_rows(batch.ids, batch.offsets, columns=np.zeros(vocab, dtype=np.int64))
    docs = len(texts)
    pairs = np.array(data.draw(st.lists(st.tuples(st.integers(0, docs - 1), st.integers(0, docs - 1)), min_size=1, max_size=20)))
    assert all(np.array_equal(a, b) for a, b in zip(number_agreement(batch, pairs[:, 0], pairs[:, 1], engine="numba"),
                                                    number_agreement(batch, pairs[:, 0], pairs[:, 1], engine="numpy")))
    assume(len(batch.vocab) > 0)
    shingles = shingle_batch(batch, n=2)
    sigs = signatures(shingles, num_perm=16)
    fast_scores, ref_scores = (
        score_pairs(pairs, signatures=sigs, tfidf=tfidf_matrix(batch, df=document_frequency(batch), engine=engine),
                    shingles=shingles, tokens=batch, engine=engine) for engine in ("numba", "numpy"))
    for name in ref_scores.__dataclass_fields__:
        assert np.array_equal(getattr(fast_scores, name), getattr(ref_scores, name)), name


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.floats(1e-3, 1.0), min_size=0, max_size=300), min_size=2, max_size=6))
def test_row_dots_kernel_sums_like_numpy_reduceat(rows: list[list[float]]) -> None:
    # long rows exercise numpy's pairwise summation (blocks of 8, splits above 128)
    indptr = np.concatenate(([0], np.cumsum([len(r) for r in rows])))
    indices = np.concatenate([np.arange(len(r)) for r in rows]).astype(np.int32)
    data = np.concatenate([np.array(r, dtype=np.float64) for r in rows])
    matrix = sparse.csr_matrix((data, indices, indptr), shape=(len(rows), 300))
    left, right = np.repeat(np.arange(len(rows)), len(rows)), np.tile(np.arange(len(rows)), len(rows))
    assert np.array_equal(row_dots(matrix, left, right, engine="numba"), row_dots(matrix, left, right, engine="numpy"))


def test_tfidf_rows_with_corpus_idf_equal_full_matrix() -> None:
    batch = tokenize_batch([p.read_text(encoding="utf-8").lower() for p in sorted(SAMPLES.glob("*.txt"))])
    full = tfidf_matrix(batch)
    rows = np.array([2, 0])
    part = tfidf_matrix(batch, rows=rows, df=document_frequency(batch))
    expected = full[rows]
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(part, name), getattr(expected, name))


def test_disk_array_reads_ranges_and_gathers_rows(tmp_path) -> None:
    values = np.arange(100_000, dtype=np.uint32) * 7
    path = tmp_path / "values"
    values.tofile(path)
    disk = DiskArray(str(path), np.uint32, len(values))
    assert np.array_equal(disk[10:20], values[10:20]) and disk[5] == values[5] and len(disk) == len(values)
    starts = np.array([90_000, 5, 70_000, 100, 5])
    stops = np.array([90_010, 50, 99_999, 100, 50])
    offsets = np.concatenate(([0], np.cumsum(stops - starts)))
    expected = np.concatenate([values[a:b] for a, b in zip(starts, stops)])
    assert np.array_equal(disk.gather(starts, stops, offsets), expected)
    for minimum in (10**12, 0):  # the pread path, then the mapped file copied by the kernel
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(kernels, "MIN_TOKENS", minimum)
            assert np.array_equal(disk.gather(starts, stops, offsets), expected)
    disk.close()


def _docs(count: int) -> list[Document]:
    rng = np.random.default_rng(3)
    vocab = np.array("reuters police said on tuesday the bomb killed 24 people in baghdad shares rose 3.5 "
                     "percent u.s. officials market oil prices 1,000 km company profit".split())
    stories = [" ".join(rng.choice(vocab, 80)) for _ in range(count // 3)]
    docs = []
    for i in range(count):
        base = stories[int(rng.integers(len(stories)))].split()
        cut = int(rng.integers(40, 80))
        docs.append(Document(id=f"d{i}", text=" ".join(base[:cut] + list(rng.choice(vocab, 10)))))
    return docs


def _json_lines(docs: list[Document], bad: dict[int, str]) -> list[str]:
    """The documents as JSON Lines, with the lines of ``bad`` (by index) put in before them."""
    import json

    out = []
    for i, doc in enumerate(docs):
        if i in bad:
            out.append(bad[i])
        out.append(json.dumps({"id": doc.id, "text": doc.text, "date": f"2017-01-{1 + i % 28:02d}"}))
    return out


BAD_LINES = {3: "", 8: "{not json", 20: '{"id": "x1"}', 33: '{"id": "d5", "text": "seen before, a later batch"}',
             34: '{"id": "d34", "text": "one batch"}', 51: '{"id": 7, "text": "a number id is fine"}', 60: "[1, 2]",
             61: '{"id": "d60", "text": "ahead of its id"}', 80: '{"id": "d90", "text": "an id seen later"}'}


@pytest.mark.parametrize("workers", [1, 2])
def test_json_lines_parsed_by_the_workers_equal_documents_read_here(tmp_path, monkeypatch, workers: int) -> None:
    """JSON Lines read by read_documents go to the workers as raw lines: their records are checked in line order
    with the outcome of documents read here. Skipped, the bad records and repeated ids are counted alike (a batch
    with a repeated id is prepared again without it) and the clusters are the same; else the first bad record
    raises the same error."""
    import io

    from dedup.errors import InputError
    from dedup.read import ReadOptions, ReadStats, read_documents

    monkeypatch.setattr(parallel, "CHUNK_DOCS", 16)  # (batches of 16 lines)
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(_json_lines(_docs(120), BAD_LINES)) + "\n")
    stats = [ReadStats(), ReadStats()]
    fast = cluster(read_documents([path], options=ReadOptions(skip_bad=True), stats=stats[0]), workers=workers)
    slow = cluster(list(read_documents([path], options=ReadOptions(skip_bad=True), stats=stats[1])), workers=workers)
    assert fast.ids == slow.ids and len(fast.ids) == 120 + 3 - 2  # (three ids added, two of the documents' then repeated)
    assert fast.assignments == slow.assignments and fast.pairs == slow.pairs
    assert [(s.read, s.skipped, dict(s.reasons), s.examples) for s in stats][0] == \
        [(s.read, s.skipped, dict(s.reasons), s.examples) for s in stats][1]
    assert stats[0].reasons["duplicate id"] == 4 and stats[0].skipped == 7
    for keep in (8, 33, 80, 200):  # (the first bad record at: malformed JSON, a repeated id, an id repeated later, none)
        lines = _json_lines(_docs(120), {i: line for i, line in BAD_LINES.items() if i >= keep or not line})
        stdin = "\n".join(lines).encode()
        errors = []
        for source in ("fast", "slow"):
            docs = read_documents(["-"], stdin=io.BytesIO(stdin))
            try:
                cluster(docs if source == "fast" else list(docs), workers=workers)
                errors.append(None)
            except InputError as error:
                errors.append(str(error))
        assert errors[0] == errors[1], keep
        assert (errors[0] is None) == (keep == 200)
    # A batch whose documents all repeat ids (nothing left to prepare), batches of two lines.
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 2)
    lines = ['{"id": "a", "text": "one two three four"}', '{"id": "b", "text": "five six seven"}', '{"id": "a", "text": "x"}',
             '{"id": "b", "text": "y"}', '{"id": "c", "text": "one two three four"}']
    found = cluster(read_documents(["-"], stdin=io.BytesIO("\n".join(lines).encode()), options=ReadOptions(skip_bad=True),
                                   stats=(counted := ReadStats())), workers=workers)
    assert found.ids == ["a", "b", "c"] and found.assignments["c"] == "a" and counted.skipped == 2


def test_cluster_is_the_same_with_workers_spilling_and_batched_scoring(monkeypatch) -> None:
    docs = _docs(900)
    reference = cluster(docs, workers=1)
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 64)
    monkeypatch.setattr(parallel, "SPILL_BYTES", 1000)
    monkeypatch.setattr(pipeline, "_SCORE_TOKENS", 5000)
    for workers in (1, 2):
        monkeypatch.setattr(kernels, "loaded", lambda: False)  # (once numba is in use even few pairs take the kernels)
        result = cluster(docs, workers=workers)
        assert result.stats["spilled"] == 1
        assert result.assignments == reference.assignments
        assert result.canonical == reference.canonical
        assert result.pairs == reference.pairs


def test_cluster_is_the_same_when_a_spilled_corpus_is_scored_by_blocks(monkeypatch) -> None:
    docs = _docs(900)
    reference = cluster(docs, workers=1)
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 64)
    monkeypatch.setattr(parallel, "SPILL_BYTES", 1000)
    monkeypatch.setattr(kernels, "MIN_PAIRS", 0)  # the compiled scorer, even for a few pairs
    monkeypatch.setattr(kernels, "_SCAN_ENTRIES", 500)  # the digest guard's scan in many small reads
    for block_bytes in (2_000, 50_000):
        monkeypatch.setattr(pipeline, "SCORE_BLOCK_BYTES", block_bytes)
        result = cluster(docs, workers=1)
        assert result.stats["spilled"] == 1
        assert result.assignments == reference.assignments
        assert result.digests == reference.digests
        assert result.pairs == reference.pairs


def _quoting_docs(count: int) -> list[Document]:
    """Stories with copies, and articles that quote a passage of another story (candidates, not copies)."""
    rng = np.random.default_rng(5)
    vocab = [f"w{i}" for i in range(3000)]
    stories = [list(rng.choice(vocab, 120)) for _ in range(count // 4)]
    docs = []
    for i in range(count):
        s = int(rng.integers(len(stories)))
        words = stories[s][: int(rng.integers(60, 120))]
        if i % 3 == 0:
            words = list(rng.choice(vocab, 90)) + stories[(s + 1) % len(stories)][:25]
        docs.append(Document(id=f"d{i}", text=" ".join(words + list(rng.choice(vocab, 8)))))
    return docs


def test_cluster_is_the_same_when_score_bounds_pass_over_pairs(monkeypatch) -> None:
    """The compiled scorer passes over the candidate pairs whose score bounds fail the wording rule (most of
    them): the clusters, confirmed pairs and digests are those of scoring every pair, in memory and by blocks."""
    docs = _quoting_docs(900)
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 64)  # several chunks: the compiled path, with sketches
    monkeypatch.setattr(kernels, "MIN_PAIRS", 0)  # the compiled scorer, even for a few pairs
    with monkeypatch.context() as patch:
        patch.setattr(pipeline, "_bounds", lambda corpus, options: None)
        reference = cluster(docs, workers=1)
    assert reference.stats["bounded_pairs"] == 0
    result = cluster(docs, workers=1)
    assert 0 < result.stats["bounded_pairs"] < result.stats["candidate_pairs"]
    assert (result.assignments, result.pairs, result.digests) == (reference.assignments, reference.pairs, reference.digests)
    monkeypatch.setattr(parallel, "SPILL_BYTES", 1000)
    monkeypatch.setattr(pipeline, "SCORE_BLOCK_BYTES", 5_000)
    spilled = cluster(docs, workers=2)
    assert spilled.stats["spilled"] == 1 and spilled.stats["bounded_pairs"] == result.stats["bounded_pairs"]
    assert (spilled.assignments, spilled.pairs, spilled.digests) == (reference.assignments, reference.pairs, reference.digests)


def test_bounds_that_pass_over_too_few_pairs_are_dropped(monkeypatch) -> None:
    """After a trial of the first pairs, bounds that passed over too few of them are not used for the rest
    (they cost more than they save); the clusters stay the same, in memory and by blocks."""
    from dedup import confirm

    docs = _quoting_docs(900)
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 64)
    monkeypatch.setattr(kernels, "MIN_PAIRS", 0)
    kept = cluster(docs, workers=1)
    monkeypatch.setattr(confirm, "BOUNDS_TRIAL", (40, 0.0))
    monkeypatch.setattr(confirm, "BOUNDS_WORTH", 0.0)  # always worth it: kept after the trial
    assert cluster(docs, workers=1).stats["bounded_pairs"] == kept.stats["bounded_pairs"] > 40
    monkeypatch.setattr(confirm, "BOUNDS_WORTH", 1.01)  # never worth it: dropped after the trial
    dropped = cluster(docs, workers=1)
    assert 0 < dropped.stats["bounded_pairs"] <= 40
    assert (dropped.assignments, dropped.pairs, dropped.digests) == (kept.assignments, kept.pairs, kept.digests)
    monkeypatch.setattr(parallel, "SPILL_BYTES", 1000)
    monkeypatch.setattr(pipeline, "SCORE_BLOCK_BYTES", 5_000)  # by blocks: judged after the first pair of blocks
    by_blocks = cluster(docs, workers=1)
    assert by_blocks.stats["spilled"] == 1 and 0 < by_blocks.stats["bounded_pairs"] < kept.stats["bounded_pairs"]
    assert (by_blocks.assignments, by_blocks.pairs, by_blocks.digests) == (kept.assignments, kept.pairs, kept.digests)


@pytest.mark.parametrize("spill_bytes, reserve_bytes", [(2000, 1 << 30), (1 << 40, 1 << 30), (1 << 40, 30_000), (1 << 40, 0)])
def test_streamed_corpus_equals_one_batch(monkeypatch: pytest.MonkeyPatch, spill_bytes: int, reserve_bytes: int) -> None:
    """A corpus prepared in chunks by workers equals one batch prepared in this process, whether its columns
    are spilled to disk, held in their reserved arrays, outgrow them (then kept as parts), or have none."""
    monkeypatch.setattr(parallel, "RESERVE_BYTES", reserve_bytes)
    docs = _docs(300)
    corpus = prepare_corpus(docs, shingle_size=3, num_perm=64, seed=1, strip_boilerplate=True, workers=2,
                            chunk_docs=50, spill_bytes=spill_bytes)
    assert corpus.spilled == (spill_bytes == 2000)
    batch = pipeline.prepare(docs, pipeline.Options(num_perm=64), workers=1)
    try:
        assert list(corpus.tokens.vocab) == batch.tokens.vocab
        assert np.array_equal(np.asarray(corpus.tokens.ids), batch.tokens.ids)
        assert np.array_equal(corpus.tokens.hashes, batch.tokens.hashes)
        assert np.array_equal(np.asarray(corpus.shingles.hashes), batch.shingles.hashes)
        assert np.array_equal(corpus.signatures, batch.signatures)
        assert np.array_equal(corpus.df, document_frequency(batch.tokens))
        assert np.array_equal(corpus.compilations, batch.compilations)
        counts = count_matrix(batch.tokens)
        assert np.array_equal(np.asarray(corpus.counts.indices), counts.indices)
        assert np.array_equal(np.asarray(corpus.counts.counts), counts.data)
        assert np.array_equal(corpus.counts.offsets, counts.indptr)
        # the corpus scorers (count rows gathered in batches; one compiled pass over spilled rows
        # mapped from disk) give the scores of the plain scikit-learn path, bit for bit
        pairs = candidate_pairs(batch.signatures, threshold=0.1)
        assert len(pairs) > 50
        expected = score_pairs(pairs, signatures=batch.signatures, tfidf=tfidf_matrix(batch.tokens),
                               shingles=batch.shingles, tokens=batch.tokens, engine="numpy")
        for engine in ("numpy", "numba"):
            pipeline_scores = pipeline._score_corpus(pairs, corpus, engine=engine)
            for name in expected.__dataclass_fields__:
                assert np.array_equal(getattr(pipeline_scores, name), getattr(expected, name)), (engine, name)
    finally:
        corpus.close()


def test_a_column_fills_its_reserved_array_then_parts_then_a_file(tmp_path) -> None:
    """A column's values come back in order however they were held: in the array reserved at the first append
    (returned without a copy), in parts once they outgrow it, in a file once spilled; an array that cannot be
    reserved leaves parts."""
    chunks = [np.arange(k * 10, k * 10 + 7, dtype=np.int64) for k in range(6)]
    expected = np.concatenate(chunks).astype(np.int32)
    for reserve, spill_after in ((4 * 100, None), (4 * 20, None), (4 * 100, 3), (1 << 62, None), (0, None)):
        column = parallel._Column("c.int32", np.int32, reserve)
        for k, chunk in enumerate(chunks):
            if spill_after == k:
                column.spill(str(tmp_path))
            room = column.room(len(chunk)) if k % 2 else None
            if room is not None:
                room[:] = chunk
            else:
                column.append(chunk)
        assert column.length == len(expected)
        got = column.finish()
        assert np.array_equal(np.asarray(got), expected), (reserve, spill_after)
        if reserve == 4 * 100 and spill_after is None:
            assert got.base is not None and got.base.size == 100  # (the reserved array itself: no copy)
        if isinstance(got, parallel.DiskArray):
            got.close()
    column = parallel._Column("c.int32", np.int32, 4 * 100)
    column.room(10)[:] = np.arange(10)
    column.give_back(4)  # (the room a kernel did not take)
    column.append(np.array([99]))
    assert column.finish().tolist() == [0, 1, 2, 3, 4, 5, 99]
    with pytest.raises(ValueError):
        parallel._Column("c.int32", np.int32, 0).give_back(1)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(0, 5000) | st.integers(0, 2**40), max_size=300))
def test_column_ranks_equal_a_sort(columns: list[int]) -> None:
    """Count rows rank their columns (a chunk's words' corpus ids) by a bitmap when dense, by a sort when not:
    either gives what numpy's argsort gives, and columns that repeat are refused."""
    if not kernels.available():
        pytest.skip("numba not installed")
    values = np.array(columns, dtype=np.int64)
    if len(set(columns)) < len(columns):
        with pytest.raises(ValueError, match="distinct columns"):
            kernels._ranks(values)
        return
    rank, sorted_columns = kernels._ranks(values)
    assert np.array_equal(sorted_columns, np.sort(values))
    assert np.array_equal(rank, np.argsort(np.argsort(values)))


@settings(max_examples=80, deadline=None)
@given(st.lists(st.lists(st.integers(0, 40), max_size=30), min_size=1, max_size=12), st.randoms(use_true_random=False))
def test_count_rows_written_in_place_equal_the_threaded_rows(docs: list[list[int]], rnd) -> None:
    """Count rows written in one pass into given arrays (as a chunk is merged into its columns) equal the rows
    made across threads and packed afterwards, counts as uint32 or float64; arrays too small are refused."""
    if not kernels.available():
        pytest.skip("numba not installed")
    ids = np.array([t for doc in docs for t in doc], dtype=np.int32)
    offsets = np.cumsum([0] + [len(doc) for doc in docs]).astype(np.int64)
    columns = np.array(rnd.sample(range(1000), 41), dtype=np.int64)
    before = kernels._threads()
    kernels.set_threads(2)
    try:
        expected = kernels.count_rows(ids, offsets, columns=columns)
    finally:
        kernels.set_threads(before)
    for dtype in (np.uint32, np.float64):
        out = (np.full(len(ids) + 3, -1, dtype=np.int32), np.zeros(len(ids) + 3, dtype=dtype))
        indptr, indices, data = kernels.count_rows(ids, offsets, columns=columns, counts_dtype=dtype, out=out)
        assert np.array_equal(indptr, expected[0]) and np.array_equal(indices, expected[1])
        assert np.array_equal(data, expected[2]) and data.dtype == dtype
        assert np.shares_memory(indices, out[0]) or len(indices) == 0
    if len(ids):
        with pytest.raises(ValueError):
            kernels.count_rows(ids, offsets, columns=columns, counts_dtype=np.uint32,
                               out=(np.empty(len(ids) - 1, np.int32), np.empty(len(ids), np.uint32)))


def test_prepare_with_workers_equals_in_process() -> None:
    docs = _docs(2500)
    one, two = pipeline.prepare(docs, pipeline.Options(), workers=1), pipeline.prepare(docs, pipeline.Options(), workers=2)
    assert one.tokens.vocab == two.tokens.vocab
    assert np.array_equal(one.tokens.ids, two.tokens.ids)
    assert np.array_equal(one.shingles.hashes, two.shingles.hashes)
    assert np.array_equal(one.signatures, two.signatures)


_PREPARE_CHUNK = parallel.prepare_chunk


def _chunk_with_threads(*args: object) -> dict[str, object]:
    """A worker's chunk result with the number of threads its kernels use (module level: pickled by name)."""
    return {**_PREPARE_CHUNK(*args), "threads": kernels._threads()}  # type: ignore[arg-type]


def test_worker_processes_run_the_kernels_on_one_thread_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """The pool has a process per core: each process's kernels stay on one thread (this process's setting is kept)."""
    seen: list[int] = []
    add = parallel._Merger.add

    def add_recording(self: parallel._Merger, part: dict[str, object]) -> None:
        seen.append(part["threads"])  # type: ignore[arg-type]
        add(self, part)

    monkeypatch.setattr(parallel, "prepare_chunk", _chunk_with_threads)
    monkeypatch.setattr(parallel._Merger, "add", add_recording)
    kernels.set_threads(2)
    try:
        prepare_corpus(iter(_docs(2500)), shingle_size=3, num_perm=16, seed=1, strip_boilerplate=True, workers=2,
                       chunk_docs=500)
        assert seen == [1] * 5 and kernels._threads() == 2
    finally:
        kernels.set_threads(None)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 40), min_size=1, max_size=30), st.data())
def test_gather_kernel_equals_fancy_indexing(lengths: list[int], data: st.DataObject) -> None:
    offsets = np.concatenate(([0], np.cumsum(lengths))).astype(np.int64)
    values = np.arange(offsets[-1], dtype=np.uint32) * 7
    rows = np.array(data.draw(st.lists(st.integers(0, len(lengths) - 1), max_size=20)), dtype=np.int64)
    starts, stops = offsets[rows], offsets[rows + 1]
    out_offsets = np.concatenate(([0], np.cumsum(stops - starts))).astype(np.int64)
    expected = np.concatenate([values[a:b] for a, b in zip(starts, stops)]) if len(rows) else values[:0]
    assert np.array_equal(kernels.gather(values, starts, out_offsets), expected)


def _anon_bytes() -> int:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))


@pytest.mark.skipif(not os.path.exists("/proc/self/status") or parallel._malloc_trim() is None,
                    reason="needs glibc's malloc_trim and /proc")
def test_release_memory_gives_freed_heap_pages_back() -> None:
    blocks = [bytearray(4000) for _ in range(60_000)]  # ~240 MB on the C heap
    kept = blocks[::60]  # a few stay: the freed space lies between them and is kept by the allocator
    del blocks
    before = _anon_bytes()
    assert parallel.release_memory()
    assert before - _anon_bytes() > 100 << 20
    assert len(kept) == 1000


def test_workers_keep_freed_memory_instead_of_faulting_pages_in_again() -> None:
    """After keep_freed_memory (as each worker process starts), a large buffer freed and made again reuses the
    pages the process has: a few page faults instead of one per 4 KB page (64 MB: ~16,000)."""
    import subprocess
    import sys

    code = (
        "import resource, sys\n"
        "from dedup import parallel\n"
        "if sys.argv[1] == 'keep' and not parallel.keep_freed_memory():\n"
        "    print('unsupported'); sys.exit()\n"
        "faults = []\n"
        "for _ in range(4):\n"
        "    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt\n"
        "    block = bytearray(64 << 20)\n"
        "    block[::4096] = b'x' * len(block[::4096])\n"
        "    del block\n"
        "    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)\n"
        "print(max(faults[1:]))\n"
    )
    runs = {how: subprocess.run([sys.executable, "-c", code, how], capture_output=True, text=True, check=True).stdout.strip()
            for how in ("keep", "default")}
    if runs["keep"] == "unsupported":
        pytest.skip("no glibc mallopt here")
    assert int(runs["keep"]) < 1000 < 10_000 < int(runs["default"])


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 2**63 - 1), max_size=60), st.sampled_from([np.int64, np.uint64, np.uint32]))
def test_sorting_unique_equals_numpy_unique(values: list[int], dtype: type) -> None:
    array = np.array(values, dtype=np.uint64).astype(dtype)  # (small dtypes wrap: many repeats)
    expected = np.unique(array)
    got = kernels.unique(array)
    assert got.dtype == expected.dtype
    assert np.array_equal(got, expected)


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 40).flatmap(lambda n: st.tuples(
    st.just(n), st.lists(st.tuples(st.integers(0, max(n - 1, 0)), st.integers(0, max(n - 1, 0))), max_size=60 if n else 0))))
def test_union_find_components_equal_scipy(graph: tuple[int, list[tuple[int, int]]]) -> None:
    """The same labels as scipy's connected_components, self-loops and repeated edges included."""
    from scipy.sparse.csgraph import connected_components

    n, edges = graph
    left = np.array([a for a, _ in edges], dtype=np.int64)
    right = np.array([b for _, b in edges], dtype=np.int64)
    ref = connected_components(sparse.coo_matrix((np.ones(len(edges)), (left, right)), shape=(n, n)), directed=False)[1]
    assert np.array_equal(kernels.components(n, left, right), ref)


def test_starting_up_loads_no_scikit_learn() -> None:
    """scikit-learn (with scipy.stats: ~0.4 s of every run's start) and scipy.sparse (~0.15 s) are loaded only by the
    paths that use them: not by importing the CLI, nor by clustering a corpus of several chunks with workers
    (warmed-up kernels score even a few pairs and link the stories)."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "import dedup.cli, dedup.index\n"
        "print('sklearn' in sys.modules, 'scipy.sparse' in sys.modules)\n"
        "from dedup import Document, cluster, parallel\n"
        "parallel.CHUNK_DOCS = 20\n"
        "docs = [Document(id=str(i), text=f'story {i % 7} ' + 'word ' * (i % 5) + 'the same long tail of text here') "
        "for i in range(60)]\n"
        "result = cluster(docs, workers=2)\n"
        "print(len(result.pairs) > 0, 'sklearn' in sys.modules, 'scipy.sparse' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False", "True", "False", "False"]


def test_small_work_takes_the_kernels_only_once_they_are_in_use(monkeypatch: pytest.MonkeyPatch) -> None:
    """Work too small to pay for loading the kernels (the digest guard's residual signatures) takes them once they
    are loaded, and only then; an engine asked for by name is kept."""
    monkeypatch.setattr(kernels, "loaded", lambda: False)
    assert [kernels.when_loaded(e) for e in ("auto", "numpy", "numba")] == ["auto", "numpy", "numba"]
    monkeypatch.setattr(kernels, "loaded", lambda: True)
    assert [kernels.when_loaded(e) for e in ("auto", "numpy", "numba")] == ["numba", "numpy", "numba"]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from([b" ", b"a", b"b", b"ab", b"ba", b"\xe9", b"abc"]), max_size=60).map(b"".join),
       st.lists(st.lists(st.sampled_from([b"a", b"b", b" ", b"\xe9"]), min_size=2, max_size=9).map(lambda p: b"".join(p)[:8]),
                min_size=1, max_size=6))
@example(b"  ab", [b" a"])  # (a prefix that starts with a space: the word after a space does not)
def test_prefixed_words_kernel_equals_a_plain_scan(text: bytes, prefixes: list[bytes]) -> None:
    """kernels.prefixed_words: every space followed by a non-space and one of the prefixes, in order."""
    prefixes = [p for p in prefixes if len(p) >= 2]
    assume(prefixes)
    expected = [p for p in range(len(text)) if text[p:p + 1] == b" " and text[p + 1:p + 2] not in (b" ", b"")
                and any(text[p + 1:].startswith(x) for x in prefixes)]
    assert kernels.prefixed_words(text, kernels.prefix_table(prefixes)).tolist() == expected


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.sampled_from("ab12٣፩²é5 x\u00a0") | st.characters(exclude_characters="\n"), max_size=6), max_size=30))
def test_encoding_the_vocabulary_equals_encoding_each_word(words: list[str]) -> None:
    """What workers send of their vocabulary: numpy over the joined bytes gives what a Python step per word gives."""
    assume(all(not any(0xD800 <= ord(c) < 0xE000 for c in w) for w in words))
    blob, lengths, numbers = parallel.encode_words(words)
    encoded = [w.encode("utf-8") for w in words]
    assert blob == b"".join(encoded)
    assert lengths.tolist() == [len(e) for e in encoded]
    assert numbers.tolist() == [w.isdigit() for w in words]
    assert lengths.dtype == np.int64 and numbers.dtype == np.bool_
