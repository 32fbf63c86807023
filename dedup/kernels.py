"""Compiled (numba) kernels of the batch path, bit-identical to the numpy reference code.

Every kernel here has a numpy reference elsewhere (``shingle.shingle_batch``,
``fingerprint.signatures``, ``confirm.common_shingles``, ``confirm.row_dots``);
``tests/test_speed_paths.py`` checks that they agree. The kernels release the
GIL (``nogil``) and work on a range of documents or pairs, so callers may split
work across Python threads without starting numba's own thread pool (which would
make forking worker processes unsafe).

numba is imported lazily: :func:`available` says whether the kernels can be
used, and small batches stay on the numpy path so that a short run does not pay
the import and cache-loading cost (~0.6 s). Once a machine has the kernels built
ahead of time (:mod:`dedup._aot`, built by the first :func:`warm_up`), they are
loaded from there instead, without numba.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

if TYPE_CHECKING:
    from dedup.parallel import DiskArray

# Below this many tokens (or pairs) the numpy reference path is used: it is fast
# enough, and it avoids importing numba for small inputs.
MIN_TOKENS = 200_000
MIN_PAIRS = 20_000
SKETCH_WORDS = 24  # uint64 words of a sketch: 1,024 shingle buckets then 512 token buckets (dedup.bandmirror)
TOKEN_SKETCH_BUCKETS = 2048  # buckets of the batch scorer's token sketches (_jit.TOKEN_SKETCH_SHIFT)
TOKEN_SKETCH_WORDS = TOKEN_SKETCH_BUCKETS // 64
SHINGLE_SKETCH_BUCKETS = 2048  # and of its shingle sketches, after the tokens' (_jit.SHINGLE_SKETCH_SHIFT)
SHINGLE_SKETCH_WORDS = SHINGLE_SKETCH_BUCKETS // 64  # (_jit.SHINGLE_SKETCH_WORDS)
SHINGLE_LEVELS = 16  # score_rows bounds shared shingles by popcounts while no bucket holds more of a document's
BOUND_SLACK = 1e-9  # added to score bounds: rounding must never exclude a copy
_MIX = np.uint64(0x9E3779B97F4A7C15)
_NO_SKETCHES = np.zeros((0, TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS), dtype=np.uint64)  # (score_rows without bounds)
_NO_BUCKETS = np.zeros(0, dtype=np.uint16)

_state: dict[str, object] = {}


def available() -> bool:
    """True when numba can be imported (and DEDUP_NO_NUMBA is not set)."""
    if "ok" not in _state:
        if os.environ.get("DEDUP_NO_NUMBA"):
            _state["ok"] = False
        else:
            try:
                _compile()
                _state["ok"] = True
            except ImportError:
                _state["ok"] = False
    return bool(_state["ok"])


# What a word may be in the line screen's table (bits; see normalize._screen_table and _jit_text.screen_lines).
SCREEN_SHORT_FIRST = 1  # the first word of a short line (<= 12 words) a rule may apply to
SCREEN_DATE_FIRST = 2  # the first word of a date line (<= 16 words)
SCREEN_FOOTER_FIRST = 4  # the first word of a footer line
SCREEN_SHORT_LAST = 8  # the last word of a short line


def _k(name: str) -> Callable:
    return _state[name]  # type: ignore[return-value]


def _compile() -> None:
    """The kernels: the ahead-of-time module built for this machine when there is one (see :mod:`dedup._aot`;
    numba is then not imported), else numba's (ImportError without numba)."""
    if not os.environ.get("DEDUP_NO_AOT"):
        from dedup import _aot

        built = _aot.load()
        if built is not None:
            _state.update(built)
            _state["aot"] = True
            return
    from dedup import _jit, _jit_band, _jit_text, _jit_tokens

    _state["aot"] = False
    _state.update({f"band{name}": getattr(_jit_band, name) for name in _BAND if name != "_sketch"},
                  band_sketch=_jit.sketch_one)
    _state.update(
        find_words=_jit_tokens.find_words,
        add_words=_jit_tokens.add_words,
        rehash=_jit_tokens.rehash,
        shingle_minhash=_jit.shingle_minhash,
        compact=_jit.compact,
        minhash_sets=_jit.minhash_sets,
        common_counts=_jit.common_counts,
        sparse_row_dots=_jit.sparse_row_dots,
        doc_frequency=_jit.doc_frequency,
        token_counts=_jit.token_counts,
        prefixed_words=_jit_text.prefixed_words,
        has_gaps=_jit_text.has_gaps,
        word_key=_jit_text.word_key,
        screen_lines=_jit_text.screen_lines,
        sketch_rows=_jit.sketch_rows,
        tokenize=_jit.tokenize,
        first_ids=_jit.first_ids,
        band_pairs=_jit.band_pairs,
        count_rows=_jit.count_rows,
        column_ranks=_jit.column_ranks,
        gather=_jit.gather,
        tfidf_norms=_jit.tfidf_norms,
        score_rows=_jit.score_rows,
        bound_pairs=_jit.bound_pairs,
        residual_sources=_jit.residual_sources,
        components=_jit.components,
    )


# ----------------------------------------------------------------------------- splitting work across threads


def _threads() -> int:
    count = _state.get("threads")
    if count is None:  # one per CPU, counted once (os.cpu_count costs 10-20 us a call)
        count = _state["threads"] = os.cpu_count() or 1
    return max(1, int(count))  # type: ignore[call-overload]


def set_threads(count: int | None) -> None:
    """How many Python threads the kernels may use in this process (None: one per CPU)."""
    _state["threads"] = count if count else (os.cpu_count() or 1)


