"""Score candidate pairs (estimated Jaccard, TF-IDF cosine, shingle containment) and confirm copies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from dedup import kernels, rowblocks
from dedup.fingerprint import estimate_jaccard
from dedup.shingle import ShingleBatch
from dedup.tokenize import TokenBatch

if TYPE_CHECKING:
    from scipy import sparse


@dataclass(frozen=True)
class PairScores:
    """Scores of candidate pairs ``(left[k], right[k])`` (document indices)."""

    left: np.ndarray  # int64
    right: np.ndarray  # int64
    jaccard: np.ndarray  # float64, estimated from MinHash signatures
    cosine: np.ndarray  # float64, TF-IDF cosine
    containment: np.ndarray  # float64, |A & B| / min(|A|, |B|) over shingle sets
    common: np.ndarray  # int64, shared distinct shingles
    numbers: np.ndarray  # float64, share of the numbers of the document with fewer numbers found in the other
    few_numbers: np.ndarray  # bool, one of the pair has fewer than 3 distinct numbers (agreement not judged)

    def __len__(self) -> int:
        return len(self.left)

    def select(self, mask: np.ndarray) -> PairScores:
        """The pairs where ``mask`` is true."""
        return PairScores(**{name: getattr(self, name)[mask] for name in self.__dataclass_fields__})


def csr_matrix(*args: Any, **kwargs: Any) -> sparse.csr_matrix:
    """``scipy.sparse.csr_matrix``, with scipy imported on first use: the compiled paths never need it
    (importing it is ~0.15 s of a run's start)."""
    from scipy import sparse

    return sparse.csr_matrix(*args, **kwargs)


def count_matrix(
    tokens: TokenBatch, rows: np.ndarray | None = None, *, columns: int | None = None, engine: str = "auto"
) -> sparse.csr_matrix:
    """Canonical CSR matrix of token counts (float64), one row per document of ``rows`` (default: all).

    ``engine`` "numba" sorts each row in a compiled kernel, "numpy" lets scipy sum duplicate entries;
    the matrices are identical."""
    columns = len(tokens.vocab) if columns is None else columns
    if rows is None:
        rows = np.arange(len(tokens), dtype=np.int64)
    ids, offsets = gather_rows(tokens.ids, tokens.offsets, rows)
    if kernels.use_kernels(engine, len(ids)):
        indptr, indices, data = kernels.count_rows(ids, offsets)
        return csr_matrix((data, indices, indptr), shape=(len(rows), columns))
    row_of = np.repeat(np.arange(len(rows), dtype=np.int64), np.diff(offsets))
    counts = csr_matrix(
        (np.ones(len(ids), dtype=np.float64), (row_of, ids)), shape=(len(rows), columns)
    )
    counts.sum_duplicates()
    return counts


def document_frequency(tokens: TokenBatch) -> np.ndarray:
    """Number of documents containing each vocabulary entry (int64)."""
    docs = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths())
    keys = kernels.unique(docs * max(len(tokens.vocab), 1) + np.asarray(tokens.ids, dtype=np.int64))
    return np.bincount(keys % max(len(tokens.vocab), 1), minlength=len(tokens.vocab)).astype(np.int64)


def idf_weights(df: np.ndarray, documents: int) -> np.ndarray:
    """Smoothed idf exactly as scikit-learn's ``TfidfTransformer(smooth_idf=True).fit`` computes it."""
    idf = np.full(len(df), float(documents + 1), dtype=np.float64)
    idf /= df.astype(np.float64) + 1.0
    np.log(idf, out=idf)
    idf += 1.0
    return idf


