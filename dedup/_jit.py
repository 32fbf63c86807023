"""The numba kernels behind :mod:`dedup.kernels` (imported only when numba is used).

Module-level functions with module-level constants, so that ``cache=True`` stores
the compiled code on disk and later processes load it instead of compiling.

numba checks a cached kernel against its own file only: the kernels of
:mod:`dedup.bandmirror` compile in ``sketch_bucket``, ``sketch_one`` and
``_lower_bound`` from here, so after changing those, delete
``dedup/__pycache__/bandmirror*.nb*`` (an install writes every file anew, which
invalidates all of them).
"""

import numba as nb
import numpy as np
from llvmlite import ir
from numba.core import cgutils, types
from numba.cpython.unsafe.numbers import trailing_zeros  # (one instruction: the index of the lowest set bit)
from numba.extending import intrinsic

_OPTS = dict(nogil=True, cache=True, boundscheck=False)
M32 = np.uint64(0xFFFFFFFF)
MULT = np.uint64(0x9E3779B97F4A7C15)
M1 = np.uint64(0xFF51AFD7ED558CCD)
M2 = np.uint64(0xC4CEB9FE1A85EC53)
S33 = np.uint64(33)
S32 = np.uint64(32)
S16 = np.uint64(16)
S13 = np.uint64(13)
F1 = np.uint64(0x85EBCA6B)
F2 = np.uint64(0xC2B2AE35)


@intrinsic
def prefetch(typingctx, array, index):
    """Ask the CPU to bring the cache line of ``array[index]`` (1-d) into its caches (LLVM's prefetch: a
    hint that never faults), so that a later read of it does not wait for memory."""
    def codegen(context, builder, signature, args):
        aryty = signature.args[0]
        ary = context.make_array(aryty)(context, builder, args[0])
        ptr = builder.bitcast(cgutils.get_item_pointer(context, builder, aryty, ary, [args[1]], wraparound=False),
                              cgutils.voidptr_t)
        i32 = ir.IntType(32)
        fn = builder.module.declare_intrinsic(  # (named for the pointer type: llvm.prefetch.p0 or .p0i8)
            "llvm.prefetch", [cgutils.voidptr_t], fnty=ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t, i32, i32, i32]))
        builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])  # (read, keep, data)
        return context.get_dummy_value()

    return types.void(array, index), codegen


@intrinsic
def popcount(typingctx, x):
    """The number of set bits of a uint64 (LLVM's ctpop: one instruction where the CPU has it)."""
    def codegen(context, builder, signature, args):
        fn = builder.module.declare_intrinsic("llvm.ctpop", [ir.IntType(64)])
        return builder.call(fn, [args[0]])

    return types.uint64(types.uint64), codegen

@nb.njit(**_OPTS)
def _minhash_one(values, lo, hi, a, b, sig):  # values[lo:hi] are shingle hashes (uint32)
    p = a.shape[0]
    for k in range(p):
        sig[k] = 0xFFFFFFFF
    for i in range(lo, hi):
        x = np.uint64(values[i])
        x = x ^ (x >> S16)
        x = (x * F1) & M32
        x = x ^ (x >> S13)
        x = (x * F2) & M32
        x = x ^ (x >> S16)
        m = np.uint32(x)
        for k in range(p):
            h = np.uint32(a[k] * m + b[k])  # low 32 bits: arithmetic mod 2**32
            if h < sig[k]:
                sig[k] = h

@nb.njit(**_OPTS)
def _sort_distinct(values, tmp, count, counts, out, at):
    """Write the distinct values of ``values[:count]`` (uint32) in ascending order to ``out[at:]`` and return how
    many: a radix sort, a byte a pass (~5x faster than np.sort on the ~600 shingles of an article), through
    ``tmp`` (as long as ``values``, which it overwrites) with ``counts`` (int32, 4 x 256) for its counters."""
    counts[:] = 0
    for s in range(count):
        x = values[s]
        counts[0, x & 0xFF] += 1
        counts[1, (x >> 8) & 0xFF] += 1
        counts[2, (x >> 16) & 0xFF] += 1
        counts[3, x >> 24] += 1
    for k in range(4):  # counts -> where each byte value's run starts
        total = 0
        for v in range(256):
            c = counts[k, v]
            counts[k, v] = total
            total += c
    for s in range(count):
        x = values[s]
        tmp[counts[0, x & 0xFF]] = x
        counts[0, x & 0xFF] += 1
    for s in range(count):
        x = tmp[s]
        values[counts[1, (x >> 8) & 0xFF]] = x
        counts[1, (x >> 8) & 0xFF] += 1
    for s in range(count):
        x = values[s]
        tmp[counts[2, (x >> 16) & 0xFF]] = x
        counts[2, (x >> 16) & 0xFF] += 1
    for s in range(count):
        x = tmp[s]
        out[at + counts[3, x >> 24]] = x
        counts[3, x >> 24] += 1
    u = 0
    for s in range(count):  # (in place: the u-th distinct value is never after the s-th value)
        x = out[at + s]
        if s == 0 or x != out[at + u - 1]:
            out[at + u] = x
            u += 1
    return u


@nb.njit(**_OPTS)
def shingle_minhash(ids, vocab_hashes, offsets, n, a, b, out, uniq, sigs, d0, d1):
    """Hash the word n-grams of documents d0..d1-1, keep each one's sorted distinct
    shingles at ``out[offsets[d]:]`` (``uniq[d]`` of them) and its MinHash in ``sigs[d]``."""
    buf = np.empty(0, dtype=np.uint32)
    tmp = np.empty(0, dtype=np.uint32)
    counts = np.empty((4, 256), dtype=np.int32)
    for d in range(d0, d1):
        lo = offsets[d]
        length = offsets[d + 1] - lo
        if length == 0:
            uniq[d] = 0
            for k in range(a.shape[0]):
                sigs[d, k] = 0xFFFFFFFF
            continue
        width = n if length >= n else length
        count = length - width + 1
        if buf.shape[0] < count:
            buf = np.empty(max(count, 2 * buf.shape[0]), dtype=np.uint32)
            tmp = np.empty(buf.shape[0], dtype=np.uint32)
        for s in range(count):
            acc = vocab_hashes[ids[lo + s]]
            for k in range(1, width):
                acc = acc * MULT + vocab_hashes[ids[lo + s + k]]
            acc = acc ^ (acc >> S33)
            acc = acc * M1
            acc = acc ^ (acc >> S33)
            acc = acc * M2
            acc = acc ^ (acc >> S33)
            buf[s] = np.uint32(acc >> S32)
        u = _sort_distinct(buf, tmp, count, counts, out, lo)
        uniq[d] = u
        _minhash_one(out, lo, lo + u, a, b, sigs[d])

