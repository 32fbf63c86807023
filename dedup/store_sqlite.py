"""The embedded index backend: one SQLite file (WAL, versioned schema) with an in-memory mirror of buckets and df."""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time as _time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from dedup import kernels
from dedup.bandmirror import SKETCH_WORDS, BandMirror, TokenCounts, score_bounds, sketch
from dedup.pipeline import Options
from dedup.store import (
    FORMAT_VERSION,
    Candidates,
    Commit,
    IndexStateError,
    Lookup,
    Plausible,
    Record,
    Store,
    band_keys,
    check_options,
    counts_array,
    counts_bytes,
    flat_counts,
    numbers_text,
    numbers_tuple,
    offsets_of,
    options_from_json,
    options_json,
    parse_window,
    shares_band,
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
    signature BLOB NOT NULL,                -- uint32 LE x num_perm (MinHash, LSH band keys derive from it)
    shingles BLOB NOT NULL,                 -- uint32 LE, sorted distinct shingle hashes
    tokens BLOB NOT NULL,                   -- uint64 LE, sorted distinct token hashes
    counts BLOB NOT NULL,                   -- term frequency per token: LE uint8, uint16 or uint32 (len / tokens)
    numbers TEXT NOT NULL,                  -- distinct number tokens, space separated
    sketch BLOB NOT NULL                    -- uint64 LE bitmaps of its shingles' and tokens' buckets (bandmirror.sketch)
);
CREATE INDEX docs_story ON docs (story);
CREATE INDEX docs_time ON docs (coalesce(date, added));
CREATE TABLE df (
    token INTEGER PRIMARY KEY,              -- stable token hash as signed 64-bit
    docs INTEGER NOT NULL,                  -- articles with seq <= meta.df_seq containing it
    seed INTEGER NOT NULL                   -- reference-corpus articles containing it
);
"""
_COLUMNS = "seq, id, story, date, added, digest, signature, shingles, tokens, counts, numbers"
_CHUNK = 900  # bound on SQL parameters per statement
# The df table is brought up to date every this many added articles (and before any removal) rather
# than per article: the articles added since (seq > meta.df_seq) are counted again when opening.
_DF_FLUSH = 4096
_BOUND_FROM = 0  # with more candidates than this, their score bounds are checked before reading their rows
_WAL_BYTES = 4 << 20  # WAL size that triggers a checkpoint (SQLite's automatic default is about 4 MB)
# The checkpointer is woken once the articles added since it was last woken have written about _WAL_BYTES to
# the WAL (an article writes about 8 pages: its row, its overflow page, three index pages and the sequence), or
# at once after any other change; not after every commit: waking a thread per added article costs more than the
# rest of the add on a busy machine (it takes the GIL), and as the WAL file keeps its size once grown, it would
# then checkpoint after nearly every commit.
_ARTICLE_WAL_BYTES = 8 * 4096


def _signed(tokens: np.ndarray) -> list[int]:
    return np.ascontiguousarray(tokens, dtype=np.uint64).view(np.int64).tolist()


def _unsigned(tokens: Sequence[int]) -> np.ndarray:
    return np.asarray(tokens, dtype=np.int64).view(np.uint64)


def _record(row: tuple) -> Record:
    _seq, doc_id, story, date, added, digest, sig, shingles, tokens, counts, numbers = row
    toks = u64_array(tokens)
    return Record(
        id=doc_id, story=story, date=date, added=added, digest=bool(digest), signature=u32_array(sig),
        shingles=u32_array(shingles), tokens=toks, counts=counts_array(counts, len(toks)), numbers=numbers_tuple(numbers),
    )


def _token_totals(blobs: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    """(distinct token hashes, in how many of the token blobs each occurs)."""
    if not blobs:
        return np.zeros(0, dtype=np.uint64), np.zeros(0, dtype=np.int64)
    tokens, counts = np.unique(np.frombuffer(b"".join(blobs), dtype="<u8"), return_counts=True)
    return tokens.astype(np.uint64), counts.astype(np.int64)


class SqliteStore(Store):
    """An index in one SQLite file; one writing process at a time (others get a clear error).

    Lookups need no SQL but the fetch of the candidates' rows: the LSH
    buckets, the articles' times and sketches, and the document frequencies
    are mirrored in memory (rebuilt when opening). The sketches bound each
    candidate's scores, so that only the rows of candidates that could be
    copies are read and scored.
    """

    def __init__(self, path: str, *, options: Options | None, window: float | None, read_only: bool) -> None:
        self.location = path
        self.read_only = read_only
        self._lock_fd: int | None = None
        self._absent: set[str] | None = None  # inside writing(): ids known not to be stored (no SELECT needed)
        self._wal_written = 0  # about how many bytes were written to the WAL since the checkpointer was woken
        memory = path == ":memory:"
        if not memory:
            exists = Path(path).exists()
            if read_only and not exists:
                raise IndexStateError(f"{path}: no such index; create it with `dedup index add {path} INPUT...`")
            if not read_only:
                try:
                    self._lock_fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
                except OSError as error:
                    raise IndexStateError(f"{path}: cannot create or open the index ({error.strerror}); give a file "
                                          "path in a directory that exists and can be written") from None
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
        self._checkpointer: _Checkpointer | None = None
        if not memory and not self.read_only:
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.execute("PRAGMA synchronous = NORMAL")  # WAL: durable against process crashes
            # Checkpoints (copying the WAL into the file, with an fsync) run in a background thread
            # instead of stalling whichever commit crosses the threshold.
            self._db.execute("PRAGMA wal_autocheckpoint = 0")
            self._checkpointer = _Checkpointer(path)

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
                     ("window", window_seconds(window)), ("seed_docs", "0"), ("df_seq", "0"),
                     ("created", repr(_time.time()))],
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

    def _load_mirror(self) -> None:
        """Rebuild the in-memory buckets, times and document frequencies from the file."""
        self._seed_docs = int(self._meta("seed_docs") or 0)
        self._df_seq = int(self._meta("df_seq") or 0)
        self._mirror = BandMirror()
        self._times = np.zeros(1024, dtype=np.float64)
        self._dated = np.zeros(1024, dtype=bool)
        self._sketches = np.zeros((1024, SKETCH_WORDS), dtype=np.uint64)
        self._sizes = np.zeros(1024, dtype=np.uint32)  # distinct shingles of each article
        self._count = 0
        self._last_seq = self._df_seq
        num_perm = self.options.num_perm
        cursor = self._db.execute("SELECT seq, signature, date, added, sketch, length(shingles) FROM docs ORDER BY seq")
        while True:
            rows = cursor.fetchmany(16384)
            if not rows:
                break
            seqs = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            sigs = np.frombuffer(b"".join(r[1] for r in rows), dtype="<u4").astype(np.uint32).reshape(len(rows), num_perm)
            self._grow(int(seqs[-1]))
            self._times[seqs] = [r[3] if r[2] is None else r[2] for r in rows]
            self._dated[seqs] = [r[2] is not None for r in rows]
            self._sketches[seqs] = np.frombuffer(b"".join(r[4] for r in rows), dtype="<u8").reshape(len(rows), SKETCH_WORDS)
            self._sizes[seqs] = [r[5] // 4 for r in rows]
            self._mirror.load(seqs, band_keys(sigs, self.options))
            self._count += len(rows)
            self._last_seq = max(self._last_seq, int(seqs[-1]))
        self._df = TokenCounts()
        cursor = self._db.execute("SELECT token, docs + seed FROM df WHERE docs + seed != 0")
        while rows := cursor.fetchmany(65536):
            self._df.add(_unsigned([r[0] for r in rows]), np.fromiter((r[1] for r in rows), dtype=np.int64, count=len(rows)))
        cursor = self._db.execute("SELECT tokens FROM docs WHERE seq > ?", (self._df_seq,))
        while rows := cursor.fetchmany(_DF_FLUSH):
            self._df.add(*_token_totals([r[0] for r in rows]))
        self._max_seq = self._last_seq  # what a read-only opener sees

    def _meta(self, key: str) -> str | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def _grow(self, seq: int) -> None:
        if seq >= len(self._times):
            size = max(seq + 1, 2 * len(self._times))
            self._times = np.resize(self._times, size)
            self._dated = np.resize(self._dated, size)
            self._sizes = np.resize(self._sizes, size)
            sketches = np.zeros((size, SKETCH_WORDS), dtype=np.uint64)
            sketches[: len(self._sketches)] = self._sketches
            self._sketches = sketches

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
        return self._count

    def _seq(self, doc_id: str) -> int | None:
        row = self._db.execute("SELECT seq FROM docs WHERE id = ?", (doc_id,)).fetchone()
        if row is None or (self.read_only and row[0] > self._max_seq):
            return None  # a read-only opener sees the articles present when it opened the file
        return int(row[0])

    def contains(self, doc_id: str) -> bool:
        return self._seq(doc_id) is not None

    def contains_many(self, doc_ids: Sequence[str]) -> list[bool]:
        found = [self.contains(d) for d in doc_ids]
        if self._absent is not None:  # writing: they stay absent until inserted (this is the only writer)
            self._absent.update(d for d, there in zip(doc_ids, found) if not there)
        return found

    def expect_new(self, doc_id: str) -> None:
        if self._absent is None:
            return super().expect_new(doc_id)
        self._absent.add(doc_id)  # the UNIQUE id column refuses it at insert() if it is stored after all

    def get(self, doc_id: str) -> Record | None:
        row = self._db.execute(f"SELECT {_COLUMNS} FROM docs WHERE id = ?", (doc_id,)).fetchone()
        if row is None or (self.read_only and row[0] > self._max_seq):
            return None
        return _record(row)

    def lookup(self, record: Record, bands: np.ndarray, *, window: float | None, plausible: Plausible | None = None) -> Lookup:
        seqs = self._mirror.lookup(bands)
        if window is not None and record.date is not None and len(seqs):  # undated: always in the window
            seqs = seqs[~self._dated[seqs] | (np.abs(self._times[seqs] - record.date) <= window)]
        documents = self._count + self._seed_docs
        num_perm = self.options.num_perm
        if not len(seqs):  # nothing to score: no frequencies needed (at 1M indexed they are cache misses)
            return Lookup(Candidates.empty(num_perm), None, documents, None)
        query_df = self._df.get_float(record.tokens)
        indexed = not (self._absent is not None and record.id in self._absent) and self.contains(record.id)
        if plausible is not None and len(seqs) > _BOUND_FROM:
            # Read only the rows of candidates whose score bounds (from their sketches) could confirm them.
            extra = 0 if indexed else 1
            containment, cosine = score_bounds(self._sketches, self._sizes, seqs, record.shingles, record.tokens,
                                               record.counts, query_df, documents + extra, extra, kernels.BOUND_SLACK)
            seqs = seqs[plausible(containment, cosine)]
        if not len(seqs):
            return Lookup(Candidates.empty(num_perm), query_df, documents, indexed)
        rows: list[tuple] = []
        for lo in range(0, len(seqs), _CHUNK):
            chunk = seqs[lo : lo + _CHUNK].tolist()
            marks = ",".join("?" * len(chunk))
            rows.extend(self._db.execute(f"SELECT {_COLUMNS} FROM docs WHERE seq IN ({marks})", chunk))
        rows.sort()
        rows = [r for r in rows if r[1] != record.id]
        if rows:
            sigs = np.frombuffer(b"".join([r[6] for r in rows]), dtype="<u4").reshape(len(rows), num_perm)
            keep = shares_band(record.signature, sigs, self.options)  # the mirror compares hashed keys
            if not keep.all():
                rows = [r for r, ok in zip(rows, keep.tolist()) if ok]
        if not rows:
            return Lookup(Candidates.empty(num_perm), query_df, documents, indexed)
        _seqs, ids, stories, dates, added, digests, sigs, shingles, tokens, counts, numbers = zip(*rows)
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(rows)) // 8
        flat = np.frombuffer(b"".join(tokens), dtype="<u8").astype(np.uint64)
        candidates = Candidates(
            ids=list(ids), stories=list(stories), dates=list(dates), added=list(added), digests=list(map(bool, digests)),
            numbers=list(numbers),
            signatures=np.frombuffer(b"".join(sigs), dtype="<u4").astype(np.uint32).reshape(len(rows), num_perm),
            shingles=np.frombuffer(b"".join(shingles), dtype="<u4").astype(np.uint32),
            shingle_offsets=offsets_of(np.fromiter(map(len, shingles), dtype=np.int64, count=len(rows)) // 4),
            tokens=flat, counts=flat_counts(counts, lengths), token_offsets=offsets_of(lengths),
            df=self._df.get_float(flat),
        )
        return Lookup(candidates, query_df, documents, indexed)

    def stories(self) -> int:
        return int(self._db.execute("SELECT COUNT(DISTINCT story) FROM docs").fetchone()[0])

    # --- writing -------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise IndexStateError(f"{self.location} was opened read-only; open it without read_only=True to change it")

    @contextmanager
    def writing(self) -> Iterator[None]:
        self._writable()
        self._changed = False
        self._absent = set()
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")  # (self._transaction(), inlined: one generator less per add)
            try:
                yield
                if self._last_seq - self._df_seq >= _DF_FLUSH:
                    self._flush_df()
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except BaseException:
            if self._changed:
                self._load_mirror()  # the transaction was rolled back: rebuild the mirror from the file
            raise
        finally:
            self._absent = None
        if self._checkpointer is not None and self._wal_written >= _WAL_BYTES:
            self._wal_written = 0
            self._checkpointer.poke()

    def _flush_df(self) -> None:
        """Count the articles added since the last flush into the df table (inside a transaction)."""
        if self._last_seq <= self._df_seq:
            return
        self._changed = True
        self._wal_written = _WAL_BYTES  # (wakes the checkpointer)
        cursor = self._db.execute("SELECT tokens FROM docs WHERE seq > ?", (self._df_seq,))
        while rows := cursor.fetchmany(_DF_FLUSH):
            tokens, counts = _token_totals([r[0] for r in rows])
            self._db.executemany(
                "INSERT INTO df (token, docs, seed) VALUES (?, ?, 0) ON CONFLICT (token) DO UPDATE SET docs = docs + excluded.docs",
                zip(_signed(tokens), counts.tolist()),
            )
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('df_seq', ?)", (str(self._last_seq),))
        self._df_seq = self._last_seq

    def insert(self, item: Commit, lookup: Lookup | None = None) -> None:
        rec = item.record
        try:
            sketched = sketch(rec.shingles, rec.tokens)
            cursor = self._db.execute(
                "INSERT INTO docs (id, story, date, added, digest, signature, shingles, tokens, counts, numbers, sketch) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (rec.id, rec.story, rec.date, rec.added, int(rec.digest), u32_bytes(rec.signature),
                 u32_bytes(rec.shingles), u64_bytes(rec.tokens), counts_bytes(rec.counts), numbers_text(rec.numbers),
                 u64_bytes(sketched)),
            )
        except sqlite3.IntegrityError:  # (nothing changed: a rollback need not reload the mirror)
            raise IndexStateError(f"{rec.id!r} is already indexed; pass replace=True to replace it") from None
        self._changed = True
        for other in item.merge:
            self._db.execute("UPDATE docs SET story = ? WHERE story = ?", (rec.story, other))
        seq = int(cursor.lastrowid)
        if self._absent is not None:
            self._absent.discard(rec.id)
        self._wal_written += _ARTICLE_WAL_BYTES
        self._grow(seq)
        self._times[seq] = rec.time
        self._dated[seq] = rec.date is not None
        self._sketches[seq] = sketched
        self._sizes[seq] = len(rec.shingles)
        self._mirror.add(seq, item.bands)
        self._df.add(rec.tokens, 1)
        self._count += 1
        self._last_seq = max(self._last_seq, seq)

    def delete(self, doc_ids: Sequence[str]) -> int:
        ids = list(dict.fromkeys(doc_ids))
        removed = 0
        for lo in range(0, len(ids), _CHUNK):
            chunk = ids[lo : lo + _CHUNK]
            found = self._db.execute(f"SELECT seq, tokens FROM docs WHERE id IN ({','.join('?' * len(chunk))})", chunk).fetchall()
            if not found:
                continue
            self._flush_df()  # every stored article is counted in the df table (a no-op after the first chunk)
            self._changed = True
            self._wal_written = _WAL_BYTES  # (wakes the checkpointer)
            seqs = [seq for seq, _ in found]
            self._db.execute(f"DELETE FROM docs WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
            tokens, counts = _token_totals([blob for _, blob in found])
            signed = _signed(tokens)
            self._db.executemany("UPDATE df SET docs = docs - ? WHERE token = ?", zip(counts.tolist(), signed))
            self._db.executemany("DELETE FROM df WHERE token = ? AND docs <= 0 AND seed <= 0", ((t,) for t in signed))
            self._df.add(tokens, -counts)
            for seq in seqs:
                self._mirror.remove(seq)
            self._count -= len(seqs)
            removed += len(seqs)
        return removed

    def expire(self, before: float) -> int:
        ids = [r[0] for r in self._db.execute("SELECT id FROM docs WHERE coalesce(date, added) < ?", (before,))]
        count = self.delete(ids)
        if count:
            self._mirror.compact()
        return count

    def seed(self, tokens: np.ndarray, counts: np.ndarray, docs: int) -> None:
        self._changed = True
        self._wal_written = _WAL_BYTES  # (wakes the checkpointer)
        self._db.executemany(
            "INSERT INTO df (token, docs, seed) VALUES (?, 0, ?) ON CONFLICT (token) DO UPDATE SET seed = seed + excluded.seed",
            list(zip(_signed(tokens), counts.tolist())),
        )
        self._seed_docs += docs
        self._db.execute("UPDATE meta SET value = ? WHERE key = 'seed_docs'", (str(self._seed_docs),))
        self._df.add(tokens, counts)

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
            "mirror_bytes": self._mirror.nbytes() + self._times.nbytes + self._dated.nbytes + self._df.nbytes()
            + self._sketches.nbytes + self._sizes.nbytes,
        }

    def integrity(self) -> list[str]:
        problems: list[str] = []
        if self._db.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            problems.append("sqlite integrity_check failed")
        stored = 0
        counted: list[bytes] = []  # token blobs of the articles the df table counts
        pending: list[bytes] = []
        rows = self._db.execute("SELECT seq, id, signature, tokens, shingles, sketch FROM docs ORDER BY seq")
        for seq, doc_id, sig, tokens, shingles, sketched in rows:
            stored += 1
            (counted if seq <= self._df_seq else pending).append(tokens)
            expected_sketch = sketch(u32_array(shingles), u64_array(tokens))
            if u64_bytes(expected_sketch) != sketched or not np.array_equal(self._sketches[seq], expected_sketch):
                problems.append(f"{doc_id}: sketch does not match its shingles and tokens")
            if self._sizes[seq] != len(shingles) // 4:
                problems.append(f"{doc_id}: wrong shingle count in memory")
            keys = band_keys(u32_array(sig), self.options)[0]
            if not all(seq in self._mirror.lookup(keys[b : b + 1]) for b in range(len(keys))):
                problems.append(f"{doc_id}: missing from the in-memory buckets")
        if stored != self._count:
            problems.append(f"{stored} stored articles but {self._count} in memory")
        table = {t: (d, s) for t, d, s in self._db.execute("SELECT token, docs, seed FROM df")}
        tokens, counts = _token_totals(counted)
        expected = dict(zip(_signed(tokens), counts.tolist()))
        bad = [t for t in set(table) | set(expected) if table.get(t, (0, 0))[0] != expected.get(t, 0)]
        if bad:
            problems.append(f"document frequencies of {len(bad)} tokens disagree with the stored articles")
        tokens, counts = _token_totals(counted + pending)
        total = dict(zip(tokens.tolist(), counts.tolist()))
        for t, (_d, s) in table.items():
            if s:
                key = int(_unsigned([t])[0])
                total[key] = total.get(key, 0) + s
        if self._df.items() != {t: n for t, n in total.items() if n}:
            problems.append("in-memory document frequencies disagree with the stored articles")
        return problems

    def close(self) -> None:
        try:
            if getattr(self, "_checkpointer", None) is not None:
                self._checkpointer.stop()
                self._checkpointer = None
            if hasattr(self, "_db"):
                if not self.read_only and hasattr(self, "_df_seq") and self._last_seq > self._df_seq:
                    try:
                        with self._transaction():
                            self._flush_df()  # saves counting them again at the next opening
                    except sqlite3.Error:
                        pass  # they are counted when opening instead
                self._db.close()
        finally:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None


class _Checkpointer:
    """Copies the WAL into the database file from a daemon thread with its own connection (PASSIVE
    checkpoints never block the writer) when woken (after about ``_WAL_BYTES`` of added articles) and the
    WAL file has grown past ``_WAL_BYTES``."""

    def __init__(self, path: str) -> None:
        self._wal = path + "-wal"
        self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout = 10000")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._wake = threading.Event()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dedup-index-checkpoint", daemon=True)
        self._thread.start()

    def poke(self) -> None:
        """Transactions were committed."""
        self._wake.set()

    def _run(self) -> None:
        while not self._stopping:
            self._wake.wait()
            self._wake.clear()
            if self._stopping:
                break
            try:
                if os.path.getsize(self._wal) >= _WAL_BYTES:
                    self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
            except (OSError, sqlite3.Error):
                pass  # retried after the next commit; the writer's connection checkpoints when closed

    def stop(self) -> None:
        self._stopping = True
        self._wake.set()
        self._thread.join()
        self._db.close()
