"""In-memory machinery of the index: LSH buckets (band key -> document numbers), a token -> document
frequency table, articles' sketches (exact upper bounds of their scores against a query, so that
most candidates are never read), and the scoring of one query against its candidates, with compiled
kernels (``_jit_band``, from :func:`dedup.kernels.band_kernels`).

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


if _NUMBA:  # (the compiled kernels: _jit_band, or their build ahead of time)
    (_run_lookup, _salted_band_keys, _distinct, _merge_runs, _build_run, _buffer_add, _buffer_lookup, _sketch,
     _sketch_bounds, _score_bounds, _table_get, _table_add, _score) = kernels.band_kernels()


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
