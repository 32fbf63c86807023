"""Find digests: documents that quote several different stories (roundups) and must not join any."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dedup.candidates import query_pairs
from dedup.clusters import components
from dedup.confirm import PairScores, common_shingles
from dedup.fingerprint import signatures
from dedup.shingle import ShingleBatch, longest_run, shingle_sequence
from dedup.tokenize import _UNSPACED_RUN, TokenBatch, concat_offsets


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
    evidence = digest_evidence(shingles, sigs, scores, confirmed, dominant_share=dominant_share,
                               residual_threshold=residual_threshold, seed=seed)
    digest = evidence.suspect & (evidence.other_share >= source_share)
    for doc in np.flatnonzero(digest).tolist():
        run = _quoted_run(tokens, shingles, doc, int(evidence.source[doc]), evidence.main_mates[doc], n=shingle_size)
        digest[doc] = run >= source_run * _run_scale(tokens, doc)
    if compilations is not None:
        digest |= evidence.suspect & compilations
    return digest


def _run_scale(tokens: TokenBatch, doc: int) -> int:
    """How many shingles make a passage of ``doc`` as long as one word shingle: 1 for spaced
    scripts, 3 when most tokens are character bigrams of an unspaced script (Chinese, Japanese,
    Thai), whose shingles cover a few characters rather than a few words."""
    words = tokens.doc_tokens(doc)
    unspaced = sum(1 for t in words if _UNSPACED_RUN.match(t))
    return 3 if unspaced * 2 > len(words) else 1


def _quoted_run(tokens: TokenBatch, shingles: ShingleBatch, doc: int, source: int, mates: np.ndarray, *, n: int) -> int:
    """Longest run of consecutive shingles of ``doc`` found in ``source`` but in none of ``mates``."""
    sequence = shingle_sequence(tokens, doc, n=n)
    quoted = np.isin(sequence, shingles.doc(source))
    if len(mates):
        quoted &= ~np.isin(sequence, np.concatenate([shingles.doc(int(m)) for m in mates]))
    return longest_run(quoted)


_RELATED = 0.2  # two partners sharing this much of the smaller one's passages tell one story


@dataclass(frozen=True)
class Evidence:
    """Per document: whether no confirmed partner explains most of it (``suspect``), the largest share
    of it explained by a document of another story (``other_share``) and that document (``source``, -1
    if none); for suspects, their confirmed partners in their main story (``main_mates``)."""

    suspect: np.ndarray
    other_share: np.ndarray
    source: np.ndarray
    main_mates: dict[int, np.ndarray]


def digest_evidence(
    shingles: ShingleBatch,
    sigs: np.ndarray,
    scores: PairScores,
    confirmed: PairScores,
    *,
    dominant_share: float,
    residual_threshold: float,
    seed: int,
) -> Evidence:
    """What :func:`find_digests` decides on, for every document."""
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
        return Evidence(suspect=suspect, other_share=other, source=np.full(n, -1, dtype=np.int64), main_mates={})
    clean = ~(suspect[confirmed.left] | suspect[confirmed.right])
    story = components(n, confirmed.left[clean], confirmed.right[clean])
    # The main story of a suspect: that of its best-covering confirmed partner
    # (a suspect partner counts with the story of its own best partner).
    order = np.lexsort((share, doc))
    best_mate = np.full(n, -1, dtype=np.int64)
    best_mate[doc[order]] = mate[order]
    story_of = story.copy()
    story_of[suspect] = story[best_mate[suspect]]
    main = np.where(best_mate >= 0, story_of[np.maximum(best_mate, 0)], -1)

    # Residuals: what the partners of the main story leave unexplained. A partner is in the main
    # story when its story is, or when it shares passages with the best partner directly.
    n64 = np.int64(n)
    related = scores.containment >= _RELATED
    codes = np.unique(np.minimum(scores.left[related], scores.right[related]) * n64
                      + np.maximum(scores.left[related], scores.right[related]))
    best = best_mate[doc]
    pair_code = np.minimum(mate, best) * n64 + np.maximum(mate, best)
    pos = np.minimum(np.searchsorted(codes, pair_code), max(len(codes) - 1, 0))
    near_best = (codes[pos] == pair_code) if len(codes) else np.zeros(len(doc), dtype=bool)
    in_main = (story_of[mate] == main[doc]) | near_best
    doc_main, mate_main = doc[in_main], mate[in_main]
    order = np.argsort(doc_main, kind="stable")
    doc_sorted, mate_sorted = doc_main[order], mate_main[order]
    ids = np.flatnonzero(suspect)
    row_of = np.full(n, -1, dtype=np.int64)
    row_of[ids] = np.arange(len(ids))
    lo = np.searchsorted(doc_sorted, ids, side="left")
    hi = np.searchsorted(doc_sorted, ids, side="right")
    main_mates = {int(d): mate_sorted[a:b] for d, a, b in zip(ids.tolist(), lo.tolist(), hi.tolist())}
    residual = _residuals(shingles, ids, [main_mates[int(d)] for d in ids.tolist()])
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
    keep = (f_doc != f_mate) & (story_of[f_mate] != main[f_doc])
    f_doc, f_mate = f_doc[keep], f_mate[keep]
    common = common_shingles(residual, row_of[f_doc], f_mate, other=shingles)
    f_share = common / sizes[f_doc] if len(f_doc) else np.zeros(0)
    order = np.lexsort((f_share, f_doc))
    other[f_doc[order]] = f_share[order]
    source = np.full(n, -1, dtype=np.int64)
    source[f_doc[order]] = f_mate[order]
    return Evidence(suspect=suspect, other_share=other, source=source, main_mates=main_mates)
