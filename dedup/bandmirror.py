"""In-memory machinery of the index: LSH buckets (band key -> document numbers), a token -> document
frequency table, articles' sketches (exact upper bounds of their scores against a query, so that
most candidates are never read), and the scoring of one query against its candidates, with compiled
(numba) kernels.

Every kernel has a numpy (or dict) fallback used when numba is not available
(``DEDUP_NO_NUMBA``); ``tests/test_index.py`` checks that both give the same answers.
"""

from __future__ import annotations

import numpy as np

from dedup import kernels

_NUMBA = kernels.available()

# Band keys are 64-bit hashes; the mirror keeps their top 50 bits (more than enough: a candidate is
# kept only when a whole band is equal, see store.shares_band): the top DIR_BITS select a directory
# slot, the next 32 bits are stored as the entry's tag.
DIR_BITS = 18
_SLOTS = 1 << DIR_BITS
_SHIFT = np.uint64(64 - DIR_BITS - 32)
_LOW32 = np.uint64(0xFFFFFFFF)
_BUFFER_DOCS = 2048  # documents kept in the buffer before it becomes a sorted run
# An article's sketch: a bitmap of the buckets its shingles fall in and one of its tokens' buckets.
SKETCH_SHINGLE_BITS = 1024
SKETCH_TOKEN_BITS = 512
SKETCH_WORDS = (SKETCH_SHINGLE_BITS + SKETCH_TOKEN_BITS) // 64
assert (SKETCH_SHINGLE_BITS, SKETCH_TOKEN_BITS) == (1 << 10, 1 << 9)  # the compiled _sketch's shifts
assert SKETCH_WORDS == kernels.SKETCH_WORDS
_EMPTY_U32 = np.zeros(0, dtype=np.uint32)


def composite(keys: np.ndarray) -> np.ndarray:
    """The 50-bit keys the mirror compares: directory slot (high bits) and tag (low 32 bits)."""
    return np.asarray(keys, dtype=np.uint64) >> _SHIFT


