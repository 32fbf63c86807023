"""The embedded index backend: one SQLite file (WAL, versioned schema) with an in-memory mirror of buckets and df."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import time as _time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from dedup.bandmirror import BandMirror
from dedup.pipeline import Options
from dedup.store import (
    FORMAT_VERSION,
    Commit,
    IndexStateError,
    Record,
    Store,
    band_keys,
    check_options,
    numbers_text,
    numbers_tuple,
    options_from_json,
    options_json,
    parse_window,
    u32_array,
    u32_bytes,
    u64_array,
    u64_bytes,
    window_seconds,
)

SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,  -- insertion order, never reused
    id TEXT NOT NULL UNIQUE,
    story TEXT NOT NULL,                    -- story id: id of the story's first article
    date REAL,                              -- POSIX seconds, NULL when unknown
    added REAL NOT NULL,                    -- POSIX seconds when indexed
    digest INTEGER NOT NULL,                -- 1: quotes several stories, joined none
    signature BLOB NOT NULL,                -- uint32 LE x num_perm (MinHash)
    bands BLOB NOT NULL,                    -- uint64 LE x bands (LSH bucket keys)
    shingles BLOB NOT NULL,                 -- uint32 LE, sorted distinct shingle hashes
    tokens BLOB NOT NULL,                   -- uint64 LE, sorted distinct token hashes
    counts BLOB NOT NULL,                   -- uint32 LE, term frequency per token
    numbers TEXT NOT NULL                   -- distinct number tokens, space separated
);
CREATE INDEX docs_story ON docs (story);
CREATE INDEX docs_time ON docs (coalesce(date, added));
CREATE TABLE df (
    token INTEGER PRIMARY KEY,              -- stable token hash as signed 64-bit
    docs INTEGER NOT NULL,                  -- indexed articles containing it
    seed INTEGER NOT NULL                   -- reference-corpus articles containing it
);
"""
_COLUMNS = "seq, id, story, date, added, digest, signature, shingles, tokens, counts, numbers"
_CHUNK = 900  # bound on SQL parameters per statement


def _signed(tokens: np.ndarray) -> list[int]:
    return np.ascontiguousarray(tokens, dtype=np.uint64).view(np.int64).tolist()


def _record(row: tuple) -> Record:
    _seq, doc_id, story, date, added, digest, sig, shingles, tokens, counts, numbers = row
    return Record(
        id=doc_id, story=story, date=date, added=added, digest=bool(digest), signature=u32_array(sig),
        shingles=u32_array(shingles), tokens=u64_array(tokens), counts=u32_array(counts), numbers=numbers_tuple(numbers),
    )


