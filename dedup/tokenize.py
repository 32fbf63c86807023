"""Tokenise normalised text once into integer token ids shared by shingling and TF-IDF."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from hashlib import blake2b
from itertools import chain
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


@lru_cache(maxsize=1 << 18)
def token_hash(token: str) -> int:
    """The stable 64-bit hash of one token (the same in every process and run; memoised, as
    news vocabularies repeat from batch to batch)."""
    return int.from_bytes(blake2b(token.encode("utf-8"), digest_size=8).digest(), "little")


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
    """:func:`tokenize_batch` by the compiled kernel: Python touches only each distinct token once."""
    joined = "".join(texts)
    cps = np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)
    doc_starts = concat_offsets([len(t) for t in texts])
    keys, starts, stops, offsets = kernels.tokenize(cps, doc_starts, char_classes())
    ids = kernels.first_occurrence_ids(keys)
    seen = np.maximum.accumulate(ids) if len(ids) else ids
    first = np.flatnonzero(np.diff(seen, prepend=-1) > 0)
    words = [joined[a:b] for a, b in zip(starts[first].tolist(), stops[first].tolist())]
    # A token's span may hold the dots and commas tokens() deletes ("u.s", "1,000").
    words = [w.replace(".", "").replace(",", "") if "." in w or "," in w else w for w in words]
    hashes = np.fromiter(map(token_hash, words), dtype=np.uint64, count=len(words))
    return TokenBatch(ids=ids.astype(np.int32), offsets=offsets, vocab=words, hashes=hashes)


@lru_cache(maxsize=1)
def char_classes() -> np.ndarray:
    """The class bits of every code point for the compiled tokenizer: 1 = ``\\w``, 2 = ``\\d``,
    4 = a script tokenised as bigrams, 8 = a letter (``[^\\W\\d_]``), computed with the same regular
    expressions as :func:`tokens` so that both agree on every character (~0.15 s, once per process)."""
    everything = "".join(map(chr, range(0x110000)))
    classes = np.zeros(0x110000, dtype=np.uint8)
    for pattern, bit in ((r"\w+", 1), (r"\d+", 2), (f"[{_UNSPACED}]+", 4), (r"[^\W\d_]+", 8)):
        for m in re.finditer(pattern, everything):
            classes[m.start() : m.end()] |= bit
    return classes


def concat_offsets(lengths: Sequence[int]) -> np.ndarray:
    """Offsets (len + 1, int64) for segments of the given lengths."""
    offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    return offsets