@nb.njit(**_OPTS)
def compact(src, src_offsets, counts, dst, dst_offsets, d0, d1):
    for d in range(d0, d1):
        s = src_offsets[d]
        t = dst_offsets[d]
        for i in range(counts[d]):
            dst[t + i] = src[s + i]

@nb.njit(**_OPTS)
def gather(values, starts, out_offsets, out, r0, r1):
    """Copy segment values[starts[r]:] of length out_offsets[r+1]-out_offsets[r] to out[out_offsets[r]:]."""
    for r in range(r0, r1):
        s = starts[r]
        t = out_offsets[r]
        for i in range(out_offsets[r + 1] - t):
            out[t + i] = values[s + i]

@nb.njit(**_OPTS)
def column_ranks(columns, marks, prefix, rank, sorted_columns):
    """``sorted_columns``: the (non-negative) columns in order; ``rank[t]``: the place of ``columns[t]`` among them.
    By a bitmap of the values (``marks``: zeroed, a bit for each value up to the largest) and the bits set before
    each of its words (``prefix``), no sort. False (the outputs unfinished) when two columns are equal."""
    for t in range(columns.shape[0]):
        c = columns[t]
        bit = np.uint64(1) << np.uint64(c & 63)
        if marks[c >> 6] & bit:
            return False
        marks[c >> 6] |= bit
    total = 0
    for w in range(marks.shape[0]):
        prefix[w] = total
        x = marks[w]
        while x:
            sorted_columns[total] = w * 64 + np.int64(trailing_zeros(x))
            total += 1
            x &= x - np.uint64(1)
    for t in range(columns.shape[0]):
        c = columns[t]
        rank[t] = prefix[c >> 6] + popcount(marks[c >> 6] & ((np.uint64(1) << np.uint64(c & 63)) - np.uint64(1)))
    return True


@nb.njit(**_OPTS)
def count_rows(ids, offsets, rank, columns, out_ids, out_counts, uniq, packed, d0, d1):
    """Each document's distinct columns, sorted, at ``out_ids[offsets[d]:]`` with their counts (``uniq[d]`` of
    them): the rows of a canonical CSR count matrix. Token id ``t`` is column ``columns[rank[t]]`` (``columns``
    sorted and distinct): a document's ranks are counted and marked in a bitmap, which is read in order (no sort).
    ``packed``: the rows are written one after the other from ``out_ids[offsets[d0]]`` on instead (no gaps)."""
    size = columns.shape[0]
    held = np.zeros(size, dtype=np.int64)
    marks = np.zeros((size + 63) >> 6, dtype=np.uint64)
    at = offsets[d0]
    for d in range(d0, d1):
        lo = offsets[d]
        hi = offsets[d + 1]
        first = marks.shape[0]
        last = -1
        for i in range(lo, hi):
            r = rank[ids[i]]
            held[r] += 1
            w = r >> 6
            marks[w] |= np.uint64(1) << np.uint64(r & 63)
            first = min(first, w)
            last = max(last, w)
        n = 0
        start = at if packed else lo
        for w in range(first, last + 1):
            x = marks[w]
            while x:
                r = w * 64 + np.int64(trailing_zeros(x))
                out_ids[start + n] = columns[r]
                out_counts[start + n] = held[r]
                held[r] = 0
                n += 1
                x &= x - np.uint64(1)
            marks[w] = 0
        uniq[d] = n
        at += n


@nb.njit(**_OPTS)
def minhash_sets(values, offsets, a, b, sigs, d0, d1):
    for d in range(d0, d1):
        _minhash_one(values, offsets[d], offsets[d + 1], a, b, sigs[d])

@nb.njit(**_OPTS)
def common_counts(values, offsets, other_values, other_offsets, left, right, out, k0, k1):
    """|A & B| of sorted distinct rows A = values row left[k], B = other_values row right[k]."""
    for k in range(k0, k1):
        out[k] = _shared(values, offsets[left[k]], offsets[left[k] + 1],
                         other_values, other_offsets[right[k]], other_offsets[right[k] + 1])


@nb.njit(**_OPTS)
def _shared(values, i, iend, other_values, j, jend):
    """Elements common to the sorted distinct runs values[i:iend] and other_values[j:jend] (a
    branch-free merge: ~25% faster than branching on each comparison)."""
    c = 0
    while i < iend and j < jend:
        x = values[i]
        y = other_values[j]
        c += x == y
        i += x <= y
        j += y <= x
    return c

@nb.njit(**_OPTS)
def _block_sum(p, lo, n):
    # numpy's pairwise summation for n <= 128 (loops_utils.h: DOUBLE_pairwise_sum)
    if n < 8:
        res = -0.0
        for i in range(n):
            res += p[lo + i]
        return res
    r0 = p[lo]
    r1 = p[lo + 1]
    r2 = p[lo + 2]
    r3 = p[lo + 3]
    r4 = p[lo + 4]
    r5 = p[lo + 5]
    r6 = p[lo + 6]
    r7 = p[lo + 7]
    i = 8
    end = n - (n % 8)
    while i < end:
        r0 += p[lo + i]
        r1 += p[lo + i + 1]
        r2 += p[lo + i + 2]
        r3 += p[lo + i + 3]
        r4 += p[lo + i + 4]
        r5 += p[lo + i + 5]
        r6 += p[lo + i + 6]
        r7 += p[lo + i + 7]
        i += 8
    res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
    while i < n:
        res += p[lo + i]
        i += 1
    return res


@nb.njit(**_OPTS)
def _pairwise(p, lo, n):
    """numpy's pairwise sum of p[lo:lo+n]: blocks of <= 128, larger ranges split in two halves
    (the first a multiple of 8) and added. Evaluated with an explicit stack (numba's on-disk
    cache mishandles recursive functions)."""
    if n <= 128:
        return _block_sum(p, lo, n)
    f_lo = np.empty(128, dtype=np.int64)
    f_n = np.empty(128, dtype=np.int64)
    f_stage = np.empty(128, dtype=np.int64)
    vals = np.empty(128, dtype=np.float64)
    top = 0
    nv = 0
    f_lo[0] = lo
    f_n[0] = n
    f_stage[0] = 0
    top = 1
    while top > 0:
        t = top - 1
        cl = f_lo[t]
        cn = f_n[t]
        if cn <= 128:
            vals[nv] = _block_sum(p, cl, cn)
            nv += 1
            top -= 1
            continue
        n2 = cn // 2
        n2 -= n2 % 8
        stage = f_stage[t]
        if stage == 0:
            f_stage[t] = 1
            f_lo[top] = cl
            f_n[top] = n2
            f_stage[top] = 0
            top += 1
        elif stage == 1:
            f_stage[t] = 2
            f_lo[top] = cl + n2
            f_n[top] = cn - n2
            f_stage[top] = 0
            top += 1
        else:
            vals[nv - 2] = vals[nv - 2] + vals[nv - 1]
            nv -= 1
            top -= 1
    return vals[0]


