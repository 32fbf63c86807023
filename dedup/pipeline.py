"""The clustering pipeline: normalise -> tokenise -> shingle -> fingerprint -> candidates -> confirm -> cluster."""

from __future__ import annotations

import time
from dataclasses import dataclass, field, fields
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dedup.candidates import candidate_pairs
from dedup.clusters import link_stories, name_stories
from dedup.digests import find_digests
from dedup.confirm import PairScores, is_copy, score_pairs, tfidf_matrix
from dedup.document import Document, date_sort_key
from dedup.errors import InputError, OptionError
from dedup.fingerprint import signatures
from dedup.normalize import count_datelines, normalize
from dedup.shingle import ShingleBatch, shingle_batch
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
    **settings: object,
) -> ClusterResult:
    """Cluster ``docs`` into stories.

    Settings are the fields of :class:`Options` given as keywords
    (``cluster(docs, cosine=0.6)``) or as one ``options=Options(...)``.
    ``progress`` is called with a short message as each stage starts.
    """
    options = _resolve_options(options, settings)
    stages = _Stages()
    say = progress or (lambda _msg: None)
    documents = _unique(docs)
    stages.done("read")
    n = len(documents)
    say(f"fingerprinting {n:,} documents")
    prepared = prepare(documents, options, stages=stages)
    tokens, shingles, sigs = prepared.tokens, prepared.shingles, prepared.signatures
    say("finding candidate pairs")
    pairs = candidate_pairs(sigs, threshold=options.lsh_threshold)
    stages.done("candidates")
    say(f"scoring {len(pairs):,} candidate pairs")
    scores = score_pairs(pairs, signatures=sigs, tfidf=tfidf_matrix(tokens), shingles=shingles, tokens=tokens)
    confirmed = scores.select(confirm(scores, options))
    stages.done("confirm")
    say(f"clustering {len(confirmed):,} confirmed pairs")
    stories = assign_stories(
        scores, confirmed, tokens=tokens, shingles=shingles, sigs=sigs, dates=_dates(documents),
        compilations=prepared.compilations, options=options,
    )
    stages.done("cluster")
    result = _result(documents, confirmed, stories)
    result.stats.update(
        documents=n,
        clusters=len(result.clusters),
        duplicates=n - len(result.clusters),
        candidate_pairs=len(pairs),
        confirmed_pairs=len(confirmed),
        digests=int(stories.digests.sum()),
        seconds=sum(stages.seconds.values()),
        **{f"seconds_{k}": v for k, v in stages.seconds.items()},
    )
    return result


@dataclass(frozen=True)
class Prepared:
    """A batch of documents made ready for matching: tokens, shingle sets, MinHash signatures,
    and which documents are built like compilations (several datelines)."""

    tokens: TokenBatch
    shingles: ShingleBatch
    signatures: np.ndarray
    compilations: np.ndarray

    def __len__(self) -> int:
        return len(self.tokens)


def prepare(documents: Sequence[Document], options: Options, *, stages: _Stages | None = None) -> Prepared:
    """Normalise, tokenise, shingle and fingerprint a batch of documents (no state kept between calls)."""
    stages = stages or _Stages()
    texts = [normalize(d.text, strip_boilerplate=options.strip_boilerplate) for d in documents]
    compilations = np.fromiter((count_datelines(d.text) >= 2 for d in documents), dtype=bool, count=len(documents))
    stages.done("normalise")
    tokens = tokenize_batch(texts)
    del texts
    stages.done("tokenise")
    shingles = shingle_batch(tokens, n=options.shingle_size)
    stages.done("shingle")
    sigs = signatures(shingles, num_perm=options.num_perm, seed=options.seed)
    stages.done("fingerprint")
    return Prepared(tokens=tokens, shingles=shingles, signatures=sigs, compilations=compilations)


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
    scores: PairScores,
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

    ``compilations`` marks documents built like digests (several datelines)."""
    n = len(shingles)
    digests = find_digests(
        shingles,
        sigs,
        scores,
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


def _resolve_options(options: Options | None, settings: dict[str, object]) -> Options:
    known = {f.name for f in fields(Options)}
    unknown = sorted(set(settings) - known)
    if unknown:
        raise OptionError(f"unknown option(s) {', '.join(unknown)}; valid options are: {', '.join(sorted(known))}")
    if options is not None and settings:
        raise OptionError("pass either options=Options(...) or keyword settings, not both")
    return options if options is not None else Options(**settings)  # type: ignore[arg-type]


def _unique(docs: Iterable[Document]) -> list[Document]:
    documents: list[Document] = []
    seen: set[str] = set()
    for doc in docs:
        if not isinstance(doc, Document):
            raise TypeError(f"cluster() takes Document objects, got {type(doc).__name__}")
        if doc.id in seen:
            raise InputError(f"duplicate document id {doc.id!r}; ids must be unique")
        seen.add(doc.id)
        documents.append(doc)
    return documents


def _dates(documents: list[Document]) -> np.ndarray:
    return np.fromiter((date_sort_key(d.date) for d in documents), dtype=np.float64, count=len(documents))


def _result(documents: list[Document], confirmed: PairScores, stories: StoryAssignment) -> ClusterResult:
    ids = [d.id for d in documents]
    labels = stories.labels.tolist()
    canon = stories.canonical.tolist()
    members: dict[int, list[str]] = {}
    for i, lab in enumerate(labels):
        members.setdefault(lab, []).append(ids[i])
    clusters = [Cluster(id=ids[lab], canonical=ids[canon[lab]], members=tuple(m)) for lab, m in members.items()]
    kept = stories.labels[confirmed.left] == stories.labels[confirmed.right]
    pairs = [
        Pair(ids[a], ids[b], round(float(j), 4), round(float(c), 4), round(float(k), 4), round(float(q), 4))
        for a, b, j, c, k, q in zip(
            confirmed.left[kept].tolist(),
            confirmed.right[kept].tolist(),
            confirmed.jaccard[kept],
            confirmed.cosine[kept],
            confirmed.containment[kept],
            confirmed.numbers[kept],
        )
    ]
    return ClusterResult(
        ids=ids,
        clusters=clusters,
        pairs=pairs,
        assignments={ids[i]: ids[lab] for i, lab in enumerate(labels)},
        canonical={ids[i]: ids[canon[i]] for i in range(len(ids))},
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
