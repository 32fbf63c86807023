"""The shared index backend: Redis, with LSH buckets in datasketch MinHashLSH's Redis layout, no pickle."""

from __future__ import annotations

import os
import time as _time
import uuid
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np

from dedup.candidates import lsh_params
from dedup.fingerprint import to_minhash
from dedup.pipeline import Options
from dedup.store import (
    FORMAT_VERSION,
    Commit,
    IndexStateError,
    Record,
    Store,
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

_FIELDS = ("story", "date", "added", "digest", "signature", "shingles", "tokens", "counts", "numbers")
_LEASE_MS = 30_000  # a writer that dies holding the lock blocks others at most this long

# Store one article atomically. KEYS: doc, story set, docs zset, df, count, lsh keys hash, lsh key list.
# ARGV: id, time, story, merge count, merged story keys..., band count, (bucket hash name, band, bucket key)...,
#       token count, tokens..., field/value pairs...
_INSERT = """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id, story = ARGV[1], ARGV[3]
local i = 4
local merges = tonumber(ARGV[i]); i = i + 1
for m = 1, merges do
  local old = ARGV[i]; i = i + 1
  for _, member in ipairs(redis.call('SMEMBERS', old)) do
    redis.call('HSET', KEYS[8] .. member, 'story', story)
    redis.call('SADD', KEYS[2], member)
  end
  redis.call('DEL', old)
end
local bands = tonumber(ARGV[i]); i = i + 1
local band_values = {}
for b = 1, bands do
  local table_name, band, bucket = ARGV[i], ARGV[i + 1], ARGV[i + 2]; i = i + 3
  redis.call('HSET', table_name, band, bucket)
  redis.call('SADD', bucket, id)
  band_values[b] = band
end
redis.call('HSET', KEYS[6], id, KEYS[7])
redis.call('RPUSH', KEYS[7], unpack(band_values))
local tokens = tonumber(ARGV[i]); i = i + 1
for t = 1, tokens do redis.call('HINCRBY', KEYS[4], ARGV[i], 1); i = i + 1 end
local fields = {}
while i <= #ARGV do fields[#fields + 1] = ARGV[i]; i = i + 1 end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], id)
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('INCR', KEYS[5])
return 1
"""

# Remove one article atomically. KEYS: doc, docs zset, df, count, lsh keys hash, lsh key list.
# ARGV: id, story key prefix, bucket-table name prefix.
_DELETE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local id = ARGV[1]
local story = redis.call('HGET', KEYS[1], 'story')
local tokens = redis.call('HGET', KEYS[1], 'tokens')
for p = 1, #tokens, 8 do
  local token = string.sub(tokens, p, p + 7)
  if redis.call('HINCRBY', KEYS[3], token, -1) <= 0 then redis.call('HDEL', KEYS[3], token) end
end
local bands = redis.call('LRANGE', KEYS[6], 0, -1)
for b, band in ipairs(bands) do
  local table_name = ARGV[3] .. struct.pack('>H', b - 1)
  local bucket = table_name .. band
  redis.call('SREM', bucket, id)
  if redis.call('SCARD', bucket) == 0 then redis.call('HDEL', table_name, band) end
end
redis.call('HDEL', KEYS[5], id)
redis.call('DEL', KEYS[6])
redis.call('SREM', ARGV[2] .. story, id)
redis.call('ZREM', KEYS[2], id)
redis.call('DEL', KEYS[1])
redis.call('DECR', KEYS[4])
return 1
"""

# Candidates: members of the query's buckets, with their stored fields. ARGV: bucket keys.
_QUERY = """
local seen, out = {}, {}
for _, bucket in ipairs(ARGV) do
  for _, id in ipairs(redis.call('SMEMBERS', bucket)) do
    if not seen[id] then
      seen[id] = true
      out[#out + 1] = id
      out[#out + 1] = redis.call('HMGET', KEYS[1] .. id, 'story', 'date', 'added', 'digest', 'signature', 'shingles', 'tokens', 'counts', 'numbers')
    end
  end
end
return out
"""

_RELEASE = "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end return 0"


def _float(value: bytes | None) -> float | None:
    return None if value in (None, b"") else float(value)


def _record(doc_id: str, values: Sequence[bytes | None]) -> Record | None:
    if values[0] is None:
        return None  # removed meanwhile
    story, date, added, digest, sig, shingles, tokens, counts, numbers = values
    return Record(
        id=doc_id, story=story.decode(), date=_float(date), added=float(added), digest=digest == b"1",
        signature=u32_array(sig), shingles=u32_array(shingles), tokens=u64_array(tokens), counts=u32_array(counts),
        numbers=numbers_tuple((numbers or b"").decode()),
    )


class RedisStore(Store):
    """An index shared by processes through one Redis database.

    Keys (``P`` = prefix): ``P:meta`` (format version, options, window),
    ``P:doc:ID`` (hash of the stored record: raw little-endian arrays),
    ``P:story:ID`` (set of member ids), ``P:docs`` (zset id -> time),
    ``P:df`` (hash token hash (8 bytes LE) -> documents), ``P:count``,
    ``P:lock`` (writers' lease), and ``P:lsh...``: datasketch MinHashLSH's
    Redis storage (``MinHashLSH(..., storage_config={"type": "redis",
    "basename": b"P:lsh"}, prepickle=False)`` queries it directly).
    """

    def __init__(self, url: str, *, options: Options | None, window: float | None, read_only: bool) -> None:
        try:
            import redis
        except ImportError:  # pragma: no cover - depends on the environment
            raise IndexStateError("a redis:// index needs the redis package: pip install 'dedup[redis]'") from None
        from datasketch import MinHashLSH

        parts = urlsplit(url)
        query = parse_qs(parts.query)
        prefix = query.pop("prefix", ["dedup"])[0]
        self.location = url
        self.read_only = read_only
        plain = parts._replace(query="").geturl()
        self._redis = redis.Redis.from_url(plain)
        try:
            self._redis.ping()
        except redis.RedisError as error:
            raise IndexStateError(f"cannot reach Redis at {plain} ({error}); start redis-server or fix the URL") from None
        self._p = prefix.encode()
        self._open_meta(options, window)
        bands, rows = lsh_params(self.options.lsh_threshold, self.options.num_perm)
        kwargs = self._redis.connection_pool.connection_kwargs
        config = {"host": kwargs.get("host", "localhost"), "port": kwargs.get("port", 6379), "db": kwargs.get("db", 0)}
        if kwargs.get("password"):
            config["password"] = kwargs["password"]
        if kwargs.get("path"):
            config = {"unix_socket_path": kwargs["path"], "db": kwargs.get("db", 0)}
        self.lsh = MinHashLSH(
            threshold=self.options.lsh_threshold, num_perm=self.options.num_perm,
            storage_config={"type": "redis", "basename": self._p + b":lsh", "redis": config}, prepickle=False,
        )
        assert (self.lsh.b, self.lsh.r) == (bands, rows)
        self._tables = [t._name for t in self.lsh.hashtables]
        self._table_prefix = self._p + b":lsh_bucket_"
        self._insert = self._redis.register_script(_INSERT)
        self._delete = self._redis.register_script(_DELETE)
        self._query = self._redis.register_script(_QUERY)
        self._release = self._redis.register_script(_RELEASE)
        self._token: bytes | None = None

    def _key(self, *parts: str | bytes) -> bytes:
        return b":".join([self._p] + [p.encode() if isinstance(p, str) else p for p in parts])

    def _open_meta(self, options: Options | None, window: float | None) -> None:
        meta_key = self._key("meta")
        created = {
            "format_version": str(FORMAT_VERSION), "options": options_json(options or Options()),
            "window": window_seconds(window), "seed_docs": "0",
        }
        if not self.read_only and self._redis.hsetnx(meta_key, "format_version", created["format_version"]):
            self._redis.hset(meta_key, mapping=created)
        meta = {k.decode(): v.decode() for k, v in self._redis.hgetall(meta_key).items()}
        if not meta:
            raise IndexStateError(f"{self.location}: no index with prefix {self._p.decode()!r}; add articles to create it")
        for _ in range(50):  # another process may be creating it right now
            if "options" in meta:
                break
            _time.sleep(0.01)
            meta = {k.decode(): v.decode() for k, v in self._redis.hgetall(meta_key).items()}
        version = int(meta.get("format_version", "0"))
        if version != FORMAT_VERSION:
            raise IndexStateError(
                f"{self.location} has index format {version}, this dedup reads format {FORMAT_VERSION}; "
                "rebuild it (or use another ?prefix=)"
            )
        self.options = check_options(options_from_json(meta["options"]), options, self.location)
        self.window = parse_window(meta.get("window"))
        if window is not None and window != self.window:
            if not self.read_only:
                self._redis.hset(meta_key, "window", window_seconds(window))
            self.window = window

    # --- reading -------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return int(self._redis.get(self._key("count")) or 0)

    def contains(self, doc_id: str) -> bool:
        return bool(self._redis.exists(self._key("doc", doc_id)))

    def get(self, doc_id: str) -> Record | None:
        return _record(doc_id, self._redis.hmget(self._key("doc", doc_id), _FIELDS))

    def _buckets(self, signature: np.ndarray) -> list[bytes]:
        mh = to_minhash(signature, seed=self.options.seed)
        return [
            name + self.lsh._H(mh.hashvalues[lo:hi]) for name, (lo, hi) in zip(self._tables, self.lsh.hashranges)
        ]

    def candidates(self, signature: np.ndarray, bands: np.ndarray, *, time: float, window: float | None) -> list[Record]:
        flat = self._query(keys=[self._key("doc", "")], args=self._buckets(signature))
        out = []
        for k in range(0, len(flat), 2):
            rec = _record(flat[k].decode(), flat[k + 1])
            if rec is not None:
                out.append(rec)
        return out

    def document_frequencies(self, tokens: np.ndarray) -> tuple[np.ndarray, int]:
        pipe = self._redis.pipeline(transaction=True)
        pipe.hmget(self._key("df"), [u64_bytes(np.asarray([t])) for t in tokens.tolist()] or [b"-"])
        pipe.get(self._key("count"))
        pipe.hget(self._key("meta"), "seed_docs")
        values, count, seed = pipe.execute()
        df = np.fromiter((int(v) if v is not None else 0 for v in values[: len(tokens)]), dtype=np.float64, count=len(tokens))
        return df, int(count or 0) + int(seed or 0)

    def stories(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=self._key("story", "*"), count=1000))

    # --- writing -------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise IndexStateError(f"{self.location} was opened read-only; open it without read_only=True to change it")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """Hold ``P:lock`` (a lease renewed per article) so that decide-and-store is atomic across workers."""
        self._writable()
        token = uuid.uuid4().bytes
        lock = self._key("lock")
        delay = 0.0005
        while not self._redis.set(lock, token, nx=True, px=_LEASE_MS):
            _time.sleep(delay)
            delay = min(delay * 2, 0.01)
        self._token = token
        try:
            yield
        finally:
            self._token = None
            self._release(keys=[lock], args=[token])

    def _renew(self) -> None:
        if self._token is not None:
            self._redis.pexpire(self._key("lock"), _LEASE_MS)

    def insert(self, item: Commit) -> None:
        rec = item.record
        mh = to_minhash(rec.signature, seed=self.options.seed)
        args: list[Any] = [rec.id, rec.time, rec.story, len(item.merge)]
        args += [self._key("story", s) for s in item.merge]
        args.append(len(self._tables))
        for name, (lo, hi) in zip(self._tables, self.lsh.hashranges):
            band = self.lsh._H(mh.hashvalues[lo:hi])
            args += [name, band, name + band]
        raw_tokens = u64_bytes(rec.tokens)
        args.append(len(rec.tokens))
        args += [raw_tokens[i : i + 8] for i in range(0, len(raw_tokens), 8)]
        fields = {
            "story": rec.story, "date": "" if rec.date is None else repr(rec.date), "added": repr(rec.added),
            "digest": "1" if rec.digest else "0", "signature": u32_bytes(rec.signature), "shingles": u32_bytes(rec.shingles),
            "tokens": raw_tokens, "counts": u32_bytes(rec.counts), "numbers": numbers_text(rec.numbers),
        }
        for key, value in fields.items():
            args += [key, value]
        keys_table = self.lsh.keys._name
        done = self._insert(
            keys=[self._key("doc", rec.id), self._key("story", rec.story), self._key("docs"), self._key("df"),
                  self._key("count"), keys_table, keys_table + rec.id.encode(), self._key("doc", "")],
            args=args,
        )
        if not done:
            raise IndexStateError(f"{rec.id!r} is already indexed; pass replace=True to replace it")
        self._renew()

    def delete(self, doc_ids: Sequence[str]) -> int:
        removed = 0
        keys_table = self.lsh.keys._name
        for doc_id in dict.fromkeys(doc_ids):
            removed += int(self._delete(
                keys=[self._key("doc", doc_id), self._key("docs"), self._key("df"), self._key("count"),
                      keys_table, keys_table + doc_id.encode()],
                args=[doc_id, self._key("story", ""), self._table_prefix],
            ))
            self._renew()
        return removed

    def expire(self, before: float) -> int:
        ids = [m.decode() for m in self._redis.zrangebyscore(self._key("docs"), "-inf", f"({before!r}")]
        return self.delete(ids)

    def seed(self, tokens: np.ndarray, counts: np.ndarray, docs: int) -> None:
        pipe = self._redis.pipeline(transaction=True)
        raw = u64_bytes(tokens)
        for i, n in enumerate(counts.tolist()):
            pipe.hincrby(self._key("df"), raw[8 * i : 8 * i + 8], n)
        pipe.hincrby(self._key("meta"), "seed_docs", docs)
        pipe.execute()

    def set_window(self, window: float | None) -> None:
        self._writable()
        self._redis.hset(self._key("meta"), "window", window_seconds(window))
        self.window = window

    # --- facts and checks ----------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        info = self._redis.info("memory")
        return {
            "backend": "redis",
            "bytes": int(info.get("used_memory", 0)),
            "seed_documents": int(self._redis.hget(self._key("meta"), "seed_docs") or 0),
        }

    def integrity(self) -> list[str]:
        problems: list[str] = []
        ids = [m.decode() for m in self._redis.zrange(self._key("docs"), 0, -1)]
        if len(ids) != len(self):
            problems.append(f"{len(ids)} articles listed but count says {len(self)}")
        expected: dict[bytes, int] = {}
        for doc_id in ids:
            rec = self.get(doc_id)
            if rec is None:
                problems.append(f"{doc_id}: listed but not stored")
                continue
            if doc_id.encode() not in self.lsh.query(to_minhash(rec.signature, seed=self.options.seed)):
                problems.append(f"{doc_id}: missing from its LSH buckets")
            if not self._redis.sismember(self._key("story", rec.story), doc_id):
                problems.append(f"{doc_id}: missing from its story {rec.story}")
            raw = u64_bytes(rec.tokens)
            for i in range(0, len(raw), 8):
                expected[raw[i : i + 8]] = expected.get(raw[i : i + 8], 0) + 1
        seeded = int(self._redis.hget(self._key("meta"), "seed_docs") or 0)
        stored = {k: int(v) for k, v in self._redis.hgetall(self._key("df")).items()}
        if not seeded and stored != expected:
            problems.append("document frequencies disagree with the stored articles")
        return problems

    def close(self) -> None:
        self._redis.close()


def find_redis_server() -> str | None:
    """Path of a redis-server binary, or None (used by tests and benchmarks)."""
    import shutil

    return shutil.which("redis-server") or next(
        (p for p in ("/usr/bin/redis-server", "/usr/local/bin/redis-server") if os.access(p, os.X_OK)), None
    )

