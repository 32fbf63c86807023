"""Find digests: documents that quote several different stories (roundups) and must not join any."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from dedup import kernels
from dedup.candidates import lsh_params
from dedup.clusters import components
from dedup.confirm import PairScores, gather_rows
from dedup.fingerprint import signatures
from dedup.shingle import ShingleBatch, longest_run, shingle_sequence
from dedup.tokenize import _UNSPACED_RUN, TokenBatch, concat_offsets


_RESIDUAL_CODES = 1 << 22  # shingles of suspects and their partners worked on at once by _residuals (32 MB of codes)


def _residuals(shingles: ShingleBatch, suspects: np.ndarray, partners: list[np.ndarray]) -> ShingleBatch:
    """For each suspect, its shingles that none of its confirmed partners has (sorted, as its row).

    Suspects are taken a batch at a time: each shingle of a suspect or of one of its partners becomes a code
    (its suspect's number, then the hash), and a suspect's codes that no partner's code equals are kept
    (one sort and one search for the batch, instead of a set difference per suspect)."""
    parts: list[np.ndarray] = []
    sizes = np.zeros(len(suspects), dtype=np.int64)
    row_sizes = shingles.sizes()
    cost = row_sizes[suspects] + np.array([row_sizes[m].sum() for m in partners], dtype=np.int64)
    ends = np.cumsum(cost)  # (a batch: at least one suspect, then as many as _RESIDUAL_CODES allow)
    start = 0
    while start < len(suspects):
        stop = max(start + 1, int(np.searchsorted(ends, ends[start] - cost[start] + _RESIDUAL_CODES, side="right")))
        count = np.arange(stop - start, dtype=np.uint64)
        own, own_offsets = gather_rows(shingles.hashes, shingles.offsets, suspects[start:stop])
        own_owner = np.repeat(count, np.diff(own_offsets))
        mates = np.concatenate(partners[start:stop])
        theirs, their_offsets = gather_rows(shingles.hashes, shingles.offsets, mates)
        their_owner = np.repeat(np.repeat(count, [len(m) for m in partners[start:stop]]), np.diff(their_offsets))
        own_codes, their_codes = _codes(own, own_owner), kernels.unique(_codes(theirs, their_owner))
        keep = np.ones(len(own_codes), dtype=bool)
        if len(their_codes):
            keep = their_codes[np.minimum(np.searchsorted(their_codes, own_codes), len(their_codes) - 1)] != own_codes
        parts.append(np.asarray(own)[keep])
        sizes[start:stop] = np.bincount(own_owner[keep].astype(np.int64), minlength=stop - start)
        start = stop
    hashes = np.concatenate(parts) if parts else np.zeros(0, np.uint32)
    return ShingleBatch(hashes=hashes.astype(np.uint32), offsets=concat_offsets(sizes.tolist()))


def _codes(hashes: np.ndarray, owners: np.ndarray) -> np.ndarray:
    """Each shingle hash with its owner's number above it, as one sortable uint64."""
    return (owners << np.uint64(32)) | np.asarray(hashes, dtype=np.uint64)


def find_digests(
    shingles: ShingleBatch,
    sigs: np.ndarray,
    candidates: np.ndarray,
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
    engine: str = "auto",
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
    digest without further evidence. ``candidates`` are the (m, 2) candidate pairs, ``confirmed`` the
    scores of the confirmed ones.
    """
    evidence = digest_evidence(shingles, sigs, candidates, confirmed, dominant_share=dominant_share,
                               residual_threshold=residual_threshold, seed=seed, engine=engine)
    digest = evidence.suspect & (evidence.other_share >= source_share) & (evidence.source >= 0)
    for doc in np.flatnonzero(digest).tolist():
        run = _quoted_run(tokens, shingles, doc, int(evidence.source[doc]), evidence.main_mates[doc], n=shingle_size)
        # (The scale is 1 or 3: it is read only when it decides.)
        digest[doc] = run >= source_run and (run >= 3 * source_run or run >= source_run * _run_scale(tokens, doc))
    if compilations is not None:
        digest |= evidence.suspect & compilations
    return digest


def _run_scale(tokens: TokenBatch, doc: int) -> int:
    """How many shingles make a passage of ``doc`` as long as one word shingle: 1 for spaced
    scripts, 3 (find_digests reads no other value) when most tokens are character bigrams of an
    unspaced script (Chinese, Japanese, Thai), whose shingles cover a few characters rather than a few words."""
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


def residual_sources(
    residuals: ShingleBatch, shingles: ShingleBatch, *, story: np.ndarray, owner: np.ndarray, owner_story: np.ndarray,
    residual_signatures: np.ndarray, signatures: np.ndarray, threshold: float, candidates: np.ndarray,
    engine: str = "auto",
) -> tuple[np.ndarray, np.ndarray]:
    """For each residual row r: the document sharing the most shingles with it (ties: the later
    document; -1 when none shares any), and how many it shares, among the documents that are
    neither ``owner[r]`` nor of story ``owner_story[r]`` and that LSH at ``threshold`` finds for
    r's signature (what :func:`dedup.candidates.query_pairs` returns) or whose code
    ``r * len(signatures) + document`` is in the sorted ``candidates``.

    ``engine`` "numba" scans every document's shingles once in a compiled kernel, "numpy" joins
    them with the residual shingles; the results are equal."""
    rows = len(residuals)
    best_common = np.zeros(rows, dtype=np.int64)
    best_doc = np.full(rows, -1, dtype=np.int64)
    if rows == 0 or len(residuals.hashes) == 0:
        return best_common, best_doc
    bands, width = lsh_params(threshold, signatures.shape[1])
    hashes, offsets = shingles.hashes, shingles.offsets
    if kernels.use_kernels(engine, int(offsets[-1])):  # (in memory, or a DiskArray read a block at a time)
        return kernels.residual_sources(
            residuals.hashes, residuals.offsets, hashes, offsets, story=story, owner=owner, owner_story=owner_story,
            residual_signatures=residual_signatures, signatures=signatures, bands=bands, rows_per_band=width,
            candidates=candidates,
        )
    n = len(offsets) - 1
    hashes = np.asarray(hashes)
    res_row = np.repeat(np.arange(rows, dtype=np.int64), residuals.sizes())
    order = np.argsort(residuals.hashes, kind="stable")
    res_hashes, res_row = residuals.hashes[order], res_row[order]
    lo = np.searchsorted(res_hashes, hashes, side="left")
    hits = np.searchsorted(res_hashes, hashes, side="right") - lo
    doc = np.repeat(np.repeat(np.arange(n, dtype=np.int64), np.diff(offsets)), hits)  # per (shingle, residual row)
    within = np.arange(int(hits.sum()), dtype=np.int64) - np.repeat(np.cumsum(hits) - hits, hits)
    row = res_row[np.repeat(lo, hits) + within]
    keep = (doc != owner[row]) & (story[doc] != owner_story[row])
    codes, common = np.unique(row[keep] * np.int64(n) + doc[keep], return_counts=True)
    row, doc = codes // n, codes % n
    found = np.isin(codes, candidates)
    for band in range(bands):
        cols = slice(band * width, (band + 1) * width)
        found |= np.all(residual_signatures[row, cols] == signatures[doc, cols], axis=1)
    row, doc, common = row[found], doc[found], common[found]
    if len(row) == 0:
        return best_common, best_doc
    order = np.lexsort((doc, common, row))  # the last of each row: most shared, then latest document
    last = order[np.flatnonzero(np.r_[row[order][1:] != row[order][:-1], True])]
    best_common[row[last]] = common[last]
    best_doc[row[last]] = doc[last]
    return best_common, best_doc


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


def _related_candidates(shingles: ShingleBatch, candidates: np.ndarray, a: np.ndarray, b: np.ndarray, *,
                        ask: np.ndarray) -> np.ndarray:
    """For the pairs (a[k], b[k]) where ``ask`` is set: whether they are among the (m, 2) ``candidates`` and
    share at least _RELATED of the smaller one's shingles (their containment, computed here for these few
    pairs as :func:`dedup.confirm.score_pairs` computes it); False elsewhere."""
    n64 = np.int64(len(shingles))
    codes = np.minimum(candidates[:, 0], candidates[:, 1]) * n64 + np.maximum(candidates[:, 0], candidates[:, 1])
    if len(codes) > 1 and not bool(np.all(codes[1:] > codes[:-1])):  # (candidate_pairs gives them sorted)
        codes = kernels.unique(codes)
    out = np.zeros(len(a), dtype=bool)
    asked = np.flatnonzero(ask)
    if not len(codes) or not len(asked):
        return out
    pair_code = np.minimum(a[asked], b[asked]) * n64 + np.maximum(a[asked], b[asked])
    pos = np.minimum(np.searchsorted(codes, pair_code), len(codes) - 1)
    asked = asked[codes[pos] == pair_code]
    common = np.array([len(np.intersect1d(shingles.doc(int(x)), shingles.doc(int(y)), assume_unique=True))
                       for x, y in zip(a[asked].tolist(), b[asked].tolist())], dtype=np.int64)
    sizes = shingles.sizes()
    smaller = np.minimum(sizes[a[asked]], sizes[b[asked]])
    out[asked] = np.divide(common, smaller, out=np.zeros(len(asked)), where=smaller > 0) >= _RELATED
    return out


def digest_evidence(
    shingles: ShingleBatch,
    sigs: np.ndarray,
    candidates: np.ndarray,
    confirmed: PairScores,
    *,
    dominant_share: float,
    residual_threshold: float,
    seed: int,
    engine: str = "auto",
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
    # story when its story is, or when it shares passages with the best partner directly (they are
    # a candidate pair sharing _RELATED of the smaller one's shingles).
    n64 = np.int64(n)
    left, right = candidates[:, 0], candidates[:, 1]
    best = best_mate[doc]
    near_best = _related_candidates(shingles, candidates, mate, best, ask=suspect[doc] & (story_of[mate] != main[doc]))
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
    # Documents that may explain a residual: the suspect's candidates, and the residual's own LSH
    # candidates (a digest quotes its other stories too briefly for the whole document to be their
    # candidate); all documents' shingles are scanned once for what they share with the residuals.
    on = suspect[left] | suspect[right]
    cand_doc = np.concatenate((left[on], right[on]))
    cand_mate = np.concatenate((right[on], left[on]))
    mine = suspect[cand_doc]
    candidates = kernels.unique(row_of[cand_doc[mine]] * n64 + cand_mate[mine])
    common, found = residual_sources(
        residual, shingles, story=story_of, owner=ids, owner_story=main[ids],
        residual_signatures=signatures(residual, num_perm=sigs.shape[1], seed=seed, engine=kernels.when_loaded(engine)),
        signatures=sigs,
        threshold=residual_threshold, candidates=candidates, engine=engine,
    )
    other[ids] = common / sizes[ids]
    source = np.full(n, -1, dtype=np.int64)
    source[ids] = found
    return Evidence(suspect=suspect, other_share=other, source=source, main_mates=main_mates)