@nb.njit(**_OPTS)
def sparse_row_dots(indptr, indices, data, columns, longest, left, right, out, k0, k1):
    """What ``matrix[left].multiply(matrix[right]).sum(axis=1)`` gives for canonical CSR rows:
    the nonzero products in column order, reduced as ``np.add.reduceat`` reduces them.

    The left row is scattered into a dense array once for a run of pairs with the same left
    row (pairs come sorted by left row), then each right row is looked up in it. ``longest`` is
    the longest row's length (the products' buffer is never reallocated in the loop)."""
    dense = np.zeros(columns, dtype=np.float64)
    buf = np.empty(longest, dtype=np.float64)
    current = -1
    for k in range(k0, k1):
        a = left[k]
        if a != current:
            if current >= 0:
                for i in range(indptr[current], indptr[current + 1]):
                    dense[indices[i]] = 0.0
            for i in range(indptr[a], indptr[a + 1]):
                dense[indices[i]] = data[i]
            current = a
        m = 0
        b = right[k]
        for j in range(indptr[b], indptr[b + 1]):
            prod = dense[indices[j]] * data[j]
            if prod != 0.0:
                buf[m] = prod
                m += 1
        out[k] = _reduce(buf, m)


@nb.njit(**_OPTS)
def _reduce(buf, m):
    """The sum of buf[:m] as ``np.add.reduceat`` reduces a segment: the first element plus numpy's
    pairwise sum of the rest."""
    if m == 0:
        return 0.0
    if m == 1:
        return buf[0]
    return buf[0] + _pairwise(buf, 1, m - 1)


BAND_AHEAD = 8  # how many rows ahead band_pairs computes a band's key and asks for its slot


@nb.njit(**_OPTS)
def _same_band(sigs, a, b, lo, hi):
    """Whether rows ``a`` and ``b`` of ``sigs`` agree in columns lo..hi-1."""
    for c in range(lo, hi):
        if sigs[a, c] != sigs[b, c]:
            return False
    return True


@nb.njit(**_OPTS)
def _band_key(sigs, i, lo, hi):
    """The hash of row ``i``'s band (columns lo..hi-1): candidates._band_keys' mixing."""
    key = np.uint64(0)
    for c in range(lo, hi):
        key = key * MULT + np.uint64(sigs[i, c])
        key ^= key >> np.uint64(29)
    return key


@nb.njit(**_OPTS)
def band_pairs(sigs, live, rows, codes_of, slot_keys, slot_heads, links, out, count, b0, b1):
    """candidates.candidate_pairs' pairs of bands b0..b1-1: the rows ``live`` (increasing) of ``sigs`` whose
    columns ``b * rows`` to ``(b + 1) * rows`` are equal, found through an open-addressing table of each band's
    hash (``slot_keys``, ``slot_heads``: its first row, -1 for an empty slot; at least twice as many slots as
    rows) and chains of the rows with the same band (``links``). Each pair (i < j) is written from ``out[count]``
    on as ``i * codes_of + j``, as often as the pair shares a band. Returns (the band reached, how many codes
    ``out`` holds then): when ``out`` is full it stops before the band that would not fit, without its codes.
    (The key of a row BAND_AHEAD rows on is computed and its slot asked for early: the table is read at random.)"""
    mask = slot_keys.shape[0] - 1
    n = live.shape[0]
    ahead = np.zeros(BAND_AHEAD, dtype=np.uint64)
    for b in range(b0, b1):
        lo = b * rows
        hi = lo + rows
        slot_heads[:] = -1
        start = count
        for t in range(min(BAND_AHEAD, n)):
            ahead[t] = _band_key(sigs, live[t], lo, hi)
        for k in range(n):
            key = ahead[k % BAND_AHEAD]
            if k + BAND_AHEAD < n:
                later = _band_key(sigs, live[k + BAND_AHEAD], lo, hi)
                ahead[k % BAND_AHEAD] = later
                s = np.int64((later * MULT) >> np.uint64(32)) & mask
                prefetch(slot_heads, s)
                prefetch(slot_keys, s)
            i = live[k]
            s = np.int64((key * MULT) >> np.uint64(32)) & mask
            while True:
                head = slot_heads[s]
                if head < 0:
                    slot_keys[s] = key
                    slot_heads[s] = k
                    links[k] = -1
                    break
                if slot_keys[s] == key and _same_band(sigs, live[head], i, lo, hi):
                    j = head
                    while j >= 0:
                        if count == out.shape[0]:
                            return b, start
                        out[count] = live[j] * codes_of + i
                        count += 1
                        j = links[j]
                    links[k] = head
                    slot_heads[s] = k
                    break
                s = (s + 1) & mask
    return b1, count


@nb.njit(**_OPTS)
def first_ids(keys, start, table_keys, table_vals, out, next_id):
    """Ids of keys[start:] in an open-addressing table; unseen keys get the next ids in order. Stops
    once the table is half full, returning (index reached, next id)."""
    mask = table_keys.shape[0] - 1
    limit = table_keys.shape[0] // 2
    for i in range(start, keys.shape[0]):
        if next_id >= limit:
            return i, next_id
        h = keys[i]
        pos = np.int64(h & np.uint64(mask))
        while True:
            v = table_vals[pos]
            if v < 0:
                table_keys[pos] = h
                table_vals[pos] = next_id
                out[i] = next_id
                next_id += 1
                break
            if table_keys[pos] == h:
                out[i] = v
                break
            pos = (pos + 1) & mask
    return keys.shape[0], next_id


@nb.njit(**_OPTS)
def token_counts(ids, hashes, tokens, counts):
    """One document's distinct tokens sorted by hash, with their counts; False if an id never occurs."""
    held = np.zeros(hashes.shape[0], dtype=np.uint32)
    for i in range(ids.shape[0]):
        held[ids[i]] += 1
    order = np.argsort(hashes)
    for k in range(hashes.shape[0]):
        j = order[k]
        if held[j] == 0:
            return False
        tokens[k] = hashes[j]
        counts[k] = held[j]
    return True


@nb.njit(**_OPTS)
def doc_frequency(ids, offsets, vocab_size):
    last = np.full(vocab_size, -1, dtype=np.int64)
    df = np.zeros(vocab_size, dtype=np.int64)
    for d in range(offsets.shape[0] - 1):
        for i in range(offsets[d], offsets[d + 1]):
            t = ids[i]
            if last[t] != d:
                last[t] = d
                df[t] += 1
    return df


