"""End-to-end jobs behind the CLI commands: documents in, result files out."""

from __future__ import annotations

import time
from typing import Callable, Iterable

from dedup.document import Document
from dedup.pipeline import ClusterResult, cluster, iter_pairs, iter_rows
from dedup.write import Format, write_output

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
    and the confirmed pairs to ``pairs_path`` (JSONL) when given. Files are written atomically."""
    result = cluster(docs, progress=progress, **settings)
    started = time.perf_counter()
    write_output(output, iter_rows(result), fmt=Format(fmt), columns=OUTPUT_COLUMNS)
    if pairs_path is not None:
        write_output(pairs_path, iter_pairs(result), fmt=Format.JSONL, columns=PAIR_COLUMNS)
    result.stats["seconds_write"] = time.perf_counter() - started
    result.stats["seconds"] = result.stats.get("seconds", 0.0) + result.stats["seconds_write"]
    return result
