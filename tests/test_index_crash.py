"""Crash safety of the SQLite index: a writer killed with SIGKILL mid-add loses at most the in-flight article."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from dedup import Document
from dedup.index import Index

from index_helpers import sample_docs

WRITER = r"""
import sys
from pathlib import Path
from dedup import Document
from dedup import store_sqlite
from dedup.index import Index
store_sqlite._DF_FLUSH = 7  # write the df table often, so that the kill may land in or between writes
store_sqlite._WAL_BYTES = 64 << 10  # and checkpoint often
texts = [p.read_text() for p in sorted(Path(sys.argv[2]).glob("*.txt"))]
with Index.open(sys.argv[1]) as index:
    k = 0
    while True:
        text = texts[k % len(texts)]
        words = text.split()
        index.add(Document(id=f"doc-{k}", text=" ".join(words[k % 7 :] + [str(k)])))
        k += 1
"""


def test_kill_9_during_add_reopens_cleanly(tmp_path: Path) -> None:
    from conftest import SAMPLES

    path = str(tmp_path / "crash.db")
    writer = subprocess.Popen([sys.executable, "-c", WRITER, path, str(SAMPLES)])
    try:
        deadline = time.monotonic() + 60
        seen = 0
        while time.monotonic() < deadline:
            time.sleep(0.2)
            if Path(path).exists():
                try:
                    with Index.open(path, read_only=True) as reader:
                        seen = len(reader)
                except Exception:  # noqa: BLE001 - the schema may not be committed yet
                    continue
            if seen >= 40:
                break
        assert seen >= 40, "the writer did not add articles"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    with Index.open(path) as index:  # the dead writer's lock is gone
        assert len(index) >= seen
        assert index.integrity() == []
        ids = {f"doc-{k}" for k in range(len(index))}
        assert all(i in index for i in ids)  # articles are added in order: no gaps
        n = len(index)
        index.add(Document(id="after", text=sample_docs()[2].text + " after"))
        assert len(index) == n + 1 and index.integrity() == []