if _NUMBA:
    import numba as nb

    from dedup._jit import _lower_bound

    _jit = nb.njit(nogil=True, cache=True, boundscheck=False)

    @_jit
    def _run_lookup(directory, tags, docs, comps, dead, out, n):  # pragma: no cover - compiled
        """Append to ``out[n:]`` the live documents of the run stored under each composite key."""
        for i in range(comps.shape[0]):
            c = comps[i]
            slot = np.int64(c >> np.uint64(32))
            tag = np.uint32(c & np.uint64(0xFFFFFFFF))
            end = np.int64(directory[slot + 1])
            lo = _lower_bound(tags, np.int64(directory[slot]), end, tag)
            while lo < end and tags[lo] == tag:
                d = docs[lo]
                if dead[d] == 0:
                    if n < out.shape[0]:
                        out[n] = d
                    n += 1
                lo += 1
        return n

    _BAND_MULT = np.uint64(0x9E3779B97F4A7C15)  # candidates._MULT

    @_jit
    def _salted_band_keys(sigs, rows, salts, out):  # pragma: no cover - compiled
        """store.band_keys: candidates._band_keys of each band of each signature, xored with its band's salt."""
        for d in range(sigs.shape[0]):
            for b in range(salts.shape[0]):
                acc = np.uint64(0)
                for r in range(b * rows, (b + 1) * rows):
                    acc = acc * _BAND_MULT + np.uint64(sigs[d, r])
                    acc ^= acc >> np.uint64(29)
                out[d, b] = acc ^ salts[b]

    @_jit
    def _distinct(values, n):  # pragma: no cover - compiled
        """``np.unique(values[:n]).astype(np.int64)``."""
        ordered = np.sort(values[:n])
        out = np.empty(n, dtype=np.int64)
        m = 0
        for i in range(n):
            if i == 0 or ordered[i] != ordered[i - 1]:
                out[m] = ordered[i]
                m += 1
        return out[:m]

    @_jit
    def _merge_runs(da, ta, xa, db, tb, xb, dead, od, ot, ox):  # pragma: no cover - compiled
        """Merge two runs slot by slot (stable), dropping dead documents; returns the entries kept."""
        n = 0
        for s in range(da.shape[0] - 1):
            od[s] = n
            i, ie = np.int64(da[s]), np.int64(da[s + 1])
            j, je = np.int64(db[s]), np.int64(db[s + 1])
            while i < ie or j < je:
                if j >= je or (i < ie and ta[i] <= tb[j]):
                    t, x = ta[i], xa[i]
                    i += 1
                else:
                    t, x = tb[j], xb[j]
                    j += 1
                if dead[x] == 0:
                    ot[n] = t
                    ox[n] = x
                    n += 1
        od[da.shape[0] - 1] = n
        return n

    @_jit
    def _build_run(comps, docs, directory, tags, out_docs):  # pragma: no cover - compiled
        """Sort entries by composite key (counting sort by slot, then insertion sort by tag: slots are short)."""
        slots = directory.shape[0] - 1
        for i in range(comps.shape[0]):
            directory[np.int64(comps[i] >> np.uint64(32)) + 1] += 1
        for s in range(slots):
            directory[s + 1] += directory[s]
        fill = directory[:-1].copy()
        for i in range(comps.shape[0]):
            slot = np.int64(comps[i] >> np.uint64(32))
            j = fill[slot]
            fill[slot] = j + 1
            tag = np.uint32(comps[i] & np.uint64(0xFFFFFFFF))
            d = np.uint32(docs[i])
            lo = np.int64(directory[slot])
            while j > lo and tags[j - 1] > tag:  # keeps equal tags in input order
                tags[j] = tags[j - 1]
                out_docs[j] = out_docs[j - 1]
                j -= 1
            tags[j] = tag
            out_docs[j] = d

    @_jit
    def _buffer_add(comps, doc, buf_comps, buf_docs, head, chain, n):  # pragma: no cover - compiled
        """Append one document's entries to the buffer, chained by hash slot; returns the new entry count."""
        mask = np.uint64(head.shape[0] - 1)
        for i in range(comps.shape[0]):
            c = comps[i]
            slot = (c ^ (c >> np.uint64(23))) & mask
            buf_comps[n] = c
            buf_docs[n] = doc
            chain[n] = head[slot]
            head[slot] = n
            n += 1
        return n

    @_jit
    def _buffer_lookup(comps, buf_comps, buf_docs, head, chain, dead, out, n):  # pragma: no cover - compiled
        """Append to ``out[n:]`` the live buffered documents stored under each composite key."""
        mask = np.uint64(head.shape[0] - 1)
        for i in range(comps.shape[0]):
            c = comps[i]
            j = head[(c ^ (c >> np.uint64(23))) & mask]
            while j >= 0:
                if buf_comps[j] == c:
                    d = buf_docs[j]
                    if dead[d] == 0:
                        if n < out.shape[0]:
                            out[n] = d
                        n += 1
                j = chain[j]
        return n

    from dedup._jit import SKETCH_SHINGLE_BITS as _COMPILED_SHINGLE_BITS
    from dedup._jit import sketch_bucket as _bucket
    from dedup._jit import sketch_one as _sketch

    assert _COMPILED_SHINGLE_BITS == SKETCH_SHINGLE_BITS

    from numba.cpython.unsafe.numbers import trailing_zeros  # (one instruction: the index of the lowest set bit)

    @nb.extending.intrinsic
    def _popcount(typingctx, x):  # pragma: no cover - compiled
        """The number of set bits of an unsigned integer (one instruction)."""
        if not isinstance(x, nb.types.Integer):
            return None

        def codegen(context, builder, signature, args):
            return builder.ctpop(args[0])

        return x(x), codegen

    @_jit
    def _sketch_bounds(sketches, rows, shingles, tokens, tok_squares, common, mass):  # pragma: no cover
        """For each sketch row: the query's shingles, and the sum of its squared token weights, in
        buckets the row has set (the query's shingles and tokens are bucketed as _sketch does).

        Shingle buckets holding one or two of the query's shingles are counted by popcount over
        masks of such buckets; only buckets holding three or more are visited one by one."""
        words = sketches.shape[1]
        split = SKETCH_SHINGLE_BITS // 64
        held = np.zeros(SKETCH_SHINGLE_BITS, dtype=np.int64)  # per shingle bucket: query shingles
        ones = np.zeros(split, dtype=np.uint64)  # buckets holding exactly 1, exactly 2, 3 or more
        twos = np.zeros(split, dtype=np.uint64)
        more = np.zeros(split, dtype=np.uint64)
        for i in range(shingles.shape[0]):
            b = _bucket(shingles[i], 64 - 10)
            bit = np.uint64(1) << np.uint64(b & 63)
            c = held[b]
            if c == 0:
                ones[b >> 6] |= bit
            elif c == 1:
                ones[b >> 6] &= ~bit
                twos[b >> 6] |= bit
            elif c == 2:
                twos[b >> 6] &= ~bit
                more[b >> 6] |= bit
            held[b] = c + 1
        dense = np.zeros((words - split) * 64)  # per token bucket: the query tokens' squared weights
        mask = np.zeros(words, dtype=np.uint64)
        for i in range(tokens.shape[0]):
            b = _bucket(tokens[i], 64 - 9)
            dense[b] += tok_squares[i]
            mask[split + (b >> 6)] |= np.uint64(1) << np.uint64(b & 63)
        for k in range(rows.shape[0]):
            r = rows[k]
            n = 0
            w = 0.0
            for j in range(split):
                x = sketches[r, j]
                n += _popcount(x & ones[j]) + 2 * _popcount(x & twos[j])
                x &= more[j]
                while x:
                    n += held[j * 64 + np.int64(trailing_zeros(x))]
                    x &= x - np.uint64(1)
            for j in range(split, words):
                x = sketches[r, j] & mask[j]
                while x:
                    w += dense[(j - split) * 64 + np.int64(trailing_zeros(x))]
                    x &= x - np.uint64(1)
            common[k] = n
            mass[k] = w

    @_jit
    def _score_bounds(sketches, sizes, rows, shingles, tokens, counts, df, documents, extra, slack, containment,
                      cosine):  # pragma: no cover - compiled
        """score_bounds in one pass: the query's weights (tfidf_weights), _sketch_bounds, and the bounds."""
        squares = np.empty(tokens.shape[0])
        total = 0.0
        for i in range(tokens.shape[0]):
            w = (1.0 + np.log(np.float64(counts[i]))) * (np.log((1.0 + documents) / (1.0 + df[i] + extra)) + 1.0)
            squares[i] = w * w
            total += w * w
        k = rows.shape[0]
        common = np.empty(k, dtype=np.int64)
        mass = np.empty(k)
        _sketch_bounds(sketches, rows, shingles, tokens, squares, common, mass)
        for j in range(k):
            smaller = min(np.int64(shingles.shape[0]), np.int64(sizes[rows[j]]))
            containment[j] = (common[j] / smaller if smaller > 0 else 0.0) + slack
            cosine[j] = (np.sqrt(min(mass[j] / total, 1.0)) if total > 0 else 0.0) + slack

    @_jit
    def _slot(keys, k, mask):  # pragma: no cover - compiled
        """The slot holding key ``k`` in the open-addressing table, or the empty slot where it would go."""
        j = (k ^ (k >> np.uint64(31))) & mask
        while keys[j] != k and keys[j] != 0:
            j = (j + np.uint64(1)) & mask
        return j

    @_jit
    def _table_get(keys, vals, tokens, out):  # pragma: no cover - compiled
        mask = np.uint64(keys.shape[0] - 1)
        for i in range(tokens.shape[0]):
            j = _slot(keys, tokens[i], mask)
            out[i] = vals[j] if keys[j] == tokens[i] else 0

    @_jit
    def _table_add(keys, vals, tokens, deltas, step):  # pragma: no cover - compiled
        """Add ``deltas[i * step]`` to the count of ``tokens[i]`` (step 0: one delta for all), skipping
        token 0 (it marks empty slots); returns (how many keys were new, the deltas of token 0)."""
        mask = np.uint64(keys.shape[0] - 1)
        new = 0
        zero = 0
        for i in range(tokens.shape[0]):
            d = deltas[i * step]
            if tokens[i] == 0:
                zero += d
                continue
            j = _slot(keys, tokens[i], mask)
            if keys[j] == tokens[i]:
                vals[j] += d
            else:
                keys[j] = tokens[i]
                vals[j] = d
                new += 1
        return new, zero

    @_jit
    def _idf(df, n, cache_df, cache_idf):  # pragma: no cover - compiled
        """scikit-learn's smooth idf, memoised by document frequency (direct-mapped: same value, fewer logs)."""
        slot = np.int64(df) & (cache_df.shape[0] - 1)
        if cache_df[slot] == df:
            return cache_idf[slot]
        value = np.log((1.0 + n) / (1.0 + df)) + 1.0
        cache_df[slot] = df
        cache_idf[slot] = value
        return value

    _TF = 1.0 + np.log(np.arange(1, 257, dtype=np.float64))  # sublinear tf of counts 1..256

    @_jit
    def _tf(count):  # pragma: no cover - compiled
        return _TF[count - 1] if count <= 256 else 1.0 + np.log(np.float64(count))

    @_jit
    def _positions(values, size):  # pragma: no cover - compiled
        """An open-addressing table of ``values`` (distinct): slot -> position in ``values``, -1 empty."""
        mask = np.uint64(size - 1)
        table = np.full(size, -1, dtype=np.int64)
        for i in range(values.shape[0]):
            v = np.uint64(values[i])
            j = (v ^ (v >> np.uint64(29))) & mask
            while table[j] >= 0:
                j = (j + np.uint64(1)) & mask
            table[j] = i
        return table

    @_jit
    def _find(values, table, v):  # pragma: no cover - compiled
        mask = np.uint64(table.shape[0] - 1)
        x = np.uint64(v)
        j = (x ^ (x >> np.uint64(29))) & mask
        while True:
            i = table[j]
            if i < 0 or values[i] == v:
                return i
            j = (j + np.uint64(1)) & mask

    @_jit
    def _score(q_tok, q_cnt, q_df, c_tok, c_cnt, c_df, t_off, q_sh, c_sh, s_off, n, extra, cosine, common):  # pragma: no cover
        """TF-IDF cosine and shared shingles of one query with each candidate (see score_candidates)."""
        cache_df = np.full(4096, -1.0)
        cache_idf = np.empty(4096)
        nq = q_tok.shape[0]
        q_w = np.empty(nq)
        q_norm = 0.0
        for i in range(nq):
            w = _tf(q_cnt[i]) * _idf(q_df[i] + extra, n, cache_df, cache_idf)
            q_w[i] = w
            q_norm += w * w
        q_norm = np.sqrt(q_norm)
        size = 64
        while size < 4 * max(nq, q_sh.shape[0]):
            size *= 2
        tok_table = _positions(q_tok, size)
        sh_table = _positions(q_sh, size)
        for k in range(t_off.shape[0] - 1):
            dot = 0.0
            norm = 0.0
            for i in range(t_off[k], t_off[k + 1]):
                p = _find(q_tok, tok_table, c_tok[i])
                if p >= 0:
                    w = _tf(c_cnt[i]) * _idf(c_df[i] + extra, n, cache_df, cache_idf)
                    dot += w * q_w[p]
                else:
                    w = _tf(c_cnt[i]) * _idf(c_df[i], n, cache_df, cache_idf)
                norm += w * w
            norm = np.sqrt(norm)
            cosine[k] = dot / (norm * q_norm) if norm > 0.0 and q_norm > 0.0 else 0.0
            same = 0
            for i in range(s_off[k], s_off[k + 1]):
                if _find(q_sh, sh_table, c_sh[i]) >= 0:
                    same += 1
            common[k] = same


