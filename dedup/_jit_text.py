"""The numba kernels of text normalisation (:mod:`dedup.normalize`, :mod:`dedup.pagenoise`), behind :mod:`dedup.kernels`.

Each works on the bytes of one text (Latin-1 or UTF-8) and answers a question that
lets the Python code skip work it would otherwise do line by line or character by
character; a wrong "no" would change results, so each answer is a superset
(tests/test_speed_paths.py, tests/test_normalize.py). Loops over every byte are
written without branches where they can be, which the compiler vectorises: a
branch on each space, say, is mispredicted often (``has_gaps`` went 7.7 -> 1.0 us
on a 4 KB article, ``prefixed_words`` 13.3 -> 8.2 us).
"""

import numba as nb
import numpy as np

from dedup._jit import FNV_OFFSET, FNV_PRIME  # (the tokenizer's word hash)
from dedup.kernels import SCREEN_DATE_FIRST as DATE_FIRST  # (what a word may be in screen_lines' table)
from dedup.kernels import SCREEN_FOOTER_FIRST as FOOTER_FIRST
from dedup.kernels import SCREEN_SHORT_FIRST as SHORT_FIRST
from dedup.kernels import SCREEN_SHORT_LAST as SHORT_LAST

_OPTS = dict(nogil=True, cache=True, boundscheck=False)


@nb.njit(**_OPTS)
def has_gaps(text):
    """Whether ``text`` (bytes) holds two spaces, a space next to a newline, or three newlines in a row. (Branchless
    loops, which the compiler vectorises: 8x faster than stopping at the first gap.)"""
    n = text.shape[0]
    gap = False
    for p in range(n - 1):
        a = text[p]
        b = text[p + 1]
        gap |= ((a == 32) & ((b == 32) | (b == 10))) | ((a == 10) & (b == 32))
    for p in range(n - 2):
        gap |= (text[p] == 10) & (text[p + 1] == 10) & (text[p + 2] == 10)
    return gap


@nb.njit(**_OPTS)
def prefixed_words(text, directory, values, masks, firsts, out):
    """Positions p of ``text`` (bytes) holding a space followed by one of the prefixes (up to 8 bytes, packed
    little-endian in ``values`` under ``masks``; those starting with bytes x, y are
    ``directory[256 x + y]:directory[256 x + y + 1]``, and ``firsts[256 x + y]`` is 1 when there are some and x
    is not a space); returns how many were written to ``out`` (which holds ``len(text)``)."""
    size = text.shape[0]
    found = 0
    for p in range(size - 2):  # the spaces before a pair that starts a prefix (no branch: see the module docstring)
        out[found] = p
        found += (text[p] == 32) & (firsts[np.int64(text[p + 1]) * 256 + np.int64(text[p + 2])] != 0)
    n = 0
    for i in range(found):
        p = out[i]
        pair = np.int64(text[p + 1]) * 256 + np.int64(text[p + 2])
        word = np.uint64(0)
        for k in range(min(8, size - p - 1)):
            word |= np.uint64(text[p + 1 + k]) << np.uint64(8 * k)
        for j in range(directory[pair], directory[pair + 1]):
            if (word & masks[j]) == values[j]:
                out[n] = p
                n += 1
                break
    return n


B32 = np.uint8(32)


@nb.njit(**_OPTS)
def word_key(text, start, stop):
    """FNV-1a hash of ``text[start:stop]`` with ASCII letters lower-cased."""
    h = FNV_OFFSET
    for p in range(start, stop):
        c = text[p]
        if 65 <= c <= 90:
            c += 32
        h = (h ^ np.uint64(c)) * FNV_PRIME
    return h


@nb.njit(**_OPTS)
def _trimmed(text, start, stop, punct):
    """``start, stop`` without the bytes marked in ``punct`` at either end."""
    while start < stop and punct[text[start]]:
        start += 1
    while stop > start and punct[text[stop - 1]]:
        stop -= 1
    return start, stop


@nb.njit(**_OPTS)
def _bits(keys, bits, key):
    """The bits of ``key`` in the table (``keys`` sorted), 0 when it is not there."""
    k = np.searchsorted(keys, key)
    return bits[k] if k < keys.shape[0] and keys[k] == key else 0


@nb.njit(**_OPTS)
def _has_tail(text, start, stop):
    """Whether ``text[start:stop]`` holds "ributed " or "ted feed" (of "contributed ", "syndicated feed": the tail
    hints of normalize._tail_hint), ASCII letters in any case. (A branchless loop, which the compiler vectorises.)"""
    hit = False
    for p in range(start, stop - 7):
        hit |= (((text[p] | B32) == 114) & ((text[p + 1] | B32) == 105) & ((text[p + 2] | B32) == 98)
                & ((text[p + 3] | B32) == 117) & ((text[p + 4] | B32) == 116) & ((text[p + 5] | B32) == 101)
                & ((text[p + 6] | B32) == 100) & (text[p + 7] == 32))
        hit |= (((text[p] | B32) == 116) & ((text[p + 1] | B32) == 101) & ((text[p + 2] | B32) == 100)
                & (text[p + 3] == 32) & ((text[p + 4] | B32) == 102) & ((text[p + 5] | B32) == 101)
                & ((text[p + 6] | B32) == 101) & ((text[p + 7] | B32) == 100))
    return hit