# ----------------------------------------------------------------------------- tokenising
# Character classes (tokenize.char_classes): \w, \d, scripts tokenised as bigrams, letters ([^\W\d_]).
WORD = np.uint8(1)
DIGIT = np.uint8(2)
UNSPACED = np.uint8(4)
LETTER = np.uint8(8)
FNV_OFFSET = np.uint64(0xCBF29CE484222325)
FNV_PRIME = np.uint64(0x100000001B3)


@nb.njit(**_OPTS)
def _fmix64(h):
    h ^= h >> S33
    h *= M1
    h ^= h >> S33
    h *= M2
    h ^= h >> S33
    return h


@nb.njit(**_OPTS)
def _abbreviation(cps, p, hi, classes):
    """Where the dotted abbreviation (regex tokenize._ABBREVIATION, whose dots tokens() deletes) that starts at
    ``p`` ends: ``p`` is a letter before a dot, at the start or after a non-word character. Its dots are
    p + 1, p + 3, ... before the end; the end is ``p`` when no abbreviation starts there."""
    r = 0
    q = p
    while r < 5 and q + 1 < hi and classes[cps[q]] & LETTER and cps[q + 1] == 46:  # \b(?:L\.){1,4}L\b\.?
        r += 1
        q += 2
    k = min(r, 4)
    if k == r:
        q = p + 2 * k
        if not (q < hi and classes[cps[q]] & LETTER and (q + 1 == hi or not classes[cps[q + 1]] & WORD)):
            k -= 1
    if k <= 0:
        return p
    e = p + 2 * k + 1
    if e < hi and cps[e] == 46:
        e += 1
    return e


@nb.njit(inline="always", **_OPTS)  # (called from the tokenizer's loops: not inlined, they take 1.4x as long)
def _next_abbreviation(cps, q, hi, classes, a0, done):
    """(a0, done) of the tokenizer after one of an abbreviation's dots, before ``q``: another abbreviation may start
    at ``q`` once the last one is done."""
    if q >= done and q + 1 < hi and cps[q + 1] == 46 and classes[cps[q]] & LETTER:
        e = _abbreviation(cps, q, hi, classes)
        if e > q:
            return q, e
    return a0, done


@nb.njit(**_OPTS)
def _thousands(cps, q, hi, classes):
    r"""Whether ``cps[q]`` is a comma between digit groups (regex tokenize._THOUSANDS: (?<=\d),(?=\d{3}\b))."""
    return (cps[q] == 44 and q + 3 < hi and classes[cps[q - 1]] & DIGIT and classes[cps[q + 1]] & DIGIT
            and classes[cps[q + 2]] & DIGIT and classes[cps[q + 3]] & DIGIT
            and (q + 4 == hi or not classes[cps[q + 4]] & WORD))


@nb.njit(inline="always", **_OPTS)
def _token_id(key, start, end, table_keys, table_ids, first_keys, first_starts, first_ends, next_id):
    """(The id of the token whose characters hash to ``key``, the next id): a key not in the table (open
    addressing, as ``first_ids`` fills it) gets the next id, and its span ``start:end`` is kept as its first
    occurrence's; the id is -1 when the ids are all taken (``first_keys`` is full)."""
    key = _fmix64(key)
    mask = table_keys.shape[0] - 1
    pos = np.int64(key & np.uint64(mask))
    while True:
        v = table_ids[pos]
        if v < 0:
            if next_id >= first_keys.shape[0]:
                return -1, next_id
            table_keys[pos] = key
            table_ids[pos] = next_id
            first_keys[next_id] = key
            first_starts[next_id] = start
            first_ends[next_id] = end
            return next_id, next_id + 1
        if table_keys[pos] == key:
            return v, next_id
        pos = (pos + 1) & mask


@nb.njit(**_OPTS)
def tokenize(cps, doc_starts, classes, table_keys, table_ids, first_keys, first_starts, first_ends, ids, counts, n,
             next_id, d0, d1):
    """Split documents d0..d1-1 (code points cps[doc_starts[d]:doc_starts[d+1]]) as tokenize.tokens()
    does, writing the id of each token from ``ids[n]`` on (``ids`` holds as many entries as the documents have
    characters): tokens are numbered 0, 1, ... in order of first occurrence by a 64-bit key of their characters
    (see _token_id; ``next_id`` ids are taken already), and the key and span in ``cps`` of each id's first
    occurrence are kept. Returns (the document reached, the tokens written, the next id): when the ids run out,
    it stops before the document it was splitting, whose ids are taken back (the caller makes the table larger,
    with the ``next_id`` returned, and goes on from that document).

    The characters tokens() deletes first (abbreviation dots, thousands commas) are neither letters nor
    digits: they are looked at only where they would end a token. An abbreviation is found where it starts
    (at a letter, or after one of its dots), before any of its dots is reached; where ``tokens()``' regex
    resumes after one, so does the search here (``done``)."""
    for d in range(d0, d1):
        lo = doc_starts[d]
        hi = doc_starts[d + 1]
        first = n
        taken = next_id
        a0 = lo  # the last abbreviation found: its dots are a0 + 1, a0 + 3, ... before ``done``
        done = lo
        p = lo
        while p < hi:
            c = classes[cps[p]]
            if p >= done and c & LETTER and p + 1 < hi and cps[p + 1] == 46 and (p == lo or not classes[cps[p - 1]] & WORD):
                e = _abbreviation(cps, p, hi, classes)
                if e > p:
                    a0 = p
                    done = e
            if c & UNSPACED:  # [UNSPACED]+, then character bigrams (a lone character stays itself)
                q = p
                prev = -1
                live = 0
                while q < hi:
                    if classes[cps[q]] & UNSPACED:
                        if prev >= 0:
                            key = (FNV_OFFSET ^ np.uint64(cps[prev])) * FNV_PRIME
                            t, next_id = _token_id((key ^ np.uint64(cps[q])) * FNV_PRIME, prev, q + 1, table_keys,
                                                   table_ids, first_keys, first_starts, first_ends, next_id)
                            if t < 0:
                                return d, first, taken
                            ids[n] = t
                            n += 1
                        prev = q
                        live += 1
                        q += 1
                    elif q < done and (q - a0) & 1:  # an abbreviation's dot (another may start after it)
                        q += 1
                        a0, done = _next_abbreviation(cps, q, hi, classes, a0, done)
                    elif _thousands(cps, q, hi, classes):
                        q += 1
                    else:
                        break
                if live == 1:
                    t, next_id = _token_id((FNV_OFFSET ^ np.uint64(cps[p])) * FNV_PRIME, p, p + 1, table_keys, table_ids,
                                           first_keys, first_starts, first_ends, next_id)
                    if t < 0:
                        return d, first, taken
                    ids[n] = t
                    n += 1
                p = q
                continue
            if c & DIGIT:
                want = DIGIT
                avoid = np.uint8(0)
            elif c & LETTER:
                want = LETTER
                avoid = UNSPACED
            else:
                p += 1
                continue
            key = FNV_OFFSET
            q = p
            while q < hi:
                cq = classes[cps[q]]
                if cq & want and not cq & avoid:
                    key = (key ^ np.uint64(cps[q])) * FNV_PRIME
                    q += 1
                elif q < done and (q - a0) & 1:  # as above
                    q += 1
                    a0, done = _next_abbreviation(cps, q, hi, classes, a0, done)
                elif want == DIGIT and _thousands(cps, q, hi, classes):
                    q += 1
                else:
                    break
            t, next_id = _token_id(key, p, q, table_keys, table_ids, first_keys, first_starts, first_ends, next_id)
            if t < 0:
                return d, first, taken
            ids[n] = t
            n += 1
            p = q
        counts[d] = n - first
    return d1, n, next_id


