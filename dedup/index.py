"""A persistent near-duplicate index for live feeds: check and add one article at a time, with story ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from dedup import kernels
from dedup.confirm import PairScores, worded_alike
from dedup.document import Document, date_sort_key
from dedup.errors import OptionError
from dedup.normalize import count_datelines
from dedup.fingerprint import EMPTY, estimate_jaccard
from dedup.pipeline import ClusterResult, Options, Pair, Prepared, cluster, confirm, prepare
from dedup.store import Commit, Conflict, IndexStateError, Lookup, Record, RWLock, Store, band_keys, numbers_tuple

__all__ = ["Index", "IndexedDoc", "Match", "IndexStateError"]


@dataclass(frozen=True)
class Match:
    """An indexed article confirmed as a copy of the queried one, with the scores that confirmed it."""

    id: str  # the indexed article
    cluster_id: str  # its story id (the id of the story's first article)
    jaccard: float  # estimated from MinHash signatures
    cosine: float  # TF-IDF cosine (document frequencies of the index)
    containment: float  # shared shingles / shingles of the smaller article
    numbers: float  # share of the figures of one found in the other


@dataclass(frozen=True)
class IndexedDoc:
    """What the index keeps about an article besides its fingerprints."""

    id: str
    cluster_id: str
    date: datetime | None
    digest: bool  # it quoted several stories and joined none


class _Default:
    def __repr__(self) -> str:
        return "DEFAULT"


DEFAULT: Any = _Default()  # "use the index's default window"


@dataclass
class _Query:
    record: Record
    bands: np.ndarray
    text: str  # (the raw text: its datelines are counted only when a decision needs them)
    _compilation: bool | None = None

    @property
    def compilation(self) -> bool:
        """Whether the article is built like a compilation (several datelines, see count_datelines)."""
        if self._compilation is None:
            self._compilation = count_datelines(self.text) >= 2
        return self._compilation


@dataclass(frozen=True)
class _Decision:
    matches: list[Match]  # best first; what check() returns
    story: str  # the story the article joins (its own id for a new story)
    merge: tuple[str, ...]  # other stories merged into ``story``
    digest: bool


def _seconds(window: timedelta | None) -> float | None:
    if window is None:
        return None
    if not isinstance(window, timedelta) or window <= timedelta(0):
        raise OptionError(f"window must be a positive datetime.timedelta or None, got {window!r}")
    return window.total_seconds()


class Index:
    """A near-duplicate index of news articles, stored in SQLite (a file path) or Redis (``redis://``).

    ``check(doc)`` says which indexed articles are copies of ``doc`` (read-only);
    ``add(doc)`` indexes it and returns the best match of the story it joined.
    Matching is ``dedup cluster``'s: the same normalising, shingling,
    MinHash and LSH bands, and the same confirmation rule and options.
    A story's id is the id of its first indexed article and never changes,
    except when an article links two stories: they merge under the earlier.

    Use as a context manager or call :meth:`close`. Thread-safe: checks and
    reads run concurrently, adds one at a time.
    """

    def __init__(
        self,
        location: str = ":memory:",
        *,
        options: Options | None = None,
        window: timedelta | None = None,
        read_only: bool = False,
    ) -> None:
        """Open (or create) the index at ``location``: a file path, ``":memory:"``, or
        ``redis://host:port/db`` (optionally ``?prefix=NAME``). ``options`` only for a new
        index (an existing one keeps its own; different ones are an error). ``window``
        sets the default time window of checks and adds (persisted)."""
        if not isinstance(location, str) or not location:
            raise OptionError(f"index location must be a file path or a redis:// URL, got {location!r}")
        if options is not None and not isinstance(options, Options):
            raise OptionError(f"options must be dedup.Options, got {type(options).__name__}")
        seconds = _seconds(window)
        self._store: Store
        if location.startswith(("redis://", "rediss://", "unix://")):
            from dedup.store_redis import RedisStore

            self._store = RedisStore(location, options=options, window=seconds, read_only=read_only)
        else:
            from dedup.store_sqlite import SqliteStore

            self._store = SqliteStore(location, options=options, window=seconds, read_only=read_only)
        self._lock = RWLock()
        self._closed = False

    @classmethod
    def open(
        cls, location: str, *, options: Options | None = None, window: timedelta | None = None, read_only: bool = False
    ) -> Index:
        """Open or create the index at ``location`` (see :class:`Index`)."""
        return cls(location, options=options, window=window, read_only=read_only)

    # --- properties ----------------------------------------------------------------------------------

    @property
    def options(self) -> Options:
        """The matching options of this index (fixed when it was created)."""
        return self._store.options

    @property
    def window(self) -> timedelta | None:
        """The default time window of :meth:`check` and :meth:`add` (None: no window)."""
        w = self._store.window
        return None if w is None else timedelta(seconds=w)

    @window.setter
    def window(self, value: timedelta | None) -> None:
        with self._lock.write():
            self._store.set_window(_seconds(value))

    @property
    def location(self) -> str:
        """Where the index is stored."""
        return self._store.location

    # --- reading -------------------------------------------------------------------------------------

    def check(self, doc: Document, *, window: timedelta | None = DEFAULT, limit: int | None = None) -> list[Match]:
        """Which indexed articles are copies of ``doc``, best first (by cosine, then containment).

        Read-only. ``window`` limits matches to articles dated within it of
        ``doc.date`` (default: the index's window; articles without a date
        are always in the window). A digest — an article that quotes several
        stories and is mostly explained by none — gets no matches, as
        :meth:`add` joins it to no story. ``limit`` keeps the best few.
        """
        return self.check_many([doc], window=window, limit=limit)[0]

    def check_many(
        self, docs: Sequence[Document], *, window: timedelta | None = DEFAULT, limit: int | None = None
    ) -> list[list[Match]]:
        """:meth:`check` for a batch (normalised and fingerprinted together, which is faster)."""
        queries = self._queries(docs)
        out: list[list[Match]] = []
        with self._lock.read():
            self._open()
            seconds = self._window(window)
            for query in queries:
                matches = self._decide(query, seconds)[0].matches
                out.append(matches[:limit] if limit is not None else matches)
        return out

    def get(self, doc_id: str) -> IndexedDoc | None:
        """The stored facts of article ``doc_id`` (id, story, date), or None when it is not indexed."""
        with self._lock.read():
            self._open()
            rec = self._store.get(doc_id)
        if rec is None:
            return None
        date = None if rec.date is None else datetime.fromtimestamp(rec.date, tz=timezone.utc)
        return IndexedDoc(id=rec.id, cluster_id=rec.story, date=date, digest=rec.digest)

    def cluster_of(self, doc_id: str) -> str:
        """The story id of indexed article ``doc_id``; raises a DedupError when it is not indexed."""
        found = self.get(doc_id)
        if found is None:
            raise IndexStateError(f"{doc_id!r} is not indexed")
        return found.cluster_id

    def __contains__(self, doc_id: object) -> bool:
        with self._lock.read():
            self._open()
            return isinstance(doc_id, str) and self._store.contains(doc_id)

    def __len__(self) -> int:
        with self._lock.read():
            self._open()
            return len(self._store)

    def stats(self) -> dict[str, Any]:
        """Documents, stories, format version, window and backend facts (size in bytes, ...)."""
        from dedup.store import FORMAT_VERSION

        with self._lock.read():
            self._open()
            return {
                "location": self._store.location,
                "documents": len(self._store),
                "stories": self._store.stories(),
                "format_version": FORMAT_VERSION,
                "window_seconds": self._store.window,
                **self._store.stats(),
            }

    def integrity(self) -> list[str]:
        """A full consistency check of the stored index; returns the problems found (empty: consistent)."""
        with self._lock.read():
            self._open()
            return self._store.integrity()

    # --- writing -------------------------------------------------------------------------------------

    def add(self, doc: Document, *, replace: bool = False, window: timedelta | None = DEFAULT) -> Match | None:
        """Index ``doc``; return the best match of the story it joined, or None when it starts a new story.

        An id that is already indexed raises a DedupError unless
        ``replace=True`` (the old version is removed first). Atomic: a crash
        loses at most this article.
        """
        return self.add_many([doc], replace=replace, window=window)[0]

    def add_many(
        self, docs: Iterable[Document], *, replace: bool = False, window: timedelta | None = DEFAULT,
        together: bool = False,
    ) -> list[Match | None]:
        """:meth:`add` for a batch, in order (each article sees the ones before it).

        The batch is normalised and fingerprinted in one :func:`dedup.pipeline.prepare`
        call; on the SQLite backend it is stored in one transaction (all or nothing).

        ``together=True`` clusters the batch as ``dedup cluster`` clusters a corpus: every article
        sees all the others, before and after it, with the batch's document frequencies and the
        full digest guard (:func:`dedup.pipeline.cluster`, which also runs, so it costs about twice
        as much). Loading a corpus into an empty index this way gives exactly ``dedup cluster``'s
        story ids. A batch story joins a story already indexed when one of its articles (in
        order) would join it, decided against the index as it was before the batch.
        """
        docs = list(docs)
        seen: set[str] = set()
        queries = self._queries(docs)  # checks that they are Documents
        for doc in docs:
            if doc.id in seen:
                raise IndexStateError(f"duplicate id {doc.id!r} in one batch; ids must be unique")
            seen.add(doc.id)
        batch = cluster(docs, options=self.options) if together and docs else None
        results: list[Match | None] = []
        with self._lock.write():
            self._open()
            seconds = self._window(window)
            with self._store.writing():
                if len(docs) == 1 and not replace and batch is None:  # (Index.add: the store may check at insert)
                    self._store.expect_new(docs[0].id)
                    return [self._commit(queries[0], seconds)]
                present = [d.id for d, there in zip(docs, self._store.contains_many([d.id for d in docs])) if there]
                if present and not replace:
                    raise IndexStateError(
                        f"{present[0]!r} is already indexed; pass replace=True to replace it"
                        + (f" ({len(present)} ids of this batch are)" if len(present) > 1 else "")
                    )
                if present:
                    self._store.delete(present)
                if batch is not None:
                    return self._commit_clustered(queries, batch, seconds)
                for query in queries:
                    results.append(self._commit(query, seconds))
        return results

    def remove(self, doc_id: str) -> None:
        """Remove article ``doc_id`` (its buckets and document frequencies); its story keeps its id."""
        with self._lock.write():
            self._open()
            with self._store.writing():
                if not self._store.delete([doc_id]):
                    raise IndexStateError(f"{doc_id!r} is not indexed; nothing to remove")

    def expire(self, *, before: datetime) -> int:
        """Remove every article dated before ``before`` (undated ones: added before it); returns how many.

        Run it periodically (e.g. hourly with ``before = now - window``) to
        keep a 24/7 feed's index, and its memory, bounded.
        """
        if not isinstance(before, datetime):
            raise OptionError(f"before must be a datetime, got {type(before).__name__}")
        with self._lock.write():
            self._open()
            with self._store.writing():
                return self._store.expire(date_sort_key(before))

    def seed_idf(self, docs: Iterable[Document]) -> int:
        """Add the document frequencies of a reference corpus (not indexed, never expired), so that
        TF-IDF weights are sensible while the index is still small; returns how many documents were used."""
        docs = list(docs)
        if not docs:
            return 0
        prepared = prepare(docs, self.options)
        toks = prepared.tokens
        doc_of = np.repeat(np.arange(len(docs), dtype=np.uint64), toks.lengths())
        pairs = np.unique(np.stack((doc_of, toks.hashes[toks.ids]), axis=1), axis=0) if len(toks.ids) else np.zeros((0, 2), np.uint64)
        tokens, counts = np.unique(pairs[:, 1], return_counts=True)
        with self._lock.write():
            self._open()
            with self._store.writing():
                self._store.seed(tokens, counts.astype(np.int64), len(docs))
        return len(docs)

    def close(self) -> None:
        """Close the index (further use raises)."""
        with self._lock.write():
            if not self._closed:
                self._closed = True
                self._store.close()

    def __enter__(self) -> Index:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Index({self._store.location!r})"

    # --- internals -----------------------------------------------------------------------------------

    def _open(self) -> None:
        if self._closed:
            raise IndexStateError("the index is closed; open it again with Index.open(location)")

    def _window(self, window: timedelta | None) -> float | None:
        return self._store.window if window is DEFAULT else _seconds(window)

    def _queries(self, docs: Sequence[Document]) -> list[_Query]:
        """Normalise, tokenise, shingle and fingerprint (dedup.pipeline.prepare) outside any lock."""
        for doc in docs:
            if not isinstance(doc, Document):
                raise TypeError(f"Index takes Document objects, got {type(doc).__name__}")
        if not docs:
            return []
        # A long-lived index amortises numba's one-off load: use the kernels even for one article.
        prepared = prepare(list(docs), self._store.options, engine="numba" if kernels.available() else "numpy",
                           compilations=False)
        keys = band_keys(prepared.signatures, self._store.options)
        added = datetime.now(timezone.utc).timestamp()
        return [
            _Query(record=record, bands=keys[i], text=docs[i].text)
            for i, record in enumerate(_records(docs, prepared, added))
        ]

    def _commit(self, query: _Query, window: float | None) -> Match | None:
        rec = query.record
        while True:
            decision, lookup = self._decide(query, window)
            stored = Record(
                id=rec.id, story=decision.story, date=rec.date, added=rec.added, digest=decision.digest,
                signature=rec.signature, shingles=rec.shingles, tokens=rec.tokens, counts=rec.counts, numbers=rec.numbers,
            )
            try:
                self._store.insert(Commit(record=stored, bands=query.bands, merge=decision.merge), lookup)
            except Conflict:
                continue  # another worker changed what the decision read (shared backends): decide again
            break
        if not decision.matches:
            return None
        best = decision.matches[0]
        return Match(best.id, decision.story, best.jaccard, best.cosine, best.containment, best.numbers)

    def _commit_clustered(self, queries: list[_Query], batch: ClusterResult, window: float | None) -> list[Match | None]:
        """Store a batch with the stories :func:`dedup.pipeline.cluster` gave it, each joined to the
        indexed story the first of its articles that would join one joins (decided before any is stored)."""
        joins: dict[str, Match] = {}  # batch story -> the match that joins it to an indexed story
        if len(self._store):
            for query in queries:
                story = batch.assignments[query.record.id]
                if story in joins or query.record.id in batch.digests:
                    continue
                decision, _ = self._decide(query, window)
                if decision.matches and not decision.digest:
                    best = decision.matches[0]
                    joins[story] = Match(best.id, decision.story, best.jaccard, best.cosine, best.containment, best.numbers)
        partners: dict[str, list[Pair]] = {}
        for pair in batch.pairs:
            partners.setdefault(pair.a, []).append(pair)
            partners.setdefault(pair.b, []).append(pair)
        position = {q.record.id: i for i, q in enumerate(queries)}
        first: set[str] = set()
        results: list[Match | None] = []
        for query in queries:
            rec = query.record
            story = batch.assignments[rec.id]
            joined = joins.get(story)
            target = joined.cluster_id if joined is not None else story
            stored = Record(
                id=rec.id, story=target, date=rec.date, added=rec.added, digest=rec.id in batch.digests,
                signature=rec.signature, shingles=rec.shingles, tokens=rec.tokens, counts=rec.counts, numbers=rec.numbers,
            )
            self._store.insert(Commit(record=stored, bands=query.bands), None)
            # What it joined: its best confirmed partner stored before it, else the indexed story's match,
            # else its best partner (it was linked through later articles); None when it starts its story.
            mine = partners.get(rec.id, [])
            earlier = [p for p in mine if position[p.b if p.a == rec.id else p.a] < position[rec.id]]
            pick = max(earlier or ([] if joined or story not in first else mine), key=lambda p: (p.cosine, p.containment),
                       default=None)
            first.add(story)
            if pick is not None:
                other = pick.b if pick.a == rec.id else pick.a
                results.append(Match(other, target, pick.jaccard, pick.cosine, pick.containment, pick.numbers))
            else:
                results.append(joined)  # None: it starts its story
        return results

    def _decide(self, query: _Query, window: float | None) -> tuple[_Decision, Lookup | None]:
        rec = query.record
        new = _Decision(matches=[], story=rec.id, merge=(), digest=False)
        if bool(np.all(rec.signature == EMPTY)):
            return new, None  # no shingles: never a candidate (as in candidate_pairs)
        lookup = self._store.lookup(rec, query.bands, window=window, plausible=self._plausible)
        found = lookup.candidates
        if not len(found):
            return new, lookup
        scores = self._score(rec, lookup)
        ok = confirm(scores, self.options)
        if not ok.any():
            return new, lookup
        picked = np.flatnonzero(ok)
        # Digest guard (dedup.digests' rule, on what the index knows): a suspect is explained by
        # none of its confirmed partners (none covers dominant_share of its shingles).
        share = scores.common[picked] / max(len(rec.shingles), 1)
        suspect = float(share.max()) < self.options.dominant_share
        order = sorted(picked.tolist(), key=lambda k: (-scores.cosine[k], -scores.containment[k], -scores.jaccard[k], found.time(k)))
        joinable = [k for k in order if not found.digests[k]]  # a digest's story is its own: never joined
        stories = list(dict.fromkeys(found.stories[k] for k in joinable))
        if not stories:
            return new, lookup
        if suspect and (len(stories) > 1 or query.compilation):
            return _Decision(matches=[], story=rec.id, merge=(), digest=True), lookup
        matches = [
            Match(
                id=found.ids[k], cluster_id=found.stories[k], jaccard=round(float(scores.jaccard[k]), 4),
                cosine=round(float(scores.cosine[k]), 4), containment=round(float(scores.containment[k]), 4),
                numbers=round(float(scores.numbers[k]), 4),
            )
            for k in joinable
        ]
        if len(stories) == 1:
            return _Decision(matches=matches, story=stories[0], merge=(), digest=False), lookup
        members = {s: [(found.time(k), found.added[k]) for k in joinable if found.stories[k] == s] for s in stories}
        target = min(stories, key=lambda s: self._story_age(s, members[s]))
        return _Decision(matches=matches, story=target, merge=tuple(s for s in stories if s != target), digest=False), lookup

    def _plausible(self, containment: np.ndarray, cosine: np.ndarray) -> np.ndarray:
        """Which candidates could be confirmed, given upper bounds of their containment and cosine
        (the rule only grows with both; their figures are assumed to agree)."""
        o = self.options
        return worded_alike(cosine, containment, cosine=o.cosine, overlap=o.overlap, strong_cosine=o.strong_cosine,
                            containment=o.containment)

    def _story_age(self, story: str, members: list[tuple[float, float]]) -> tuple[float, float]:
        """Sort key of a story: its first article's (date, time added), else its earliest known member's."""
        first = self._store.get(story)
        known = ([(first.time, first.added)] if first is not None else []) + members
        return min(known)

    def _score(self, rec: Record, lookup: Lookup) -> PairScores:
        """All confirmation scores of (query, candidate) pairs, with confirm.score_pairs' definitions
        (over the candidates of one query; tests check equality with the batch scores).

        TF-IDF weights are confirm.tfidf_matrix's: sublinear tf, scikit-learn's smooth idf from the
        index's document frequencies (the query counted as one more document, as the batch fit counts
        every document, unless it is indexed already), l2-normalised."""
        from dedup.bandmirror import score_candidates  # loads numba: only once an index is used

        found = lookup.candidates
        k = len(found)
        extra = 0 if lookup.query_indexed else 1
        cosine, common = score_candidates(
            rec.tokens, rec.counts, lookup.query_df, found.tokens, found.counts, found.df, found.token_offsets,
            rec.shingles, found.shingles, found.shingle_offsets, documents=lookup.documents + extra, extra=extra,
        )
        smaller = np.minimum(len(rec.shingles), np.diff(found.shingle_offsets))
        scores = PairScores(
            left=np.zeros(k, dtype=np.int64),
            right=np.arange(k, dtype=np.int64),
            jaccard=estimate_jaccard(found.signatures, rec.signature[None, :]),
            cosine=cosine,
            containment=np.divide(common, smaller, out=np.zeros(k), where=smaller > 0),
            common=common,
            numbers=np.ones(k),
            few_numbers=np.ones(k, dtype=bool),
        )
        # Figures matter only where the wording agrees: compare them for those candidates only.
        worded = np.flatnonzero(confirm(scores, self.options))
        if len(worded):
            numbers, few = _number_agreement(rec.numbers, [numbers_tuple(found.numbers[i]) for i in worded.tolist()])
            scores.numbers[worded] = numbers
            scores.few_numbers[worded] = few
        return scores


def _number_agreement(query: tuple[str, ...], others: list[tuple[str, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """confirm.number_agreement for one query against each candidate: share of the distinct figures of
    the one with fewer figures found in the other (1 when it has none), and whether it has fewer than 3."""
    q = set(query)
    agreement = np.ones(len(others))
    few = np.zeros(len(others), dtype=bool)
    for k, numbers in enumerate(others):
        fewer = min(len(q), len(numbers))
        few[k] = fewer < 3
        if fewer:
            agreement[k] = len(q.intersection(numbers)) / fewer
    return agreement, few


def _records(docs: Sequence[Document], prepared: Prepared, added: float) -> list[Record]:
    """The storable records of a prepared batch (stories decided later)."""
    toks = prepared.tokens
    if len(docs) == 1:  # (Index.add) an article holding its whole vocabulary: one compiled pass, no copies
        counted = kernels.token_counts(toks.ids, toks.hashes)
        if counted is not None:
            return [_record(docs[0], prepared, added, *counted, tuple(sorted(filter(str.isdigit, toks.vocab))), copy=False)]
    vocab_size = max(len(toks.hashes), 1)
    doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), np.diff(toks.offsets))
    keys, counts = np.unique(doc_of * vocab_size + toks.ids, return_counts=True)  # distinct (document, token)
    token_ids = keys % vocab_size
    bounds = np.searchsorted(keys, np.arange(len(docs) + 1, dtype=np.int64) * vocab_size).tolist()
    hashes = toks.hashes[token_ids]
    counts = counts.astype(np.uint32)
    is_number = np.fromiter((w.isdigit() for w in toks.vocab), dtype=bool, count=len(toks.vocab))
    numeric = is_number[token_ids] if len(token_ids) else np.zeros(0, dtype=bool)
    records = []
    for i, doc in enumerate(docs):
        lo, hi = bounds[i], bounds[i + 1]
        numbers = tuple(sorted(toks.vocab[u] for u in token_ids[lo:hi][numeric[lo:hi]].tolist()))
        order = np.argsort(hashes[lo:hi])
        records.append(_record(doc, prepared, added, hashes[lo:hi][order], counts[lo:hi][order], numbers, i))
    return records


def _record(
    doc: Document, prepared: Prepared, added: float, tokens: np.ndarray, counts: np.ndarray, numbers: tuple[str, ...],
    i: int = 0, *, copy: bool = True,
) -> Record:
    """The record of document ``i`` of a prepared batch, given its distinct tokens' hashes (sorted) and counts
    (``copy``: its signature and shingles are copied out of the batch's arrays, which they then do not hold)."""
    date = date_sort_key(doc.date)
    signature, shingles = prepared.signatures[i], prepared.shingles.doc(i)
    return Record(
        id=doc.id, story=doc.id, date=None if date == float("inf") else date, added=added, digest=False,
        signature=signature.copy() if copy else signature, shingles=shingles.copy() if copy else shingles,
        tokens=tokens, counts=counts, numbers=numbers,
    )


# --- one function per CLI command (dedup/cli_index.py stays thin) ------------------------------------
