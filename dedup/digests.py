"""Find digests: documents that quote several different stories (roundups) and must not join any."""

from __future__ import annotations

import numpy as np
from dedup.candidates import query_pairs
from dedup.clusters import components
from dedup.confirm import PairScores, common_shingles
from dedup.fingerprint import signatures
from dedup.shingle import ShingleBatch, longest_run, shingle_sequence
from dedup.tokenize import TokenBatch, concat_offsets


def _residuals(shingles: ShingleBatch, suspects: np.ndarray, partners: list[np.ndarray]) -> ShingleBatch:
    """For each suspect, its shingles that none of its confirmed partners has."""
    parts = []
    for doc, mates in zip(suspects.tolist(), partners):
        explained = np.concatenate([shingles.doc(int(m)) for m in mates])
        parts.append(np.setdiff1d(shingles.doc(doc), explained, assume_unique=False))
    hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    return ShingleBatch(hashes=hashes.astype(np.uint32), offsets=concat_offsets([len(p) for p in parts]))


def find_digests(
    shingles: ShingleBatch,
    sigs: np.ndarray,
    scores: PairScores,
    confirmed: PairScores,
    *,
    tokens: TokenBatch,
    shingle_size: int,
    source_share: float,
    source_run: int,
    dominant_share: float,
    residual_threshold: float,
    seed: int,
    compilations: np.ndarray | None = None,
) -> np.ndarray:
    """Boolean mask of the documents that are digests.

    A *suspect* has confirmed partners but none of them covers
    ``dominant_share`` of its shingles: a truncated or restyled copy is
    mostly explained by its original, a digest is not. The part of a
    suspect that its partners do not explain (its residual) is
    fingerprinted and looked up among all documents. The suspect is a
    digest when a document of another story (components of the confirmed
    pairs between non-suspects) covers at least ``source_share`` of its
    unexplained part and quotes a passage of it: ``source_run`` consecutive
    shingles (stock phrases that templated reports share are shorter).
    A suspect marked in ``compilations`` (e.g. several datelines) is a
    digest without further evidence.
    """
    suspect, other, source = digest_evidence(shingles, sigs, scores, confirmed, dominant_share=dominant_share,
                                             residual_threshold=residual_threshold, seed=seed)
    digest = suspect & (other >= source_share)
    for doc in np.flatnonzero(digest).tolist():
        digest[doc] = _quoted_run(tokens, shingles, doc, int(source[doc]), confirmed, n=shingle_size) >= source_run
    if compilations is not None:
        digest |= suspect & compilations
    return digest


def _quoted_run(tokens: TokenBatch, shingles: ShingleBatch, doc: int, source: int, confirmed: PairScores, *, n: int) -> int:
    """Longest run of consecutive shingles of ``doc`` found in ``source`` but in none of ``doc``'s confirmed partners."""
    mates = np.concatenate((confirmed.right[confirmed.left == doc], confirmed.left[confirmed.right == doc]))
    sequence = shingle_sequence(tokens, doc, n=n)
    quoted = np.isin(sequence, shingles.doc(source))
    if len(mates):
        quoted &= ~np.isin(sequence, np.concatenate([shingles.doc(int(m)) for m in mates]))
    return longest_run(quoted)


def digest_evidence(
    shingles: ShingleBatch,
    sigs: np.ndarray,
    scores: PairScores,
    confirmed: PairScores,
    *,
    dominant_share: float,
    residual_threshold: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(suspect mask, largest share of each document covered by a document of another story, that document or -1)."""
    n = len(shingles)
    sizes = np.maximum(shingles.sizes(), 1)
    doc = np.concatenate((confirmed.left, confirmed.right))
    mate = np.concatenate((confirmed.right, confirmed.left))
    share = np.concatenate((confirmed.common, confirmed.common)) / sizes[doc]
    best = np.zeros(n)
    np.maximum.at(best, doc, share)
    suspect = (np.bincount(doc, minlength=n) > 0) & (best < dominant_share)
    other = np.zeros(n)
    if not suspect.any():
        return suspect, other, np.full(n, -1, dtype=np.int64)
    clean = ~(suspect[confirmed.left] | suspect[confirmed.right])
    story = components(n, confirmed.left[clean], confirmed.right[clean])
    # The main story of a suspect: that of its best-covering confirmed partner.
    order = np.lexsort((share, doc))
    main = np.full(n, -1, dtype=np.int64)
    main[doc[order]] = story[mate[order]]

    # Residuals: what the confirmed partners leave unexplained.
    order = np.argsort(doc, kind="stable")
    doc_sorted, mate_sorted = doc[order], mate[order]
    ids = np.flatnonzero(suspect)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[ids] = np.arange(len(ids))
    lo = np.searchsorted(doc_sorted, ids, side="left")
    hi = np.searchsorted(doc_sorted, ids, side="right")
    residual = _residuals(shingles, ids, [mate_sorted[a:b] for a, b in zip(lo.tolist(), hi.tolist())])
    # Documents that may explain a residual: the suspect's candidates, and
    # the residual's own LSH candidates (a digest quotes its other stories
    # too briefly for the whole document to be their candidate).
    res_sigs = signatures(residual, num_perm=sigs.shape[1], seed=seed)
    found = query_pairs(res_sigs, sigs, threshold=residual_threshold)
    cand_doc = np.concatenate((scores.left, scores.right))
    cand_mate = np.concatenate((scores.right, scores.left))
    on = suspect[cand_doc]
    f_doc = np.concatenate((cand_doc[on], ids[found[:, 0]]))
    f_mate = np.concatenate((cand_mate[on], found[:, 1]))
    unique = np.unique(np.stack((f_doc, f_mate), axis=1), axis=0)
    f_doc, f_mate = unique[:, 0], unique[:, 1]
    # A suspect source belongs to the story of its best partner.
    story_of = np.where(suspect, main, story)
    keep = (f_doc != f_mate) & (story_of[f_mate] != main[f_doc])
    f_doc, f_mate = f_doc[keep], f_mate[keep]
    common = common_shingles(residual, row_of[f_doc], f_mate, other=shingles)
    f_share = common / sizes[f_doc] if len(f_doc) else np.zeros(0)
    order = np.lexsort((f_share, f_doc))
    other[f_doc[order]] = f_share[order]
    source = np.full(n, -1, dtype=np.int64)
    source[f_doc[order]] = f_mate[order]
    return suspect, other, source
