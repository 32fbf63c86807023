"""The shared index backend: Redis, with LSH buckets in datasketch MinHashLSH's Redis layout, no pickle."""

from __future__ import annotations

import os
import time as _time
from contextlib import contextmanager
from typing import Any, Iterator, Sequence
from urllib.parse import parse_qs, urlsplit

import numpy as np

from dedup import kernels
from dedup.bandmirror import SKETCH_WORDS, score_bounds, sketch
from dedup.candidates import lsh_params
from dedup.fingerprint import to_minhash
from dedup.pipeline import Options
from dedup.store import (
    FORMAT_VERSION,
    Candidates,
    Commit,
    Conflict,
    IndexStateError,
    Lookup,
    Plausible,
    Record,
    Store,
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
    u32_array,
    u32_bytes,
    u64_array,
    u64_bytes,
    window_seconds,
)

_FIELDS = ("story", "date", "added", "digest", "signature", "shingles", "tokens", "counts", "numbers")
_BOUND_FROM = 1  # with more candidates than this, their score bounds are checked before reading them whole

# The LSH bucket of band b (1-based) of an article, in datasketch MinHashLSH's Redis layout: table
# "<basename>_bucket_" + band number (big-endian uint16), bucket key = table name + band value, where
# the band value is the band's hash values, byte-swapped (MinHashLSH._byteswap). H holds every band
# value of the article, hs bytes each.
_BUCKETS = """
local function band_value(H, hs, b) return string.sub(H, (b - 1) * hs + 1, b * hs) end
local function band_table(tp, b) return tp .. struct.pack('>H', b - 1) end
"""

# A candidate as the scripts return it: id, then its story, date, added, digest, seq, signature, shingles,
# tokens, counts, numbers (FIELDS).
# Document frequencies of distinct tokens: appended to the script's reply as (tokens, uint32 LE counts).
_DF = """
local FIELDS = {'story', 'date', 'added', 'digest', 'seq', 'signature', 'shingles', 'tokens', 'counts', 'numbers'}
local function frequencies(vocab, df_prefix)
  local out = {}
  for lo = 1, #vocab, 4000 do
    local names = {}
    for i = lo, math.min(lo + 3999, #vocab) do names[#names + 1] = df_prefix .. vocab[i] end
    local values = redis.call('MGET', unpack(names))
    for i = 1, #values do values[i] = tonumber(values[i]) or 0 end
    out[#out + 1] = struct.pack('<' .. string.rep('I4', #values), unpack(values))
  end
  return table.concat(out)
end
local function new_tokens(blob, known, vocab)
  for p = 1, #blob, 8 do
    local t = string.sub(blob, p, p + 7)
    if not known[t] then known[t] = true; vocab[#vocab + 1] = t end
  end
end
"""

