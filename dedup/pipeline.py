"""The clustering pipeline: normalise -> tokenise -> shingle -> fingerprint -> candidates -> confirm -> cluster."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from dataclasses import dataclass, field, fields
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dedup import kernels
from dedup.candidates import candidate_pairs
from dedup.clusters import link_stories, name_stories
from dedup.digests import find_digests
from dedup.confirm import (Bounds, PairScores, csr_matrix, gather_rows, is_copy, number_matrix, score_corpus_pairs,
                           score_pairs, tfidf_weights)
from dedup.document import Document
from dedup.errors import OptionError
from dedup.fingerprint import shingle_signatures
from dedup.normalize import normalize, normalize_counting_datelines
from dedup.parallel import CHUNK_DOCS, Corpus, prepare_corpus, release_memory
from dedup.shingle import ShingleBatch
from dedup.tokenize import TokenBatch, tokenize_batch


@dataclass(frozen=True)
class Options:
    """Settings of the pipeline; the defaults are tuned on real news (see README, "Tuning")."""

    shingle_size: int = 3
    num_perm: int = 128
    seed: int = 1
    lsh_threshold: float = 0.1
    residual_threshold: float = 0.05
    cosine: float = 0.55
    overlap: float = 0.5
    strong_cosine: float = 0.8
    containment: float = 0.7
    numbers: float = 0.3
    source_share: float = 0.05
    source_run: int = 8
    dominant_share: float = 0.8
    strip_boilerplate: bool = True

    def __post_init__(self) -> None:
        if not isinstance(self.shingle_size, int) or not 1 <= self.shingle_size <= 16:
            raise OptionError(f"shingle_size must be an integer from 1 to 16, got {self.shingle_size!r}")
        if not isinstance(self.num_perm, int) or not 8 <= self.num_perm <= 1024:
            raise OptionError(f"num_perm must be an integer from 8 to 1024, got {self.num_perm!r}")
        if not isinstance(self.source_run, int) or self.source_run < 1:
            raise OptionError(f"source_run must be a positive integer, got {self.source_run!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise OptionError(f"seed must be a non-negative integer, got {self.seed!r}")
        if not 0.0 < self.residual_threshold < 1.0:
            raise OptionError(f"residual_threshold must be between 0 and 1 (exclusive), got {self.residual_threshold!r}")
        if not 0.0 < self.lsh_threshold < 1.0:
            raise OptionError(
                f"lsh_threshold must be between 0 and 1 (exclusive), got {self.lsh_threshold!r}; "
                "it is the estimated Jaccard similarity above which pairs become candidates"
            )
        for name in ("cosine", "overlap", "strong_cosine", "containment", "numbers", "source_share", "dominant_share"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
                raise OptionError(f"{name} must be a number from 0 to 1, got {value!r}")
        if self.source_share >= self.dominant_share:
            raise OptionError(
                f"source_share ({self.source_share}) must be smaller than dominant_share ({self.dominant_share})"
            )


@dataclass(frozen=True)
class Pair:
    """A confirmed copy: documents ``a`` and ``b`` (ids) with their scores."""

    a: str
    b: str
    jaccard: float  # estimated from MinHash signatures
    cosine: float  # TF-IDF cosine
    containment: float  # shared shingles / shingles of the smaller document
    numbers: float  # share of the figures of one found in the other


@dataclass(frozen=True)
class Cluster:
    """One story: ``id`` is its earliest member's id, ``canonical`` its most central member."""

    id: str
    canonical: str
    members: tuple[str, ...]