@nb.njit(**_OPTS)
def tfidf_norms(indices, counts, offsets, tf, idf, is_number, needed, norms, numerics, d0, d1):
    """For the documents ``needed`` in d0..d1: the l2 norm of the TF-IDF row (weights ``tf[count] *
    idf[token]``, squares summed in column order as scikit-learn's row normalisation sums them) and
    the number of numeric tokens of the row."""
    for d in range(d0, d1):
        if not needed[d]:
            continue
        s = 0.0
        c = 0
        for j in range(offsets[d], offsets[d + 1]):
            t = indices[j]
            w = tf[counts[j]] * idf[t]
            s += w * w
            if is_number[t]:
                c += 1
        norms[d] = np.sqrt(s)
        numerics[d] = c


@nb.njit(**_OPTS)
def _home_slot(key, bits):
    """The first slot of ``key`` (a uint64) in a table of 2**bits slots (Fibonacci hashing)."""
    return np.int64((key * MULT) >> np.uint64(64 - bits))


@nb.njit(**_OPTS)
def _find(keys, key, bits):
    """The slot of ``key`` in the open-addressing table ``keys`` (0: empty), or -1."""
    mask = (1 << bits) - 1
    s = _home_slot(key, bits)
    while True:
        k = keys[s]
        if k == key:
            return s
        if k == 0:
            return -1
        s = (s + 1) & mask


@nb.njit(**_OPTS)
def _place(keys, key, bits):
    """The empty slot where ``key`` goes (it is not in the table); the caller fills it."""
    mask = (1 << bits) - 1
    s = _home_slot(key, bits)
    while keys[s] != 0:
        s = (s + 1) & mask
    return s


# --- sketches: bitmaps of the buckets of a document's shingles and tokens (dedup.bandmirror) -------------
SKETCH_SHINGLE_BITS = 1024  # (bandmirror.SKETCH_SHINGLE_BITS; 512 token bits follow: 24 uint64 words in all)


@nb.njit(**_OPTS)
def sketch_bucket(x, shift):
    """The bucket (top ``64 - shift`` bits of a mixed 64-bit value) of a shingle or token hash."""
    x = np.uint64(x)
    return np.int64(((x ^ (x >> np.uint64(31))) * MULT) >> np.uint64(shift))


@nb.njit(**_OPTS)
def sketch_one(shingles, tokens, out):
    """Set in ``out`` the bits of the buckets of a document's shingle hashes and token hashes."""
    for i in range(shingles.shape[0]):
        b = sketch_bucket(shingles[i], 64 - 10)
        out[b >> 6] |= np.uint64(1) << np.uint64(b & 63)
    for i in range(tokens.shape[0]):
        b = sketch_bucket(tokens[i], 64 - 9) + SKETCH_SHINGLE_BITS
        out[b >> 6] |= np.uint64(1) << np.uint64(b & 63)


# --- the batch scorer's sketches: bitmaps of the buckets of a document's tokens, then of its shingles --------
TOKEN_SKETCH_SHIFT = 64 - 11  # 2,048 token buckets (kernels.TOKEN_SKETCH_WORDS uint64 words)
SHINGLE_SKETCH_SHIFT = 64 - 11  # 2,048 shingle buckets (kernels.SHINGLE_SKETCH_WORDS words, after the tokens')
TOKEN_SKETCH_WORDS = 32
SHINGLE_SKETCH_WORDS = 32  # (a sketch row: the token words, then the shingle words; kernels checks the width)


@nb.njit(**_OPTS)
def sketch_rows(tok_ids, tok_offsets, tok_hashes, sh_values, sh_offsets, out):
    """Set in ``out[d]`` the bits of the buckets (sketch_bucket) of document d's token hashes (its tokens given
    by ids into ``tok_hashes``: the first TOKEN_SKETCH_WORDS words) and of its shingle hashes (the words after)."""
    for d in range(tok_offsets.shape[0] - 1):
        for i in range(tok_offsets[d], tok_offsets[d + 1]):
            b = sketch_bucket(tok_hashes[tok_ids[i]], TOKEN_SKETCH_SHIFT)
            out[d, b >> 6] |= np.uint64(1) << np.uint64(b & 63)
        for i in range(sh_offsets[d], sh_offsets[d + 1]):
            b = sketch_bucket(sh_values[i], SHINGLE_SKETCH_SHIFT)
            out[d, TOKEN_SKETCH_WORDS + (b >> 6)] |= np.uint64(1) << np.uint64(b & 63)


@nb.njit(**_OPTS)
def _place_rows(keys, values, lo, hi, bits):
    """Put the keys values[lo:hi] + 2**32 (distinct) in the empty open-addressing table ``keys``."""
    top = np.uint64(1) << np.uint64(32)
    for i in range(lo, hi):
        key = np.uint64(values[i]) + top
        keys[_place(keys, key, bits)] = key


@nb.njit(**_OPTS)
def _bits_for(n):
    """The bits of a table with room for ``n`` keys at most a quarter full (at least 16 slots)."""
    b = 4
    while (1 << b) < 4 * n:
        b += 1
    return b


@nb.njit(**_OPTS)
def _limit(most_cosine, smaller, rule):
    """The fewest shared shingles a pair whose cosine is at most ``most_cosine`` needs to meet the wording
    rule (cosine, overlap, strong cosine, containment thresholds, slack): none once the cosine alone may
    meet it, else enough for the overlap (with a cosine) or the containment."""
    if most_cosine >= rule[2]:
        return 0
    need = min(rule[1], rule[3]) if most_cosine >= rule[0] else rule[3]
    return np.int64(np.ceil((need - rule[4]) * smaller))


@nb.njit(**_OPTS)
def _left_arrays(levels):
    """What _set_left fills for a left document's bounds (empty): per token bucket its squared weights and the
    token buckets it has; per shingle bucket its shingles, the shingle buckets it has, and ``levels`` bitmaps of
    the buckets holding more than 0, 1, ... of them."""
    return (np.zeros(TOKEN_SKETCH_WORDS * 64), np.zeros(TOKEN_SKETCH_WORDS, dtype=np.uint64),
            np.zeros(SHINGLE_SKETCH_WORDS * 64, dtype=np.int64), np.zeros(SHINGLE_SKETCH_WORDS, dtype=np.uint64),
            np.zeros((max(levels, 1), SHINGLE_SKETCH_WORDS), dtype=np.uint64))


@nb.njit(**_OPTS)
def _clear_left(indices, offsets, token_buckets, a, squares, masks, sh_counts, sh_mask, level_bits, deepest, levels):
    """Empty what _set_left filled for document ``a``."""
    for i in range(offsets[a], offsets[a + 1]):
        squares[token_buckets[indices[i]]] = 0.0
    masks[:] = 0
    sh_counts[:] = 0
    sh_mask[:] = 0
    level_bits[: min(deepest, levels)] = 0


@nb.njit(**_OPTS)
def _set_left(indices, counts, offsets, tf, idf, norm, sh_values, sh_offsets, token_buckets, a, squares, masks, sh_counts,
              sh_mask, level_bits, levels):
    """Fill, for the bounds of the pairs whose left document is ``a`` (rows in ``indices``/``counts``/``offsets``
    and ``sh_values``/``sh_offsets``, TF-IDF norm ``norm``): per token bucket its squared weights (``squares``,
    ``masks``), per shingle bucket its shingles (``sh_counts``, ``sh_mask``, and ``level_bits[v]``: the buckets
    holding more than v of them); returns the most in one bucket."""
    deepest = 0
    for i in range(sh_offsets[a], sh_offsets[a + 1]):
        bk = sketch_bucket(sh_values[i], SHINGLE_SKETCH_SHIFT)
        held = sh_counts[bk]
        sh_counts[bk] = held + 1
        bit = np.uint64(1) << np.uint64(bk & 63)
        sh_mask[bk >> 6] |= bit
        if held < levels:
            level_bits[held, bk >> 6] |= bit
        deepest = max(deepest, held + 1)
    for i in range(offsets[a], offsets[a + 1]):
        bk = token_buckets[indices[i]]
        w = tf[counts[i]] * idf[indices[i]] / norm
        squares[bk] += w * w
        masks[bk >> 6] |= np.uint64(1) << np.uint64(bk & 63)
    return deepest


@nb.njit(**_OPTS)
def _sketch_limit(sketch, squares, masks, smaller, rule):
    """The fewest shared shingles (:func:`_limit`) a pair needs at its cosine's bound: the norm of the left
    document's weights in the token buckets of the right one's ``sketch`` (Cauchy-Schwarz)."""
    mass = 0.0
    for j in range(TOKEN_SKETCH_WORDS):
        x = sketch[j] & masks[j]
        while x:
            mass += squares[j * 64 + np.int64(trailing_zeros(x))]
            x &= x - np.uint64(1)
    return _limit(np.sqrt(min(mass, 1.0)) + rule[4], smaller, rule)


@nb.njit(**_OPTS)
def _shared_bound(sketch, counts, mask, level_bits, deepest, levels):
    """At most how many shingles the left document (its shingles per bucket: ``counts``, ``mask``, and
    ``level_bits[v]`` the buckets holding more than v of them, up to ``deepest``) shares with a document of
    ``sketch`` (tokens' words, then shingles'): its shingles in the buckets that sketch has. By popcounts
    of the levels, or bucket by bucket when the left document has more than ``levels`` in one."""
    total = 0
    if deepest <= levels:
        for v in range(deepest):
            for j in range(mask.shape[0]):
                total += popcount(sketch[TOKEN_SKETCH_WORDS + j] & level_bits[v, j])
        return total
    for j in range(mask.shape[0]):
        x = sketch[TOKEN_SKETCH_WORDS + j] & mask[j]
        while x:
            total += counts[j * 64 + np.int64(trailing_zeros(x))]
            x &= x - np.uint64(1)
    return total


@nb.njit(**_OPTS)
def _pass_over(k, cosine, shared_numbers, common, equal, skipped):
    """Mark pair k passed over by score_rows' bounds: zeros for its scores."""
    cosine[k] = 0.0
    shared_numbers[k] = 0
    common[k] = 0
    equal[k] = 0
    skipped[k] = True


PREFETCH_PAIRS = 4  # how many pairs ahead score_rows asks for the right document's rows (twice that for its offsets)
PREFETCH_SHINGLES = 128  # the first shingles of its row that are asked for (the hardware prefetcher follows on)


@nb.njit(**_OPTS)
def _prefetch_right(right, doc_right, k, k1, sh_offsets, sh_values, sketches, bounded):
    """Prefetch what score_rows reads first of pair k + PREFETCH_PAIRS's right document (with bounds its
    sketch, else the head of its shingle row: the documents are read in no order, so each row would otherwise be
    a wait for memory), and the shingle offsets of pair k + 2 * PREFETCH_PAIRS's."""
    if k + 2 * PREFETCH_PAIRS < k1:
        prefetch(sh_offsets, right[k + 2 * PREFETCH_PAIRS])
    if k + PREFETCH_PAIRS < k1:
        b = right[k + PREFETCH_PAIRS]
        if bounded:  # (most pairs are passed over from their sketches: their shingle rows are not read)
            row = sketches[doc_right[k + PREFETCH_PAIRS]]
            for q in range(0, row.shape[0], 8):
                prefetch(row, q)
            return
        lo = sh_offsets[b]
        for q in range(lo, min(lo + PREFETCH_SHINGLES, sh_offsets[b + 1]), 16):
            prefetch(sh_values, q)


