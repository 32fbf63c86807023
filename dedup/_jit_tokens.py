"""The numba kernels of the tokenizer's word cache (:class:`dedup.tokenize.WordCache`), imported only when numba is used.

Module-level functions with module-level constants (as in ``_jit.py``), so that
``cache=True`` stores the compiled code on disk and later processes load it.

A cached word is found by its token key (the tokenizer's 64-bit hash of its
characters) *and* a comparison of its characters, so that two words whose keys
collide are two entries: a hit is always the very same word.
"""

import numba as nb
import numpy as np

_OPTS = dict(nogil=True, cache=True, boundscheck=False)
DOT = np.uint32(46)  # the characters a token's span may hold that its word drops ("u.s", "1,000")
COMMA = np.uint32(44)
S29 = np.uint64(29)


@nb.njit(**_OPTS)
def _home(key, mask):
    """The first slot probed for ``key``."""
    return np.int64((key ^ (key >> S29)) & mask)


@nb.njit(**_OPTS)
def _same_word(cps, start, stop, arena, lo, hi):
    """Whether the characters of ``cps[start:stop]`` other than "." and "," are ``arena[lo:hi]``."""
    j = lo
    for p in range(start, stop):
        c = cps[p]
        if c == DOT or c == COMMA:
            continue
        if j >= hi or arena[j] != c:
            return False
        j += 1
    return j == hi


# A slot of the table is two uint64: the word's key, and its entry + 1 (bits 0-23; 0: an empty slot),
# its length in characters (bits 24-31) and where its characters start in the arena (bits 32-63):
# one slot and the word's characters are all a lookup reads.
ENTRY_BITS = np.uint64(0xFFFFFF)
S24 = np.uint64(24)
S32 = np.uint64(32)
BYTE = np.uint64(0xFF)


@nb.njit(**_OPTS)
def find_words(cps, keys, starts, stops, ids, table, arena, first, entries):
    """For each token id (``ids`` numbered 0, 1, ... in order of first occurrence): the position of its
    first occurrence (``first``) and the cache entry holding its word (``entries``, -1 when none).
    ``table`` (slots x 2, open addressing by key) and ``arena`` hold the cached words (see above).
    Returns (the number of ids, how many of them have no entry, a value of no meaning).

    The lookups wait on memory: two passes first only read each word's slot, then its characters,
    independent reads that the processor overlaps, so that the lookups proper find them in cache
    (their third return value keeps those reads from being optimised away)."""
    mask = np.uint64(table.shape[0] - 1)
    touched = np.uint64(0)
    n = 0
    for i in range(ids.shape[0]):
        if ids[i] == n:
            first[n] = i
            touched ^= table[_home(keys[i], mask), 1]
            n += 1
    for t in range(n):
        touched ^= np.uint64(arena[np.int64(table[_home(keys[first[t]], mask), 1] >> S32)])
    missing = 0
    for t in range(n):
        i = first[t]
        key = keys[i]
        j = _home(key, mask)
        found = -1
        while True:
            packed = table[j, 1]
            if packed == 0:
                break
            if table[j, 0] == key:
                lo = np.int64(packed >> S32)
                if _same_word(cps, starts[i], stops[i], arena, lo, lo + np.int64((packed >> S24) & BYTE)):
                    found = np.int64(packed & ENTRY_BITS) - 1
                    break
            j = (j + 1) & np.int64(mask)
        entries[t] = found
        missing += found < 0
    return n, missing, touched


@nb.njit(**_OPTS)
def rehash(old, new):
    """Put the words of table ``old`` into the empty table ``new`` (larger)."""
    mask = np.uint64(new.shape[0] - 1)
    for i in range(old.shape[0]):
        if old[i, 1] != 0:
            key = old[i, 0]
            j = _home(key, mask)
            while new[j, 1] != 0:
                j = (j + 1) & np.int64(mask)
            new[j, 0] = key
            new[j, 1] = old[i, 1]


@nb.njit(**_OPTS)
def add_words(cps, keys, starts, stops, positions, table, arena, size, used):
    """Store the words of the tokens at ``positions`` as entries ``size``, ``size + 1``, ... with their
    characters from ``arena[used]`` on (the caller has checked that there is room and that no span is
    longer than 255); returns the arena's new length."""
    mask = np.uint64(table.shape[0] - 1)
    for k in range(positions.shape[0]):
        i = positions[k]
        lo = used
        for p in range(starts[i], stops[i]):
            c = cps[p]
            if c != DOT and c != COMMA:
                arena[used] = c
                used += 1
        key = keys[i]
        j = _home(key, mask)
        while table[j, 1] != 0:
            j = (j + 1) & np.int64(mask)
        table[j, 0] = key
        table[j, 1] = np.uint64(size + k + 1) | (np.uint64(used - lo) << S24) | (np.uint64(lo) << S32)
    return used