@nb.njit(**_OPTS)
def _credit_hint(text, start, stop):
    """Whether ``text[start:stop]`` (which does not end with a space) may end with a photo credit (what
    normalize._CREDIT_END needs): its final run of spaces, ")" and "." holds a ")" and "photo", in any case, starts
    within 9 bytes of its last "(" ("(AP Photo ...)", "(file photo ...)"), or its last "/" is followed by spaces,
    then a capital or "via ", and at most 5 words to its end ("/John Smith)", "/File Photo", "/ AFP")."""
    p = stop
    paren = False
    while p > start and (text[p - 1] == 32 or text[p - 1] == 41 or text[p - 1] == 46):
        p -= 1
        paren |= text[p] == 41
    if paren:
        q = p
        while q > start and text[q - 1] != 40:
            q -= 1
        if q > start:
            for r in range(q, min(q + 9, stop - 4)):
                if ((text[r] | B32) == 112 and (text[r + 1] | B32) == 104 and (text[r + 2] | B32) == 111
                        and (text[r + 3] | B32) == 116 and (text[r + 4] | B32) == 111):
                    return True
    while p > start and text[p - 1] != 47:
        p -= 1
    if p == start:
        return False
    while p < stop and text[p] == 32:
        p += 1
    if not (p < stop and (65 <= text[p] <= 90 or (
            p + 4 <= stop and text[p] == 118 and text[p + 1] == 105 and text[p + 2] == 97 and text[p + 3] == 32))):
        return False
    words = 1
    for r in range(p + 1, stop):
        words += (text[r] != 32) & (text[r - 1] == 32)
    return words <= 5


@nb.njit(**_OPTS)
def _wide(text, start, stop):
    """Whether ``text[start:stop]`` has a byte beyond ASCII (of a character beyond ASCII, in UTF-8)."""
    wide = False
    for p in range(start, stop):
        wide |= text[p] > 127
    return wide


@nb.njit(**_OPTS)
def _line_flag(text, start, stop, spaces, control, wide, punct, keys, bits, tail, own_views):
    """screen_lines' flag of the line ``text[start:stop]``, given its spaces, whether it has a control character
    or DEL (``control``) or a character beyond ASCII (``wide``), whether the text has a tail hint anywhere
    (``tail``) and whether its lines are their own views (``own_views``: then a line with characters beyond ASCII
    is screened too, its windows counted in bytes four to a character, and a first or last word with such a
    character passes it)."""
    if stop == start:
        return 0
    if control or (wide and not own_views) or text[start] == 32 or text[stop - 1] == 32:
        return 2
    if spaces == 0:
        return 1
    last = text[stop - 1]
    per_char = 4 if wide else 1  # (bytes a character may take: the rules' windows are in characters)
    if spaces < 60:  # a photo credit: it ends with ")" or ")." or has a "/" near its end, and has _credit_hint
        slash = False
        for p in range(max(start, stop - 70 * per_char), stop):
            slash |= text[p] == 47
        if (slash or last == 41 or (last == 46 and text[stop - 2] == 41)) and _credit_hint(
                text, max(start, stop - 160 * per_char), stop):
            return 1
    if tail and spaces < 40 and _has_tail(text, start, stop):
        return 1
    space = start
    while text[space] != 32:
        space += 1
    a, b = _trimmed(text, start, space, punct)
    if wide and _wide(text, start, space):  # (a first word the table cannot hold)
        return 1
    first = _bits(keys, bits, word_key(text, a, b))
    if first & FOOTER_FIRST:
        return 1
    if spaces < 16 and (first & DATE_FIRST or (a < b and 48 <= text[a] <= 57)) and (
            last != 46 or (stop - start >= 3 and text[stop - 3] == 46 and (text[stop - 2] | B32) == 109)):
        return 1
    if spaces < 12:
        if first & SHORT_FIRST:
            return 1
        space = stop - 1
        while text[space] != 32:
            space -= 1
        if wide and _wide(text, space + 1, stop):  # (a last word the table cannot hold)
            return 1
        a, b = _trimmed(text, space + 1, stop, punct)
        if _bits(keys, bits, word_key(text, a, b)) & SHORT_LAST:
            return 1
        end = stop
        while end > start and (text[end - 1] == 32 or text[end - 1] == 45 or text[end - 1] == 58):
            end -= 1
        if end > start and text[end - 1] == 41:
            return 1
        at = False
        for p in range(start, stop):
            at |= text[p] == 64
        if at:
            return 1
    return 0


@nb.njit(**_OPTS)
def screen_lines(text, punct, keys, bits, out, own_views):
    """Into ``out``, for each line of ``text`` (UTF-8 bytes split at "\\n") whose flag is not 0, in order: 2 * its
    index, plus 1 when the flag is 2 (see ``kernels.screen_lines``; ``own_views``: see _line_flag); returns how
    many were written."""
    tail = _has_tail(text, 0, text.shape[0])  # (rare: lines are searched only if the whole text has one)
    line = 0
    start = 0
    spaces = 0
    odd = False
    n = 0
    for p in range(text.shape[0] + 1):
        c = text[p] if p < text.shape[0] else 10
        if c == 10:
            control = wide = False
            if odd:  # (rare in most text: which kind, by a second look at the line)
                for q in range(start, p):
                    control |= (text[q] < 32) | (text[q] == 127)
                    wide |= text[q] > 127
            flag = _line_flag(text, start, p, spaces, control, wide, punct, keys, bits, tail, own_views)
            if flag:
                out[n] = 2 * line + flag - 1
                n += 1
            line += 1
            start = p + 1
            spaces = 0
            odd = False
        else:  # (no branch: one on each space would be mispredicted often)
            spaces += c == 32
            odd |= (c < 32) | (c > 126)
    return n
