"""Tokenise normalised text once into integer token ids shared by shingling and TF-IDF."""

from __future__ import annotations

import re
import sys
import threading
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from itertools import chain
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from dedup import kernels

# Scripts written without spaces between words: tokenised into overlapping
# character bigrams (as Lucene's CJK analyser does), so that shingles of
# n tokens are character (n+1)-grams.
_UNSPACED = (
    "\u3040-\u30ff"  # Hiragana, Katakana
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"  # CJK ideographs
    "\u0e00-\u0eff"  # Thai, Lao
    "\u1000-\u109f"  # Myanmar
    "\u1780-\u17ff"  # Khmer
)
_UNSPACED_RUN = re.compile(f"[{_UNSPACED}]+")
# A token: a run of unspaced-script characters, a run of digits, or a run of
# other letters (digits and letters are split so that "100km" == "100 km").
_TOKEN = re.compile(f"[{_UNSPACED}]+|\\d+|[^\\W\\d_{_UNSPACED}]+")
# "u.s." / "u.k" -> "us" / "uk"; "1,000" -> "1000": house-style variants.
_ABBREVIATION = re.compile(r"\b(?:[^\W\d_]\.){1,4}[^\W\d_]\b\.?")
_THOUSANDS = re.compile(r"(?<=\d),(?=\d{3}\b)")


def tokens(text: str) -> list[str]:
    """Split normalised (case-folded) text into tokens.

    Letters and digits form separate tokens; dotted abbreviations lose their
    dots; runs of Chinese, Japanese, Thai, Lao, Khmer or Myanmar characters
    become overlapping character bigrams.
    """
    if "." in text:
        text = _ABBREVIATION.sub(lambda m: m.group(0).replace(".", ""), text)
    if "," in text:
        text = _THOUSANDS.sub("", text)
    found = _TOKEN.findall(text)
    if _UNSPACED_RUN.search(text) is None:
        return found
    out: list[str] = []
    for tok in found:
        if len(tok) > 1 and _UNSPACED_RUN.fullmatch(tok):
            out.extend(tok[i : i + 2] for i in range(len(tok) - 1))
        else:
            out.append(tok)
    return out