class SqliteStore(Store):
    """An index in one SQLite file; one writing process at a time (others get a clear error)."""

    def __init__(self, path: str, *, options: Options | None, window: float | None, read_only: bool) -> None:
        self.location = path
        self.read_only = read_only
        self._lock_fd: int | None = None
        memory = path == ":memory:"
        if not memory:
            exists = Path(path).exists()
            if read_only and not exists:
                raise IndexStateError(f"{path}: no such index; create it with `dedup index add {path} INPUT...`")
            if not read_only:
                self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(self._lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    os.close(self._lock_fd)
                    raise IndexStateError(
                        f"{path} is open for writing in another process; close it there, open it with "
                        "read_only=True, or use a redis:// index to share one index between processes"
                    ) from None
        try:
            self._connect(path, memory=memory)
            self._open_schema(options, window)
            self._load_mirror()
        except sqlite3.DatabaseError as error:
            self.close()
            raise IndexStateError(f"{path} is not a dedup index ({error}); give a new file name to create one") from None
        except BaseException:
            self.close()
            raise

    def _connect(self, path: str, *, memory: bool) -> None:
        uri = f"file:{path}?mode=ro" if self.read_only and not memory else path
        self._db = sqlite3.connect(uri, uri=self.read_only and not memory, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        if not memory and not self.read_only:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable against process crashes

    # --- opening -------------------------------------------------------------------------------------

    def _open_schema(self, options: Options | None, window: float | None) -> None:
        tables = {r[0] for r in self._db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if "meta" not in tables:
            if tables:
                raise IndexStateError(f"{self.location} is an SQLite file but not a dedup index; give a new file name")
            if self.read_only:
                raise IndexStateError(f"{self.location} is empty, not a dedup index")
            self.options = options or Options()
            self.window = window
            with self._transaction():
                for statement in SCHEMA.split(";"):
                    if statement.strip():
                        self._db.execute(statement)
                self._db.executemany(
                    "INSERT INTO meta VALUES (?, ?)",
                    [("format_version", str(FORMAT_VERSION)), ("options", options_json(self.options)),
                     ("window", window_seconds(window)), ("seed_docs", "0"), ("created", repr(_time.time()))],
                )
            return
        meta = dict(self._db.execute("SELECT key, value FROM meta"))
        version = int(meta.get("format_version", "0"))
        if version != FORMAT_VERSION:
            raise IndexStateError(
                f"{self.location} has index format {version}, this dedup reads format {FORMAT_VERSION}; "
                "rebuild the index with `dedup index add` from the articles"
            )
        self.options = check_options(options_from_json(meta["options"]), options, self.location)
        self.window = parse_window(meta.get("window"))
        if window is not None and window != self.window and not self.read_only:
            self.set_window(window)
        elif window is not None:
            self.window = window
        self._seed_docs = int(meta.get("seed_docs", "0"))

    def _load_mirror(self) -> None:
        self._seed_docs = int(self._meta("seed_docs") or 0)
        self._mirror = BandMirror()
        self._times = np.zeros(1024, dtype=np.float64)
        self._dated = np.zeros(1024, dtype=bool)
        self._seqs: dict[str, int] = {}
        rows = self._db.execute("SELECT seq, id, bands, date, added FROM docs ORDER BY seq").fetchall()
        if rows:
            seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            keys = np.stack([u64_array(r[2]) for r in rows])
            self._grow(int(seqs.max()))
            self._times[seqs] = [r[4] if r[3] is None else r[3] for r in rows]
            self._dated[seqs] = [r[3] is not None for r in rows]
            self._mirror.load(seqs, keys)
            self._seqs = {r[1]: r[0] for r in rows}
        self._df: dict[int, int] = {
            token: docs + seed for token, docs, seed in self._db.execute("SELECT token, docs, seed FROM df")
        }

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _grow(self, seq: int) -> None:
        if seq >= len(self._times):
            size = max(seq + 1, 2 * len(self._times))
            self._times = np.resize(self._times, size)
            self._dated = np.resize(self._dated, size)

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    # --- reading -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._seqs)

    def contains(self, doc_id: str) -> bool:
        return doc_id in self._seqs

    def get(self, doc_id: str) -> Record | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM docs WHERE id = ?", (doc_id,)).fetchone()
        return None if row is None else _record(row)

    def candidates(self, signature: np.ndarray, bands: np.ndarray, *, time: float, window: float | None) -> list[Record]:
        seqs = self._mirror.lookup(bands)
        if window is not None and len(seqs):
            seqs = seqs[~self._dated[seqs] | (np.abs(self._times[seqs] - time) <= window)]
        out: list[Record] = []
        for lo in range(0, len(seqs), _CHUNK):
            chunk = seqs[lo : lo + _CHUNK].tolist()
            marks = ",".join("?" * len(chunk))
            out.extend(_record(r) for r in self._db.execute(f"SELECT {_COLUMNS} FROM docs WHERE seq IN ({marks})", chunk))
        return out

    def document_frequencies(self, tokens: np.ndarray) -> tuple[np.ndarray, int]:
        get = self._df.get
        df = np.fromiter((get(t, 0) for t in _signed(tokens)), dtype=np.float64, count=len(tokens))
        return df, len(self._seqs) + self._seed_docs

    def stories(self) -> int:
        return int(self._db.execute("SELECT COUNT(DISTINCT story) FROM docs").fetchone()[0])

    # --- writing -------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise IndexStateError(f"{self.location} was opened read-only; open it without read_only=True to change it")

    @contextmanager
    def writing(self) -> Iterator[None]:
        self._writable()
        try:
            with self._transaction():
                yield
        except BaseException:
            self._load_mirror()  # the transaction was rolled back: rebuild the mirror from the file
            raise

    def insert(self, item: Commit) -> None:
        rec = item.record
        try:
            cursor = self._db.execute(
                "INSERT INTO docs (id, story, date, added, digest, signature, bands, shingles, tokens, counts, numbers) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rec.id, rec.story, rec.date, rec.added, int(rec.digest), u32_bytes(rec.signature), u64_bytes(item.bands),
                 u32_bytes(rec.shingles), u64_bytes(rec.tokens), u32_bytes(rec.counts), numbers_text(rec.numbers)),
            )
        except sqlite3.IntegrityError:
            raise IndexStateError(f"{rec.id!r} is already indexed; pass replace=True to replace it") from None
        for other in item.merge:
            self._db.execute("UPDATE docs SET story = ? WHERE story = ?", (rec.story, other))
        tokens = _signed(rec.tokens)
        self._db.executemany(
            "INSERT INTO df (token, docs, seed) VALUES (?, 1, 0) ON CONFLICT (token) DO UPDATE SET docs = docs + 1",
            [(t,) for t in tokens],
        )
        seq = int(cursor.lastrowid)
        self._grow(seq)
        self._times[seq] = rec.time
        self._dated[seq] = rec.date is not None
        self._mirror.add(seq, item.bands)
        self._seqs[rec.id] = seq
        df = self._df
        for t in tokens:
            df[t] = df.get(t, 0) + 1

    def delete(self, doc_ids: Sequence[str]) -> int:
        seqs = [self._seqs[d] for d in dict.fromkeys(doc_ids) if d in self._seqs]
        if not seqs:
            return 0
        removed: Counter[int] = Counter()
        for lo in range(0, len(seqs), _CHUNK):
            chunk = seqs[lo : lo + _CHUNK]
            marks = ",".join("?" * len(chunk))
            for (blob,) in self._db.execute(f"SELECT tokens FROM docs WHERE seq IN ({marks})", chunk):
                removed.update(_signed(u64_array(blob)))
            self._db.execute(f"DELETE FROM docs WHERE seq IN ({marks})", chunk)
        self._db.executemany("UPDATE df SET docs = docs - ? WHERE token = ?", [(n, t) for t, n in removed.items()])
        self._db.execute("DELETE FROM df WHERE docs <= 0 AND seed <= 0")
        df = self._df
        for t, n in removed.items():
            left = df.get(t, 0) - n
            if left > 0:
                df[t] = left
            else:
                df.pop(t, None)
        by_seq = {s: d for d, s in self._seqs.items()}
        for seq in seqs:
            self._mirror.remove(seq)
            del self._seqs[by_seq[seq]]
        return len(seqs)

    def expire(self, before: float) -> int:
        ids = [r[0] for r in self._db.execute("SELECT id FROM docs WHERE coalesce(date, added) < ?", (before,))]
        count = self.delete(ids)
        if count:
            self._mirror.compact()
        return count

    def seed(self, tokens: np.ndarray, counts: np.ndarray, docs: int) -> None:
        signed = _signed(tokens)
        self._db.executemany(
            "INSERT INTO df (token, docs, seed) VALUES (?, 0, ?) ON CONFLICT (token) DO UPDATE SET seed = seed + excluded.seed",
            list(zip(signed, counts.tolist())),
        )
        self._seed_docs += docs
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'seed_docs'", (str(self._seed_docs),))
        for t, n in zip(signed, counts.tolist()):
            self._df[t] = self._df.get(t, 0) + n

    def set_window(self, window: float | None) -> None:
        self._writable()
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('window', ?)", (window_seconds(window),))
        self.window = window

    # --- facts and checks ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        size = 0
        if self.location != ":memory:":
            size = sum(os.path.getsize(p) for p in (self.location, self.location + "-wal") if os.path.exists(p))
        return {
            "backend": "sqlite",
            "bytes": size,
            "seed_documents": self._seed_docs,
            "mirror_bytes": self._mirror.nbytes() + self._times.nbytes + self._dated.nbytes,
        }

    def integrity(self) -> list[str]:
        problems: list[str] = []
        if self._db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("sqlite integrity_check failed")
        expected: Counter[int] = Counter()
        stored = 0
        for seq, doc_id, sig, bands, tokens in self._db.execute("SELECT seq, id, signature, bands, tokens FROM docs"):
            stored += 1
            keys = u64_array(bands)
            if not np.array_equal(keys, band_keys(u32_array(sig), self.options)[0]):
                problems.append(f"{doc_id}: bucket keys do not match its signature")
            if not all(seq in self._mirror.lookup(keys[b : b + 1]) for b in range(len(keys))):
                problems.append(f"{doc_id}: missing from the in-memory buckets")
            expected.update(_signed(u64_array(tokens)))
        if stored != len(self._seqs):
            problems.append(f"{stored} stored articles but {len(self._seqs)} in memory")
        table = {t: d for t, d, _s in self._db.execute("SELECT token, docs, seed FROM df")}
        bad = [t for t in set(table) | set(expected) if table.get(t, 0) != expected.get(t, 0)]
        if bad:
            problems.append(f"document frequencies of {len(bad)} tokens disagree with the stored articles")
        return problems

    def close(self) -> None:
        try:
            if hasattr(self, "_db"):
                self._db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