def _ranges(weights: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """Split 0..len(weights) into up to ``parts`` contiguous ranges of similar total weight."""
    n = len(weights)
    if parts <= 1 or n < 2:
        return [(0, n)]
    cum = np.cumsum(weights, dtype=np.float64)
    total = cum[-1] if n else 0.0
    cuts = [0]
    for p in range(1, parts):
        cuts.append(int(np.searchsorted(cum, total * p / parts)))
    cuts.append(n)
    cuts = sorted(set(cuts))
    return [(lo, hi) for lo, hi in zip(cuts[:-1], cuts[1:]) if hi > lo]


def _run(fn: Callable, ranges: list[tuple[int, int]], *args: object) -> None:
    if len(ranges) == 1:
        fn(*args, *ranges[0])
        return
    with ThreadPoolExecutor(len(ranges)) as pool:
        for f in [pool.submit(fn, *args, lo, hi) for lo, hi in ranges]:
            f.result()


# ----------------------------------------------------------------------------- entry points


def shingle_minhash(
    ids: np.ndarray, vocab_hashes: np.ndarray, offsets: np.ndarray, *, n: int, a: np.ndarray, b: np.ndarray,
    threads: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(sorted distinct shingle hashes, their offsets, signatures) of a token batch, in one pass."""
    docs = len(offsets) - 1
    out = np.empty(int(offsets[-1]), dtype=np.uint32)
    uniq = np.zeros(docs, dtype=np.int64)
    sigs = np.empty((docs, len(a)), dtype=np.uint32)
    if docs == 1:  # one article (Index.add): no ranges, threads or compacting pass
        _k("shingle_minhash")(ids, vocab_hashes, offsets, n, a, b, out, uniq, sigs, 0, 1)
        lo, count = int(offsets[0]), int(uniq[0])
        return out[lo : lo + count].copy(), np.array([0, count], dtype=np.int64), sigs
    ranges = _ranges(np.diff(offsets) + 1, threads or _threads())
    _run(_k("shingle_minhash"), ranges, ids, vocab_hashes, offsets, n, a, b, out, uniq, sigs)
    new_offsets = np.zeros(docs + 1, dtype=np.int64)
    np.cumsum(uniq, out=new_offsets[1:])
    hashes = np.empty(int(new_offsets[-1]), dtype=np.uint32)
    _run(_k("compact"), ranges, out, offsets, uniq, hashes, new_offsets)
    return hashes, new_offsets, sigs


class Tokens(NamedTuple):
    """What :func:`tokenize` gives: each token's id (numbered in order of first occurrence), the documents'
    offsets in ``ids``, and per id the key of its characters and the span of its first occurrence in the code
    points."""

    ids: np.ndarray  # int32
    offsets: np.ndarray  # int64, documents + 1
    keys: np.ndarray  # uint64 per id
    starts: np.ndarray  # int64 per id
    stops: np.ndarray  # int64 per id


def tokenize(cps: np.ndarray, doc_starts: np.ndarray, classes: np.ndarray, *, slots: int | None = None) -> Tokens:
    """The tokens of documents given as code points (``cps[doc_starts[d]:doc_starts[d+1]]``), split as
    :func:`dedup.tokenize.tokens` splits them and numbered as they come, in one pass (see ``_jit.tokenize``).

    The ids are found in a hash table of ``slots`` (default: from the number of characters) that doubles
    whenever half full: the document being split then is split again."""
    docs = len(doc_starts) - 1
    ids = np.empty(int(doc_starts[-1]), dtype=np.int32)
    counts = np.zeros(docs, dtype=np.int64)
    if slots is None:  # (a chunk of a thousand articles has some 30,000 distinct tokens)
        slots = 1 << max(10, min(17, (len(cps) // 8).bit_length()))
    table = _token_table(slots, np.zeros(0, dtype=np.uint64))
    d, n, next_id = 0, 0, 0
    while True:
        d, n, next_id = _k("tokenize")(cps, doc_starts, classes, *table, ids, counts, n, next_id, d, docs)
        if d == docs:
            break
        slots *= 2
        table = _token_table(slots, table[2][:next_id], table)
    offsets = np.zeros(docs + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return Tokens(ids[:n], offsets, table[2][:next_id], table[3][:next_id], table[4][:next_id])


def _token_table(slots: int, keys: np.ndarray, old: tuple[np.ndarray, ...] | None = None) -> tuple[np.ndarray, ...]:
    """An empty table of ``slots`` for :func:`tokenize` (keys, ids; the first occurrences' keys, starts and
    stops, for up to half as many ids), holding ``keys`` as ids 0, 1, ... (with their spans from ``old``)."""
    table = (np.zeros(slots, dtype=np.uint64), np.full(slots, -1, dtype=np.int64), np.empty(slots // 2, dtype=np.uint64),
             np.empty(slots // 2, dtype=np.int64), np.empty(slots // 2, dtype=np.int64))
    if len(keys):
        _k("first_ids")(keys, 0, table[0], table[1], np.empty(len(keys), dtype=np.int64), 0)
        for new, was in zip(table[2:], old[2:]):  # type: ignore[index]
            new[: len(keys)] = was[: len(keys)]
    return table


def gather(values: np.ndarray, starts: np.ndarray, out_offsets: np.ndarray) -> np.ndarray:
    """Segments of ``values`` starting at ``starts`` with the lengths given by ``out_offsets``, concatenated."""
    out = np.empty(int(out_offsets[-1]), dtype=values.dtype)
    _run(_k("gather"), _ranges(np.diff(out_offsets) + 1, _threads()), values, np.ascontiguousarray(starts, dtype=np.int64),
         out_offsets, out)
    return out


def _ranks(columns: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(rank, sorted columns): the distinct ``columns`` sorted, and the place of each in them. Columns dense enough
    (a chunk's vocabulary among the corpus's) are ranked by a bitmap of their values (_jit.column_ranks: 1.9 ->
    0.1 ms for 35k columns), others by a sort."""
    n = len(columns)
    rank, sorted_columns = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64)
    if n and int(columns.min()) >= 0 and int(columns.max()) < 256 * n + 4096:
        words = (int(columns.max()) >> 6) + 1
        if not _k("column_ranks")(columns, np.zeros(words, np.uint64), np.empty(words, np.int64), rank, sorted_columns):
            raise ValueError("count_rows needs distinct columns")
        return rank, sorted_columns
    order = np.argsort(columns, kind="stable")
    sorted_columns = columns[order]
    if np.any(sorted_columns[1:] == sorted_columns[:-1]):
        raise ValueError("count_rows needs distinct columns")
    rank[order] = np.arange(n, dtype=np.int64)
    return rank, sorted_columns


def count_rows(ids: np.ndarray, offsets: np.ndarray, *, columns: np.ndarray | None = None, counts_dtype: type = np.float64,
               out: tuple[np.ndarray, np.ndarray] | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(indptr, indices, data) of the canonical CSR matrix of token counts, one row per document. Token id ``t``
    is column ``columns[t]`` (distinct columns; default: ``t`` itself). The counts are of ``counts_dtype``
    (float64 or uint32). ``out``: arrays (int32, and of that dtype) with room for ``len(ids)`` entries that the
    rows are written into, in one pass on this thread (indices and data are then their first entries); else
    the documents are split across threads and their rows packed afterwards."""
    docs = len(offsets) - 1
    ids = np.ascontiguousarray(ids, dtype=np.int32)
    if columns is None:  # (every id below the largest: the identity)
        size = int(ids.max(initial=-1)) + 1
        rank = sorted_columns = np.arange(size, dtype=np.int64)
    else:
        rank, sorted_columns = _ranks(np.asarray(columns, dtype=np.int64))
    uniq = np.zeros(docs, dtype=np.int64)
    indptr = np.zeros(docs + 1, dtype=np.int64)
    if out is not None:
        out_ids, out_counts = out
        if len(out_ids) < len(ids) or len(out_counts) < len(ids) or out_counts.dtype != np.dtype(counts_dtype):
            raise ValueError(f"count_rows needs out arrays of {len(ids)} entries, the counts of {np.dtype(counts_dtype)}")
        _k("count_rows")(ids, offsets, rank, sorted_columns, out_ids, out_counts, uniq, True, 0, docs)
        np.cumsum(uniq, out=indptr[1:])
        return indptr, out_ids[: indptr[-1]], out_counts[: indptr[-1]]
    out_ids = np.empty(len(ids), dtype=np.int32)
    out_counts = np.empty(len(ids), dtype=counts_dtype)
    ranges = _ranges(np.diff(offsets) + 1, _threads())
    _run(_k("count_rows"), ranges, ids, offsets, rank, sorted_columns, out_ids, out_counts, uniq, False)
    np.cumsum(uniq, out=indptr[1:])
    indices = np.empty(int(indptr[-1]), dtype=np.int32)
    data = np.empty(int(indptr[-1]), dtype=counts_dtype)
    _run(_k("compact"), ranges, out_ids, offsets, uniq, indices, indptr)
    _run(_k("compact"), ranges, out_counts, offsets, uniq, data, indptr)
    return indptr, indices, data


def minhash_sets(values: np.ndarray, offsets: np.ndarray, *, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """MinHash signatures of sorted distinct shingle sets (empty sets get all slots 0xFFFFFFFF)."""
    docs = len(offsets) - 1
    sigs = np.empty((docs, len(a)), dtype=np.uint32)
    _run(_k("minhash_sets"), _ranges(np.diff(offsets) + 1, _threads()), values, offsets, a, b, sigs)
    return sigs


def common_counts(
    values: np.ndarray, offsets: np.ndarray, other_values: np.ndarray, other_offsets: np.ndarray,
    left: np.ndarray, right: np.ndarray,
) -> np.ndarray:
    """Shared elements of sorted distinct rows, pair by pair."""
    out = np.empty(len(left), dtype=np.int64)
    weights = np.ones(len(left))
    _run(_k("common_counts"), _ranges(weights, _threads()), values, offsets, other_values, other_offsets,
         np.ascontiguousarray(left, dtype=np.int64), np.ascontiguousarray(right, dtype=np.int64), out)
    return out


def sparse_row_dots(
    indptr: np.ndarray, indices: np.ndarray, data: np.ndarray, left: np.ndarray, right: np.ndarray, *, columns: int
) -> np.ndarray:
    """Row-pair dot products of a canonical CSR matrix with ``columns`` columns, bit-identical to
    scipy's multiply().sum(axis=1); fastest when pairs come sorted by left row."""
    out = np.empty(len(left), dtype=np.float64)
    weights = np.ones(len(left))
    indptr = indptr.astype(np.int64, copy=False)
    longest = max(1, int(np.diff(indptr).max())) if len(indptr) > 1 else 1
    _run(_k("sparse_row_dots"), _ranges(weights, _threads()), indptr, indices.astype(np.int32, copy=False), data,
         columns, longest, np.ascontiguousarray(left, dtype=np.int64), np.ascontiguousarray(right, dtype=np.int64), out)
    return out


def _table_bits(*offsets: np.ndarray) -> int:
    """Bits of a hash table at most a quarter full with the longest row of any of these offsets."""
    longest = max((int(np.diff(o).max()) if len(o) > 1 else 0) for o in offsets)
    return max(4, (4 * longest - 1).bit_length())


def sublinear_tf(top: int) -> np.ndarray:
    """``1 + log(c)`` for counts c = 0..top, computed by numpy as :func:`dedup.confirm.tfidf_weights` does."""
    with np.errstate(divide="ignore"):
        tf = np.log(np.arange(top + 1, dtype=np.float64))
    tf += 1.0
    return tf


def tfidf_norms(
    indices: np.ndarray, counts: np.ndarray, offsets: np.ndarray, *, tf: np.ndarray, idf: np.ndarray,
    is_number: np.ndarray, needed: np.ndarray, norms: np.ndarray, numerics: np.ndarray,
) -> None:
    """Fill ``norms`` (l2 norm of the TF-IDF row, ``tf[count] * idf[token]``, summed as scikit-learn's row
    normalisation sums it) and ``numerics`` (numeric tokens) of the ``needed`` documents."""
    _run(_k("tfidf_norms"), _ranges(np.diff(offsets) * needed + 1, _threads()), indices, counts, offsets, tf, idf,
         is_number, needed, norms, numerics)


def score_rows(
    indices: np.ndarray, counts: np.ndarray, offsets: np.ndarray, shingles: np.ndarray, shingle_offsets: np.ndarray,
    signatures: np.ndarray, *, tf: np.ndarray, idf: np.ndarray, is_number: np.ndarray, norms: np.ndarray,
    left: np.ndarray, right: np.ndarray, docs: tuple[np.ndarray, np.ndarray] | None = None,
    sketches: np.ndarray | None = None, token_buckets: np.ndarray | None = None,
    rule: tuple[float, float, float, float] | None = None, skipped: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Scores of document pairs straight from a corpus's count rows (sorted token ids ``indices``
    with their ``counts``), sorted shingle rows and MinHash ``signatures``: (TF-IDF cosine, shared
    numeric tokens, shared shingles, equal signature slots; the counts as int32) per pair. The weights are those of
    :func:`dedup.confirm.tfidf_weights` (``tf`` from :func:`sublinear_tf`, ``idf`` per token, rows
    divided by ``norms`` from :func:`tfidf_norms`), the cosine bit-identical to :func:`sparse_row_dots`
    of that matrix. Pairs sorted by left document are fastest; they are split across threads. ``left`` and
    ``right`` number the documents in the rows; ``docs``, when the rows are some documents' only (a block's),
    numbers them in the per-document arrays (``norms``, ``signatures``, ``sketches``).

    With ``rule`` (the cosine, overlap, strong cosine and containment thresholds of
    :func:`dedup.confirm.worded_alike`), each document's sketch ``sketches`` (:func:`sketch_rows`) and each token
    id's bucket in it (``token_buckets``, :func:`hash_buckets` of its hash), the pairs that cannot meet the rule
    (a bound of their cosine, then one of their shared shingles from the sketches, then those counted until too few
    remain) are not scored in full: they get zeros and are marked in ``skipped`` (bool, one per pair) when given."""
    left = np.ascontiguousarray(left, dtype=np.int64)
    right = np.ascontiguousarray(right, dtype=np.int64)
    doc_left, doc_right = (left, right) if docs is None else (np.ascontiguousarray(d, dtype=np.int64) for d in docs)
    m = len(left)
    cosine = np.empty(m, dtype=np.float64)
    shared = np.empty(m, dtype=np.int32)
    common = np.empty(m, dtype=np.int32)
    equal = np.empty(m, dtype=np.int32)
    if rule is None:
        sketches, token_buckets, thresholds = _NO_SKETCHES, _NO_BUCKETS, np.zeros(0)
    else:
        thresholds = np.array([*rule, BOUND_SLACK], dtype=np.float64)
        sketches, token_buckets = _bounding_arrays("score_rows", sketches, token_buckets)
    marks = skipped if skipped is not None else np.empty(m if rule is not None else 0, dtype=bool)
    if m:
        weights = (offsets[right + 1] - offsets[right]) + (shingle_offsets[right + 1] - shingle_offsets[right]) + 16
        _run(_k("score_rows"), _ranges(weights, _threads()), indices, counts, offsets, tf, idf, is_number, norms,
             shingles, shingle_offsets, signatures, _table_bits(offsets, shingle_offsets), left, right, doc_left,
             doc_right, cosine, shared, common, equal, sketches, token_buckets, thresholds, SHINGLE_LEVELS, marks)
    return cosine, shared, common, equal


def bound_pairs(
    indices: np.ndarray, counts: np.ndarray, offsets: np.ndarray, shingles: np.ndarray, shingle_offsets: np.ndarray, *,
    sizes: np.ndarray, tf: np.ndarray, idf: np.ndarray, norms: np.ndarray, left: np.ndarray, docs: tuple[np.ndarray, np.ndarray],
    sketches: np.ndarray, token_buckets: np.ndarray, rule: tuple[float, float, float, float],
) -> np.ndarray:
    """Which pairs :func:`score_rows` with ``rule`` passes over from the sketches alone (bool per pair), reading
    only the left documents' rows: ``left`` numbers them in the rows (a block's, say), ``docs`` (left, right) numbers
    both documents in the per-document arrays (``norms``, ``sketches``, ``sizes``: each one's shingle count). The
    other pairs may still be passed over by :func:`score_rows` (their shingles counted)."""
    sketches, token_buckets = _bounding_arrays("bound_pairs", sketches, token_buckets)
    left = np.ascontiguousarray(left, dtype=np.int64)
    doc_left, doc_right = (np.ascontiguousarray(d, dtype=np.int64) for d in docs)
    out = np.zeros(len(left), dtype=bool)
    if len(left):
        weights = np.ones(len(left))
        _run(_k("bound_pairs"), _ranges(weights, _threads()), indices, counts, offsets, tf, idf, norms, shingles,
             shingle_offsets, np.ascontiguousarray(sizes, dtype=np.int64), left, doc_left, doc_right, sketches,
             token_buckets, np.array([*rule, BOUND_SLACK], dtype=np.float64), SHINGLE_LEVELS, out)
    return out


def _bounding_arrays(caller: str, sketches: np.ndarray | None, token_buckets: np.ndarray | None,
                     ) -> tuple[np.ndarray, np.ndarray]:
    """The sketches (checked to be :func:`sketch_rows`' width: the kernels read both parts of every row) and token
    buckets as the bounding kernels take them: buckets in 2 bytes a token (those of the rarer tokens are read from
    memory, and stay in cache more often)."""
    if sketches is None or token_buckets is None or sketches.ndim != 2 \
            or sketches.shape[1] != TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS:
        raise ValueError(f"{caller}'s bounds need each document's sketch from sketch_rows "
                         f"(documents, {TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS}) and token_buckets")
    return np.ascontiguousarray(sketches, dtype=np.uint64), np.ascontiguousarray(token_buckets, dtype=np.uint16)


def hash_buckets(values: np.ndarray, buckets: int) -> np.ndarray:
    """The bucket (of ``buckets``, a power of 2) of each 32- or 64-bit hash: the top bits of the mixed value,
    as the compiled ``_jit.sketch_bucket`` takes them (int64)."""
    x = np.asarray(values, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(31))) * _MIX
    return (x >> np.uint64(65 - buckets.bit_length())).astype(np.int64)


def sketch_rows(token_ids: np.ndarray, token_offsets: np.ndarray, token_hashes: np.ndarray, shingle_hashes: np.ndarray,
                shingle_offsets: np.ndarray) -> np.ndarray:
    """Each document's sketch for :func:`score_rows`' bounds: the bitmap of the buckets (:func:`hash_buckets` of
    ``TOKEN_SKETCH_BUCKETS``) of its tokens' hashes, given its token ids into ``token_hashes``, then that of its
    shingles' (of ``SHINGLE_SKETCH_BUCKETS``): (documents, TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS) uint64
    (bit i of bucket i in word i // 64 of each part)."""
    out = np.zeros((len(token_offsets) - 1, TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS), dtype=np.uint64)
    _k("sketch_rows")(token_ids, token_offsets, token_hashes, shingle_hashes, shingle_offsets, out)
    return out


_RESIDUAL_BITS = 26  # most bits of the residual hashes' prefilter (8 MB)
_RESIDUAL_MIN_BITS = 20  # fewest (128 KB)
_SCAN_ENTRIES = 1 << 23  # shingles per block of a scan over every document (32 MB; read at once when on disk)


def unique(values: np.ndarray) -> np.ndarray:
    """``np.unique(values)`` of a 1-d array, by sorting: numpy 2.3+ finds the distinct values of a
    plain ``np.unique`` call with a hash table, 30-75x slower than this on millions of integers."""
    ordered = np.sort(values)
    if len(ordered) < 2:
        return ordered
    keep = np.empty(len(ordered), dtype=bool)
    keep[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=keep[1:])
    return ordered[keep]


def band_pairs(sigs: np.ndarray, live: np.ndarray, *, bands: int, rows: int, threads: int | None = None) -> np.ndarray:
    """Codes ``i * len(sigs) + j`` of the pairs i < j of rows ``live`` (increasing) of ``sigs`` that share an LSH
    band (columns ``b * rows`` to ``(b + 1) * rows``), a code per shared band, unsorted. Each thread works on its own
    bands with its own hash table (twice as many slots as rows): no sorting of keys band by band."""
    sigs = np.ascontiguousarray(sigs, dtype=np.uint32)
    live = np.ascontiguousarray(live, dtype=np.int64)
    slots = 1 << max(4, (2 * len(live)).bit_length())
    lanes = max(1, min(threads or _threads(), bands))
    cuts = [bands * t // lanes for t in range(lanes + 1)]
    parts: list[np.ndarray] = [np.zeros(0, np.int64)] * lanes

    def work(t: int) -> None:
        keys, heads = np.empty(slots, dtype=np.uint64), np.empty(slots, dtype=np.int64)
        links = np.empty(len(live), dtype=np.int64)
        out = np.empty(max(1 << 12, 2 * len(live)), dtype=np.int64)
        band, count = cuts[t], 0
        while True:
            band, count = _k("band_pairs")(sigs, live, rows, len(sigs), keys, heads, links, out, count, band, cuts[t + 1])
            if band == cuts[t + 1]:
                break
            grown = np.empty(2 * len(out), dtype=np.int64)  # (full: the band it stopped before is done again)
            grown[:count] = out[:count]
            out = grown
        parts[t] = out[:count]

    if lanes == 1:
        work(0)
    else:
        with ThreadPoolExecutor(lanes) as pool:
            for f in [pool.submit(work, t) for t in range(lanes)]:
                f.result()
    return parts[0] if lanes == 1 else np.concatenate(parts)


def doc_ranges(offsets: np.ndarray, entries: int) -> list[tuple[int, int]]:
    """Consecutive ranges (relative to ``offsets[0]``'s document) of the documents of ``offsets`` with
    about ``entries`` row entries each (at least one document each)."""
    starts = np.searchsorted(offsets, np.arange(offsets[0], offsets[-1], max(entries, 1)), side="right") - 1
    cuts = np.unique(np.r_[0, starts, len(offsets) - 1])
    return [(int(a), int(b)) for a, b in zip(cuts[:-1], cuts[1:]) if b > a]


def residual_sources(
    residuals: np.ndarray, residual_offsets: np.ndarray, shingles: np.ndarray | DiskArray, shingle_offsets: np.ndarray,
    *, story: np.ndarray, owner: np.ndarray, owner_story: np.ndarray, residual_signatures: np.ndarray,
    signatures: np.ndarray, bands: int, rows_per_band: int, candidates: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """For each residual row r (sorted distinct shingle hashes): among the documents except
    ``owner[r]`` and those of story ``owner_story[r]`` (``story`` per document) that share an LSH
    band (``bands`` of ``rows_per_band`` slots) of their signatures with r's or whose code
    ``r * len(signatures) + document`` is in the sorted ``candidates``, the one sharing the most
    shingles with r (ties: the last; -1 if none shares any) and the count. One pass over every
    document's shingles, split across threads, a block of documents at a time (``shingles`` may be
    a :class:`dedup.parallel.DiskArray`: each block is read from the file, nothing stays mapped)."""
    rows = len(residual_offsets) - 1
    row_of = np.repeat(np.arange(rows, dtype=np.int64), np.diff(residual_offsets))
    order = np.argsort(residuals, kind="stable")
    res_hashes = np.ascontiguousarray(residuals[order], dtype=np.uint32)
    res_rows = row_of[order]
    # (About one bit in 64 set: a bitmap of a few residual rows stays in the processor's cache while every shingle
    # is looked up in it, 20k articles: 44 -> 24 ms.)
    bits = min(_RESIDUAL_BITS, max(_RESIDUAL_MIN_BITS, (64 * len(res_hashes)).bit_length()))
    shift = 32 - bits
    bitmap = np.zeros(1 << (bits - 6), dtype=np.uint64)
    tops = res_hashes.astype(np.uint64) >> np.uint64(shift)
    np.bitwise_or.at(bitmap, tops >> np.uint64(6), np.uint64(1) << (tops & np.uint64(63)))
    bucket_bits = min(24, max(8, len(res_hashes).bit_length()))  # about one hash per bucket
    bucket_shift = 32 - bucket_bits
    first = np.zeros((1 << bucket_bits) + 1, dtype=np.int64)
    np.cumsum(np.bincount(res_hashes >> np.uint32(bucket_shift), minlength=1 << bucket_bits), out=first[1:])

    def one(lo: int, hi: int, part: tuple[np.ndarray, np.ndarray]) -> None:
        # A block of documents at a time: a slice of an array in memory, a read of a file (DiskArray)
        # that leaves no mapped pages behind.
        for b0, b1 in doc_ranges(shingle_offsets[lo : hi + 1], _SCAN_ENTRIES):
            base = int(shingle_offsets[lo + b0])
            values = np.ascontiguousarray(shingles[base : int(shingle_offsets[lo + b1])], dtype=np.uint32)
            _k("residual_sources")(res_hashes, res_rows, bitmap, shift, first, bucket_shift, values, shingle_offsets,
                                   base, story, owner, owner_story, residual_signatures, signatures, bands,
                                   rows_per_band, candidates, part[0], part[1], lo + b0, lo + b1)

    ranges = _ranges(np.diff(shingle_offsets) + 1, _threads()) if rows else []
    found = [(np.zeros(rows, dtype=np.int64), np.full(rows, -1, dtype=np.int64)) for _ in ranges]
    if len(ranges) == 1:
        one(*ranges[0], found[0])
    elif ranges:
        with ThreadPoolExecutor(len(ranges)) as pool:
            for f in [pool.submit(one, lo, hi, part) for (lo, hi), part in zip(ranges, found)]:
                f.result()
    best_common = np.zeros(rows, dtype=np.int64)
    best_doc = np.full(rows, -1, dtype=np.int64)
    for common, doc in found:  # ranges come in document order: a later one wins ties
        better = (common > best_common) | ((common == best_common) & (common > 0) & (doc > best_doc))
        best_common[better] = common[better]
        best_doc[better] = doc[better]
    return best_common, best_doc


def use_kernels(engine: str, size: int, minimum: int = MIN_TOKENS) -> bool:
    """Whether to take the compiled path: ``engine`` is "numba", "numpy" or "auto" (numba for
    inputs of at least ``minimum`` elements, when numba is installed)."""
    if engine == "numpy":
        return False
    if engine == "numba":
        if not available():
            raise RuntimeError("engine='numba' needs numba: pip install numba")
        return True
    if engine != "auto":
        raise ValueError(f"engine must be 'auto', 'numba' or 'numpy', got {engine!r}")
    return size >= minimum and available()


def doc_frequency(ids: np.ndarray, offsets: np.ndarray, vocab_size: int, *, use_numba: bool = True) -> np.ndarray:
    """Number of documents containing each token id (int64)."""
    if use_numba and available():
        return _k("doc_frequency")(ids, offsets, vocab_size)
    docs = np.repeat(np.arange(len(offsets) - 1, dtype=np.int64), np.diff(offsets))
    keys = unique(docs * max(vocab_size, 1) + ids.astype(np.int64))
    return np.bincount(keys % max(vocab_size, 1), minlength=vocab_size).astype(np.int64)


def ahead_of_time() -> bool:
    """Whether the kernels in use come from the ahead-of-time module (:mod:`dedup._aot`) rather than numba."""
    return _state.get("aot") is True


# The index's kernels (dedup.bandmirror; _jit_band, and _jit.sketch_one for _sketch), in band_kernels' order.
_BAND = ("_run_lookup", "_salted_band_keys", "_distinct", "_merge_runs", "_build_run", "_buffer_add", "_buffer_lookup",
         "_sketch", "_sketch_bounds", "_score_bounds", "_table_get", "_table_add", "_score")


def band_kernels() -> tuple[Callable, ...]:
    """The index's kernels (:mod:`dedup.bandmirror`), in the order of _BAND."""
    return tuple(_k(f"band{name}") for name in _BAND)


def word_cache_kernels() -> tuple[Callable, Callable, Callable]:
    """The word cache's kernels (:class:`dedup.tokenize.WordCache`): find_words, add_words, rehash."""
    return _k("find_words"), _k("add_words"), _k("rehash")


def loaded() -> bool:
    """Whether the kernels are in use in this process already (:func:`available` was asked and said yes):
    paths that are fast enough without them take them only then, never loading numba for themselves."""
    return _state.get("ok") is True


def when_loaded(engine: str) -> str:
    """``engine``, except that "auto" is "numba" once the kernels are in use in this process (:func:`loaded`): for
    work too small to pay for loading them but not for calling them (the MinHash signatures of a few hundred
    residual rows: ~1 ms against ~55 ms in numpy)."""
    return "numba" if engine == "auto" and loaded() else engine


def components(n: int, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Connected-component label (int32, numbered in order of each component's smallest node, as scipy's
    ``connected_components`` numbers them) of each of ``n`` nodes for the undirected edges ``left``-``right``."""
    labels = np.empty(n, dtype=np.int32)
    _k("components")(n, np.ascontiguousarray(left, dtype=np.int64), np.ascontiguousarray(right, dtype=np.int64), labels)
    return labels


class ScreenTable(NamedTuple):
    """What :func:`screen_lines` looks words up in, made by :func:`screen_table`."""

    punct: np.ndarray  # bool[256]: the bytes stripped from either end of a first or last word
    keys: np.ndarray  # uint64, sorted: word keys (:func:`word_key`)
    bits: np.ndarray  # uint8 per key: what the word may be (SCREEN_SHORT_FIRST, ...)


class PrefixTable(NamedTuple):
    """What :func:`prefixed_words` looks prefixes up in, made by :func:`prefix_table`."""

    directory: np.ndarray  # int32[65537]: the prefixes starting with bytes x, y are directory[256 x + y]:...[+1]
    values: np.ndarray  # uint64: each prefix, packed little-endian
    masks: np.ndarray  # uint64: the mask of each prefix's length
    firsts: np.ndarray  # uint8[65536]: 1 where some prefix starts with bytes x, y (x not a space)


# The argument types of the calls made once per article (normalising), as _aot.call_key gives them: arrays of bytes
# (np.frombuffer: read-only), arrays made here (writeable) and numbers.
def _sites() -> dict[str, tuple[str, tuple]]:
    from dedup._aot import array_key, scalar_key

    text, number = array_key(np.uint8, 1, writeable=False), scalar_key(np.int64)
    made = [array_key(dtype, 1, writeable=True) for dtype in (np.bool_, np.uint64, np.uint8, np.int64, np.int32)]
    flags, keys64, bits, out, directory = made
    return {  # call site: (kernel, the argument types it always passes)
        "has_gaps": ("has_gaps", (text,)),
        "word_key": ("word_key", (text, number, number)),
        "screen_lines": ("screen_lines", (text, flags, keys64, bits, out, number)),
        "prefixed_words": ("prefixed_words", (text, directory, keys64, keys64, bits, out)),
    }


_SITES = _sites()


def _site(site: str) -> Callable:
    """What the call site ``site`` runs: its kernel's ahead-of-time export for the argument types the site always
    passes (it makes its arrays itself, or takes them from a table made here), looked up once, so that its calls,
    once an article each, skip matching their arguments (~1 us a call); the kernel itself otherwise."""
    sites: dict[str, Callable] = _state.setdefault("sites", {})  # type: ignore[assignment]
    found = sites.get(site)
    if found is None:
        name, key = _SITES[site]
        kernel = _k(name)
        found = sites[site] = getattr(kernel, "exports", {}).get(key, kernel)
    return found


def has_gaps(text: bytes) -> bool:
    """Whether ``text`` holds two spaces, a space next to a newline, or three newlines in a row."""
    return bool(_site("has_gaps")(np.frombuffer(text, dtype=np.uint8)))


def prefixed_words(text: bytes, table: PrefixTable) -> np.ndarray:
    """Positions in ``text`` of a space followed by one of the byte prefixes of ``table`` (see
    :func:`prefix_table`), in order."""
    if type(table) is not PrefixTable:
        raise TypeError("prefixed_words needs a table made by prefix_table")
    data = np.frombuffer(text, dtype=np.uint8)
    out = np.empty(len(data) + 1, dtype=np.int64)
    return out[: _site("prefixed_words")(data, *table, out)]


def word_key(word: bytes) -> int:
    """The key :func:`screen_lines` looks a word up by (FNV-1a of its bytes, ASCII letters lower-cased)."""
    return int(_site("word_key")(np.frombuffer(word, dtype=np.uint8), 0, len(word)))


def screen_table(punct: np.ndarray, keys: np.ndarray, bits: np.ndarray) -> ScreenTable:
    """The table :func:`screen_lines` takes: ``punct`` (256 flags), ``keys`` (sorted word keys) and their ``bits``."""
    keys = np.array(keys, dtype=np.uint64)
    if len(punct) != 256 or len(keys) != len(bits) or np.any(keys[1:] <= keys[:-1]):
        raise ValueError("screen_table needs 256 flags, and as many bits as keys, sorted and distinct")
    return ScreenTable(np.array(punct, dtype=np.bool_), keys, np.array(bits, dtype=np.uint8))


def screen_lines(text: bytes, table: ScreenTable, *, own_views: bool = False) -> list[int]:
    """The lines of ``text`` (UTF-8, split at b"\\n") that :func:`dedup.normalize.strip_boilerplate` must look at, in
    order, each as 2 * its index, plus 1 when it has a byte beyond printable ASCII or a space at either end (then
    the rules see it changed). The others are printable ASCII and no line rule applies to them, as their length,
    their end, a tail hint ("ributed ", "ted feed" in any case), their first and last words (without the bytes
    marked in the table's ``punct`` at either end, looked up by :func:`word_key` in its ``keys``, whose ``bits``
    say what the word may be: see ``_jit_text``), a digit or an "@" say. ``own_views``: every line of ``text`` is
    its own view (a :func:`dedup.normalize._clean` output's are), so one with characters beyond ASCII is screened
    by the same signs (and passed when its first or last word has such a character) instead of passed with 1."""
    if type(table) is not ScreenTable:
        raise TypeError("screen_lines needs a table made by screen_table")
    out = np.empty(text.count(b"\n") + 1, dtype=np.int64)
    return out[: _site("screen_lines")(np.frombuffer(text, dtype=np.uint8), *table, out, int(own_views))].tolist()


def prefix_table(prefixes: list[bytes]) -> PrefixTable:
    """The table :func:`prefixed_words` looks prefixes up in: prefixes of 2 to 8 bytes, by their first two
    bytes (directory over 256 * x + y), each packed little-endian with the mask of its length; and which first
    two bytes start a prefix (x not a space: a word starts after the space)."""
    if any(not 2 <= len(p) <= 8 for p in prefixes):
        raise ValueError("prefixes must have 2 to 8 bytes")
    ordered = sorted(set(prefixes), key=lambda p: (p[0] * 256 + p[1], p))
    directory = np.zeros(65537, dtype=np.int32)
    np.add.at(directory, [p[0] * 256 + p[1] + 1 for p in ordered], 1)
    np.cumsum(directory, out=directory)
    values = np.array([int.from_bytes(p, "little") for p in ordered], dtype=np.uint64)
    masks = np.array([(1 << (8 * len(p))) - 1 for p in ordered], dtype=np.uint64)
    firsts = (directory[1:] > directory[:-1]).astype(np.uint8)
    firsts[32 * 256 : 33 * 256] = 0
    return PrefixTable(directory, values, masks, firsts)


def token_counts(ids: np.ndarray, hashes: np.ndarray, *, use_numba: bool = True) -> tuple[np.ndarray, np.ndarray] | None:
    """(distinct token hashes sorted, their counts as uint32) of one document, given its token ids and the hash
    of each id (its own vocabulary, as the tokenizer numbers a single document); None when some id of the
    vocabulary does not occur in ``ids``."""
    if use_numba and available():
        tokens = np.empty(len(hashes), dtype=np.uint64)
        counts = np.empty(len(hashes), dtype=np.uint32)
        return (tokens, counts) if _k("token_counts")(ids, hashes, tokens, counts) else None
    held = np.bincount(ids, minlength=len(hashes))
    if len(held) != len(hashes) or not held.all():
        return None
    order = np.argsort(hashes)
    return hashes[order], held[order].astype(np.uint32)


class VocabTable:
    """Maps 64-bit token hashes to global token ids, given in order of first insertion."""

    def __init__(self, *, use_numba: bool = True) -> None:
        self.hashes = np.zeros(1 << 16, dtype=np.uint64)  # id -> hash
        self.size = 0
        self._numba = use_numba and available()
        if self._numba:
            self._keys = np.zeros(1 << 17, dtype=np.uint64)
            self._vals = np.full(1 << 17, -1, dtype=np.int64)
        else:
            self._dict: dict[int, int] = {}

    def insert(self, hashes: np.ndarray) -> np.ndarray:
        """Global ids of ``hashes`` (new hashes are added in the given order)."""
        need = self.size + len(hashes)
        if need > len(self.hashes):
            grown = np.zeros(max(need, 2 * len(self.hashes)), dtype=np.uint64)
            grown[: self.size] = self.hashes[: self.size]
            self.hashes = grown
        out = np.empty(len(hashes), dtype=np.int64)
        if self._numba:
            if 2 * need > len(self._keys):
                cap = len(self._keys)
                while 2 * need > cap:
                    cap *= 2
                self._keys = np.zeros(cap, dtype=np.uint64)
                self._vals = np.full(cap, -1, dtype=np.int64)
                _k("first_ids")(self.hashes[: self.size], 0, self._keys, self._vals, np.empty(self.size, np.int64), 0)
            new_size = _k("first_ids")(hashes, 0, self._keys, self._vals, out, self.size)[1]
        else:
            table = self._dict
            new_size = self.size
            for i, h in enumerate(hashes.tolist()):
                v = table.get(h)
                if v is None:
                    v = table[h] = new_size
                    new_size += 1
                out[i] = v
        fresh = out >= self.size
        self.hashes[out[fresh]] = hashes[fresh]
        self.size = int(new_size)
        return out


def warm_up(progress: Callable[[str], None] | None = None) -> None:
    """Compile (or load from the on-disk cache) every kernel now, e.g. before forking workers. ``progress`` is
    told when this may take a while: numba's kernels are in use (the first run on a machine compiles them and
    builds the ahead-of-time module, ~30 s)."""
    if not available():
        return
    if not ahead_of_time() and progress is not None:
        progress("loading the compiled kernels (the first run on a machine compiles them: ~30 s)")
    ids = np.zeros(4, dtype=np.int32)
    offsets = np.array([0, 4], dtype=np.int64)
    hashes = np.arange(1, 2, dtype=np.uint64)
    a = np.ones(2, dtype=np.uint32)
    shingle_minhash(ids, hashes, offsets, n=3, a=a, b=a, threads=1)  # one document, and two (compacted)
    shingle_minhash(ids, hashes, np.array([0, 2, 4], dtype=np.int64), n=3, a=a, b=a, threads=1)
    minhash_sets(np.zeros(1, np.uint32), np.array([0, 1], np.int64), a=a, b=a)
    pairs = np.zeros(1, dtype=np.int64)
    common_counts(np.zeros(1, np.uint32), np.array([0, 1], np.int64), np.zeros(1, np.uint32), np.array([0, 1], np.int64), pairs, pairs)
    sparse_row_dots(np.array([0, 1], np.int64), np.zeros(1, np.int32), np.ones(1), pairs, pairs, columns=1)
    for writeable in (True, False):  # in memory, and read-only as mapped from spilled files
        rows = [np.zeros(1, np.int32), np.ones(1, np.uint32), np.array([0, 1], np.int64), np.zeros(1, np.uint32)]
        for array in rows:
            array.flags.writeable = writeable
        norms, numerics, needed = np.ones(1), np.zeros(1, np.int64), np.ones(1, bool)
        tfidf_norms(rows[0], rows[1], rows[2], tf=sublinear_tf(1), idf=np.ones(1), is_number=np.zeros(1, bool),
                    needed=needed, norms=norms, numerics=numerics)
        for rule in (None, (1.0, 1.0, 1.0, 1.0)):  # without and with bounds
            score_rows(rows[0], rows[1], rows[2], rows[3], rows[2], np.zeros((1, 2), np.uint32), tf=sublinear_tf(1),
                       idf=np.ones(1), is_number=np.zeros(1, bool), norms=norms, left=pairs, right=pairs,
                       sketches=np.zeros((1, TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS), np.uint64),
                       token_buckets=np.zeros(1, np.int64), rule=rule)
        bound_pairs(rows[0], rows[1], rows[2], rows[3], rows[2], sizes=np.ones(1, np.int64), tf=sublinear_tf(1), idf=np.ones(1),
                    norms=norms, left=pairs, docs=(pairs, pairs),
                    sketches=np.zeros((1, TOKEN_SKETCH_WORDS + SHINGLE_SKETCH_WORDS), np.uint64),
                    token_buckets=np.zeros(1, np.uint16), rule=(1.0, 1.0, 1.0, 1.0))
    doc_frequency(ids, offsets, 1)
    token_counts(ids, hashes)
    sketch_rows(ids, offsets, np.ones(1, np.uint64), np.zeros(1, np.uint32), np.array([0, 1], np.int64))
    prefixed_words(b" ab", prefix_table([b"ab"]))
    has_gaps(b"a  b")
    screen_lines(b"a b\n", screen_table(np.zeros(256, dtype=np.bool_), np.array([word_key(b"a")], np.uint64),
                                        np.ones(1, np.uint8)))
    VocabTable().insert(hashes)
    from dedup.tokenize import char_classes

    for code_points in (np.uint32, np.uint8):  # (beyond Latin-1, and within)
        tokenize(np.array([97, 46, 98, 44, 99], code_points), np.array([0, 5], np.int64), char_classes(), slots=2)  # (grows)
    from dedup.tokenize import tokenize_batch

    tokenize_batch(["a.b c"], engine="numba")  # the word cache's kernels, on Latin-1 text (one byte a character)
    tokenize_batch(["a.b c \u0100"], engine="numba")  # and beyond (UTF-32)
    count_rows(ids, offsets)
    count_rows(ids, offsets, columns=np.arange(1, dtype=np.int64), counts_dtype=np.uint32,  # (a chunk's, as merged)
               out=(np.empty(4, np.int32), np.empty(4, np.uint32)))
    components(2, np.zeros(1, np.int64), np.ones(1, np.int64))
    band_pairs(np.zeros((2, 2), np.uint32), np.arange(2, dtype=np.int64), bands=1, rows=2, threads=1)
    residual_sources(np.ones(1, np.uint32), np.array([0, 1], np.int64), np.ones(2, np.uint32), np.array([0, 1, 2], np.int64),
                     story=np.zeros(2, np.int32), owner=np.zeros(1, np.int64), owner_story=np.zeros(1, np.int32),
                     residual_signatures=np.zeros((1, 2), np.uint32), signatures=np.zeros((2, 2), np.uint32), bands=1,
                     rows_per_band=2, candidates=np.zeros(0, np.int64))
    _k("rehash")(np.zeros((2, 2), np.uint64), np.zeros((4, 2), np.uint64))
    for values in (np.zeros(1, np.uint32), ids.copy()):  # shingle hashes, token ids
        gather(values, np.zeros(1, np.int64), np.array([0, 1], np.int64))
        values.flags.writeable = False  # read-only, as mapped from a spilled file
        gather(values, np.zeros(1, np.int64), np.array([0, 1], np.int64))
    if not ahead_of_time():
        build_ahead_of_time()


def build_ahead_of_time() -> bool:
    """Build the ahead-of-time module of the kernels (:mod:`dedup._aot`) from the overloads numba compiled in
    this process (all that the pipeline uses, once :func:`warm_up` ran), so that later processes load them without
    numba; once per machine and version of the kernels (~10 s), not again after a failure (no C compiler, say).
    Whether there is a module now. Off when DEDUP_NO_AOT is set."""
    from dedup import _aot

    if os.environ.get("DEDUP_NO_AOT") or not available():
        return False
    key = _aot.build_key()  # (reads the sources: once)
    if _aot.load(key) is not None:
        return True
    if ahead_of_time() or _aot.failed(key) is not None:
        return False
    try:
        exercise_index()
        _aot.build({name: fn for name, fn in _state.items() if hasattr(fn, "overloads")}, key)
    except Exception:  # (the reason is in the note _aot.failed() reads; numba's kernels serve meanwhile)
        return False
    return True


def exercise_index() -> None:
    """Run the index's kernels (:func:`band_kernels`) on the argument types its paths pass: an index written,
    checked, expired (compacting its buckets), reopened from disk (its buckets rebuilt from what is stored),
    added to and removed from, so that the ahead-of-time build has an export for each."""
    import tempfile
    from datetime import datetime, timedelta, timezone

    from dedup.document import Document
    from dedup.index import Index

    words = [f"w{i}" for i in range(400)]
    story = " ".join(words[:150])
    now = datetime.now(timezone.utc)
    docs = [Document(id="a", text=story, date=now - timedelta(days=30)),
            Document(id="b", text=story + " " + " ".join(words[150:160])),
            Document(id="c", text=" ".join(words[200:350])),
            Document(id="d", text=" ".join(words[:140] + words[360:380]))]
    with tempfile.TemporaryDirectory(prefix="dedup-warm-") as tmp:
        path = os.path.join(tmp, "index.db")
        with Index.open(path) as index:
            index.add_many(docs[:2])
            index.add(docs[2])
            index.check(docs[3])
            index.expire(before=now - timedelta(days=1))
        with Index.open(path) as index:
            index.check(docs[3])
            index.add(docs[3])
            index.remove("c")
        with Index.open(path, read_only=True) as index:
            index.check(docs[0])