def tfidf_matrix(
    tokens: TokenBatch, *, rows: np.ndarray | None = None, df: np.ndarray | None = None, documents: int | None = None,
    engine: str = "auto",
) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows (sublinear tf, smoothed idf) fitted on this batch's documents.

    With ``rows``, only those documents' rows are built (in that order); the idf
    is still that of the whole batch: pass its document frequencies ``df`` and
    size ``documents`` when ``tokens`` does not hold every document (streamed
    corpora). The rows equal those of the full matrix bit for bit.
    """
    if rows is None and df is None:
        from sklearn.feature_extraction.text import TfidfTransformer  # (scikit-learn loads in ~0.4 s: only when used)

        counts = count_matrix(tokens)
        return TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()
    if df is None:
        df = document_frequency(tokens)
    documents = len(tokens) if documents is None else documents
    return tfidf_weights(count_matrix(tokens, rows, columns=len(df), engine=engine), df=df, documents=documents)


def tfidf_weights(counts: sparse.csr_matrix, *, df: np.ndarray, documents: int) -> sparse.csr_matrix:
    """``TfidfTransformer(sublinear_tf=True)``'s transform of canonical count rows, step by step, with
    the idf of ``documents`` documents of frequencies ``df`` (``counts`` is overwritten)."""
    from sklearn.preprocessing import normalize  # (scikit-learn loads in ~0.4 s: only when used)

    np.log(counts.data, counts.data)
    counts.data += 1.0
    counts.data *= idf_weights(df, documents)[counts.indices]
    return normalize(counts, norm="l2", copy=False).tocsr()


@dataclass(frozen=True)
class CountRows:
    """Each document's distinct token ids (sorted) with their counts: the rows of the canonical count
    matrix, built once per document of a corpus (the arrays may be spilled to disk)."""

    indices: np.ndarray  # int32 token ids (or a parallel.DiskArray)
    counts: np.ndarray  # uint32 (or a parallel.DiskArray)
    offsets: np.ndarray  # int64, len = documents + 1

    @classmethod
    def of(cls, tokens: TokenBatch, *, columns: int | None = None, engine: str = "auto",
           labels: np.ndarray | None = None, out: tuple[np.ndarray, np.ndarray] | None = None) -> CountRows:
        """The count rows of every document of ``tokens``; ``labels``: the column of each token id (distinct; by
        default the id itself), e.g. its corpus-wide id when ``tokens`` is numbered by a chunk. ``out``: arrays
        (int32, uint32) with room for every token that the compiled path writes the rows into (see
        :func:`dedup.kernels.count_rows`; the rows are then views of them)."""
        ids, offsets = gather_rows(tokens.ids, tokens.offsets, np.arange(len(tokens), dtype=np.int64))
        if kernels.use_kernels(engine, len(ids)):  # (count_matrix's arrays, without making the matrix)
            indptr, indices, data = kernels.count_rows(ids, offsets, columns=labels, counts_dtype=np.uint32, out=out)
            return cls(indices=indices, counts=data, offsets=indptr)
        if labels is not None:
            tokens = TokenBatch(ids=np.asarray(labels)[ids], offsets=offsets, vocab=[], hashes=tokens.hashes)
        matrix = count_matrix(tokens, columns=columns, engine=engine)
        return cls(indices=matrix.indices.astype(np.int32, copy=False), counts=matrix.data.astype(np.uint32),
                   offsets=matrix.indptr.astype(np.int64, copy=False))

    def matrix(self, docs: np.ndarray, *, columns: int) -> sparse.csr_matrix:
        """The canonical count matrix (float64) of documents ``docs``, one row each, in that order."""
        indices, indptr = gather_rows(self.indices, self.offsets, docs)
        counts, _ = gather_rows(self.counts, self.offsets, docs)
        return csr_matrix((counts.astype(np.float64), indices, indptr), shape=(len(docs), columns))


def number_matrix(counts: sparse.csr_matrix, is_number: np.ndarray) -> sparse.csr_matrix:
    """Binary rows of the numeric tokens of canonical count rows (canonical too)."""
    keep = is_number[counts.indices]
    indptr = np.concatenate(([0], np.cumsum(keep, dtype=np.int64)))[counts.indptr]
    return csr_matrix((np.ones(int(indptr[-1])), counts.indices[keep], indptr), shape=counts.shape)


def row_dots(matrix: sparse.csr_matrix, left: np.ndarray, right: np.ndarray, *, engine: str = "auto") -> np.ndarray:
    """Dot products of row pairs of a sparse matrix, vectorised (bit-identical on every engine)."""
    if len(left) == 0:
        return np.zeros(0)
    if kernels.use_kernels(engine, len(left), kernels.MIN_PAIRS) and matrix.has_canonical_format:
        return kernels.sparse_row_dots(matrix.indptr, matrix.indices, matrix.data, left, right, columns=matrix.shape[1])
    return np.asarray(matrix[left].multiply(matrix[right]).sum(axis=1)).ravel()


def gather_rows(values, offsets: np.ndarray, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The segments ``values[offsets[r]:offsets[r+1]]`` of ``rows``, concatenated, and their offsets.

    ``values`` may be an array or any object sliceable by ranges (e.g. a spilled array on disk)."""
    rows = np.asarray(rows, dtype=np.int64)
    starts, stops = offsets[rows], offsets[rows + 1]
    lengths = stops - starts
    out_offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out_offsets[1:])
    if isinstance(values, np.ndarray):
        if len(rows) == len(offsets) - 1 and np.array_equal(rows, np.arange(len(rows))):
            return values[: offsets[-1]], out_offsets
        if kernels.use_kernels("auto", int(out_offsets[-1])):
            return kernels.gather(values, starts, out_offsets), out_offsets
        index = np.repeat(starts - out_offsets[:-1], lengths) + np.arange(out_offsets[-1], dtype=np.int64)
        return values[index], out_offsets
    return values.gather(starts, stops, out_offsets), out_offsets