@nb.njit(**_OPTS)
def score_rows(indices, counts, offsets, tf, idf, is_number, norms, sh_values, sh_offsets, sigs, bits, left, right,
               doc_left, doc_right, cosine, shared_numbers, common, equal, sketches, token_buckets, rule, levels, skipped,
               k0, k1):
    """Cosine of the l2-normalised TF-IDF rows, shared numeric tokens, shared shingles and equal
    MinHash slots of each pair, straight from the corpus's count rows and shingle rows (no gathered
    copies). ``left``/``right`` number the pair's documents in the rows, ``doc_left``/``doc_right`` in the
    per-document arrays (``norms``, ``sigs``, ``sketches``: those of the whole corpus when the rows are a
    block's).

    The left document's shingles (and, once a pair needs them, its tokens with their weights) go into
    small hash tables (at most a quarter full, sized for that document; ``bits``: for the longest) once
    per run of pairs with the same left document (pairs come sorted by it), and emptied by zeroing them;
    the right document's are looked up in them, in column order, so the products are summed as
    :func:`sparse_row_dots` sums them (bit-identical to scipy's). Independent
    lookups in a table that stays in cache beat merging the sorted rows (2.5x for the shingles). A bitmap
    of the left shingles' top 16 bits (8 KB, in L1) answers most right shingles (those of unrelated
    documents) before the table is probed.

    With a ``rule`` (cosine, overlap, strong cosine, containment, slack: :func:`dedup.confirm.worded_alike`'s
    thresholds), a pair's cosine is first bounded from the right document's token sketch (``sketches``: the
    bitmaps of its tokens' and its shingles' buckets, :func:`sketch_rows`; ``token_buckets``: each token id's
    bucket) by the norm of the left weights in those buckets (Cauchy-Schwarz). That bound sets the fewest shared
    shingles that could still meet the rule (:func:`_limit`). Their number is bounded first by the left
    document's shingles in the buckets the right document's shingle sketch has (popcounts of the sketch with
    ``levels`` bitmaps of the left's buckets: those holding at least 1, 2, ... of its shingles; one bucket at a time
    when it has more in one bucket), then the right shingles are counted until that many can no longer be
    reached. A pair that cannot meet it is marked in ``skipped`` and gets zeros; its tokens are not read, nor
    are its shingles when the sketches rule it out (chance candidates: most of them; the left document's
    shingle table is then not even built). The other pairs are scored in full, as without a rule."""
    size = 1 << bits
    bounded = rule.shape[0] > 0
    squares, masks, sh_counts, sh_mask, level_bits = _left_arrays(levels)
    deepest = 0  # the most shingles of the left document in one bucket
    sh_bits = np.zeros(1 << 10, dtype=np.uint64)
    tok_keys = np.zeros(size, dtype=np.uint64)
    tok_weights = np.zeros(size, dtype=np.float64)
    sh_keys = np.zeros(size, dtype=np.uint64)
    buf = np.empty(size, dtype=np.float64)
    top = np.uint64(1) << np.uint64(32)  # keys are values + 2**32 (never 0)
    current = -1
    tokens_in = False  # whether the current left document's tokens are in tok_keys
    table_in = False  # whether its shingles are in sh_keys and sh_bits
    sh_b = tok_b = 4  # the bits of the current left document's tables
    for k in range(k0, k1):
        _prefetch_right(right, doc_right, k, k1, sh_offsets, sh_values, sketches, bounded)
        a = left[k]
        if a != current:
            if current >= 0:
                if tokens_in:
                    tok_keys[: 1 << tok_b] = 0
                if table_in:
                    sh_keys[: 1 << sh_b] = 0
                    for i in range(sh_offsets[current], sh_offsets[current + 1]):
                        sh_bits[np.uint64(sh_values[i]) >> np.uint64(22)] = 0
                if bounded:
                    _clear_left(indices, offsets, token_buckets, current, squares, masks, sh_counts, sh_mask, level_bits,
                                deepest, levels)
            tokens_in = table_in = False
            if bounded:
                deepest = _set_left(indices, counts, offsets, tf, idf, norms[doc_left[k]], sh_values, sh_offsets,
                                    token_buckets, a, squares, masks, sh_counts, sh_mask, level_bits, levels)
            current = a
        b = right[k]
        s0, s1 = sh_offsets[b], sh_offsets[b + 1]
        limit = 0
        if bounded:
            sketch = sketches[doc_right[k]]
            limit = _sketch_limit(sketch, squares, masks, min(sh_offsets[a + 1] - sh_offsets[a], s1 - s0), rule)
            if limit > 0 and _shared_bound(sketch, sh_counts, sh_mask, level_bits, deepest, levels) < limit:
                _pass_over(k, cosine, shared_numbers, common, equal, skipped)
                continue
        if not table_in:
            sh_b = min(bits, _bits_for(sh_offsets[a + 1] - sh_offsets[a]))
            _place_rows(sh_keys, sh_values, sh_offsets[a], sh_offsets[a + 1], sh_b)
            for i in range(sh_offsets[a], sh_offsets[a + 1]):
                h = np.uint64(sh_values[i])
                sh_bits[h >> np.uint64(22)] |= np.uint64(1) << ((h >> np.uint64(16)) & np.uint64(63))
            table_in = True
        c = 0
        j = s0
        while j < s1 and c + (s1 - j) >= limit:
            h = np.uint64(sh_values[j])
            if (sh_bits[h >> np.uint64(22)] >> ((h >> np.uint64(16)) & np.uint64(63))) & np.uint64(1):
                c += _find(sh_keys, h + top, sh_b) >= 0
            j += 1
        if c + (s1 - j) < limit:  # (too few shared shingles for the rule, at the cosine's bound)
            _pass_over(k, cosine, shared_numbers, common, equal, skipped)
            continue
        if bounded:
            skipped[k] = False
        common[k] = c
        if not tokens_in:
            na = norms[doc_left[k]]
            tok_b = min(bits, _bits_for(offsets[a + 1] - offsets[a]))
            for i in range(offsets[a], offsets[a + 1]):
                key = np.uint64(indices[i]) + top
                slot = _place(tok_keys, key, tok_b)
                tok_keys[slot] = key
                tok_weights[slot] = tf[counts[i]] * idf[indices[i]] / na
            tokens_in = True
        nb_ = norms[doc_right[k]]
        m = 0
        shared = 0
        for j in range(offsets[b], offsets[b + 1]):
            t = indices[j]
            slot = _find(tok_keys, np.uint64(t) + top, tok_b)
            if slot >= 0:
                shared += is_number[t]
                prod = tok_weights[slot] * (tf[counts[j]] * idf[t] / nb_)
                if prod != 0.0:
                    buf[m] = prod
                    m += 1
        cosine[k] = _reduce(buf, m)
        shared_numbers[k] = shared
        e = 0
        ga, gb = doc_left[k], doc_right[k]
        for p in range(sigs.shape[1]):
            e += sigs[ga, p] == sigs[gb, p]
        equal[k] = e