# --- LSH buckets ----------------------------------------------------------------------------------------


def salted_band_keys(sigs: np.ndarray, rows: int, salts: np.ndarray) -> np.ndarray | None:
    """:func:`dedup.store.band_keys` of signatures ``sigs`` (docs x at least bands * rows, uint32) in one
    compiled pass (``salts``: one per band); None without numba (the caller computes them with numpy)."""
    if not _NUMBA:
        return None
    out = np.empty((sigs.shape[0], len(salts)), dtype=np.uint64)
    _salted_band_keys(sigs, rows, salts, out)
    return out


class _Run:
    """Entries sorted by composite key: ``directory[s]:directory[s+1]`` are slot ``s``'s, sorted by tag."""

    __slots__ = ("directory", "tags", "docs")

    def __init__(self, directory: np.ndarray, tags: np.ndarray, docs: np.ndarray) -> None:
        self.directory, self.tags, self.docs = directory, tags, docs

    @classmethod
    def build(cls, comps: np.ndarray, docs: np.ndarray) -> _Run:
        if _NUMBA:
            directory = np.zeros(_SLOTS + 1, dtype=np.uint32)
            tags = np.empty(len(comps), dtype=np.uint32)
            out = np.empty(len(comps), dtype=np.uint32)
            _build_run(comps, np.asarray(docs, dtype=np.uint32), directory, tags, out)
            return cls(directory, tags, out)
        order = np.argsort(comps, kind="stable")
        comps = comps[order]
        counts = np.bincount((comps >> np.uint64(32)).astype(np.int64), minlength=_SLOTS)
        directory = np.zeros(_SLOTS + 1, dtype=np.uint32)
        np.cumsum(counts, out=directory[1:])
        return cls(directory, (comps & _LOW32).astype(np.uint32), np.asarray(docs, dtype=np.uint32)[order])

    def __len__(self) -> int:
        return len(self.tags)

    @property
    def nbytes(self) -> int:
        return self.directory.nbytes + self.tags.nbytes + self.docs.nbytes

    def comps(self) -> np.ndarray:
        slots = np.repeat(np.arange(_SLOTS, dtype=np.uint64), np.diff(self.directory).astype(np.int64))
        return (slots << np.uint64(32)) | self.tags.astype(np.uint64)

    def lookup(self, comps: np.ndarray, dead: np.ndarray) -> np.ndarray:
        """Live documents stored under ``comps`` (numpy fallback of ``_run_lookup``)."""
        found = []
        slots = (comps >> np.uint64(32)).astype(np.int64)
        tags = (comps & _LOW32).astype(np.uint32)
        for slot, tag in zip(slots.tolist(), tags.tolist()):
            lo, hi = int(self.directory[slot]), int(self.directory[slot + 1])
            if lo == hi:
                continue
            seg = self.tags[lo:hi]
            a, b = np.searchsorted(seg, tag, side="left"), np.searchsorted(seg, tag, side="right")
            if b > a:
                found.append(self.docs[lo + a : lo + b])
        docs = np.concatenate(found) if found else _EMPTY_U32
        return docs[dead[docs] == 0]


