"""The streaming Index (SQLite backend): API, story ids, agreement with `dedup cluster`, windows, persistence."""

from __future__ import annotations

import sqlite3
import threading
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from dedup import DedupError, Document, Options, cluster
from dedup.index import Index, IndexedDoc, Match
from dedup.pipeline import prepare

from index_helpers import A, B, C, agreement, sample_docs, story_words, syndication_sample

T0 = datetime(2026, 11, 20, 6, 0, tzinfo=timezone.utc)


def test_samples_story_ids_equal_cluster() -> None:
    docs = sample_docs()
    with Index() as index:
        results = [index.add(d) for d in docs]
        assert results[0] is None and results[2] is None
        assert isinstance(results[1], Match) and results[1].id == A and results[1].cluster_id == A
        assert {d.id: index.cluster_of(d.id) for d in docs} == cluster(docs).assignments == {A: A, B: A, C: C}
        assert len(index) == 3 and A in index and "nope" not in index
        assert index.get(B) == IndexedDoc(id=B, cluster_id=A, date=None, digest=False)
        assert index.get("nope") is None
        with pytest.raises(DedupError, match="not indexed"):
            index.cluster_of("nope")


def test_check_is_read_only_and_add_returns_its_best_match() -> None:
    a, b, c = sample_docs()
    with Index() as index:
        index.add(a)
        index.add(c)
        before = index.check(b)
        assert [m.id for m in before] == [A] and len(index) == 2
        assert index.check(b) == before  # nothing changed
        assert index.add(b) == before[0]
        m = before[0]
        assert 0.3 < m.jaccard <= 1 and 0.55 <= m.cosine <= 1 and 0.5 <= m.containment <= 1 and m.numbers == 1.0


def test_cosine_equals_batch_tfidf_once_all_documents_are_indexed() -> None:
    docs = sample_docs()
    (pair,) = cluster(docs).pairs
    with Index() as index:
        index.add_many(docs)
        (match,) = index.check(docs[0])  # every document counted in the df, as in the batch fit
        assert match.id == B
        assert (match.cosine, match.containment, match.jaccard, match.numbers) == (
            pair.cosine, pair.containment, pair.jaccard, pair.numbers)


def test_duplicate_id_is_a_clear_error_and_replace_works() -> None:
    a, b, c = sample_docs()
    with Index() as index:
        index.add_many([a, b])
        with pytest.raises(DedupError, match=r"already indexed; pass replace=True"):
            index.add(a)
        with pytest.raises(DedupError, match="duplicate id"):
            index.add_many([c, c])
        assert len(index) == 2 and index.integrity() == []
        changed = Document(id=B, text=c.text)  # B now carries the other story
        assert index.add(changed, replace=True) is None
        assert index.cluster_of(B) == B and len(index) == 2 and index.integrity() == []