def _shingle_incidence(rows_of: list[np.ndarray]) -> sparse.csr_matrix:
    """Binary row x shingle matrix of the given sorted distinct shingle arrays."""
    sizes = [len(r) for r in rows_of]
    flat = np.concatenate(rows_of) if rows_of else np.zeros(0, np.uint32)
    _, cols = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(rows_of), dtype=np.int64), sizes)
    return csr_matrix(
        (np.ones(len(flat), dtype=np.float64), (rows, cols.ravel())), shape=(len(rows_of), int(cols.max(initial=-1)) + 1)
    )


def common_shingles(
    shingles: ShingleBatch, left: np.ndarray, right: np.ndarray, *, other: ShingleBatch | None = None,
    engine: str = "auto",
) -> np.ndarray:
    """|A & B| for each pair: A = ``shingles`` row ``left[k]``, B = row ``right[k]`` of ``other``
    (default: of ``shingles`` too)."""
    if len(left) == 0:
        return np.zeros(0, dtype=np.int64)
    other = shingles if other is None else other
    fast = kernels.use_kernels(engine, len(left), kernels.MIN_PAIRS)
    if fast and isinstance(shingles.hashes, np.ndarray) and isinstance(other.hashes, np.ndarray):
        return kernels.common_counts(shingles.hashes, shingles.offsets, other.hashes, other.offsets, left, right)
    left_docs, left_inv = np.unique(left, return_inverse=True)
    right_docs, right_inv = np.unique(right, return_inverse=True)
    if fast:
        lv, lo = gather_rows(shingles.hashes, shingles.offsets, left_docs)
        rv, ro = gather_rows(other.hashes, other.offsets, right_docs)
        return kernels.common_counts(lv, lo, rv, ro, left_inv.ravel(), right_inv.ravel())
    rows = [shingles.doc(int(d)) for d in left_docs] + [other.doc(int(d)) for d in right_docs]
    matrix = _shingle_incidence(rows)
    return np.rint(row_dots(matrix, left_inv.ravel(), right_inv.ravel() + len(left_docs), engine="numpy")).astype(np.int64)