@nb.njit(**_OPTS)
def bound_pairs(indices, counts, offsets, tf, idf, norms, sh_values, sh_offsets, sizes, left, doc_left, doc_right,
                sketches, token_buckets, rule, levels, skipped, k0, k1):
    """score_rows' first test of each pair, alone: whether the sketches rule it out (its cosine's bound and the
    bound of its shared shingles), into ``skipped``. Only the left documents' rows are read (``left`` numbers them
    in the rows, ``doc_left`` in ``norms``); of the right ones, their sketch and shingle count (``sizes``), by
    ``doc_right``. Pairs sorted by left document set each one up once."""
    squares, masks, sh_counts, sh_mask, level_bits = _left_arrays(levels)
    deepest = 0
    current = -1
    for k in range(k0, k1):
        if k + PREFETCH_PAIRS < k1:
            row = sketches[doc_right[k + PREFETCH_PAIRS]]
            for q in range(0, row.shape[0], 8):
                prefetch(row, q)
        a = left[k]
        if a != current:
            if current >= 0:
                _clear_left(indices, offsets, token_buckets, current, squares, masks, sh_counts, sh_mask, level_bits,
                            deepest, levels)
            deepest = _set_left(indices, counts, offsets, tf, idf, norms[doc_left[k]], sh_values, sh_offsets,
                                token_buckets, a, squares, masks, sh_counts, sh_mask, level_bits, levels)
            current = a
        sketch = sketches[doc_right[k]]
        limit = _sketch_limit(sketch, squares, masks, min(sh_offsets[a + 1] - sh_offsets[a], sizes[doc_right[k]]), rule)
        skipped[k] = limit > 0 and _shared_bound(sketch, sh_counts, sh_mask, level_bits, deepest, levels) < limit


@nb.njit(**_OPTS)
def _found_by_lsh(res_sigs, sigs, r, d, bands, width, cand_codes, n):
    """Whether residual r and document d share an LSH band of ``width`` slots, or (r, d) is among the
    sorted codes ``r * n + d`` of known candidates."""
    for i in range(bands):
        same = True
        for j in range(i * width, (i + 1) * width):
            if res_sigs[r, j] != sigs[d, j]:
                same = False
                break
        if same:
            return True
    code = r * n + d
    at = _lower_bound(cand_codes, 0, cand_codes.shape[0], code)
    return at < cand_codes.shape[0] and cand_codes[at] == code


@nb.njit(**_OPTS)
def _lower_bound(values, lo, hi, x):
    """The first position in the sorted values[lo:hi] whose value is >= x (hi if none)."""
    while lo < hi:
        mid = (lo + hi) >> 1
        if values[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


PREFETCH_LOOKUPS = 4  # how many residual hits ahead residual_sources asks for the hashes it will compare


@nb.njit(**_OPTS)
def residual_sources(res_hashes, res_rows, bitmap, shift, first, bucket_shift, sh_values, sh_offsets, base, story, owner,
                     owner_story, res_sigs, sigs, bands, width, cand_codes, best_common, best_doc, d0, d1):
    """For each residual row r (sorted distinct hashes ``res_hashes`` with owning rows ``res_rows``,
    sorted by hash; ``bitmap`` flags the top bits of every residual hash, ``first[x]`` is where the
    hashes whose top bits are x start): the document of
    d0..d1, other than ``owner[r]`` and outside story ``owner_story[r]``, that LSH finds for it
    (:func:`_found_by_lsh`) sharing the most shingles with it (ties: the later document), and how
    many. Every document's shingles are scanned once; document d's are
    ``sh_values[sh_offsets[d] - base:sh_offsets[d + 1] - base]``.

    A document's shingles that the bitmap flags are gathered first (without a branch); they are then
    looked up in ``first`` and ``res_hashes``, with the lookups of the hit PREFETCH_LOOKUPS ahead
    already asked for (the arrays are tens of MB: each lookup would otherwise wait for memory), and
    the rows they touch listed without a branch."""
    rows = best_common.shape[0]
    n = sigs.shape[0]
    counts = np.zeros(rows, dtype=np.int64)
    touched = np.empty(rows + 1, dtype=np.int64)  # (+1: each row-hit is written at the end, counted if new)
    longest = 0
    for d in range(d0, d1):
        longest = max(longest, sh_offsets[d + 1] - sh_offsets[d])
    hits = np.empty(longest, dtype=sh_values.dtype)
    bucket_shift = np.uint64(bucket_shift)
    for d in range(d0, d1):
        nh = 0
        for i in range(sh_offsets[d] - base, sh_offsets[d + 1] - base):
            h = sh_values[i]
            top = np.uint64(h) >> np.uint64(shift)
            hits[nh] = h
            nh += np.int64((bitmap[top >> np.uint64(6)] >> (top & np.uint64(63))) & np.uint64(1))
        nt = 0
        for q in range(nh):
            if q + 2 * PREFETCH_LOOKUPS < nh:
                prefetch(first, np.int64(np.uint64(hits[q + 2 * PREFETCH_LOOKUPS]) >> bucket_shift))
            if q + PREFETCH_LOOKUPS < nh:
                ahead = first[np.uint64(hits[q + PREFETCH_LOOKUPS]) >> bucket_shift]
                prefetch(res_hashes, ahead)
                prefetch(res_rows, ahead)
            h = hits[q]
            bucket = np.uint64(h) >> bucket_shift
            lo = first[bucket]
            end = first[bucket + np.uint64(1)]
            while lo < end and res_hashes[lo] < h:
                lo += 1
            while lo < end and res_hashes[lo] == h:  # (a hash of a recurring passage is in many rows)
                r = res_rows[lo]
                touched[nt] = r
                nt += counts[r] == 0  # (without a branch: whether a row is new is a coin toss)
                counts[r] += 1
                lo += 1
        for t in range(nt):
            r = touched[t]
            c = counts[r]
            counts[r] = 0
            # (Whether it beats the row's best first: after the first documents, it rarely does.)
            if ((c > best_common[r] or (c == best_common[r] and d > best_doc[r]))
                    and d != owner[r] and story[d] != owner_story[r]):
                if _found_by_lsh(res_sigs, sigs, r, d, bands, width, cand_codes, n):
                    best_common[r] = c
                    best_doc[r] = d


@nb.njit(**_OPTS)
def _root(parent, x):
    """The root of ``x``'s tree, halving the path on the way."""
    while parent[x] != x:
        parent[x] = parent[parent[x]]
        x = parent[x]
    return x


@nb.njit(**_OPTS)
def components(n, left, right, labels):
    """Connected components of ``n`` nodes joined by the edges ``left[e]``-``right[e]`` (union-find, every
    tree rooted at its smallest node): ``labels`` numbers them 0, 1, ... in order of their smallest node,
    as scipy's connected_components does. Returns how many there are."""
    parent = np.arange(n)
    for e in range(left.shape[0]):
        a = _root(parent, left[e])
        b = _root(parent, right[e])
        if a < b:
            parent[b] = a
        elif b < a:
            parent[a] = b
    k = 0
    for i in range(n):
        r = _root(parent, i)
        if r == i:
            labels[i] = k
            k += 1
        else:
            labels[i] = labels[r]  # (r < i: labelled already)
    return k