def _merge(a: _Run, b: _Run, dead: np.ndarray) -> _Run:
    """One run holding the live entries of ``a`` and ``b``."""
    total = len(a) + len(b)
    if _NUMBA:
        directory = np.empty(_SLOTS + 1, dtype=np.uint32)
        tags = np.empty(total, dtype=np.uint32)
        docs = np.empty(total, dtype=np.uint32)
        n = _merge_runs(a.directory, a.tags, a.docs, b.directory, b.tags, b.docs, dead, directory, tags, docs)
        if n < total:
            tags, docs = tags[:n].copy(), docs[:n].copy()
        return _Run(directory, tags, docs)
    comps = np.concatenate((a.comps(), b.comps()))
    docs = np.concatenate((a.docs, b.docs))
    live = dead[docs] == 0
    return _Run.build(comps[live], docs[live])


class BandMirror:
    """Maps 64-bit band keys to document numbers (SQLite rowids, below 2**32).

    New entries are appended to a buffer (flat arrays, with a hash index of
    chains when compiled); a full buffer becomes a sorted run (a directory
    of 2**18 slots over the key's top bits, 32-bit tags and 32-bit document
    numbers: 8 bytes an entry), and runs are merged geometrically (like an
    LSM tree), so adding is cheap and a lookup is a few binary searches in
    short slot ranges. Removed documents are only marked dead and dropped
    when runs are merged or compacted.
    """

    def __init__(self) -> None:
        self._runs: list[_Run] = []
        self._buffered = 0  # documents in the buffer
        self._n = 0  # entries in the buffer
        self._buf_comps = np.zeros(0, dtype=np.uint64)
        self._buf_docs = np.zeros(0, dtype=np.uint32)
        self._head = np.zeros(0, dtype=np.int32)  # hash slot -> last buffered entry there (-1: none)
        self._chain = np.zeros(0, dtype=np.int32)  # entry -> previous entry of its slot
        self._docs = 0  # documents stored, dead ones included
        self._dead = np.zeros(1024, dtype=np.uint8)  # 1 for removed document numbers
        self._dead_count = 0

    def _grow(self, doc: int) -> None:
        if doc >= len(self._dead):
            grown = np.zeros(max(doc + 1, 2 * len(self._dead)), dtype=np.uint8)
            grown[: len(self._dead)] = self._dead
            self._dead = grown

    def load(self, docs: np.ndarray, keys: np.ndarray) -> None:
        """Add many documents at once: ``keys[k]`` are the band keys of ``docs[k]``."""
        if len(docs) == 0:
            return
        self._grow(int(np.max(docs)))
        self._docs += len(docs)
        flat_docs = np.repeat(np.asarray(docs, dtype=np.uint32), keys.shape[1])
        self._push(_Run.build(composite(keys.ravel()), flat_docs))

    def add(self, doc: int, keys: np.ndarray) -> None:
        """Index one document under its band keys."""
        self._grow(doc)
        comps = composite(keys)
        if self._n + len(comps) > len(self._buf_comps):
            self._flush()
            capacity = _BUFFER_DOCS * len(comps)
            if len(self._buf_comps) < capacity:
                self._buf_comps = np.empty(capacity, dtype=np.uint64)
                self._buf_docs = np.empty(capacity, dtype=np.uint32)
                if _NUMBA:
                    size = 1 << max(8, int(2 * capacity - 1).bit_length())
                    self._head = np.full(size, -1, dtype=np.int32)
                    self._chain = np.empty(capacity, dtype=np.int32)
        if _NUMBA:
            self._n = _buffer_add(comps, doc, self._buf_comps, self._buf_docs, self._head, self._chain, self._n)
        else:
            self._buf_comps[self._n : self._n + len(comps)] = comps
            self._buf_docs[self._n : self._n + len(comps)] = doc
            self._n += len(comps)
        self._docs += 1
        self._buffered += 1
        if self._buffered >= _BUFFER_DOCS:
            self._flush()

    def remove(self, doc: int) -> None:
        """Forget a document (lazily: it is filtered from lookups and dropped at the next compaction)."""
        if doc < len(self._dead) and not self._dead[doc]:
            self._dead[doc] = 1
            self._dead_count += 1
            if self._dead_count * 4 > max(self._docs, 4096):
                self.compact()

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Distinct live documents stored under any of ``keys`` (sorted, int64)."""
        comps = composite(keys)
        dead = self._dead
        if _NUMBA:
            out = np.empty(1024, dtype=np.uint32)  # per call: lookups run in several threads
            while True:
                n = 0
                for run in self._runs:
                    n = _run_lookup(run.directory, run.tags, run.docs, comps, dead, out, n)
                if self._n:
                    n = _buffer_lookup(comps, self._buf_comps, self._buf_docs, self._head, self._chain, dead, out, n)
                if n <= len(out):
                    break
                out = np.empty(n, dtype=np.uint32)  # rare: more hits than room; again with enough
            return _distinct(out, n)
        else:
            parts = [run.lookup(comps, dead) for run in self._runs]
            if self._n:
                buffered = self._buf_docs[: self._n][np.isin(self._buf_comps[: self._n], comps)]
                parts.append(buffered[dead[buffered] == 0])
            found = np.concatenate(parts) if parts else _EMPTY_U32
        return kernels.unique(found).astype(np.int64)

    def compact(self) -> None:
        """Drop dead documents and merge everything into one sorted run."""
        self._flush()
        while len(self._runs) > 1:
            b = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], b, self._dead)
        if self._runs and self._dead_count:
            empty = _Run(np.zeros(_SLOTS + 1, dtype=np.uint32), _EMPTY_U32, _EMPTY_U32)
            self._runs[0] = _merge(self._runs[0], empty, self._dead)
        if self._runs and not len(self._runs[0]):
            self._runs = []
        self._docs -= self._dead_count
        self._dead_count = 0  # their numbers stay marked dead: SQLite never reuses them

    def entries(self) -> int:
        """Stored (key, document) pairs, dead ones included."""
        return sum(len(r) for r in self._runs) + self._n

    def nbytes(self) -> int:
        """Memory of the sorted runs, the buffer and the dead marks."""
        buffer = self._buf_comps.nbytes + self._buf_docs.nbytes + self._head.nbytes + self._chain.nbytes
        return sum(r.nbytes for r in self._runs) + buffer + self._dead.nbytes

    def _flush(self) -> None:
        if not self._n:
            return
        run = _Run.build(self._buf_comps[: self._n], self._buf_docs[: self._n])
        self._n = self._buffered = 0
        if _NUMBA:
            self._head.fill(-1)
        self._push(run)

    def _push(self, run: _Run) -> None:
        self._runs.append(run)
        # Geometric merging: the last run is merged into the one before while not much smaller.
        while len(self._runs) > 1 and len(self._runs[-2]) <= 4 * len(self._runs[-1]):
            b = self._runs.pop()
            self._runs[-1] = _merge(self._runs[-1], b, self._dead)


# --- document frequencies -------------------------------------------------------------------------------


class TokenCounts:
    """Token hash (uint64) -> count: the document frequencies of the index, in memory.

    An open-addressing hash table in two numpy arrays (16 bytes a slot, at most
    half full) with compiled lookups, or a dict without numba. Counts that
    fall to zero count as absent (the slots are reused when the table grows)."""

    def __init__(self) -> None:
        self._zero = 0  # the count of token hash 0 (0 marks empty slots)
        if _NUMBA:
            self._keys = np.zeros(1 << 12, dtype=np.uint64)
            self._vals = np.zeros(1 << 12, dtype=np.int64)
            self._used = 0
        else:
            self._dict: dict[int, int] = {}

    def get(self, tokens: np.ndarray) -> np.ndarray:
        """The count of each token (int64; 0 when absent)."""
        tokens = np.ascontiguousarray(tokens, dtype=np.uint64)
        if not _NUMBA:
            get = self._dict.get
            return np.fromiter((get(t, 0) for t in tokens.tolist()), dtype=np.int64, count=len(tokens))
        out = np.empty(len(tokens), dtype=np.int64)
        _table_get(self._keys, self._vals, tokens, out)
        if self._zero:
            out[tokens == 0] = self._zero
        return out

    def get_float(self, tokens: np.ndarray) -> np.ndarray:
        """:meth:`get` as float64 (counts are far below 2**53: exact)."""
        if not _NUMBA or self._zero:
            return self.get(tokens).astype(np.float64)
        tokens = np.ascontiguousarray(tokens, dtype=np.uint64)
        out = np.empty(len(tokens), dtype=np.float64)
        _table_get(self._keys, self._vals, tokens, out)
        return out

    def add(self, tokens: np.ndarray, deltas: np.ndarray | int) -> None:
        """Add ``deltas`` (one per token, or one for all) to the counts of the distinct ``tokens``."""
        tokens = np.ascontiguousarray(tokens, dtype=np.uint64)
        if not _NUMBA:
            table = self._dict
            for t, n in zip(tokens.tolist(), np.broadcast_to(np.asarray(deltas, dtype=np.int64), tokens.shape).tolist()):
                left = table.get(t, 0) + n
                if left:
                    table[t] = left
                else:
                    del table[t]
            return
        one = np.ndim(deltas) == 0  # one article added or removed: no array of deltas
        deltas = np.ascontiguousarray(deltas, dtype=np.int64).reshape(-1)
        if 2 * (self._used + len(tokens)) > len(self._keys):
            self._rehash(self._used + len(tokens))
        new, zero = _table_add(self._keys, self._vals, tokens, deltas, 0 if one else 1)
        self._used += new
        self._zero += zero

    def _rehash(self, adding: int) -> None:
        live = self._vals != 0
        keys, vals = self._keys[live], self._vals[live]
        size = 1 << 12
        while size < 4 * (len(keys) + adding):
            size *= 2
        self._keys = np.zeros(size, dtype=np.uint64)
        self._vals = np.zeros(size, dtype=np.int64)
        self._used = _table_add(self._keys, self._vals, keys, vals, 1)[0]

    def items(self) -> dict[int, int]:
        """Every non-zero count, as a dict (for consistency checks)."""
        if not _NUMBA:
            return dict(self._dict)
        live = (self._vals != 0) & (self._keys != 0)
        out = dict(zip(self._keys[live].tolist(), self._vals[live].tolist()))
        if self._zero:
            out[0] = self._zero
        return out

    def nbytes(self) -> int:
        return self._keys.nbytes + self._vals.nbytes if _NUMBA else 0


# --- sketches: exact upper bounds of the scores ---------------------------------------------------------


def token_buckets(hashes: np.ndarray) -> np.ndarray:
    """The bucket of each token hash in the token half of a sketch (int64)."""
    return kernels.hash_buckets(hashes, SKETCH_TOKEN_BITS)


def sketch(shingles: np.ndarray, tokens: np.ndarray) -> np.ndarray:
    """An article's sketch (``SKETCH_WORDS`` uint64): bitmaps of its shingles' and its tokens' buckets."""
    if _NUMBA:
        out = np.zeros(SKETCH_WORDS, dtype=np.uint64)
        _sketch(shingles, tokens, out)
        return out
    bits = np.concatenate((kernels.hash_buckets(shingles, SKETCH_SHINGLE_BITS),
                           SKETCH_SHINGLE_BITS + kernels.hash_buckets(tokens, SKETCH_TOKEN_BITS)))
    flags = np.zeros(SKETCH_WORDS * 64, dtype=np.uint8)
    flags[bits] = 1
    return np.packbits(flags, bitorder="little").view("<u8").astype(np.uint64)