def test_a_refused_single_add_changes_nothing(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A single add does not look its id up first: the id column refuses a stored id at insert. Nothing was
    written then, so the rollback keeps the in-memory mirror (no reload) and the index answers as before."""
    a, b, c = sample_docs()
    with Index.open(str(tmp_path / "i.db")) as index:
        index.add_many([a, b])
        before = index.check(a)
        store = index._store
        reloads: list[int] = []
        monkeypatch.setattr(store, "_load_mirror", lambda: reloads.append(1))
        looked_up: list[str] = []
        monkeypatch.setattr(store, "contains", lambda doc_id: looked_up.append(doc_id) or False)
        with pytest.raises(DedupError, match=r"'%s' is already indexed; pass replace=True" % A):
            index.add(a)
        assert reloads == [] and looked_up == []
        monkeypatch.undo()
        assert index.check(a) == before and len(index) == 2
        assert index.add(c) is None and len(index) == 3 and index.integrity() == []


def test_add_many_equals_one_by_one() -> None:
    docs = syndication_sample(400) if _shared() else sample_docs()
    with Index() as one, Index() as many:
        singles = [one.add(d) for d in docs]
        batched = many.add_many(docs)
        assert singles == batched
        assert {d.id: one.cluster_of(d.id) for d in docs} == {d.id: many.cluster_of(d.id) for d in docs}


def test_remove_restores_document_frequencies_and_keeps_story_id() -> None:
    a, b, c = sample_docs()
    with Index() as index:
        index.add_many([a, b, c])
        index.remove(A)  # the story's first article: the story keeps its id
        assert A not in index and len(index) == 2 and index.cluster_of(B) == A
        assert index.integrity() == []
        assert [m.id for m in index.check(a)] == [B]
        with pytest.raises(DedupError, match="not indexed"):
            index.remove(A)
        assert index.add(a).cluster_id == A


def test_a_compilation_quoting_one_story_is_a_digest_as_in_cluster() -> None:
    """An article that several datelines make a compilation and that its one matching story does not explain
    is a digest (the index counts its datelines only when its decision needs them); with one dateline the
    same text joins the story. Both as `dedup cluster` decides."""
    one, other, _short = story_words()
    quoted, rest = " ".join(one[: len(one) * 7 // 10]), " ".join(w + "x" for w in other[:120])
    for second, digest in (("LONDON (Reuters) - ", True), ("", False)):
        docs = [Document(id="a", text=" ".join(one)), Document(id="q", text=f"PARIS (AFP) - {quoted}\n\n{second}{rest}")]
        with Index() as index:
            joined = [index.add(d) for d in docs][1]
            assert index.get("q").digest is digest and (joined is None) is digest
            assert {d.id: index.cluster_of(d.id) for d in docs} == cluster(docs).assignments
        assert ("q" in cluster(docs).digests) is digest


def test_digest_quoting_two_stories_merges_nothing() -> None:
    one, other, _short = story_words()
    docs = [
        Document(id="a", text=" ".join(one)), Document(id="a2", text=" ".join(one[:-20])),
        Document(id="b", text=" ".join(other)), Document(id="b2", text=" ".join(other[5:])),
        Document(id="digest", text=" ".join(one[: len(one) * 6 // 10] + other[: len(other) * 6 // 10])),
    ]
    with Index() as index:
        results = index.add_many(docs)
        assert results[4] is None and index.check(docs[4]) == [] and index.get("digest").digest
        got = {d.id: index.cluster_of(d.id) for d in docs}
    assert got == {"a": "a", "a2": "a", "b": "b", "b2": "b", "digest": "digest"}
    assert got == cluster(docs).assignments


def test_article_linking_two_stories_merges_them_under_the_earlier() -> None:
    one, _other, short = story_words()
    docs = [Document(id="a", text=" ".join(one)), Document(id="s", text=" ".join(short)),
            Document(id="link", text=" ".join(one + short))]
    with Index() as index:
        assert index.add_many(docs[:2]) == [None, None]
        best = index.add(docs[2])
        assert best is not None and best.cluster_id == "a"
        got = {d.id: index.cluster_of(d.id) for d in docs}
    assert got == {"a": "a", "s": "a", "link": "a"} == cluster(docs).assignments


def test_window_limits_matches_and_expire_bounds_the_index() -> None:
    a, b, c = sample_docs()
    old = Document(id=A, text=a.text, date=T0)
    later = Document(id=B, text=b.text, date=T0 + timedelta(days=3))
    with Index(window=timedelta(days=1)) as index:
        index.add(old)
        assert index.check(later) == []  # outside the default window
        assert [m.id for m in index.check(later, window=timedelta(days=4))] == [A]
        assert [m.id for m in index.check(later, window=None)] == [A]
        assert index.add(Document(id=C, text=c.text, date=T0 + timedelta(days=3))) is None
        assert index.add(later) is None  # new story: its copy is too old
        assert index.expire(before=T0 + timedelta(days=1)) == 1
        assert A not in index and len(index) == 2 and index.integrity() == []
        assert index.window == timedelta(days=1)


def test_undated_articles_are_always_in_the_window() -> None:
    a, b, _c = sample_docs()
    with Index(window=timedelta(hours=1)) as index:
        index.add(a)
        assert [m.id for m in index.check(Document(id=B, text=b.text, date=T0))] == [A]


def test_persistence_reopen_and_format(tmp_path: Path) -> None:
    path = str(tmp_path / "feed.db")
    docs = sample_docs()
    with Index.open(path, options=Options(cosine=0.6), window=timedelta(hours=36)) as index:
        index.add_many(docs[:2])
    with Index.open(path) as index:
        assert len(index) == 2 and index.cluster_of(B) == A
        assert index.options.cosine == 0.6 and index.window == timedelta(hours=36)
        assert index.add(docs[2]) is None
        assert index.integrity() == []
    with pytest.raises(DedupError, match="different options"):
        Index.open(path, options=Options(cosine=0.7))
    db = sqlite3.connect(path)
    meta = dict(db.execute("SELECT key, value FROM meta"))
    assert meta["format_version"] == "2" and '"cosine": 0.6' in meta["options"]
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    sig_blob, shingle_blob = db.execute("SELECT signature, shingles FROM docs WHERE id = ?", (A,)).fetchone()
    prepared = prepare(docs[:1], Options(cosine=0.6))
    assert sig_blob == prepared.signatures[0].astype("<u4").tobytes()  # raw little-endian, no pickle
    assert shingle_blob == prepared.shingles.doc(0).astype("<u4").tobytes()
    db.execute("UPDATE meta SET value = '99' WHERE key = 'format_version'")
    db.commit()
    db.close()
    with pytest.raises(DedupError, match="format 99.*rebuild"):
        Index.open(path)


def test_one_writer_per_file_and_read_only(tmp_path: Path) -> None:
    path = str(tmp_path / "feed.db")
    a, b, _ = sample_docs()
    with Index.open(path) as writer:
        writer.add(a)
        with pytest.raises(DedupError, match="open for writing in another process"):
            Index.open(path)
        with Index.open(path, read_only=True) as reader:
            assert [m.id for m in reader.check(b)] == [A]
            with pytest.raises(DedupError, match="read-only"):
                reader.add(b)
    with pytest.raises(DedupError, match="no such index"):
        Index.open(str(tmp_path / "missing.db"), read_only=True)
    for unusable in (tmp_path / "no such directory" / "feed.db", tmp_path):  # (a missing directory; a directory)
        with pytest.raises(DedupError, match="cannot create or open the index"):
            Index.open(str(unusable))
    not_index = tmp_path / "other.db"
    sqlite3.connect(not_index).execute("CREATE TABLE t (x)").connection.commit()
    with pytest.raises(DedupError, match="not a dedup index"):
        Index.open(str(not_index))


def test_seed_idf_is_persisted_and_used(tmp_path: Path) -> None:
    path = str(tmp_path / "feed.db")
    a, b, c = sample_docs()
    with Index.open(path) as index:
        index.add(a)
        plain = index.check(b)[0].cosine
        assert index.seed_idf([c, Document(id="x", text=c.text)]) == 2
    with Index.open(path) as index:
        assert index.stats()["seed_documents"] == 2
        seeded = index.check(b)[0].cosine
    assert seeded != plain


def test_threads_check_while_adding() -> None:
    docs = syndication_sample(300) if _shared() else sample_docs()
    errors: list[BaseException] = []
    with Index() as index:
        index.add_many(docs[: len(docs) // 2])
        stop = threading.Event()

        def reader() -> None:
            try:
                while not stop.is_set():
                    for d in docs[:20]:
                        index.check(d)
                        _ = len(index), d.id in index
            except BaseException as error:  # noqa: BLE001 - reported below
                errors.append(error)

        threads = [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for d in docs[len(docs) // 2 :]:
            index.add(d)
        stop.set()
        for t in threads:
            t.join()
        assert errors == [] and len(index) == len(docs) and index.integrity() == []


@pytest.mark.shared
def test_streaming_agrees_with_cluster_on_syndication(shared_data: Path) -> None:
    """Same articles in the same (date) order: story ids as `dedup cluster` gives them.

    The remaining differences: the batch sees later articles (a later copy can
    link two earlier ones, or show that an earlier article was a digest), and
    streaming TF-IDF uses the document frequencies known so far.
    """
    docs = syndication_sample(2500)
    batch = cluster(docs).assignments
    with Index() as index:
        for lo in range(0, len(docs), 300):
            index.add_many(docs[lo : lo + 300])
        stream = {d.id: index.cluster_of(d.id) for d in docs}
        assert index.integrity() == []
    ari, same = agreement(batch, stream)
    assert ari >= 0.98, ari
    assert same >= 0.98, same


@pytest.mark.shared
def test_adding_together_gives_cluster_story_ids_on_syndication(shared_data: Path) -> None:
    """A corpus loaded with add_many(together=True) gets exactly `dedup cluster`'s story ids and digests."""
    docs = syndication_sample(2500)
    batch = cluster(docs)
    with Index() as index:
        results = index.add_many(docs, together=True)
        assert {d.id: index.cluster_of(d.id) for d in docs} == batch.assignments
        assert {d.id for d in docs if index.get(d.id).digest} == batch.digests
        assert index.integrity() == []
    _check_together_results(docs, results, batch.assignments)
    assert sum(r is not None for r in results) == len(docs) - len(batch.clusters) > 100


def _check_together_results(docs: list[Document], results: list[Match | None], stories: dict[str, str]) -> None:
    """None exactly for the first article (in order) of each story; otherwise a member of its story."""
    seen: set[str] = set()
    for doc, result in zip(docs, results):
        story = stories[doc.id]
        assert (result is None) == (story not in seen), doc.id
        if result is not None:
            assert result.cluster_id == story and stories[result.id] == story and result.id != doc.id
            assert 0.0 < result.cosine <= 1.0 and 0.0 <= result.containment <= 1.0
        seen.add(story)


def test_adding_together_names_stories_as_cluster_does() -> None:
    """Out of date order, streaming names a story after its first article; together, after its earliest (as
    `dedup cluster` does), and the later-dated first article's result is its earlier-dated copy."""
    a, b, c = sample_docs()
    docs = [Document(id=a.id, text=a.text, date=T0 + timedelta(hours=5)), Document(id=b.id, text=b.text, date=T0),
            Document(id=c.id, text=c.text, date=T0 + timedelta(hours=1))]
    expected = cluster(docs).assignments
    assert expected == {A: B, B: B, C: C}
    with Index() as streamed:
        streamed.add_many(docs)
        assert streamed.cluster_of(A) == A  # the first article names the story
    with Index() as index:
        results = index.add_many(docs, together=True)
        assert {d.id: index.cluster_of(d.id) for d in docs} == expected
    assert results[0] is None and results[2] is None  # A and C start their stories (in input order)
    assert results[1] is not None and results[1].id == A and results[1].cluster_id == B


def test_adding_together_joins_stories_already_indexed() -> None:
    a, b, c = sample_docs()
    with Index() as index:
        index.add(a)
        results = index.add_many([c, b], together=True)
        assert results[0] is None
        assert results[1] is not None and (results[1].id, results[1].cluster_id) == (A, A)
        assert {d: index.cluster_of(d) for d in (A, B, C)} == {A: A, B: A, C: C}
        with pytest.raises(DedupError, match="already indexed"):
            index.add_many([b], together=True)


def _shared() -> bool:
    from conftest import SHARED_DATA

    return (SHARED_DATA / "syndication-dev.jsonl.gz").exists()


def test_compiled_and_numpy_paths_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    """The numba kernels (LSH runs, frequency table, scoring) and their numpy/dict fallbacks give the same
    answers, through sorted-run merges, removals and compaction (tiny buffers make many runs)."""
    from dedup import bandmirror

    docs = syndication_sample(300) if _shared() else sample_docs()
    monkeypatch.setattr(bandmirror, "_BUFFER_DOCS", 4)

    def run() -> tuple[list, dict, list]:
        with Index() as index:
            results = index.add_many(docs[: len(docs) // 2])
            for d in docs[len(docs) // 2 :]:
                results.append(index.add(d))
            for d in docs[::7]:
                index.remove(d.id)
            index._store._mirror.compact()
            assert index.integrity() == []
            checks = [index.check(d) for d in docs[::5]]
            return results, {d.id: index.cluster_of(d.id) for d in docs if d.id in index}, checks

    compiled = run()
    monkeypatch.setattr(bandmirror, "_NUMBA", False)
    assert run() == compiled


def test_document_frequencies_survive_reopening_between_flushes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The df table is written every few articles; the ones after the last write are counted when opening."""
    from dedup import store_sqlite

    monkeypatch.setattr(store_sqlite, "_DF_FLUSH", 2)
    path = str(tmp_path / "feed.db")
    a, b, c = sample_docs()
    with Index.open(path) as index:
        index.add_many([a, c])  # written to the df table
        index.add(b)  # counted only in memory until the next write
        before = index.check(b)
        index._store._db.close()  # as if killed: no final write when closing
        index._store._checkpointer.stop()
        index._store._checkpointer = None
        index._store._db = sqlite3.connect(":memory:")
    with Index.open(path) as index:
        assert index._store._df_seq < index._store._last_seq
        assert index.integrity() == [] and index.check(b) == before
        index.remove(C)
        assert index.integrity() == [] and len(index) == 2


@pytest.mark.parametrize("compiled", [True, False])
def test_sketch_bounds_never_undercut_the_scores(compiled: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sketches' bounds of shared shingles and cosine are never below the exact scores (so leaving
    out candidates whose bounds cannot confirm them changes nothing)."""
    from dedup import bandmirror

    if not compiled:
        monkeypatch.setattr(bandmirror, "_NUMBA", False)
    one, other, short = story_words()
    texts = [" ".join(one), " ".join(other), " ".join(short), " ".join(one[:-30] + short), " ".join(other[10:]),
             " ".join(one[::2]), " ".join(short * 3), "12 34 56 78", " ".join(one + other)]
    docs = [Document(id=f"d{i}", text=t) for i, t in enumerate(texts)]
    with Index() as index:
        index.add_many(docs)
        store = index._store
        for query in index._queries(docs):
            rec = query.record
            everything = store.lookup(rec, np.asarray(query.bands), window=None)  # no pruning
            found = everything.candidates
            if not len(found):
                continue
            scores = index._score(rec, everything)
            seqs = np.asarray([store._seq(i) for i in found.ids])
            extra = 0 if everything.query_indexed else 1
            weights = bandmirror.tfidf_weights(rec.counts, everything.query_df, everything.documents + extra, extra)
            common, cosine = bandmirror.sketch_bounds(store._sketches, seqs, rec.shingles, rec.tokens, weights)
            assert (common >= scores.common).all()
            assert (cosine + 1e-9 >= scores.cosine).all()


def test_leaving_out_implausible_candidates_changes_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    from dedup import store_sqlite

    docs = syndication_sample(400) if _shared() else sample_docs()

    def run() -> tuple[list, list]:
        with Index() as index:
            added = index.add_many(docs)
            return added, [index.check(d) for d in docs[::3]]

    monkeypatch.setattr(store_sqlite, "_BOUND_FROM", 10**9)
    everything = run()
    monkeypatch.setattr(store_sqlite, "_BOUND_FROM", -1)
    assert run() == everything
