"""End-to-end jobs behind the CLI commands: documents in, result files or index updates out."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable

from dedup.document import Document
from dedup.index import DEFAULT, Index
from dedup.pipeline import ClusterResult, cluster, iter_pairs, iter_rows
from dedup.write import Format, check_writable, write_output

OUTPUT_COLUMNS = ["id", "cluster_id", "cluster_size", "canonical", "is_canonical"]
PAIR_COLUMNS = ["a", "b", "cluster_id", "jaccard", "cosine", "containment", "numbers"]


def run_cluster_job(
    docs: Iterable[Document],
    *,
    output: str | None,
    fmt: str = "jsonl",
    pairs_path: str | None = None,
    progress: Callable[[str], None] | None = None,
    **settings: object,
) -> ClusterResult:
    """Cluster ``docs`` and write one record per document to ``output`` (stdout when None),
    and the confirmed pairs to ``pairs_path`` (JSONL) when given. Files are written atomically; that they can be
    is checked first (OutputError), not after clustering."""
    check_writable(output)
    check_writable(pairs_path)
    result = cluster(docs, progress=progress, **settings)
    started = time.perf_counter()
    write_output(output, iter_rows(result), fmt=Format(fmt), columns=OUTPUT_COLUMNS)
    if pairs_path is not None:
        write_output(pairs_path, iter_pairs(result), fmt=Format.JSONL, columns=PAIR_COLUMNS)
    result.stats["seconds_write"] = time.perf_counter() - started
    result.stats["seconds"] = result.stats.get("seconds", 0.0) + result.stats["seconds_write"]
    return result


def _batches(docs: Iterable[Document], size: int) -> Iterable[list[Document]]:
    batch: list[Document] = []
    for doc in docs:
        batch.append(doc)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def index_documents(
    location: str, docs: Iterable[Document], *, replace: bool = False, window: timedelta | None = None, batch_size: int = 500,
    together: bool = False,
) -> dict[str, Any]:
    """Add ``docs`` to the index at ``location`` (created when new) in batches; returns a summary
    (documents, new stories, joined, index size). ``window`` becomes the index's default.
    ``together``: all of ``docs`` as one batch clustered as ``dedup cluster`` clusters them
    (:meth:`dedup.index.Index.add_many`)."""
    start = time.perf_counter()
    added = joined = 0
    with Index.open(location, window=window) as index:
        for batch in [list(docs)] if together else _batches(docs, batch_size):
            results = index.add_many(batch, replace=replace, together=together)
            added += len(results)
            joined += sum(r is not None for r in results)
        total, stories = len(index), index.stats()["stories"]
    return {"added": added, "joined": joined, "new_stories": added - joined, "documents": total, "stories": stories,
            "seconds": time.perf_counter() - start}


def check_documents(
    location: str, docs: Iterable[Document], *, window: timedelta | None = DEFAULT, batch_size: int = 200
) -> Iterable[dict[str, Any]]:
    """One record per article of ``docs``, checked against the index at ``location`` (read-only):
    ``{"id", "duplicate_of", "cluster_id", "matches": [{"id", "cluster_id", "jaccard", "cosine", "containment"}]}``."""
    with Index.open(location, read_only=True) as index:
        for batch in _batches(docs, batch_size):
            for doc, matches in zip(batch, index.check_many(batch, window=window)):
                yield {
                    "id": doc.id,
                    "duplicate_of": matches[0].id if matches else None,
                    "cluster_id": matches[0].cluster_id if matches else None,
                    "matches": [
                        {"id": m.id, "cluster_id": m.cluster_id, "jaccard": m.jaccard, "cosine": m.cosine,
                         "containment": m.containment}
                        for m in matches
                    ],
                }


def index_stats(location: str) -> dict[str, Any]:
    """:meth:`Index.stats` of the existing index at ``location``."""
    with Index.open(location, read_only=True) as index:
        return index.stats()


def expire_index(location: str, *, before: datetime) -> int:
    """:meth:`Index.expire` on the index at ``location``; returns how many articles were removed."""
    with Index.open(location) as index:
        return index.expire(before=before)