def tfidf_weights(counts: np.ndarray, df: np.ndarray, documents: float, extra: float) -> np.ndarray:
    """An article's TF-IDF weights as :func:`score_candidates` computes them (before l2 normalisation)."""
    return (1.0 + np.log(np.asarray(counts, dtype=np.float64))) * (np.log((1.0 + documents) / (1.0 + df + extra)) + 1.0)


def sketch_bounds(
    sketches: np.ndarray, rows: np.ndarray, q_shingles: np.ndarray, q_tokens: np.ndarray, q_weights: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds, from the articles' sketches (``sketches[rows]``), of their shared distinct shingles
    with a query and of their TF-IDF cosine with it (``q_weights``: the query's token weights).

    A shared shingle falls in a bucket set in both bitmaps, so the query's shingles in buckets the
    article has bound the shared ones. By Cauchy-Schwarz the cosine is at most the norm of the
    query's weights on the shared tokens over its whole norm, and the shared tokens are among the
    query's tokens in buckets the article has."""
    squares = q_weights * q_weights
    total = float(squares.sum())
    if _NUMBA:
        common = np.empty(len(rows), dtype=np.int64)
        mass = np.empty(len(rows))
        _sketch_bounds(sketches, rows, q_shingles, q_tokens, squares, common, mass)
    else:
        sh_buckets = kernels.hash_buckets(q_shingles, SKETCH_SHINGLE_BITS)
        tok_buckets = kernels.hash_buckets(q_tokens, SKETCH_TOKEN_BITS)
        flags = np.unpackbits(sketches[rows].astype("<u8").view(np.uint8), axis=1, bitorder="little")
        common = flags[:, sh_buckets].sum(axis=1).astype(np.int64)
        mass = flags[:, SKETCH_SHINGLE_BITS + tok_buckets] @ squares
    cosine = np.sqrt(np.minimum(mass / total, 1.0)) if total > 0 else np.zeros(len(rows))
    return common, cosine


def score_bounds(
    sketches: np.ndarray, sizes: np.ndarray, rows: np.ndarray, q_shingles: np.ndarray, q_tokens: np.ndarray,
    q_counts: np.ndarray, q_df: np.ndarray, documents: float, extra: float, slack: float = 0.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Upper bounds (plus ``slack``) of the containment and the TF-IDF cosine of the articles ``rows`` (their
    sketches and distinct shingle counts ``sizes``) with a query: :func:`sketch_bounds` with the query's
    :func:`tfidf_weights` (``q_counts``, ``q_df``, ``documents``, ``extra``), its shared-shingle bound over the
    smaller shingle count (0 when that is 0). One compiled pass with numba (the same values up to rounding)."""
    rows = np.asarray(rows, dtype=np.int64)
    if _NUMBA:
        containment = np.empty(len(rows))
        cosine = np.empty(len(rows))
        _score_bounds(sketches, sizes, rows, q_shingles, q_tokens, q_counts, np.asarray(q_df, dtype=np.float64),
                      float(documents), float(extra), float(slack), containment, cosine)
        return containment, cosine
    weights = tfidf_weights(q_counts, q_df, documents, extra)
    common, cosine = sketch_bounds(sketches, rows, q_shingles, q_tokens, weights)
    smaller = np.minimum(len(q_shingles), sizes[rows])
    containment = np.divide(common, smaller, out=np.zeros(len(rows)), where=smaller > 0)
    return containment + slack, cosine + slack


# --- scoring --------------------------------------------------------------------------------------------


def score_candidates(
    q_tokens: np.ndarray, q_counts: np.ndarray, q_df: np.ndarray, c_tokens: np.ndarray, c_counts: np.ndarray,
    c_df: np.ndarray, token_offsets: np.ndarray, q_shingles: np.ndarray, c_shingles: np.ndarray,
    shingle_offsets: np.ndarray, documents: float, extra: float,
) -> tuple[np.ndarray, np.ndarray]:
    """(TF-IDF cosine, shared distinct shingles) of one query with each of k candidates.

    Tokens are sorted distinct hashes with their counts and document
    frequencies (``q_df``, ``c_df``); candidate ``k`` owns
    ``c_tokens[token_offsets[k]:token_offsets[k+1]]`` and its shingles likewise.
    Weights are ``confirm.tfidf_matrix``'s: sublinear tf and scikit-learn's
    smooth idf over ``documents`` documents, rows l2-normalised; ``extra``
    (0 or 1) counts the query as one more document holding its tokens.
    """
    k = len(token_offsets) - 1
    cosine = np.zeros(k)
    common = np.zeros(k, dtype=np.int64)
    if _NUMBA:
        _score(q_tokens, q_counts, np.asarray(q_df, dtype=np.float64), c_tokens, c_counts,
               np.asarray(c_df, dtype=np.float64), token_offsets, q_shingles, c_shingles, shingle_offsets,
               float(documents), float(extra), cosine, common)
        return cosine, common
    nq = len(q_tokens)
    q_w = tfidf_weights(q_counts, q_df, documents, extra)
    q_norm = np.sqrt(np.dot(q_w, q_w))
    lengths = np.diff(token_offsets)
    if nq and len(c_tokens):
        pos = np.minimum(np.searchsorted(q_tokens, c_tokens), nq - 1)
        hit = q_tokens[pos] == c_tokens
    else:
        pos = np.zeros(len(c_tokens), dtype=np.int64)
        hit = np.zeros(len(c_tokens), dtype=bool)
    w = (1.0 + np.log(c_counts.astype(np.float64))) * (np.log((1.0 + documents) / (1.0 + c_df + extra * hit)) + 1.0)
    norms = np.sqrt(_sum_per_row(w * w, lengths))
    dots = _sum_per_row(np.where(hit, w * (q_w[pos] if nq else 0.0), 0.0), lengths)
    ok = (norms > 0) & (q_norm > 0)
    cosine[ok] = dots[ok] / (norms[ok] * q_norm)
    if len(q_shingles) and len(c_shingles):
        spos = np.minimum(np.searchsorted(q_shingles, c_shingles), len(q_shingles) - 1)
        common = np.rint(_sum_per_row((q_shingles[spos] == c_shingles).astype(np.float64), np.diff(shingle_offsets)))
        common = common.astype(np.int64)
    return cosine, common


def _sum_per_row(values: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """Sums of consecutive segments of ``values`` of the given lengths (empty segments sum to 0)."""
    ends = np.cumsum(lengths)
    totals = np.concatenate(([0.0], np.cumsum(values, dtype=np.float64)))
    return totals[ends] - totals[ends - lengths]
