"""A persistent near-duplicate index for live feeds: check and add one article at a time, with story ids."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Sequence

import numpy as np

from dedup import kernels
from dedup.confirm import PairScores
from dedup.document import Document, date_sort_key
from dedup.errors import OptionError
from dedup.fingerprint import EMPTY, estimate_jaccard
from dedup.pipeline import Options, Prepared, confirm, prepare
from dedup.store import Commit, IndexStateError, Record, RWLock, Store, band_keys, shares_band

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


@dataclass(frozen=True)
class _Query:
    record: Record
    bands: np.ndarray
    compilation: bool


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
                matches = self._decide(query, seconds).matches
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
        self, docs: Iterable[Document], *, replace: bool = False, window: timedelta | None = DEFAULT
    ) -> list[Match | None]:
        """:meth:`add` for a batch, in order (each article sees the ones before it).

        The batch is normalised and fingerprinted in one :func:`dedup.pipeline.prepare`
        call; on the SQLite backend it is stored in one transaction (all or nothing).
        """
        docs = list(docs)
        seen: set[str] = set()
        queries = self._queries(docs)  # checks that they are Documents
        for doc in docs:
            if doc.id in seen:
                raise IndexStateError(f"duplicate id {doc.id!r} in one batch; ids must be unique")
            seen.add(doc.id)
        results: list[Match | None] = []
        with self._lock.write():
            self._open()
            seconds = self._window(window)
            with self._store.writing():
                present = [d.id for d in docs if self._store.contains(d.id)]
                if present and not replace:
                    raise IndexStateError(
                        f"{present[0]!r} is already indexed; pass replace=True to replace it"
                        + (f" ({len(present)} ids of this batch are)" if len(present) > 1 else "")
                    )
                if present:
                    self._store.delete(present)
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
        prepared = prepare(list(docs), self._store.options, engine="numba" if kernels.available() else "numpy")
        keys = band_keys(prepared.signatures, self._store.options)
        added = datetime.now(timezone.utc).timestamp()
        return [
            _Query(record=_record(doc, prepared, i, added), bands=keys[i], compilation=bool(prepared.compilations[i]))
            for i, doc in enumerate(docs)
        ]

    def _commit(self, query: _Query, window: float | None) -> Match | None:
        decision = self._decide(query, window)
        rec = query.record
        stored = Record(
            id=rec.id, story=decision.story, date=rec.date, added=rec.added, digest=decision.digest,
            signature=rec.signature, shingles=rec.shingles, tokens=rec.tokens, counts=rec.counts, numbers=rec.numbers,
        )
        self._store.insert(Commit(record=stored, bands=query.bands, merge=decision.merge))
        if not decision.matches:
            return None
        best = decision.matches[0]
        return Match(best.id, decision.story, best.jaccard, best.cosine, best.containment, best.numbers)

    def _decide(self, query: _Query, window: float | None) -> _Decision:
        rec = query.record
        new = _Decision(matches=[], story=rec.id, merge=(), digest=False)
        if bool(np.all(rec.signature == EMPTY)):
            return new  # no shingles: never a candidate (as in candidate_pairs)
        found = self._store.candidates(rec.signature, query.bands, time=rec.time, window=window)
        found = [c for c in found if c.id != rec.id]
        if window is not None and rec.date is not None:
            found = [c for c in found if c.date is None or abs(c.date - rec.date) <= window]
        if found:
            found = [c for c, ok in zip(found, shares_band(rec.signature, np.stack([c.signature for c in found]), self.options)) if ok]
        if not found:
            return new
        scores = self._score(rec, found)
        ok = confirm(scores, self.options)
        if not ok.any():
            return new
        picked = np.flatnonzero(ok)
        # Digest guard (dedup.digests' rule, on what the index knows): a suspect is explained by
        # none of its confirmed partners (none covers dominant_share of its shingles).
        share = scores.common[picked] / max(len(rec.shingles), 1)
        suspect = float(share.max()) < self.options.dominant_share
        order = sorted(picked.tolist(), key=lambda k: (-scores.cosine[k], -scores.containment[k], -scores.jaccard[k], found[k].time))
        joinable = [k for k in order if not found[k].digest]  # a digest's story is its own: never joined
        stories = list(dict.fromkeys(found[k].story for k in joinable))
        if not stories:
            return new
        if suspect and (len(stories) > 1 or query.compilation):
            return _Decision(matches=[], story=rec.id, merge=(), digest=True)
        matches = [
            Match(
                id=found[k].id, cluster_id=found[k].story, jaccard=round(float(scores.jaccard[k]), 4),
                cosine=round(float(scores.cosine[k]), 4), containment=round(float(scores.containment[k]), 4),
                numbers=round(float(scores.numbers[k]), 4),
            )
            for k in joinable
        ]
        if len(stories) == 1:
            return _Decision(matches=matches, story=stories[0], merge=(), digest=False)
        target = min(stories, key=lambda s: self._story_age(s, [found[k] for k in joinable if found[k].story == s]))
        return _Decision(matches=matches, story=target, merge=tuple(s for s in stories if s != target), digest=False)

    def _story_age(self, story: str, members: list[Record]) -> tuple[float, float]:
        """Sort key of a story: its first article's (date, time added), else its earliest known member's."""
        first = self._store.get(story)
        known = ([first] if first is not None else []) + members
        return min((m.time, m.added) for m in known)

    def _score(self, rec: Record, found: list[Record]) -> PairScores:
        """All confirmation scores of (query, candidate) pairs, with confirm.score_pairs' definitions
        (vectorised over the candidates of one query; tests check equality with the batch scores)."""
        k = len(found)
        sizes = np.fromiter((len(c.shingles) for c in found), dtype=np.int64, count=k)
        common = _hits_per_row(rec.shingles, np.concatenate([c.shingles for c in found]), sizes)
        smaller = np.minimum(len(rec.shingles), sizes)
        numbers, few = _number_agreement(rec.numbers, [c.numbers for c in found])
        sigs = np.stack([c.signature for c in found])
        return PairScores(
            left=np.zeros(k, dtype=np.int64),
            right=np.arange(k, dtype=np.int64),
            jaccard=estimate_jaccard(sigs, rec.signature[None, :]),
            cosine=self._cosines(rec, found),
            containment=np.divide(common, smaller, out=np.zeros(k), where=smaller > 0),
            common=common,
            numbers=numbers,
            few_numbers=few,
        )

    def _cosines(self, rec: Record, found: list[Record]) -> np.ndarray:
        """TF-IDF cosine of the query with each candidate, as confirm.tfidf_matrix weighs them: sublinear
        tf, scikit-learn's smooth idf from the index's document frequencies (the query counted as one
        more document, as the batch fit counts every document), l2-normalised."""
        docs = [rec, *found]
        lengths = np.fromiter((len(d.tokens) for d in docs), dtype=np.int64, count=len(docs))
        tokens = np.concatenate([d.tokens for d in docs])
        counts = np.concatenate([d.counts for d in docs]).astype(np.float64)
        vocab, column = np.unique(tokens, return_inverse=True)
        df, n = self._store.document_frequencies(vocab)
        if not self._store.contains(rec.id):
            df = df + np.isin(vocab, rec.tokens, assume_unique=True)
            n += 1
        idf = np.log((1.0 + n) / (1.0 + df)) + 1.0
        weights = (1.0 + np.log(counts)) * idf[column.ravel()]
        rows = np.repeat(np.arange(len(docs)), lengths)
        norms = np.sqrt(np.bincount(rows, weights=weights * weights, minlength=len(docs)))
        weights /= np.where(norms > 0, norms, 1.0)[rows]
        q_len = int(lengths[0])
        query_tokens, query_weights = tokens[:q_len], weights[:q_len]
        other_tokens, other_weights = tokens[q_len:], weights[q_len:]
        if q_len == 0 or len(other_tokens) == 0:
            return np.zeros(len(found))
        pos = np.minimum(np.searchsorted(query_tokens, other_tokens), q_len - 1)
        products = np.where(query_tokens[pos] == other_tokens, query_weights[pos] * other_weights, 0.0)
        return _sum_per_row(products, lengths[1:])


def _sum_per_row(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of ``values`` of the given lengths (empty segments sum to 0)."""
    ends = np.cumsum(lengths)
    totals = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    return totals[ends] - totals[ends - lengths]


