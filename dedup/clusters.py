"""Group confirmed pairs into stories, guarded against digests that would chain different stories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.sparse.csgraph import connected_components


@dataclass(frozen=True)
class Overlaps:
    """How much text each scored pair shares: ``common[k]`` shingles of pair ``(left[k], right[k])``."""

    left: np.ndarray
    right: np.ndarray
    common: np.ndarray  # shared distinct shingles
    sizes: np.ndarray  # distinct shingles of every document (indexed by document)

    def coverage(self) -> tuple[np.ndarray, np.ndarray]:
        """(share of left covered by right, share of right covered by left) for each pair."""
        left_size = np.maximum(self.sizes[self.left], 1)
        right_size = np.maximum(self.sizes[self.right], 1)
        return self.common / left_size, self.common / right_size


def _components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    graph = sparse.coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def _directed(left: np.ndarray, right: np.ndarray, *values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Each undirected pair as two directed rows (doc, partner, values...)."""
    return (np.concatenate((left, right)), np.concatenate((right, left))) + tuple(np.concatenate((v, v)) for v in values)


def _pair_codes(left: np.ndarray, right: np.ndarray, n: int) -> np.ndarray:
    return np.minimum(left, right).astype(np.int64) * n + np.maximum(left, right)


def find_digests(
    n: int,
    related: tuple[np.ndarray, np.ndarray],
    overlaps: Overlaps,
    *,
    source_share: float,
    dominant_share: float,
) -> np.ndarray:
    """Documents that quote several different stories without being a copy of any one of them.

    A document's *sources* are the documents that cover at least
    ``source_share`` of its shingles. It is a digest (a roundup, a "top
    stories" page) when no source covers ``dominant_share`` of it and two of
    its sources are unrelated to each other (not a ``related`` pair): copies
    of one story are related among themselves, the stories a digest quotes
    are not.
    """
    cover_left, cover_right = overlaps.coverage()
    doc, partner = _directed(overlaps.left, overlaps.right)
    share = np.concatenate((cover_left, cover_right))
    is_source = share >= source_share
    doc, partner, share = doc[is_source], partner[is_source], share[is_source]
    best = np.zeros(n)
    np.maximum.at(best, doc, share)
    suspect = (np.bincount(doc, minlength=n) >= 2) & (best < dominant_share)
    on_suspect = suspect[doc]
    doc, partner = doc[on_suspect], partner[on_suspect]
    if len(doc) == 0:
        return np.zeros(n, dtype=bool)
    # All pairs of sources of each suspect (suspects have few sources).
    order = np.argsort(doc, kind="stable")
    doc, partner = doc[order], partner[order]
    starts = np.flatnonzero(np.r_[True, doc[1:] != doc[:-1]])
    counts = np.diff(np.r_[starts, len(doc)])
    first, second, owner = [], [], []
    for size in np.unique(counts):
        group = starts[counts == size]
        for i in range(size):
            for j in range(i + 1, size):
                first.append(partner[group + i])
                second.append(partner[group + j])
                owner.append(doc[group])
    first_a, second_a, owner_a = np.concatenate(first), np.concatenate(second), np.concatenate(owner)
    known = np.unique(_pair_codes(*related, n))
    codes = _pair_codes(first_a, second_a, n)
    pos = np.searchsorted(known, codes)
    is_related = (pos < len(known)) & (known[np.minimum(pos, len(known) - 1)] == codes) if len(known) else np.zeros(len(codes), bool)
    digest = np.zeros(n, dtype=bool)
    digest[owner_a[~is_related]] = True
    return digest


def link_stories(n: int, confirmed: tuple[np.ndarray, np.ndarray], *, digests: np.ndarray) -> np.ndarray:
    """Story label of every document: components of the confirmed pairs that involve no digest."""
    left, right = confirmed
    keep = ~(digests[left] | digests[right])
    return _components(n, left[keep], right[keep])


def order_key(dates: np.ndarray) -> np.ndarray:
    """Document order for choosing cluster ids: by date (missing last), then input position."""
    return np.lexsort((np.arange(len(dates)), dates))


@dataclass(frozen=True)
class Stories:
    """Cluster assignment: ``labels[d]`` is the index of the cluster's first document (its id)."""

    labels: np.ndarray  # int64: index of each document's cluster id document
    canonical: np.ndarray  # int64: index of each document's cluster canonical document
    sizes: np.ndarray  # int64: size of each document's cluster


def name_stories(components: np.ndarray, *, dates: np.ndarray, centrality: np.ndarray) -> Stories:
    """Name each component by its earliest member and pick its canonical (most central) member."""
    n = len(components)
    order = order_key(dates)
    rank = np.empty(n, dtype=np.int64)
    rank[order] = np.arange(n)
    first = np.full(components.max(initial=-1) + 1, n, dtype=np.int64)
    np.minimum.at(first, components, rank)
    labels = order[first[components]]
    # Canonical: highest centrality, ties to the earliest.
    pick = np.lexsort((rank, -centrality, components))
    best = np.empty(len(first), dtype=np.int64)
    best[components[pick[::-1]]] = pick[::-1]
    sizes = np.bincount(components)[components]
    return Stories(labels=labels, canonical=best[components], sizes=sizes)
