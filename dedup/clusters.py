"""Group confirmed pairs into stories, guarded against digests that would chain different stories."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from dedup import kernels


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` nodes for the undirected edges ``left``-``right``, numbered
    in order of each component's smallest node: by a compiled union-find when the kernels are in use, else
    by scipy (imported only then)."""
    if kernels.loaded():
        return kernels.components(n, left, right)
    from scipy import sparse
    from scipy.sparse.csgraph import connected_components

    graph = sparse.coo_matrix((np.ones(len(left), dtype=np.int8), (left, right)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


def link_stories(n: int, confirmed: tuple[np.ndarray, np.ndarray], *, digests: np.ndarray) -> np.ndarray:
    """Story label of every document: components of the confirmed pairs that involve no digest."""
    left, right = confirmed
    keep = ~(digests[left] | digests[right])
    return components(n, left[keep], right[keep])


def order_key(dates: np.ndarray) -> np.ndarray:
    """Document order for choosing cluster ids: by date (missing last), then input position."""
    return np.lexsort((np.arange(len(dates)), dates))


@dataclass(frozen=True)
class Stories:
    """Cluster assignment: ``labels[d]`` is the index of the cluster's first document (its id)."""

    labels: np.ndarray  # int64: index of each document's cluster id document
    canonical: np.ndarray  # int64: index of each document's cluster canonical document


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
    return Stories(labels=labels, canonical=best[components])
