"""Score candidate pairs (estimated Jaccard, TF-IDF cosine, shingle containment) and confirm copies."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from sklearn.feature_extraction.text import TfidfTransformer

from dedup.fingerprint import estimate_jaccard
from dedup.shingle import ShingleBatch
from dedup.tokenize import TokenBatch


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


def tfidf_matrix(tokens: TokenBatch) -> sparse.csr_matrix:
    """L2-normalised TF-IDF rows (sublinear tf, smoothed idf) fitted on this batch's documents."""
    docs = len(tokens)
    rows = np.repeat(np.arange(docs, dtype=np.int64), tokens.lengths())
    counts = sparse.csr_matrix(
        (np.ones(len(tokens.ids), dtype=np.float64), (rows, tokens.ids)), shape=(docs, len(tokens.vocab))
    )
    counts.sum_duplicates()
    return TfidfTransformer(sublinear_tf=True).fit_transform(counts).tocsr()


def row_dots(matrix: sparse.csr_matrix, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Dot products of row pairs of a sparse matrix, vectorised."""
    if len(left) == 0:
        return np.zeros(0)
    return np.asarray(matrix[left].multiply(matrix[right]).sum(axis=1)).ravel()


def _shingle_incidence(rows_of: list[np.ndarray]) -> sparse.csr_matrix:
    """Binary row x shingle matrix of the given sorted distinct shingle arrays."""
    sizes = [len(r) for r in rows_of]
    flat = np.concatenate(rows_of) if rows_of else np.zeros(0, np.uint32)
    _, cols = np.unique(flat, return_inverse=True)
    rows = np.repeat(np.arange(len(rows_of), dtype=np.int64), sizes)
    return sparse.csr_matrix(
        (np.ones(len(flat), dtype=np.float64), (rows, cols.ravel())), shape=(len(rows_of), int(cols.max(initial=-1)) + 1)
    )


def common_shingles(
    shingles: ShingleBatch, left: np.ndarray, right: np.ndarray, *, other: ShingleBatch | None = None
) -> np.ndarray:
    """|A & B| for each pair: A = ``shingles`` row ``left[k]``, B = row ``right[k]`` of ``other``
    (default: of ``shingles`` too)."""
    if len(left) == 0:
        return np.zeros(0, dtype=np.int64)
    other = shingles if other is None else other
    left_docs, left_inv = np.unique(left, return_inverse=True)
    right_docs, right_inv = np.unique(right, return_inverse=True)
    rows = [shingles.doc(int(d)) for d in left_docs] + [other.doc(int(d)) for d in right_docs]
    matrix = _shingle_incidence(rows)
    return np.rint(row_dots(matrix, left_inv.ravel(), right_inv.ravel() + len(left_docs))).astype(np.int64)


def number_agreement(tokens: TokenBatch, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Share of the distinct numbers of the pair member with fewer numbers that the other also has,
    and whether that member has fewer than 3 numbers (too few to judge).

    Copies of a story carry the same figures; templated reports (monthly
    statistics, earnings) reuse the wording with different figures.
    """
    is_number = np.fromiter((t.isdigit() for t in tokens.vocab), dtype=bool, count=len(tokens.vocab))
    rows = np.repeat(np.arange(len(tokens), dtype=np.int64), tokens.lengths())
    keep = is_number[tokens.ids] if len(tokens.ids) else np.zeros(0, bool)
    matrix = sparse.csr_matrix(
        (np.ones(int(keep.sum())), (rows[keep], tokens.ids[keep])), shape=(len(tokens), len(tokens.vocab))
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    counts = np.diff(matrix.indptr)
    fewer = np.minimum(counts[left], counts[right])
    common = row_dots(matrix, left, right)
    agreement = np.divide(common, fewer, out=np.ones(len(left)), where=fewer > 0)
    return agreement, fewer < 3


def score_pairs(
    pairs: np.ndarray, *, signatures: np.ndarray, tfidf: sparse.csr_matrix, shingles: ShingleBatch, tokens: TokenBatch
) -> PairScores:
    """All scores of each candidate pair (an (m, 2) array of document indices)."""
    left, right = pairs[:, 0], pairs[:, 1]
    common = common_shingles(shingles, left, right)
    smaller = np.minimum(shingles.sizes()[left], shingles.sizes()[right])
    numbers, few = number_agreement(tokens, left, right)
    return PairScores(
        left=left,
        right=right,
        jaccard=estimate_jaccard(signatures[left], signatures[right]),
        cosine=row_dots(tfidf, left, right),
        containment=np.divide(common, smaller, out=np.zeros(len(left)), where=smaller > 0),
        common=common,
        numbers=numbers,
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
    worded = (
        ((scores.cosine >= cosine) & (scores.containment >= overlap))
        | (scores.cosine >= strong_cosine)
        | (scores.containment >= containment)
    )
    factual = scores.few_numbers | (scores.numbers >= numbers)
    return worded & factual