def number_agreement(
    tokens: TokenBatch | None, left: np.ndarray, right: np.ndarray, *, is_number: np.ndarray | None = None,
    engine: str = "auto", numbers: sparse.csr_matrix | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Share of the distinct numbers of the pair member with fewer numbers that the other also has,
    and whether that member has fewer than 3 numbers (too few to judge).

    Copies of a story carry the same figures; templated reports (monthly
    statistics, earnings) reuse the wording with different figures. The rows
    are those of ``tokens``, or of the :func:`number_matrix` ``numbers``.
    """
    if numbers is None:
        if tokens is None:
            raise ValueError("number_agreement needs the documents' tokens or their number matrix")
        if is_number is None:
            is_number = np.fromiter((t.isdigit() for t in tokens.vocab), dtype=bool, count=len(tokens.vocab))
        numbers = number_matrix(count_matrix(tokens, columns=len(is_number), engine=engine), is_number)
    counts = np.diff(numbers.indptr)
    fewer = np.minimum(counts[left], counts[right])
    common = row_dots(numbers, left, right, engine=engine)
    agreement = np.divide(common, fewer, out=np.ones(len(left)), where=fewer > 0)
    return agreement, fewer < 3


@dataclass(frozen=True)
class Bounds:
    """What lets :func:`score_corpus_pairs` pass over the pairs that cannot be copies: each document's
    sketch (:func:`dedup.kernels.sketch_rows`: the buckets of its tokens, then of its shingles), each token id's
    bucket in it, and the thresholds of :func:`worded_alike` (the wording half of :func:`is_copy`, which only
    grows with both scores)."""

    sketches: np.ndarray  # (documents, kernels.TOKEN_SKETCH_WORDS + kernels.SHINGLE_SKETCH_WORDS) uint64
    token_buckets: np.ndarray  # one per token id (kernels.hash_buckets; read as uint16)
    cosine: float
    overlap: float
    strong_cosine: float
    containment: float


def score_corpus_pairs(
    pairs: np.ndarray, *, signatures: np.ndarray, counts: CountRows, shingles: ShingleBatch, df: np.ndarray,
    documents: int, is_number: np.ndarray, block_bytes: int | None = None, bounds: Bounds | None = None,
    skipped: np.ndarray | None = None,
) -> PairScores:
    """:func:`score_pairs` of a corpus given by its count rows (whose TF-IDF weights, with the idf of
    ``documents`` documents of frequencies ``df``, are computed on the fly) and its shingle rows, in
    compiled passes over the pairs without gathering rows (needs numba). The scores are identical
    to :func:`score_pairs` on the full TF-IDF matrix.

    ``block_bytes`` bounds the memory the rows take: the documents are cut in blocks of about that
    many bytes of rows, and the pairs are scored one pair of blocks at a time, with both blocks'
    rows read into two buffers (the arrays may be :class:`dedup.parallel.DiskArray`, read by range:
    nothing of the files stays mapped). None: all rows at once (arrays in memory are used as they are).

    With ``bounds``, a pair that cannot meet :func:`worded_alike` (its cosine bounded from the right
    document's token sketch, then its shared shingles counted until too few remain for that bound) is
    not scored in full: all its scores are 0, and it is marked in ``skipped`` (bool, one per pair) when
    given; the bounds are dropped after a trial if they pass over too few pairs (:class:`_BoundsTrial`).
    The pairs that :func:`is_copy` confirms, and their scores, are the same as without bounds."""
    left, right = pairs[:, 0], pairs[:, 1]
    m = len(left)
    n = len(counts.offsets) - 1
    needed = np.zeros(n, dtype=bool)
    needed[left] = True
    needed[right] = True
    tf, idf = kernels.sublinear_tf(rowblocks.max_value(counts.counts)), idf_weights(df, documents)
    norms, numerics = np.zeros(n), np.zeros(n, dtype=np.int64)
    # (Counts in 32 bits: on large corpora these are the largest arrays beside the rows' blocks.)
    cosine, shared = np.empty(m), np.empty(m, dtype=np.int32)
    common, equal = np.empty(m, dtype=np.int32), np.empty(m, dtype=np.int32)
    sizes = shingles.sizes()
    blocks = rowblocks.blocks(counts, shingles, block_bytes)
    skipped = np.empty(m, dtype=bool) if skipped is None else skipped
    skipped[:] = False
    trial = _BoundsTrial(bounds, m)
    if len(blocks) == 1 and all(isinstance(a, np.ndarray) for a in (counts.indices, counts.counts, shingles.hashes)):
        kernels.tfidf_norms(counts.indices, counts.counts, counts.offsets, tf=tf, idf=idf, is_number=is_number,
                            needed=needed, norms=norms, numerics=numerics)
        cut = min(trial.size, m) if bounds is not None else m
        for lo, hi in ((0, cut), (cut, m)):  # the trial's pairs, then the others
            if hi > lo:
                parts = kernels.score_rows(
                    counts.indices, counts.counts, counts.offsets, shingles.hashes, shingles.offsets, signatures,
                    tf=tf, idf=idf, is_number=is_number, norms=norms, left=left[lo:hi], right=right[lo:hi],
                    **_bounding(trial.bounds, skipped[lo:hi]),
                )
                for target, part in zip((cosine, shared, common, equal), parts):
                    target[lo:hi] = part
                trial.record(skipped[lo:hi])
    elif m:
        _score_by_blocks(left, right, signatures=signatures, counts=counts, shingles=shingles, blocks=blocks, tf=tf,
                         idf=idf, is_number=is_number, needed=needed, norms=norms, numerics=numerics,
                         out=(cosine, shared, common, equal), trial=trial, skipped=skipped)
    # (Built one array at a time, dropping what is used up: on large corpora these are the largest arrays.)
    jaccard = equal.astype(np.float64)
    del equal
    jaccard /= signatures.shape[1]
    numbers = shared.astype(np.float64)
    del shared
    fewer = np.minimum(numerics[left], numerics[right])
    np.divide(numbers, fewer, out=numbers, where=fewer > 0)
    numbers[fewer == 0] = 1.0
    few_numbers = fewer < 3
    del fewer
    smaller = np.minimum(sizes[left], sizes[right])
    containment = np.divide(common, smaller, out=np.zeros(len(left)), where=smaller > 0)
    del smaller
    common = common.astype(np.int64)
    return PairScores(left=left, right=right, jaccard=jaccard, cosine=cosine, containment=containment, common=common,
                      numbers=numbers, few_numbers=few_numbers)


BOUNDS_TRIAL = (50_000, 0.02)  # the pairs scored with bounds before they are judged: at least this many, this share
BOUNDS_WORTH = 0.4  # the share of those the bounds must pass over for them to be kept


class _BoundsTrial:
    """A pair's cosine bound costs ~1/10 of its exact score: bounds are kept only while they pass over enough
    pairs. The first pairs are scored with them; if they passed over less than BOUNDS_WORTH of those, the rest
    are scored without (the result is the same either way). Real news, where most candidate pairs are chance LSH
    collisions, keeps them, as do the generated corpora; a corpus of copies would not."""

    def __init__(self, bounds: Bounds | None, pairs: int) -> None:
        self.bounds = bounds
        self.size = max(BOUNDS_TRIAL[0], int(pairs * BOUNDS_TRIAL[1]))
        self.seen = self.passed = 0

    def record(self, skipped: np.ndarray) -> None:
        """Count the pairs just scored (``skipped``: those the bounds passed over) and judge once enough are."""
        if self.bounds is None:
            return
        self.seen += len(skipped)
        self.passed += int(np.count_nonzero(skipped))
        if self.seen >= self.size and self.passed < BOUNDS_WORTH * self.seen:
            self.bounds = None


def _bounding(bounds: Bounds | None, skipped: np.ndarray) -> dict[str, object]:
    """kernels.score_rows' bounding arguments."""
    if bounds is None:
        return {}
    return dict(sketches=bounds.sketches, token_buckets=bounds.token_buckets, skipped=skipped,
                rule=(bounds.cosine, bounds.overlap, bounds.strong_cosine, bounds.containment))


def _score_by_blocks(
    left: np.ndarray, right: np.ndarray, *, signatures: np.ndarray, counts: CountRows, shingles: ShingleBatch,
    blocks: list[tuple[int, int]], tf: np.ndarray, idf: np.ndarray, is_number: np.ndarray, needed: np.ndarray,
    norms: np.ndarray, numerics: np.ndarray, out: tuple[np.ndarray, ...], trial: _BoundsTrial | None = None,
    skipped: np.ndarray | None = None,
) -> None:
    """score_corpus_pairs' scores of the pairs (``left``, ``right``) into ``out``, a pair of blocks of
    documents at a time (the norms and numeric counts of a block's documents are filled the first time
    the block is read).

    With bounds, the sketches' test of every pair comes first, a block of left documents at a time
    (:func:`dedup.kernels.bound_pairs`: each left document is set up once, not once per block of right ones,
    and no right row is read): most candidates of a large corpus are chance collisions that it passes over.
    The pairs of a pair of blocks are then the others only, scored (and bounded further) as before."""
    size = len(blocks)
    block_of = np.repeat(np.arange(size, dtype=np.int32), [hi - lo for lo, hi in blocks])
    # Pairs grouped by the (unordered) pair of blocks of their documents, in their order within a group.
    a_block, b_block = block_of[left], block_of[right]
    del block_of
    code = np.minimum(a_block, b_block) * size + np.maximum(a_block, b_block)
    del a_block, b_block
    if size * size <= 1 << 16:
        code = code.astype(np.uint16)  # (numpy sorts 16-bit keys stably by radix: 10x faster on millions of pairs)
    order = np.argsort(code, kind="stable")
    cuts = np.searchsorted(code[order], np.arange(size * size + 1))
    del code
    if len(order) < 1 << 31:
        order = order.astype(np.int32)  # (on large corpora these are the largest arrays beside the rows' blocks)
    buffers = rowblocks.RowBuffers(counts, shingles, blocks)
    normed = np.zeros(size, dtype=bool)

    def load(a: int, b: int, picked: np.ndarray | None = None) -> tuple[rowblocks.Rows, rowblocks.BlockDocs]:
        rows, docs = buffers.load(a, b, picked)
        for k in (a, b):
            if not normed[k]:
                lo, hi = blocks[k]
                at = docs.index(lo)
                kernels.tfidf_norms(rows.indices, rows.counts, rows.offsets[at : at + hi - lo + 1], tf=tf, idf=idf,
                                    is_number=is_number, needed=needed[lo:hi], norms=norms[lo:hi],
                                    numerics=numerics[lo:hi])
                normed[k] = True
        return rows, docs

    sketched = trial is not None and trial.bounds is not None and size > 1
    ruled_out = np.zeros(len(left), dtype=bool)
    if sketched:
        sizes = shingles.sizes()
        starts = np.array([lo for lo, _ in blocks] + [blocks[-1][1]], dtype=np.int64)
        if bool(np.all(left[1:] >= left[:-1])):  # (as candidate_pairs gives them: each block's pairs are a range)
            by_left = None
            left_cuts = np.searchsorted(left, starts)
        else:
            by_left = np.argsort(left, kind="stable")
            left_cuts = np.searchsorted(left[by_left], starts)
        for a in range(size):
            picked = np.arange(left_cuts[a], left_cuts[a + 1]) if by_left is None else by_left[left_cuts[a] : left_cuts[a + 1]]
            if trial.bounds is None:  # type: ignore[union-attr]
                break
            if not len(picked) and not needed[blocks[a][0] : blocks[a][1]].any():
                continue
            rows, docs = load(a, a)  # (every block's norms, for the pairs of a pair of blocks below)
            if not len(picked):
                continue
            bounds = trial.bounds  # type: ignore[union-attr]
            lefts = left[picked]
            marks = kernels.bound_pairs(rows.indices, rows.counts, rows.offsets, rows.hashes, rows.shingle_offsets,
                                        sizes=sizes, tf=tf, idf=idf, norms=norms, left=docs.local(lefts),
                                        docs=(lefts, right[picked]), sketches=bounds.sketches,
                                        token_buckets=bounds.token_buckets,
                                        rule=(bounds.cosine, bounds.overlap, bounds.strong_cosine, bounds.containment))
            ruled_out[picked] = marks
            trial.record(marks)  # type: ignore[union-attr]
        for target in out:
            target[ruled_out] = 0
        if skipped is not None:
            skipped[ruled_out] = True
    for a in range(size):
        for b in range(a, size):
            picked = order[cuts[a * size + b] : cuts[a * size + b + 1]]
            if sketched:
                picked = picked[~ruled_out[picked]]
            if not len(picked):
                continue
            lefts, rights = left[picked], right[picked]
            if sketched and b != a and normed[b]:  # (after the sketches' test: block b's few rows these pairs read, not the block)
                rows, docs = load(a, b, kernels.unique(np.concatenate((lefts[lefts >= blocks[b][0]],
                                                                       rights[rights >= blocks[b][0]]))))
            else:
                rows, docs = load(a, b)
            bounds = trial.bounds if trial is not None else None
            marks = np.zeros(len(picked), dtype=bool)
            parts = kernels.score_rows(
                rows.indices, rows.counts, rows.offsets, rows.hashes, rows.shingle_offsets, signatures, tf=tf, idf=idf,
                is_number=is_number, norms=norms, left=docs.local(lefts), right=docs.local(rights), docs=(lefts, rights),
                **_bounding(bounds, marks),
            )
            for target, part in zip(out, parts):
                target[picked] = part
            if bounds is not None:
                if not sketched:  # (else the trial was judged on the sketches' test)
                    trial.record(marks)  # type: ignore[union-attr]
                if skipped is not None:
                    skipped[picked] = marks


def score_pairs(
    pairs: np.ndarray,
    *,
    signatures: np.ndarray,
    tfidf: sparse.csr_matrix,
    shingles: ShingleBatch,
    tokens: TokenBatch | None = None,
    rows: tuple[np.ndarray, np.ndarray] | None = None,
    is_number: np.ndarray | None = None,
    numbers: sparse.csr_matrix | None = None,
    engine: str = "auto",
) -> PairScores:
    """All scores of each candidate pair (an (m, 2) array of document indices).

    ``rows`` gives, for each pair, the rows of ``tfidf``/``shingles``/``tokens``
    (or ``numbers``, the :func:`number_matrix` of those rows, given instead of
    ``tokens``) holding its two documents when those hold only a subset of the
    corpus (default: the document indices themselves); ``is_number`` marks the
    vocabulary's numeric tokens when already known; ``engine`` ("auto", "numba", "numpy")
    picks the kernels (the scores are the same)."""
    left, right = pairs[:, 0], pairs[:, 1]
    li, ri = (left, right) if rows is None else rows
    common = common_shingles(shingles, li, ri, engine=engine)
    sizes = shingles.sizes()
    smaller = np.minimum(sizes[li], sizes[ri])
    agree, few = number_agreement(tokens, li, ri, is_number=is_number, engine=engine, numbers=numbers)
    return PairScores(
        left=left,
        right=right,
        jaccard=estimate_jaccard(signatures[left], signatures[right]),
        cosine=row_dots(tfidf, li, ri, engine=engine),
        containment=np.divide(common, smaller, out=np.zeros(len(left)), where=smaller > 0),
        common=common,
        numbers=agree,
        few_numbers=few,
    )


def is_copy(
    scores: PairScores, *, cosine: float, overlap: float, strong_cosine: float, containment: float, numbers: float
) -> np.ndarray:
    """The confirmation rule. The texts agree in wording:

    - TF-IDF cosine >= ``cosine`` with at least ``overlap`` of the shorter
      text's shingles in the other (same vocabulary *and* same passages), or
    - cosine >= ``strong_cosine`` (restyled copies that broke many shingles), or
    - containment >= ``containment`` (truncated copies, short items quoted whole);

    and in facts: the figures the one with fewer numbers reports are (mostly,
    ``numbers``) in the other, unless it has fewer than three.
    """
    worded = worded_alike(scores.cosine, scores.containment, cosine=cosine, overlap=overlap, strong_cosine=strong_cosine,
                          containment=containment)
    factual = scores.few_numbers | (scores.numbers >= numbers)
    return worded & factual


def worded_alike(
    cosine_of: np.ndarray, containment_of: np.ndarray, *, cosine: float, overlap: float, strong_cosine: float,
    containment: float,
) -> np.ndarray:
    """The wording half of :func:`is_copy`'s rule (it only grows with both scores, so upper bounds of
    the scores give an upper bound of the rule)."""
    return (
        ((cosine_of >= cosine) & (containment_of >= overlap)) | (cosine_of >= strong_cosine) | (containment_of >= containment)
    )