def _stable_hash(token: str) -> int:
    return int.from_bytes(blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


@lru_cache(maxsize=1 << 18)
def token_hash(token: str) -> int:
    """The stable 64-bit hash of one token (the same in every process and run; memoised, as
    news vocabularies repeat from batch to batch)."""
    return _stable_hash(token)


@dataclass(frozen=True)
class TokenBatch:
    """The tokens of a batch of documents as flat arrays (no Python object per token).

    Document ``d`` has tokens ``ids[offsets[d]:offsets[d+1]]``; ``vocab[i]``
    is token ``i`` and ``hashes[i]`` its stable 64-bit hash.
    """

    ids: np.ndarray  # int32, all documents' token ids concatenated
    offsets: np.ndarray  # int64, len = documents + 1
    vocab: list[str]
    hashes: np.ndarray  # uint64, one per vocabulary entry

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def lengths(self) -> np.ndarray:
        """Number of tokens in each document."""
        return np.diff(self.offsets)

    def doc_tokens(self, d: int) -> list[str]:
        """The tokens of document ``d`` as strings (for explanations and tests)."""
        return [self.vocab[i] for i in self.ids[self.offsets[d] : self.offsets[d + 1]]]


def tokenize_batch(texts: Iterable[str], *, engine: str = "auto") -> TokenBatch:
    """Tokenise normalised texts into one :class:`TokenBatch`.

    Token ids are given in order of first occurrence. ``engine``: "numba" splits
    the texts with a compiled kernel (``_jit.tokenize``), "numpy" with the regular
    expressions of :func:`tokens`, "auto" picks numba for large batches when it is
    installed; the result is the same (tests/test_speed_paths.py).
    """
    texts = texts if isinstance(texts, list) else list(texts)
    if kernels.use_kernels(engine, sum(map(len, texts)) // 6):
        return _tokenize_compiled(texts)
    per_doc = [tokens(text) for text in texts]
    offsets = concat_offsets([len(t) for t in per_doc])
    flat = list(chain.from_iterable(per_doc))
    del per_doc
    words = list(dict.fromkeys(flat))
    index = dict(zip(words, range(len(words))))
    ids = np.fromiter(map(index.__getitem__, flat), dtype=np.int32, count=len(flat))
    hashes = np.fromiter(map(token_hash, words), dtype=np.uint64, count=len(words))
    return TokenBatch(ids=ids, offsets=offsets, vocab=words, hashes=hashes)


def _tokenize_compiled(texts: list[str]) -> TokenBatch:
    """:func:`tokenize_batch` by the compiled kernel: Python touches only each distinct token once,
    and not even that for the words already in this process's :class:`WordCache`."""
    if len(texts) == 1:  # one article (Index.add)
        joined = texts[0]
        doc_starts = np.array([0, len(joined)], dtype=np.int64)
    else:
        joined = "".join(texts)
        doc_starts = concat_offsets([len(t) for t in texts])
    cps = code_points(joined)
    found = kernels.tokenize(cps, doc_starts, char_classes())
    # (The words are read at the first occurrences, one per id: as tokens, their ids are 0, 1, ...)
    distinct = np.arange(len(found.keys), dtype=np.int64)
    cache = word_cache()
    if cache.lock.acquire(blocking=False):  # else another thread is using it: do without
        try:
            words, hashes = cache.words(joined, cps, found.keys, found.starts, found.stops, distinct)
        finally:
            cache.lock.release()
    else:
        words, hashes = plain_words(joined, found.starts, found.stops, distinct)
    return TokenBatch(ids=found.ids, offsets=found.offsets, vocab=words, hashes=hashes)


def code_points(text: str) -> np.ndarray:
    """The code points of ``text`` for the compiled tokenizer: one byte each (uint8) when it is Latin-1, as Python
    holds such text (a copy; news in Western languages mostly is), else UTF-32 (uint32, four bytes each)."""
    try:
        return np.frombuffer(text.encode("latin-1"), dtype=np.uint8)
    except UnicodeEncodeError:
        return np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def plain_words(joined: str, starts: np.ndarray, stops: np.ndarray, ids: np.ndarray) -> tuple[list[str], np.ndarray]:
    """The word and stable hash of each token id (``ids`` numbered in order of first occurrence) of
    tokens spanning ``joined[starts[i]:stops[i]]``: the plain computation :class:`WordCache` memoises."""
    seen = np.maximum.accumulate(ids) if len(ids) else ids
    first = np.flatnonzero(np.diff(seen, prepend=-1) > 0)
    words = [joined[a:b] for a, b in zip(starts[first].tolist(), stops[first].tolist())]
    # A token's span may hold the dots and commas tokens() deletes ("u.s", "1,000").
    words = [w.replace(".", "").replace(",", "") if "." in w or "," in w else w for w in words]
    hashes = np.fromiter(map(token_hash, words), dtype=np.uint64, count=len(words))
    return words, hashes


class WordCache:
    """This process's memo of the compiled tokenizer's words: token key -> (word, stable hash).

    A word is found by its key and a comparison of its characters (``_jit_tokens.find_words``),
    so that keys that collide cannot return a wrong word. Bounded: when ``capacity`` words (or
    ``chars`` characters) are held it starts again empty; tokens spanning more than
    ``longest`` characters are not kept. Its table starts with ``slots`` slots and doubles
    when half full. Not thread-safe: hold ``lock`` while using it."""

    def __init__(self, capacity: int = 1 << 17, chars: int = 1 << 21, longest: int = 64, slots: int = 1 << 12) -> None:
        if not (0 < capacity < 1 << 24 and 0 < chars < 1 << 32 and 0 < longest < 256 and slots > 1
                and slots & (slots - 1) == 0):
            raise ValueError("WordCache needs capacity < 2**24, chars < 2**32, longest < 256 and slots a power of 2")
        self._find_words, self._add_words, self._rehash = kernels.word_cache_kernels()
        self.lock = threading.Lock()
        self.capacity, self.chars, self.longest, self._first_slots = capacity, chars, longest, slots
        self._table = np.zeros((slots, 2), dtype=np.uint64)  # see _jit_tokens; at most half full
        self._arena = np.zeros(chars, dtype=np.uint32)  # (np.zeros: its pages are only touched as it fills up)
        self._used = 0  # characters in the arena
        self._size = 0  # entries
        self._words = np.empty(capacity, dtype=object)  # entry -> word
        self._hashes = np.zeros(capacity, dtype=np.uint64)  # entry -> its stable hash
        self.resets = 0

    def __len__(self) -> int:
        return self._size

    def clear(self) -> None:
        """Forget every word."""
        self._table = np.zeros((self._first_slots, 2), dtype=np.uint64)
        self._words.fill(None)
        self._used = self._size = 0
        self.resets += 1

    def words(
        self, joined: str, cps: np.ndarray, keys: np.ndarray, starts: np.ndarray, stops: np.ndarray, ids: np.ndarray,
    ) -> tuple[list[str], np.ndarray]:
        """:func:`plain_words` (``cps`` are the code points of ``joined``, ``keys`` the tokens' keys),
        memoised: new words are added."""
        first = np.empty(len(ids), dtype=np.int64)
        entries = np.empty(len(ids), dtype=np.int64)
        n, missing, _ = self._find_words(cps, keys, starts, stops, ids, self._table, self._arena, first, entries)
        entries = entries[:n]
        words = self._words[entries].tolist()
        hashes = self._hashes[entries]
        if not missing:  # all known: the usual case once a feed has run a while
            return words, hashes
        miss = np.flatnonzero(entries < 0)  # (their -1 took the last entry's word and hash: replaced now)
        at = first[miss]
        lo, hi = starts[at], stops[at]
        new = [joined[a:b] for a, b in zip(lo.tolist(), hi.tolist())]
        new = [w.replace(".", "").replace(",", "") if "." in w or "," in w else w for w in new]
        # _stable_hash of each, as little-endian bytes straight into the array
        new_hashes = np.frombuffer(b"".join([blake2b(w.encode("utf-8"), digest_size=8).digest() for w in new]),
                                   dtype="<u8").astype(np.uint64)
        for k, w in zip(miss.tolist(), new):
            words[k] = w
        hashes[miss] = new_hashes
        self._keep(cps, keys, starts, stops, at, hi - lo, new, new_hashes)
        return words, hashes

    def _keep(self, cps: np.ndarray, keys: np.ndarray, starts: np.ndarray, stops: np.ndarray, at: np.ndarray,
              span: np.ndarray, new: list[str], new_hashes: np.ndarray) -> None:
        """Add the new words (at token positions ``at``, spanning ``span`` characters) that fit."""
        if span.max() > self.longest:
            ok = np.flatnonzero(span <= self.longest)
            at, span, new_hashes = at[ok], span[ok], new_hashes[ok]
            new = [new[k] for k in ok.tolist()]
        if self._size + len(new) > self.capacity or self._used + int(span.sum()) > self.chars:
            self.clear()
            keep = min(len(new), self.capacity, int(np.searchsorted(np.cumsum(span), self.chars, side="right")))
            at, new_hashes, new = at[:keep], new_hashes[:keep], new[:keep]
        size, end = self._size, self._size + len(new)
        if 2 * end > len(self._table):  # a small table is faster to probe: it grows with the words
            slots = len(self._table)
            while 2 * end > slots:
                slots *= 2
            table = np.zeros((slots, 2), dtype=np.uint64)
            self._rehash(self._table, table)
            self._table = table
        self._used = self._add_words(cps, keys, starts, stops, at, self._table, self._arena, size, self._used)
        self._hashes[size:end] = new_hashes
        self._words[size:end] = new
        self._size = end


@lru_cache(maxsize=1)
def word_cache() -> WordCache:
    """This process's :class:`WordCache` (made on first use)."""
    return WordCache()


_CLASS_PATTERNS = ((r"\w+", 1), (r"\d+", 2), (f"[{_UNSPACED}]+", 4), (r"[^\W\d_]+", 8))
_CLASS_CHECKS = {ord("a"): 9, ord("0"): 3, ord("_"): 1, ord(" "): 0, 0x4E00: 13, 0x0E01: 13, 0x0660: 3}  # (see load_char_classes)


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """The class bits of every code point for the compiled tokenizer: 1 = ``\\w``, 2 = ``\\d``,
    4 = a script tokenised as bigrams, 8 = a letter (``[^\\W\\d_]``), computed with the same regular
    expressions as :func:`tokens` so that both agree on every character. Computing them takes ~0.07 s, at the
    start of every run: the table is kept in the kernels' cache directory (``_aot.cache_dir``), one file per
    Python and Unicode version, and read back from there (~1 ms)."""
    path = _char_classes_path()
    table = load_char_classes(path)
    if table is None:
        table = compute_char_classes()
        save_char_classes(path, table)
    return table


def compute_char_classes() -> np.ndarray:
    """:func:`char_classes` computed: each pattern run once over a string of every code point."""
    # Every code point in order, surrogates included (decoding is ~10x faster than joining chr() of each).
    everything = np.arange(0x110000, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")
    classes = np.zeros(0x110000, dtype=np.uint8)
    for pattern, bit in _CLASS_PATTERNS:
        for m in re.finditer(pattern, everything):
            classes[m.start() : m.end()] |= bit
    return classes


def _char_classes_path() -> Path:
    """The cache file of :func:`char_classes`: named for what the table depends on (the patterns, and the
    Unicode database of this Python's ``re``)."""
    from dedup import _aot  # (its cache directory; imports neither numba nor the kernels)

    digest = blake2b(digest_size=10)
    for part in (sys.version, unicodedata.unidata_version, repr(_CLASS_PATTERNS)):
        digest.update(part.encode("utf-8", "surrogatepass"))
    return _aot.cache_dir() / f"char_classes_{digest.hexdigest()}.u8"


def load_char_classes(path: Path) -> np.ndarray | None:
    """The table saved at ``path``, or None when there is none or it is not a whole table (a raw array of
    bytes: nothing in it is executed; a wrong size, a bit beyond the four or a wrong class of a few known code
    points rejects it)."""
    try:
        table = np.fromfile(path, dtype=np.uint8)
    except (OSError, ValueError):
        return None
    if table.shape != (0x110000,) or int(table.max()) > 15 or any(table[cp] != bits for cp, bits in _CLASS_CHECKS.items()):
        return None
    return table


def save_char_classes(path: Path, table: np.ndarray) -> bool:
    """Write the table to ``path`` atomically (a temporary file moved into place); False when the directory
    cannot be written (the table is then computed again by the next process)."""
    from dedup.errors import OutputError
    from dedup.write import atomic_open

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path, binary=True) as f:
            f.write(np.ascontiguousarray(table, dtype=np.uint8).tobytes())
        return True
    except (OSError, OutputError):
        return False


def concat_offsets(lengths: Sequence[int]) -> np.ndarray:
    """Offsets (len + 1, int64) for segments of the given lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets
