"""The numba kernels of the index's in-memory machinery (:mod:`dedup.bandmirror`), behind :mod:`dedup.kernels`
(which may load them built ahead of time instead: :mod:`dedup._aot`)."""

import numba as nb
import numpy as np
from numba.cpython.unsafe.numbers import trailing_zeros  # (one instruction: the index of the lowest set bit)

from dedup._jit import SKETCH_SHINGLE_BITS, _lower_bound
from dedup._jit import sketch_bucket as _bucket

_OPTS = dict(nogil=True, cache=True, boundscheck=False)


@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
def _salted_band_keys(sigs, rows, salts, out):  # pragma: no cover - compiled
    """store.band_keys: candidates._band_keys of each band of each signature, xored with its band's salt."""
    for d in range(sigs.shape[0]):
        for b in range(salts.shape[0]):
            acc = np.uint64(0)
            for r in range(b * rows, (b + 1) * rows):
                acc = acc * _BAND_MULT + np.uint64(sigs[d, r])
                acc ^= acc >> np.uint64(29)
            out[d, b] = acc ^ salts[b]

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.extending.intrinsic
def _popcount(typingctx, x):  # pragma: no cover - compiled
    """The number of set bits of an unsigned integer (one instruction)."""
    if not isinstance(x, nb.types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])

    return x(x), codegen

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
def _slot(keys, k, mask):  # pragma: no cover - compiled
    """The slot holding key ``k`` in the open-addressing table, or the empty slot where it would go."""
    j = (k ^ (k >> np.uint64(31))) & mask
    while keys[j] != k and keys[j] != 0:
        j = (j + np.uint64(1)) & mask
    return j

@nb.njit(**_OPTS)
def _table_get(keys, vals, tokens, out):  # pragma: no cover - compiled
    mask = np.uint64(keys.shape[0] - 1)
    for i in range(tokens.shape[0]):
        j = _slot(keys, tokens[i], mask)
        out[i] = vals[j] if keys[j] == tokens[i] else 0

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
def _tf(count):  # pragma: no cover - compiled
    return _TF[count - 1] if count <= 256 else 1.0 + np.log(np.float64(count))

@nb.njit(**_OPTS)
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

@nb.njit(**_OPTS)
def _find(values, table, v):  # pragma: no cover - compiled
    mask = np.uint64(table.shape[0] - 1)
    x = np.uint64(v)
    j = (x ^ (x >> np.uint64(29))) & mask
    while True:
        i = table[j]
        if i < 0 or values[i] == v:
            return i
        j = (j + np.uint64(1)) & mask

@nb.njit(**_OPTS)
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