# What deciding about one article reads, atomically. KEYS: doc key prefix, df key prefix, count, meta, the
# query's doc key, the version counter (incremented by every insert and removal).
# ARGV: query id, band values, bytes per band value, bands, bucket table prefix, query tokens (8 bytes each),
#       query date ('' when none or no window), window seconds ('' for none), most candidates to return whole.
# Returns: bucket sizes (uint32 LE each), article count, seed documents, whether the query is indexed,
#          distinct tokens (8 bytes each) and their df (uint32 LE each), (id, seq, story) of every member of
#          the query's buckets, the candidates (members other than the query inside the window), the
#          version counter, and how candidates are given: 1 whole (id, then FIELDS), or,
#          when there are too many, 0: (id, sketch, shingle bytes) so that the caller reads whole (with
#          _FETCH) only those that could be copies; the tokens are then the query's only.
_LOOKUP = _BUCKETS + _DF + """
local prefix, qid, H, hs, nb, tp = KEYS[1], ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local qdate, window, most = tonumber(ARGV[7]), tonumber(ARGV[8]), tonumber(ARGV[9])
local cards, seen, members = {}, {}, {}
for b = 1, nb do
  local ids = redis.call('SMEMBERS', band_table(tp, b) .. band_value(H, hs, b))
  cards[b] = #ids
  for _, id in ipairs(ids) do
    if not seen[id] then seen[id] = true; members[#members + 1] = id end
  end
end
local listed, kept = {}, {}
for _, id in ipairs(members) do
  local f = redis.call('HMGET', prefix .. id, 'seq', 'story', 'date')
  listed[#listed + 1] = id; listed[#listed + 1] = f[1] or ''; listed[#listed + 1] = f[2] or ''
  if f[2] and id ~= qid then
    local date = tonumber(f[3])
    if not (window and qdate and date and math.abs(date - qdate) > window) then kept[#kept + 1] = id end
  end
end
local vocab, known, found = {}, {}, {}
new_tokens(ARGV[6], known, vocab)
local whole = #kept <= most
for _, id in ipairs(kept) do
  if whole then
    local f = redis.call('HMGET', prefix .. id, unpack(FIELDS))
    found[#found + 1] = id
    for i = 1, #f do found[#found + 1] = f[i] end
    new_tokens(f[8], known, vocab)
  else
    found[#found + 1] = id
    found[#found + 1] = redis.call('HGET', prefix .. id, 'sketch')
    found[#found + 1] = redis.call('HSTRLEN', prefix .. id, 'shingles')
  end
end
return {struct.pack('<' .. string.rep('I4', nb), unpack(cards)), redis.call('GET', KEYS[3]) or '0',
        redis.call('HGET', KEYS[4], 'seed_docs') or '0', redis.call('EXISTS', KEYS[5]), table.concat(vocab),
        frequencies(vocab, KEYS[2]), listed, found, redis.call('GET', KEYS[6]) or '0', whole and 1 or 0}
"""

# The candidates of a lookup that could be copies, whole. KEYS: doc key prefix, df key prefix.
# ARGV: ids... Returns the candidates (id, then FIELDS), and the distinct tokens of the
# candidates with their df.
_FETCH = _DF + """
local found, vocab, known = {}, {}, {}
for i = 1, #ARGV do
  local f = redis.call('HMGET', KEYS[1] .. ARGV[i], unpack(FIELDS))
  found[#found + 1] = ARGV[i]
  for k = 1, #f do found[#found + 1] = f[k] end
  new_tokens(f[8], known, vocab)
end
return {found, table.concat(vocab), frequencies(vocab, KEYS[2])}
"""

# Store one article atomically, provided what its decision read is unchanged: nothing was stored or
# removed since (same version), or else every bucket has as many members as read and every member read
# still has the same seq (it was not removed and added again) and story (no merge).
# KEYS: doc, story set, docs zset, df key prefix, count, lsh keys hash, lsh key list, doc key prefix, version counter.
# ARGV: id, time, story, band values, bytes per band value, bands, bucket table prefix, tokens, version
#       read ('' = store unconditionally), bucket sizes read, member count, (id, seq, story) per member,
#       merge count, merged story keys..., field/value pairs...
# Returns 1 when stored, 0 when the id is indexed already, -1 when the decision is stale.
_INSERT = _BUCKETS + """
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local id, story, H, hs, nb, tp = ARGV[1], ARGV[3], ARGV[4], tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7]
local tokens, version, cards = ARGV[8], ARGV[9], ARGV[10]
local i = 11
local members = tonumber(ARGV[i]); i = i + 1
local tables, values = {}, {}
for b = 1, nb do tables[b] = band_table(tp, b); values[b] = band_value(H, hs, b) end
if version ~= '' and (redis.call('GET', KEYS[9]) or '0') ~= version then
  for b = 1, nb do
    if redis.call('SCARD', tables[b] .. values[b]) ~= struct.unpack('<I4', cards, (b - 1) * 4 + 1) then return -1 end
  end
  for m = 1, members do
    local f = redis.call('HMGET', KEYS[8] .. ARGV[i], 'seq', 'story')
    if (f[1] or '') ~= ARGV[i + 1] or (f[2] or '') ~= ARGV[i + 2] then return -1 end
    i = i + 3
  end
else
  i = i + 3 * members
end
local merges = tonumber(ARGV[i]); i = i + 1
for m = 1, merges do
  local old = ARGV[i]; i = i + 1
  for _, member in ipairs(redis.call('SMEMBERS', old)) do
    redis.call('HSET', KEYS[8] .. member, 'story', story)
    redis.call('SADD', KEYS[2], member)
  end
  redis.call('DEL', old)
end
for b = 1, nb do
  local bucket = tables[b] .. values[b]
  redis.call('HSET', tables[b], values[b], bucket)
  redis.call('SADD', bucket, id)
end
redis.call('HSET', KEYS[6], id, KEYS[7])
redis.call('RPUSH', KEYS[7], unpack(values))
for p = 1, #tokens, 8 do redis.call('INCR', KEYS[4] .. string.sub(tokens, p, p + 7)) end
local fields = {'seq', redis.call('INCR', KEYS[9]), 'tokens', tokens}
while i <= #ARGV do fields[#fields + 1] = ARGV[i]; i = i + 1 end
redis.call('HSET', KEYS[1], unpack(fields))
redis.call('SADD', KEYS[2], id)
redis.call('ZADD', KEYS[3], ARGV[2], id)
redis.call('INCR', KEYS[5])
return 1
"""

# Remove one article atomically. KEYS: doc, docs zset, df key prefix, count, lsh keys hash, lsh key list, version counter.
# ARGV: id, story key prefix, bucket-table name prefix.
_DELETE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
local id = ARGV[1]
local story = redis.call('HGET', KEYS[1], 'story')
local tokens = redis.call('HGET', KEYS[1], 'tokens')
for p = 1, #tokens, 8 do
  local key = KEYS[3] .. string.sub(tokens, p, p + 7)
  if redis.call('DECR', key) <= 0 then redis.call('DEL', key) end
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
redis.call('INCR', KEYS[7])
return 1
"""


def _frequencies(vocab: bytes, df: bytes) -> tuple[np.ndarray, np.ndarray]:
    """(sorted distinct tokens, their df as float64) from a script's reply."""
    tokens = np.frombuffer(vocab, dtype="<u8").astype(np.uint64)
    order = np.argsort(tokens)
    return tokens[order], np.frombuffer(df, dtype="<u4")[order].astype(np.float64)


def _float(value: bytes | None) -> float | None:
    return None if value in (None, b"") else float(value)


def _record(doc_id: str, values: Sequence[bytes | None]) -> Record | None:
    if values[0] is None:
        return None  # removed meanwhile
    story, date, added, digest, sig, shingles, tokens, counts, numbers = values
    toks = u64_array(tokens)
    return Record(
        id=doc_id, story=story.decode(), date=_float(date), added=float(added), digest=digest == b"1",
        signature=u32_array(sig), shingles=u32_array(shingles), tokens=toks, counts=counts_array(counts, len(toks)),
        numbers=numbers_tuple((numbers or b"").decode()),
    )


class RedisStore(Store):
    """An index shared by processes through one Redis database.

    Keys (``P`` = prefix): ``P:meta`` (format version, options, window),
    ``P:doc:ID`` (hash of the stored record: raw little-endian arrays, and its sketch),
    ``P:story:ID`` (set of member ids), ``P:docs`` (zset id -> time),
    ``P:df:T`` (documents holding token hash ``T``, 8 bytes LE; one integer key each: INCR is
    cheaper than a hash's HINCRBY and they take less memory), ``P:count``,
    ``P:version`` (counts insertions and removals), and ``P:lsh...``: datasketch MinHashLSH's
    Redis storage (``MinHashLSH(..., storage_config={"type": "redis",
    "basename": b"P:lsh"}, prepickle=False)`` queries it directly).

    Workers add concurrently without a lock: an article is decided on one
    atomic read (:data:`_LOOKUP`) and stored by a script that first checks
    that nothing that read depends on has changed (its buckets' members and
    their stories); otherwise the index decides again. Document frequencies
    may meanwhile have moved by the other workers' articles.
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
        self._bands, self._rows = bands, rows
        self._tables = [t._name for t in self.lsh.hashtables]
        self._table_prefix = self._p + b":lsh_bucket_"
        assert self._tables[0] == self._table_prefix + b"\x00\x00"
        self._insert = self._redis.register_script(_INSERT)
        self._delete = self._redis.register_script(_DELETE)
        self._lookup = self._redis.register_script(_LOOKUP)
        self._fetch = self._redis.register_script(_FETCH)

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

    def contains_many(self, doc_ids: Sequence[str]) -> list[bool]:
        pipe = self._redis.pipeline(transaction=False)
        for doc_id in doc_ids:
            pipe.exists(self._key("doc", doc_id))
        return [bool(v) for v in pipe.execute()] if doc_ids else []

    def get(self, doc_id: str) -> Record | None:
        return _record(doc_id, self._redis.hmget(self._key("doc", doc_id), _FIELDS))

    def _band_values(self, signature: np.ndarray) -> bytes:
        """Every band value of a signature, as MinHashLSH._byteswap makes them (big-endian uint32 rows)."""
        return np.ascontiguousarray(signature[: self._bands * self._rows], dtype=">u4").tobytes()

    def lookup(self, record: Record, bands: np.ndarray, *, window: float | None, plausible: Plausible | None = None) -> Lookup:
        dated = window is not None and record.date is not None
        reply = self._lookup(
            keys=[self._key("doc", ""), self._key("df", ""), self._key("count"), self._key("meta"), self._key("doc", record.id),
                  self._key("version")],
            args=[record.id, self._band_values(record.signature), 4 * self._rows, self._bands, self._table_prefix,
                  u64_bytes(record.tokens), repr(record.date) if dated else "", repr(float(window)) if dated else "",
                  _BOUND_FROM if plausible is not None else 1 << 30],
        )
        cards, count, seed, indexed, vocab, df, members, found, version, whole = reply
        documents = int(count) + int(seed)
        vocab_tokens, vocab_df = _frequencies(vocab, df)
        query_df = vocab_df[np.searchsorted(vocab_tokens, record.tokens)] if len(record.tokens) else np.zeros(0)
        if not whole and plausible is not None:
            # Many candidates: bound their scores from their sketches, read whole only those that could be copies.
            ids, sketches, sizes = found[0::3], found[1::3], np.asarray(found[2::3], dtype=np.int64) // 4
            extra = 0 if indexed else 1
            table = np.frombuffer(b"".join(sketches), dtype="<u8").astype(np.uint64).reshape(len(ids), SKETCH_WORDS)
            containment, cosine = score_bounds(table, sizes, np.arange(len(ids)), record.shingles, record.tokens,
                                               record.counts, query_df, documents + extra, extra, kernels.BOUND_SLACK)
            wanted = [i for i, ok in zip(ids, plausible(containment, cosine).tolist()) if ok]
            found = []
            if wanted:
                found, more_vocab, more_df = self._fetch(keys=[self._key("doc", ""), self._key("df", "")], args=wanted)
                more_tokens, more_counts = _frequencies(more_vocab, more_df)
                vocab_tokens = np.concatenate((vocab_tokens, more_tokens))
                order = np.argsort(vocab_tokens, kind="stable")
                vocab_tokens, vocab_df = vocab_tokens[order], np.concatenate((vocab_df, more_counts))[order]
        token = (version, cards, members)
        num_perm = self.options.num_perm
        rows = sorted((int(found[k + 5]), k) for k in range(0, len(found), 11))  # by seq: insertion order
        if not rows:
            return Lookup(Candidates.empty(num_perm), query_df, documents, bool(indexed), token)
        at = [k for _, k in rows]
        tokens = [found[k + 8] for k in at]
        lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(at)) // 8
        flat = np.frombuffer(b"".join(tokens), dtype="<u8").astype(np.uint64)
        shingles = [found[k + 7] for k in at]
        candidates = Candidates(
            ids=[found[k].decode() for k in at], stories=[found[k + 1].decode() for k in at],
            dates=[_float(found[k + 2]) for k in at], added=[float(found[k + 3]) for k in at],
            digests=[found[k + 4] == b"1" for k in at], numbers=[(found[k + 10] or b"").decode() for k in at],
            signatures=np.frombuffer(b"".join(found[k + 6] for k in at), dtype="<u4").astype(np.uint32).reshape(len(at), num_perm),
            shingles=np.frombuffer(b"".join(shingles), dtype="<u4").astype(np.uint32),
            shingle_offsets=offsets_of(np.fromiter(map(len, shingles), dtype=np.int64, count=len(at)) // 4),
            tokens=flat, counts=flat_counts([found[k + 9] for k in at], lengths), token_offsets=offsets_of(lengths),
            df=vocab_df[np.searchsorted(vocab_tokens, flat)],
        )
        return Lookup(candidates, query_df, documents, bool(indexed), token)

    def stories(self) -> int:
        return sum(1 for _ in self._redis.scan_iter(match=self._key("story", "*"), count=1000))

    # --- writing -------------------------------------------------------------------------------------

    def _writable(self) -> None:
        if self.read_only:
            raise IndexStateError(f"{self.location} was opened read-only; open it without read_only=True to change it")

    @contextmanager
    def writing(self) -> Iterator[None]:
        """No lock: each insert checks, atomically, that its decision is still valid (see the class)."""
        self._writable()
        yield

    def insert(self, item: Commit, lookup: Lookup | None = None) -> None:
        rec = item.record
        if lookup is not None and lookup.token is not None:
            version, cards, members = lookup.token
            args: list[Any] = [version, cards, len(members) // 3, *members]
        else:
            args = ["", "", 0]
        args += [len(item.merge), *(self._key("story", s) for s in item.merge)]
        fields = {
            "story": rec.story, "date": "" if rec.date is None else repr(rec.date), "added": repr(rec.added),
            "digest": "1" if rec.digest else "0", "signature": u32_bytes(rec.signature), "shingles": u32_bytes(rec.shingles),
            "counts": counts_bytes(rec.counts), "numbers": numbers_text(rec.numbers),
            "sketch": u64_bytes(sketch(rec.shingles, rec.tokens)),
        }  # and "tokens", from the tokens argument
        for key, value in fields.items():
            args += [key, value]
        keys_table = self.lsh.keys._name
        done = self._insert(
            keys=[self._key("doc", rec.id), self._key("story", rec.story), self._key("docs"), self._key("df", ""),
                  self._key("count"), keys_table, keys_table + rec.id.encode(), self._key("doc", ""), self._key("version")],
            args=[rec.id, rec.time, rec.story, self._band_values(rec.signature), 4 * self._rows, self._bands,
                  self._table_prefix, u64_bytes(rec.tokens), *args],
        )
        if done == -1:
            raise Conflict(rec.id)
        if not done:
            raise IndexStateError(f"{rec.id!r} is already indexed; pass replace=True to replace it")

    def delete(self, doc_ids: Sequence[str]) -> int:
        keys_table = self.lsh.keys._name
        ids = list(dict.fromkeys(doc_ids))
        removed = 0
        for lo in range(0, len(ids), 500):
            pipe = self._redis.pipeline(transaction=False)
            for doc_id in ids[lo : lo + 500]:
                self._delete(
                    keys=[self._key("doc", doc_id), self._key("docs"), self._key("df", ""), self._key("count"),
                          keys_table, keys_table + doc_id.encode(), self._key("version")],
                    args=[doc_id, self._key("story", ""), self._table_prefix], client=pipe,
                )
            removed += sum(int(v) for v in pipe.execute())
        return removed

    def expire(self, before: float) -> int:
        ids = [m.decode() for m in self._redis.zrangebyscore(self._key("docs"), "-inf", f"({before!r}")]
        return self.delete(ids)

    def seed(self, tokens: np.ndarray, counts: np.ndarray, docs: int) -> None:
        pipe = self._redis.pipeline(transaction=True)
        raw = u64_bytes(tokens)
        for i, n in enumerate(counts.tolist()):
            pipe.incrby(self._key("df", raw[8 * i : 8 * i + 8]), n)
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
        prefix = self._key("df", "")
        names = [k for k in self._redis.scan_iter(match=prefix + b"*", count=1000) if len(k) == len(prefix) + 8]
        stored = {k[len(prefix) :]: int(v) for k, v in zip(names, self._redis.mget(names) if names else [])}
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