@dataclass
class ClusterResult:
    """What :func:`cluster` found."""

    ids: list[str]  # document ids in input order
    clusters: list[Cluster]
    pairs: list[Pair]
    assignments: dict[str, str]  # document id -> cluster id
    canonical: dict[str, str]  # document id -> canonical member id of its cluster
    stats: dict[str, float] = field(default_factory=dict)
    digests: frozenset[str] = frozenset()  # documents that quote several stories and joined none

    def cluster_of(self, doc_id: str) -> Cluster:
        """The cluster containing ``doc_id``."""
        return self._by_id[self.assignments[doc_id]]

    @property
    def _by_id(self) -> dict[str, Cluster]:
        cached = self.__dict__.get("_clusters_by_id")
        if cached is None:
            cached = self.__dict__["_clusters_by_id"] = {c.id: c for c in self.clusters}
        return cached


class _Stages:
    """Wall-clock seconds per pipeline stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}
        self._last = time.perf_counter()

    def done(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._last
        self._last = now


def cluster(
    docs: Iterable[Document],
    *,
    options: Options | None = None,
    progress: Callable[[str], None] | None = None,
    workers: int | None = None,
    **settings: object,
) -> ClusterResult:
    """Cluster ``docs`` into stories.

    Settings are the fields of :class:`Options` given as keywords
    (``cluster(docs, cosine=0.6)``) or as one ``options=Options(...)``.
    ``progress`` is called with a short message as each stage starts.
    ``workers`` is the number of processes that normalise and fingerprint
    (None: one per CPU; 1: everything in this process); the result is the
    same for any number. ``docs`` is consumed once, chunk by chunk: texts are
    not kept, and a large corpus's tokens and shingles go to temporary files.
    """
    options = resolve_options(options, settings)
    say = progress or (lambda _msg: None)
    say("reading and fingerprinting documents")
    corpus = prepare_corpus(
        docs, shingle_size=options.shingle_size, num_perm=options.num_perm, seed=options.seed,
        strip_boilerplate=options.strip_boilerplate, workers=workers, progress=progress,
    )
    try:
        stages = _Stages()
        stages.seconds.update(corpus.seconds)
        n = len(corpus)
        sigs = corpus.signatures
        release_memory()  # (between stages: what one freed does not stay resident while the next works)
        say(f"finding candidate pairs among {n:,} documents")
        pairs = candidate_pairs(sigs, threshold=options.lsh_threshold)
        release_memory()
        stages.done("candidates")
        say(f"scoring {len(pairs):,} candidate pairs")
        passed_over = np.zeros(len(pairs), dtype=bool)
        scores = _score_corpus(pairs, corpus, options=options, skipped=passed_over)
        confirmed = scores.select(confirm(scores, options))
        del scores
        release_memory()
        stages.done("confirm")
        say(f"clustering {len(confirmed):,} confirmed pairs")
        # (Spilled shingles stay on disk: the digest guard reads them a block at a time.)
        stories = assign_stories(
            pairs, confirmed, tokens=corpus.tokens, shingles=corpus.shingles, sigs=sigs,
            dates=corpus.dates, compilations=corpus.compilations, options=options,
        )
        stages.done("cluster")
        with _collector_paused():  # (tens of thousands of objects, none in a cycle: its passes took a third of this)
            result = _result(corpus.ids, confirmed, stories)
        stages.done("result")
    finally:
        corpus.close()
    result.stats.update(
        documents=n,
        clusters=len(result.clusters),
        duplicates=n - len(result.clusters),
        candidate_pairs=len(pairs),
        bounded_pairs=int(passed_over.sum()),  # candidate pairs whose score bounds ruled them out (not scored)
        confirmed_pairs=len(confirmed),
        digests=int(stories.digests.sum()),
        workers=(os.cpu_count() or 1) if workers is None else workers,
        spilled=int(corpus.spilled),
        seconds=sum(stages.seconds.values()),
        **{f"seconds_{k}": v for k, v in stages.seconds.items()},
        **{f"worker_seconds_{k}": v for k, v in corpus.worker_seconds.items()},
    )
    return result


_SCORE_TOKENS = 8_000_000  # distinct tokens of the documents scored at once (bounds memory on large corpora)
SCORE_BLOCK_BYTES = 512 << 20  # rows of a spilled corpus in memory at once while scoring: two blocks of this size


def _score_corpus(pairs: np.ndarray, corpus: Corpus, *, options: Options | None = None, engine: str = "auto",
                  skipped: np.ndarray | None = None) -> PairScores:
    """:func:`dedup.confirm.score_pairs` for a prepared corpus (with the idf of the whole corpus).

    With numba, compiled passes score the pairs straight from the corpus's rows
    (:func:`dedup.confirm.score_corpus_pairs`; a spilled corpus's a pair of blocks at a time); otherwise in batches of pairs, each reading only its
    documents' count rows and shingles and weighing only their TF-IDF rows. The scores are the same,
    except that with ``options`` the compiled passes give zeros to the pairs whose score bounds fail
    the wording rule (marked in ``skipped``): the confirmed pairs are the same. (The
    compiled passes are taken for few pairs too once the kernels are in use: the other path loads scikit-learn.)"""
    if kernels.use_kernels(engine, len(pairs), kernels.MIN_PAIRS) or (engine == "auto" and kernels.loaded()):
        # (Spilled rows are read a pair of blocks at a time: memory holds two blocks, not the files.)
        return score_corpus_pairs(pairs, signatures=corpus.signatures, counts=corpus.counts, shingles=corpus.shingles,
                                  df=corpus.df, documents=len(corpus), is_number=corpus.is_number,
                                  block_bytes=SCORE_BLOCK_BYTES if corpus.spilled else None, bounds=_bounds(corpus, options),
                                  skipped=skipped)
    m = len(pairs)
    sigs = corpus.signatures
    rows, shingles = corpus.counts, corpus.shingles
    columns = len(corpus.df)
    engine = "numba" if kernels.use_kernels("auto", int(rows.offsets[-1])) else "numpy"
    sizes = np.diff(rows.offsets)
    cost = sizes[pairs[:, 0]] + sizes[pairs[:, 1]] if m else np.zeros(0, np.int64)
    bounds = [0]
    if m:
        cum = np.cumsum(cost)
        while bounds[-1] < m:
            start = bounds[-1]
            base = cum[start - 1] if start else 0
            stop = int(np.searchsorted(cum, base + _SCORE_TOKENS, side="right"))
            bounds.append(min(m, max(stop, start + 1)))
    parts: list[PairScores] = []
    for lo, hi in zip(bounds[:-1], bounds[1:]):
        left, right = pairs[lo:hi, 0], pairs[lo:hi, 1]
        docs = kernels.unique(np.concatenate((left, right)))
        li, ri = np.searchsorted(docs, left), np.searchsorted(docs, right)
        sh_values, sh_offsets = gather_rows(shingles.hashes, shingles.offsets, docs)
        counts = rows.matrix(docs, columns=columns)
        numbers = number_matrix(counts, corpus.is_number)
        tfidf = tfidf_weights(counts, df=corpus.df, documents=len(corpus))
        parts.append(score_pairs(pairs[lo:hi], signatures=sigs, tfidf=tfidf, numbers=numbers, rows=(li, ri),
                                 shingles=ShingleBatch(hashes=sh_values, offsets=sh_offsets), engine=engine))
    if not parts:
        return score_pairs(np.zeros((0, 2), dtype=np.int64), signatures=sigs, tfidf=csr_matrix((len(corpus), 1)),
                           shingles=ShingleBatch(hashes=np.zeros(0, np.uint32), offsets=np.zeros(len(corpus) + 1, np.int64)),
                           numbers=csr_matrix((len(corpus), 1)))
    if len(parts) == 1:
        return parts[0]
    return PairScores(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in PairScores.__dataclass_fields__})


def _bounds(corpus: Corpus, options: Options | None) -> Bounds | None:
    """What lets the compiled scorer pass over the pairs that cannot be copies under ``options`` (the
    scores of the unconfirmed pairs are read no further: the confirmed ones come out the same)."""
    if options is None or corpus.sketches is None:
        return None
    buckets = kernels.hash_buckets(corpus.tokens.hashes, kernels.TOKEN_SKETCH_BUCKETS).astype(np.uint16)
    return Bounds(sketches=corpus.sketches, token_buckets=buckets, cosine=options.cosine, overlap=options.overlap,
                  strong_cosine=options.strong_cosine, containment=options.containment)


@dataclass(frozen=True)
class Prepared:
    """A batch of documents made ready for matching: tokens, shingle sets, MinHash signatures,
    and which documents are built like compilations (several datelines)."""

    tokens: TokenBatch
    shingles: ShingleBatch
    signatures: np.ndarray
    compilations: np.ndarray | None  # (None when prepare() was asked not to count datelines)

    def __len__(self) -> int:
        return len(self.tokens)


def prepare(
    documents: Sequence[Document],
    options: Options,
    *,
    stages: _Stages | None = None,
    workers: int | None = 1,
    engine: str = "auto",
    compilations: bool = True,
) -> Prepared:
    """Normalise, tokenise, shingle and fingerprint a batch of documents (no state kept between calls).

    ``workers`` > 1 (None: one per CPU) normalises and fingerprints chunks in
    worker processes; ``engine`` ("auto", "numba", "numpy") picks the
    fingerprinting path (auto: numba for large batches). The result is the same.
    ``compilations=False``: the documents' datelines are not counted (``Prepared.compilations`` is
    None; the index counts them only for the few articles whose decision needs it)."""
    stages = stages or _Stages()
    if workers != 1 and len(documents) > CHUNK_DOCS:
        corpus = prepare_corpus(
            documents, shingle_size=options.shingle_size, num_perm=options.num_perm, seed=options.seed,
            strip_boilerplate=options.strip_boilerplate, workers=workers, spill_bytes=1 << 62,
        )
        tokens = TokenBatch(ids=corpus.tokens.ids, offsets=corpus.tokens.offsets, vocab=list(corpus.tokens.vocab),
                            hashes=corpus.tokens.hashes)
        for stage, seconds in corpus.seconds.items():
            stages.seconds[stage] = stages.seconds.get(stage, 0.0) + seconds
        stages.done("merge")
        return Prepared(tokens=tokens, shingles=corpus.shingles, signatures=corpus.signatures,
                        compilations=corpus.compilations)
    marked = None
    if compilations:
        prepared = [normalize_counting_datelines(d.text, strip_boilerplate=options.strip_boilerplate) for d in documents]
        texts = [text for text, _ in prepared]
        marked = np.fromiter((count >= 2 for _, count in prepared), dtype=bool, count=len(prepared))
        del prepared
    else:
        texts = [normalize(d.text, strip_boilerplate=options.strip_boilerplate) for d in documents]
    stages.done("normalise")
    tokens = tokenize_batch(texts, engine=engine)
    del texts
    stages.done("tokenise")
    shingles, sigs = shingle_signatures(
        tokens, n=options.shingle_size, num_perm=options.num_perm, seed=options.seed, engine=engine
    )
    stages.done("fingerprint")
    return Prepared(tokens=tokens, shingles=shingles, signatures=sigs, compilations=marked)


def confirm(scores: PairScores, options: Options) -> np.ndarray:
    """Which scored candidate pairs are copies under ``options``."""
    return is_copy(
        scores,
        cosine=options.cosine,
        overlap=options.overlap,
        strong_cosine=options.strong_cosine,
        containment=options.containment,
        numbers=options.numbers,
    )


@dataclass(frozen=True)
class StoryAssignment:
    """Output of :func:`assign_stories`: per-document indices of cluster id and canonical documents."""

    labels: np.ndarray
    canonical: np.ndarray
    digests: np.ndarray


def assign_stories(
    candidates: np.ndarray,
    confirmed: PairScores,
    *,
    tokens: TokenBatch,
    shingles: ShingleBatch,
    sigs: np.ndarray,
    dates: np.ndarray,
    options: Options,
    compilations: np.ndarray | None = None,
) -> StoryAssignment:
    """Cluster step: digest guard, components, then naming by earliest member.

    ``candidates`` are the (m, 2) candidate pairs, ``confirmed`` the scores of the confirmed pairs (the
    digest guard reads nothing else of the scores); ``compilations`` marks documents built like digests
    (several datelines)."""
    n = len(shingles)
    digests = find_digests(
        shingles,
        sigs,
        candidates,
        confirmed,
        source_share=options.source_share,
        source_run=options.source_run,
        tokens=tokens,
        shingle_size=options.shingle_size,
        dominant_share=options.dominant_share,
        residual_threshold=options.residual_threshold,
        seed=options.seed,
        compilations=compilations,
    )
    labels = link_stories(n, (confirmed.left, confirmed.right), digests=digests)
    centrality = np.zeros(n)
    np.add.at(centrality, confirmed.left, confirmed.cosine)
    np.add.at(centrality, confirmed.right, confirmed.cosine)
    stories = name_stories(labels, dates=dates, centrality=centrality)
    return StoryAssignment(labels=stories.labels, canonical=stories.canonical, digests=digests)


def resolve_options(options: Options | None, settings: dict[str, object]) -> Options:
    """The Options from either an ``options=`` object or keyword settings (never both), validated."""
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}; valid options are: {', '.join(sorted(known))}")
    if options is not None and settings:
        raise OptionError("pass either options=Options(...) or keyword settings, not both")
    return options if options is not None else Options(**settings)  # type: ignore[arg-type]


@contextlib.contextmanager
def _collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off for the block (it is back on after it, if it was on)."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.enable()


def _result(ids: list[str], confirmed: PairScores, stories: StoryAssignment) -> ClusterResult:
    labels = stories.labels.tolist()
    canon = stories.canonical.tolist()
    members: dict[int, list[str]] = {}
    for doc_id, lab in zip(ids, labels):
        members.setdefault(lab, []).append(doc_id)
    clusters = [Cluster(id=ids[lab], canonical=ids[canon[lab]], members=tuple(m)) for lab, m in members.items()]
    kept = stories.labels[confirmed.left] == stories.labels[confirmed.right]
    pairs = [
        Pair(ids[a], ids[b], round(j, 4), round(c, 4), round(k, 4), round(q, 4))
        for a, b, j, c, k, q in zip(*(column[kept].tolist() for column in (
            confirmed.left, confirmed.right, confirmed.jaccard, confirmed.cosine, confirmed.containment, confirmed.numbers)))
    ]
    return ClusterResult(
        ids=ids,
        clusters=clusters,
        pairs=pairs,
        assignments=dict(zip(ids, map(ids.__getitem__, labels))),
        canonical=dict(zip(ids, map(ids.__getitem__, canon))),
        digests=frozenset(ids[i] for i in np.flatnonzero(stories.digests).tolist()),
    )


def iter_rows(result: ClusterResult) -> Iterator[dict[str, object]]:
    """One output record per document, in input order."""
    sizes = {c.id: len(c.members) for c in result.clusters}
    for doc_id in result.ids:
        cid = result.assignments[doc_id]
        yield {
            "id": doc_id,
            "cluster_id": cid,
            "cluster_size": sizes[cid],
            "canonical": result.canonical[doc_id],
            "is_canonical": result.canonical[doc_id] == doc_id,
        }


def iter_pairs(result: ClusterResult) -> Iterator[dict[str, object]]:
    """One record per confirmed pair, with its cluster id and scores."""
    for pair in result.pairs:
        yield {"a": pair.a, "b": pair.b, "cluster_id": result.assignments[pair.a], "jaccard": pair.jaccard,
               "cosine": pair.cosine, "containment": pair.containment, "numbers": pair.numbers}