def _hits_per_row(query: np.ndarray, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """For each segment of ``flat`` (sorted distinct values), how many of its values ``query`` (sorted) has."""
    if len(query) == 0 or len(flat) == 0:
        return np.zeros(len(lengths), dtype=np.int64)
    pos = np.minimum(np.searchsorted(query, flat), len(query) - 1)
    return np.rint(_sum_per_row((query[pos] == flat).astype(np.float64), lengths)).astype(np.int64)


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


def _record(doc: Document, prepared: Prepared, i: int, added: float) -> Record:
    """The storable record of document ``i`` of a prepared batch (story decided later)."""
    toks = prepared.tokens
    ids = toks.ids[toks.offsets[i] : toks.offsets[i + 1]]
    unique, counts = np.unique(ids, return_counts=True)
    hashes = toks.hashes[unique]
    order = np.argsort(hashes)
    numbers = tuple(sorted({toks.vocab[u] for u in unique.tolist() if toks.vocab[u].isdigit()}))
    date = date_sort_key(doc.date)
    return Record(
        id=doc.id, story=doc.id, date=None if date == float("inf") else date, added=added, digest=False,
        signature=prepared.signatures[i].copy(), shingles=prepared.shingles.doc(i).copy(),
        tokens=hashes[order], counts=counts[order].astype(np.uint32), numbers=numbers,
    )



# --- one function per CLI command (dedup/cli_index.py stays thin) ------------------------------------
