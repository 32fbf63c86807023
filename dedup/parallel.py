"""Streaming, parallel preparation of a whole corpus for :func:`dedup.pipeline.cluster`.

Documents are consumed from an iterator in chunks; each chunk is normalised,
tokenised, shingled and fingerprinted by a worker process (forked once, before
any compiled thread pool could start) or in this process. JSON Lines read by
:func:`dedup.read.read_documents` go to the workers as raw lines, which they
parse; this process checks the records in order (see _Lines). Workers return flat
arrays only; their local vocabularies are merged here by 64-bit token hash, in
order of first occurrence, so token ids are the ones a single
:func:`dedup.tokenize.tokenize_batch` over the whole corpus would give. The
texts are dropped as soon as a chunk is done: memory holds the signatures and
per-document offsets, while the token ids and shingles of a large corpus go to
temporary files (read back by range, never mapped whole). No Python object is
kept per token or shingle.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import ctypes.util
import functools
import os
import shutil
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from dedup import kernels
from dedup.confirm import CountRows
from dedup.document import Document, date_sort_key
from dedup.errors import InputError
from dedup.fingerprint import shingle_signatures
from dedup.normalize import normalize_counting_datelines
from dedup.read import DocumentStream, RawLines, ReadOptions, parse_lines
from dedup.shingle import ShingleBatch
from dedup.tokenize import TokenBatch, tokenize_batch
from dedup.workers import Workers

CHUNK_DOCS = 1000  # documents per unit of work
SPILL_BYTES = 1 << 30  # token ids + shingles kept in memory up to this size, then spilled to disk
_BLOCK = 1 << 24  # bytes per read when gathering spilled rows
_GAP = 1 << 16  # rows closer than this on disk are read together
RESERVE_BYTES = 1 << 30  # address space reserved for each column of a corpus held in memory (see _Column)


# ----------------------------------------------------------------------------- memory


def release_memory() -> bool:
    """Give the C heap's free pages back to the operating system (glibc's ``malloc_trim``), so that
    memory a finished stage freed stops counting in the resident set; returns whether any was given
    back (False where there is no ``malloc_trim``). Called between the stages of a large corpus."""
    trim = _malloc_trim()
    return bool(trim(0)) if trim is not None else False


_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


def keep_freed_memory() -> bool:
    """Make the C heap keep freed memory for reuse instead of giving it back (glibc's ``mallopt``: large
    blocks come from the heap, which is not trimmed), so that each chunk's large buffers reuse pages the
    process has instead of faulting fresh ones in (~5,000 page faults a chunk of 1,000 articles). For worker
    processes, whose memory is one chunk's at a time; returns whether it was set (False without glibc)."""
    mallopt = getattr(_libc(), "mallopt", None)
    if mallopt is None:
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 1 << 30)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def start_worker() -> None:
    """Set up a worker process: its kernels run on one thread (the pool already has a process per core: threads
    on top of them only contend, 13.9 -> 13.5 s on 100k articles) and it keeps freed memory (keep_freed_memory)."""
    kernels.set_threads(1)
    keep_freed_memory()


def _malloc_trim() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    return getattr(_libc(), "malloc_trim", None)


@functools.lru_cache(maxsize=1)
def _libc() -> ctypes.CDLL | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return None


# ----------------------------------------------------------------------------- on-disk arrays


class DiskArray:
    """A read-only 1-d array in a file, read by ranges with ``pread``; a gather of many rows maps
    the file only while a kernel copies them (so resident memory does not grow with the file)."""

    def __init__(self, path: str, dtype: np.dtype, length: int) -> None:
        self.path = path
        self.dtype = np.dtype(dtype)
        self._len = int(length)
        self._fd = os.open(path, os.O_RDONLY)

    def __len__(self) -> int:
        return self._len

    @property
    def shape(self) -> tuple[int]:
        return (self._len,)

    def _read(self, lo: int, hi: int) -> np.ndarray:
        out = np.empty(hi - lo, dtype=self.dtype)
        self.read_into(lo, out)
        return out

    def read_into(self, lo: int, out: np.ndarray) -> None:
        """Fill ``out`` (contiguous, of this dtype) with the values from position ``lo`` on."""
        size = self.dtype.itemsize
        view = memoryview(out).cast("B")
        got = 0
        while got < len(view):
            n = os.preadv(self._fd, [view[got:]], lo * size + got)
            if n <= 0:
                raise OSError(f"short read from {self.path}")
            got += n

    def __getitem__(self, key: object) -> np.ndarray:
        if isinstance(key, slice):
            lo, hi, step = key.indices(self._len)
            if step != 1:
                return self._read(0, self._len)[key]
            return self._read(lo, max(lo, hi))
        if isinstance(key, (int, np.integer)):
            i = int(key) + (self._len if key < 0 else 0)
            return self._read(i, i + 1)[0]
        return np.asarray(self)[key]

    def __array__(self, dtype: object = None, copy: object = None) -> np.ndarray:
        out = self._read(0, self._len)
        return out if dtype is None else out.astype(dtype)

    def gather(self, starts: np.ndarray, stops: np.ndarray, out_offsets: np.ndarray) -> np.ndarray:
        """Rows ``[starts[k], stops[k])`` concatenated (``out_offsets`` are their positions in the result).

        Rows close together on disk are read with one call, rows far apart one by one, so a
        few scattered rows cost a few small reads, and many rows one pass over the file."""
        out = np.empty(int(out_offsets[-1]), dtype=self.dtype)
        if len(starts) == 0 or len(out) == 0:
            return out
        if kernels.use_kernels("auto", len(out)):
            # Many rows: map the file for this call only and copy the rows in a kernel (the mapping,
            # and the pages it brought in, go away when it returns).
            with self.mapped() as mapped:
                return kernels.gather(mapped, starts, out_offsets)
        order = np.argsort(starts, kind="stable")
        s_sorted = starts[order]
        reach = np.maximum.accumulate(stops[order])
        gap = max(1, _GAP // self.dtype.itemsize)
        limit = max(1, _BLOCK // self.dtype.itemsize)
        # A new read starts where the next row begins far after everything read so far.
        breaks = np.flatnonzero(s_sorted[1:] > reach[:-1] + gap) + 1
        bounds = np.concatenate(([0], breaks, [len(order)])).tolist()
        for a, b in zip(bounds[:-1], bounds[1:]):
            i = a
            while i < b:
                lo = int(s_sorted[i])
                j = int(np.searchsorted(reach[i:b], lo + limit, side="right")) + i
                j = min(max(j, i + 1), b)
                hi = int(reach[j - 1])
                block = self._read(lo, hi)
                rows = order[i:j]
                lengths = stops[rows] - starts[rows]
                total = int(lengths.sum())
                if total:
                    within = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(lengths) - lengths, lengths)
                    out[np.repeat(out_offsets[rows], lengths) + within] = block[np.repeat(starts[rows] - lo, lengths) + within]
                i = j
        return out

    @contextlib.contextmanager
    def mapped(self) -> Iterator[np.ndarray]:
        """The whole array as a read-only ndarray over a mapping of the file, for a kernel that reads
        rows scattered all over it; the mapping (and its pages) goes away when the block ends."""
        if self._len == 0:
            yield np.zeros(0, dtype=self.dtype)
            return
        mapped = np.memmap(self.path, dtype=self.dtype, mode="r", shape=(self._len,))
        try:
            yield np.asarray(mapped)
        finally:
            mapped._mmap.close()  # type: ignore[attr-defined]

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class Words(Sequence[str]):
    """A vocabulary stored as one UTF-8 blob with offsets (no Python object per word)."""

    def __init__(self, blob: bytes, offsets: np.ndarray) -> None:
        self._blob = blob
        self._offsets = offsets

    def __len__(self) -> int:
        return len(self._offsets) - 1

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        i = int(i)
        if i < 0:
            i += len(self)
        return self._blob[self._offsets[i] : self._offsets[i + 1]].decode("utf-8")

    def __iter__(self) -> Iterator[str]:
        blob, off = self._blob, self._offsets.tolist()
        for i in range(len(off) - 1):
            yield blob[off[i] : off[i + 1]].decode("utf-8")


class _Column:
    """An append-only column of arrays: in memory, or in a file once the corpus is large.

    In memory, the values are copied as they come into one array reserved at the first append (``reserve``
    bytes of address space: the pages are only touched as they fill), so that the column is whole when the
    corpus is (finishing it copies nothing: ~0.1 s of the end of a 20k-article run went into joining the
    columns' parts). Past the reservation, or when it cannot be made, the values are kept as parts and joined
    at the end."""

    def __init__(self, name: str, dtype: np.dtype, reserve: int = 0) -> None:
        self.name = name
        self.dtype = np.dtype(dtype)
        self.parts: list[np.ndarray] = []
        self.length = 0
        self.handle = None
        self.path: str | None = None
        self.reserve = max(0, reserve) // self.dtype.itemsize  # elements (0: parts only)
        self.whole: np.ndarray | None = None  # the reserved array, filled up to ``length``

    def append(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=self.dtype).ravel()
        if self.handle is not None:
            values.tofile(self.handle)
        elif self.fits(values.size):
            self.whole[self.length : self.length + values.size] = values  # type: ignore[index]
        else:
            if self.whole is not None:  # (full: what it holds is the first part)
                self.parts.append(self.whole[: self.length])
                self.whole = None
            self.parts.append(values)
        self.length += values.size

    def fits(self, size: int) -> bool:
        """Whether the next ``size`` values can be written in place (see :meth:`room`)."""
        return self.handle is None and self._reserved(size) and self.length + size <= len(self.whole)  # type: ignore[arg-type]

    def room(self, size: int) -> np.ndarray | None:
        """The next ``size`` values of the column to be written in place (they are appended), or None where
        they cannot be (on disk, or past the reservation): then :meth:`append` them."""
        if not self.fits(size):
            return None
        self.length += size
        return self.whole[self.length - size : self.length]  # type: ignore[index]

    def give_back(self, size: int) -> None:
        """Return the last ``size`` values of the last :meth:`room` unwritten."""
        if size < 0 or size > self.length or self.whole is None:
            raise ValueError("give_back returns part of the last room")
        self.length -= size

    def _reserved(self, size: int) -> bool:
        """Whether there is a reserved array (made at the first append, when ``size`` values fit in it)."""
        if self.whole is None and self.length == 0 and self.reserve >= size:
            try:
                self.whole = np.empty(self.reserve, dtype=self.dtype)
            except MemoryError:  # (the address space may be limited)
                self.reserve = 0
        return self.whole is not None

    def nbytes(self) -> int:
        return self.length * self.dtype.itemsize

    def _held(self) -> list[np.ndarray]:
        return [self.whole[: self.length]] if self.whole is not None else self.parts

    def spill(self, directory: str) -> None:
        self.path = os.path.join(directory, self.name)
        self.handle = open(self.path, "wb")
        for part in self._held():
            part.tofile(self.handle)
        self.parts = []
        self.whole = None

    def finish(self, *, load: bool = False) -> np.ndarray | DiskArray:
        if self.handle is None:
            held = self._held()
            out = held[0] if len(held) == 1 else np.concatenate(held) if held else np.zeros(0, self.dtype)
            self.parts = []
            self.whole = None
            return out
        self.handle.close()
        if load:
            return np.fromfile(self.path, dtype=self.dtype)
        return DiskArray(self.path, self.dtype, self.length)


# ----------------------------------------------------------------------------- the work on one chunk


def prepare_chunk(texts: list[str], strip: bool, n: int, num_perm: int, seed: int, engine: str = "auto") -> dict[str, object]:
    """Normalise, tokenise, shingle and fingerprint one chunk; only flat arrays come back.

    ``engine``: "numba", "numpy" or "auto" (numba for large chunks when installed)."""
    t0 = time.perf_counter()
    prepared = [normalize_counting_datelines(t, strip_boilerplate=strip) for t in texts]
    compilations = np.fromiter((count >= 2 for _, count in prepared), dtype=bool, count=len(prepared))
    normalised = [text for text, _ in prepared]
    del texts, prepared
    t1 = time.perf_counter()
    batch = tokenize_batch(normalised, engine=engine)
    del normalised
    words, word_lengths, numbers = encode_words(batch.vocab)
    fast = kernels.use_kernels(engine, len(batch.ids))
    df = kernels.doc_frequency(batch.ids, batch.offsets, len(batch.vocab), use_numba=fast)
    t2 = time.perf_counter()
    shingles, sigs = shingle_signatures(batch, n=n, num_perm=num_perm, seed=seed, engine="numba" if fast else "numpy")
    # Sketches (for bounding pair scores) only on the compiled path: only the compiled scorer reads them.
    sketches = kernels.sketch_rows(batch.ids, batch.offsets, batch.hashes, shingles.hashes, shingles.offsets) if fast else None
    t3 = time.perf_counter()
    return dict(
        compilations=compilations, ids=batch.ids, offsets=batch.offsets, vocab_hashes=batch.hashes,
        words=words, word_lengths=word_lengths, numbers=numbers, df=df,
        shingles=shingles.hashes, shingle_offsets=shingles.offsets, signatures=sigs, sketches=sketches,
        seconds={"normalise": t1 - t0, "tokenise": t2 - t1, "fingerprint": t3 - t2},
    )


def prepare_lines(batch: RawLines, options: ReadOptions, *args: object) -> dict[str, object]:
    """:func:`prepare_chunk` of the documents of a batch of JSON Lines, parsed here (:func:`dedup.read.parse_lines`),
    with their lines, ids and date keys, and the bad records (line, reason, message): what the reading process
    needs to check them in order (see _Lines). ``args`` as for prepare_chunk."""
    started = time.perf_counter()
    parsed = parse_lines(batch, options)
    dates = [date_sort_key(d) for d in parsed.dates]
    parsing = time.perf_counter() - started
    part = prepare_chunk(parsed.texts, *args) if parsed.texts else {"seconds": {}}  # type: ignore[arg-type]
    part["seconds"]["read"] = parsing  # type: ignore[index]
    part.update(doc_lines=parsed.lines, doc_ids=parsed.ids, doc_dates=dates, bad=parsed.bad)
    return part


def encode_words(words: list[str]) -> tuple[bytes, np.ndarray, np.ndarray]:
    """The words (tokens: no newline in any) as one UTF-8 string, the length in bytes of each, and whether each
    is a number (``str.isdigit``), with numpy over the bytes instead of a Python step per word: ASCII words
    are numbers when all their bytes are digits; the others ask ``isdigit``."""
    lengths = np.zeros(len(words), dtype=np.int64)
    numbers = np.zeros(len(words), dtype=bool)
    blob = "\n".join(words).encode("utf-8")
    data = np.frombuffer(blob, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    if len(newlines) != max(len(words) - 1, 0):
        raise ValueError("a word holds a newline")
    if len(blob) > len(newlines):  # (some word is not empty)
        starts, ends = np.append(0, newlines + 1), np.append(newlines, len(blob))
        lengths[:] = ends - starts
        digits = (data - np.uint8(48)) < 10
        digits[newlines] = True
        first = np.minimum(starts, len(blob) - 1)  # (reduceat needs every start inside; empty words are not numbers)
        numbers[:] = np.logical_and.reduceat(digits, first) & (lengths > 0)
        for i in np.flatnonzero(np.maximum.reduceat(data, first) >= 128).tolist():
            numbers[i] = words[i].isdigit()
    return blob.replace(b"\n", b""), lengths, numbers


# ----------------------------------------------------------------------------- the corpus


@dataclass
class Corpus:
    """A prepared corpus: what :func:`dedup.pipeline.cluster` needs of every document."""

    ids: list[str]
    dates: np.ndarray
    compilations: np.ndarray
    tokens: TokenBatch
    counts: CountRows  # each document's distinct tokens with their counts (the TF-IDF rows before weighting)
    shingles: ShingleBatch
    signatures: np.ndarray
    df: np.ndarray  # documents containing each vocabulary entry
    is_number: np.ndarray  # vocabulary entries made of digits
    sketches: np.ndarray | None = None  # kernels.sketch_rows: buckets of tokens, then of shingles (compiled path)
    seconds: dict[str, float] = field(default_factory=dict)  # wall seconds per stage
    worker_seconds: dict[str, float] = field(default_factory=dict)  # summed over workers
    spilled: bool = False
    _tmp: str | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def close(self) -> None:
        for array in (self.tokens.ids, self.shingles.hashes, self.counts.indices, self.counts.counts):
            if isinstance(array, DiskArray):
                array.close()
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


class _Merger:
    """Folds chunk results into the corpus columns and the global vocabulary."""

    def __init__(self, num_perm: int, spill_bytes: int, tmpdir: str | None, use_numba: bool = False) -> None:
        self.table = kernels.VocabTable(use_numba=use_numba)
        self.words: list[bytes] = []
        self.word_lengths: list[np.ndarray] = []
        self.df = np.zeros(1 << 16, dtype=np.int64)
        self.numbers = np.zeros(1 << 16, dtype=bool)
        reserve = min(spill_bytes, RESERVE_BYTES)
        self.token_ids = _Column("tokens.int32", np.int32, reserve)
        self.token_lengths: list[np.ndarray] = []
        self.count_ids = _Column("counts.int32", np.int32, reserve)
        self.count_values = _Column("counts.uint32", np.uint32, reserve)
        self.count_sizes: list[np.ndarray] = []
        self.use_numba = use_numba
        self.shingles = _Column("shingles.uint32", np.uint32, reserve)
        self.shingle_sizes: list[np.ndarray] = []
        self.sigs = _Column("signatures.uint32", np.uint32, reserve)
        self.compilations: list[np.ndarray] = []
        self.sketches = _Column("sketches.uint64", np.uint64, reserve)  # (spilled and read back whole, as the signatures)
        self.sketched = True  # whether every chunk came with its sketches
        self.num_perm = num_perm
        self.spill_bytes = spill_bytes
        self.tmpdir = tmpdir
        self.tmp: str | None = None
        self.worker_seconds: dict[str, float] = collections.defaultdict(float)

    def add(self, part: dict[str, object]) -> None:
        before = self.table.size
        gids = self.table.insert(part["vocab_hashes"])  # type: ignore[arg-type]
        size = self.table.size
        if size > len(self.df):
            grow = max(size, 2 * len(self.df))
            self.df = np.concatenate((self.df, np.zeros(grow - len(self.df), np.int64)))
            self.numbers = np.concatenate((self.numbers, np.zeros(grow - len(self.numbers), bool)))
        fresh = np.flatnonzero(gids >= before)
        if len(fresh):
            # gids of fresh words are before, before+1, ... in local order
            lengths = part["word_lengths"]
            starts = np.zeros(len(lengths) + 1, dtype=np.int64)  # type: ignore[arg-type]
            np.cumsum(lengths, out=starts[1:])
            blob: bytes = part["words"]  # type: ignore[assignment]
            if len(fresh) == len(gids):
                self.words.append(blob)
            else:
                self.words.append(b"".join([blob[starts[i] : starts[i + 1]] for i in fresh.tolist()]))
            self.word_lengths.append(np.asarray(lengths)[fresh])
            self.numbers[gids[fresh]] = np.asarray(part["numbers"])[fresh]
        self.df[gids] += part["df"]  # gids are distinct
        local: np.ndarray = part["ids"]  # type: ignore[assignment]
        room = self.token_ids.room(len(local))
        if room is not None:
            np.take(gids.astype(np.int32), local, out=room)
        else:
            self.token_ids.append(gids[local].astype(np.int32))
        self.token_lengths.append(np.diff(part["offsets"]))  # type: ignore[arg-type]
        # Count rows need the global ids (their order is the TF-IDF column order), so they are built here.
        # (On the compiled path the rows are written in place when room for every token fits; the room they
        # do not take is given back.)
        upper = len(local)  # (a document's row has at most as many entries as it has tokens)
        placed = self.use_numba and self.count_ids.fits(upper) and self.count_values.fits(upper)
        out = (self.count_ids.room(upper), self.count_values.room(upper)) if placed else None
        rows = CountRows.of(TokenBatch(ids=local, offsets=part["offsets"], vocab=[], hashes=gids),  # type: ignore[arg-type]
                            columns=size, labels=gids, engine="numba" if self.use_numba else "numpy", out=out)  # type: ignore[arg-type]
        if placed:
            self.count_ids.give_back(upper - len(rows.indices))
            self.count_values.give_back(upper - len(rows.counts))
        else:
            self.count_ids.append(rows.indices)
            self.count_values.append(rows.counts)
        self.count_sizes.append(np.diff(rows.offsets))
        self.shingles.append(part["shingles"])  # type: ignore[arg-type]
        self.shingle_sizes.append(np.diff(part["shingle_offsets"]))  # type: ignore[arg-type]
        self.sigs.append(np.asarray(part["signatures"]).ravel())
        self.compilations.append(np.array(part["compilations"]))  # (a copy: the part may be a view of a file, see Workers)
        if part.get("sketches") is None:
            self.sketched = False
        elif self.sketched:
            self.sketches.append(np.asarray(part["sketches"]).ravel())
        for k, v in part["seconds"].items():  # type: ignore[union-attr]
            self.worker_seconds[k] += v
        held = self.token_ids.nbytes() + self.shingles.nbytes() + self.count_ids.nbytes() + self.count_values.nbytes()
        if self.tmp is None and held > self.spill_bytes:
            self.tmp = tempfile.mkdtemp(prefix="dedup-", dir=self.tmpdir)
            for column in (self.token_ids, self.count_ids, self.count_values, self.shingles, self.sigs, self.sketches):
                column.spill(self.tmp)

    def finish(self, ids: list[str], dates: list[float]) -> Corpus:
        size = self.table.size
        lengths = np.concatenate(self.word_lengths) if self.word_lengths else np.zeros(0, np.int64)
        word_offsets = np.zeros(size + 1, dtype=np.int64)
        np.cumsum(lengths, out=word_offsets[1:])
        words = Words(b"".join(self.words), word_offsets)
        self.words = []

        def offsets(parts: list[np.ndarray]) -> np.ndarray:
            out = np.zeros(len(ids) + 1, dtype=np.int64)
            if parts:
                np.cumsum(np.concatenate(parts), out=out[1:])
            return out

        # The columns in two threads: joining their parts is mostly faulting fresh pages in (20k articles: ~170 MB).
        with ThreadPoolExecutor(2) as pool:
            token_ids, shingle_hashes, count_ids, count_values, sigs, sketched = pool.map(
                lambda column: column.finish(load=column is self.sigs or column is self.sketches),
                (self.token_ids, self.shingles, self.count_ids, self.count_values, self.sigs, self.sketches))
        tokens = TokenBatch(ids=token_ids, offsets=offsets(self.token_lengths), vocab=words,  # type: ignore[arg-type]
                            hashes=self.table.hashes[:size].copy())
        shingles = ShingleBatch(hashes=shingle_hashes, offsets=offsets(self.shingle_sizes))  # type: ignore[arg-type]
        counts = CountRows(indices=count_ids, counts=count_values, offsets=offsets(self.count_sizes))  # type: ignore[arg-type]
        sigs = sigs.reshape(len(ids), self.num_perm)  # type: ignore[union-attr]
        comp = np.concatenate(self.compilations) if self.compilations else np.zeros(0, bool)
        sketches = None
        if self.sketched and len(ids):
            sketches = sketched.reshape(len(ids), -1)  # type: ignore[union-attr]
        del sketched
        return Corpus(
            ids=ids, dates=np.asarray(dates, dtype=np.float64), compilations=comp, tokens=tokens, counts=counts, shingles=shingles,
            signatures=sigs, df=self.df[:size].copy(), is_number=self.numbers[:size].copy(), sketches=sketches,
            worker_seconds=dict(self.worker_seconds), spilled=self.tmp is not None, _tmp=self.tmp,
        )


def _chunks(docs: Iterable[Document], ids: list[str], dates: list[float], size: int, clock: dict[str, float]) -> Iterator[list[str]]:
    """Texts in chunks of ``size``; records ids and dates, checks types and unique ids."""
    seen: set[str] = set()
    chunk: list[str] = []
    it = iter(docs)
    started = time.perf_counter()
    for doc in it:
        if not isinstance(doc, Document):
            raise TypeError(f"cluster() takes Document objects, got {type(doc).__name__}")
        if doc.id in seen:
            raise InputError(f"duplicate document id {doc.id!r}; ids must be unique")
        seen.add(doc.id)
        ids.append(doc.id)
        dates.append(date_sort_key(doc.date))
        chunk.append(doc.text)
        if len(chunk) == size:
            clock["read"] += time.perf_counter() - started
            yield chunk
            chunk = []
            started = time.perf_counter()
    clock["read"] += time.perf_counter() - started
    if chunk:
        yield chunk


def prepare_corpus(
    docs: Iterable[Document],
    *,
    shingle_size: int,
    num_perm: int,
    seed: int,
    strip_boilerplate: bool,
    workers: int | None = None,
    chunk_docs: int | None = None,
    spill_bytes: int | None = None,
    tmpdir: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> Corpus:
    """Read and prepare every document of ``docs`` (see the module docstring).

    ``workers``: processes for normalising and fingerprinting (None: one per
    CPU; 1: all in this process). A corpus smaller than one chunk is always
    done in this process. ``progress`` is told of a long wait (see :func:`dedup.kernels.warm_up`).
    """
    workers = (os.cpu_count() or 1) if workers is None else max(1, int(workers))
    chunk_docs = CHUNK_DOCS if chunk_docs is None else chunk_docs
    ids: list[str] = []
    dates: list[float] = []
    clock: dict[str, float] = collections.defaultdict(float)
    started = time.perf_counter()
    # JSON Lines read by read_documents are handed on as raw lines: the workers parse them (see _Lines).
    raw = docs.raw_batches(chunk_docs) if isinstance(docs, DocumentStream) else None
    lines = _Lines(docs, ids, dates) if raw is not None else None  # type: ignore[arg-type]
    chunks: Iterator[list[str]] | Iterator[RawLines] = (
        _timed(raw, clock, last_in=workers) if raw is not None else _chunks(docs, ids, dates, chunk_docs, clock))
    first = next(chunks, None)  # type: ignore[call-overload]
    # A corpus that is not one full chunk stays on the numpy path in this process, unless it is large (no numba
    # import for a few documents); a full first chunk is taken as the start of a larger corpus (the workers start
    # without waiting for the second: the result is the same).
    several = first is not None and len(first.lines if isinstance(first, RawLines) else first) == chunk_docs
    big = several and kernels.available()
    engine = "numba" if big else "auto"
    merger = _Merger(num_perm, SPILL_BYTES if spill_bytes is None else spill_bytes, tmpdir, use_numba=big)
    args = (strip_boilerplate, shingle_size, num_perm, seed, engine)
    work, head = (prepare_chunk, args) if lines is None else (prepare_lines, (lines.options, *args))

    def take(chunk: list[str] | RawLines, part: dict[str, object]) -> None:
        if lines is not None:
            part = lines.take(chunk, part, args)  # type: ignore[arg-type]
        if "vocab_hashes" in part:  # (else no document in it)
            merger.add(part)
        else:
            merger.worker_seconds["read"] += part["seconds"].get("read", 0.0)  # type: ignore[union-attr]

    try:
        if big:  # (compile or load every kernel now, before forking workers; the first time, build them ahead of time)
            kernels.warm_up(progress)
        if not several or workers == 1:
            for chunk in _prepend((first,), chunks):
                take(chunk, work(chunk, *head))
        else:
            with Workers(workers, initializer=start_worker, tmpdir=tmpdir) as pool:
                for chunk, part in pool.map(work, _prepend((first,), chunks), *head):
                    take(chunk, part)
        corpus = merger.finish(ids, dates)
    except BaseException:
        if merger.tmp is not None:
            shutil.rmtree(merger.tmp, ignore_errors=True)
        raise
    wall = time.perf_counter() - started
    # Wall seconds per stage: reading is what this process spent pulling documents; the rest
    # of the wall time is shared among the worker stages in proportion to their work.
    # (Parsing JSON Lines in the workers counts as reading.)
    work = corpus.worker_seconds
    rest = max(0.0, wall - clock["read"])
    total = sum(work.values()) or 1.0
    shares = {k: rest * v / total for k, v in work.items()}
    corpus.seconds = {"read": clock["read"] + shares.pop("read", 0.0), **shares}
    return corpus


def _timed(batches: Iterator[RawLines], clock: dict[str, float], *, last_in: int = 1) -> Iterator[RawLines]:
    """The batches, with the time taken reading them added to ``clock["read"]``; the last one cut in ``last_in``
    (the workers then finish it together instead of one waiting for the other)."""
    held = None
    while True:
        t = time.perf_counter()
        batch = next(batches, None)
        clock["read"] += time.perf_counter() - t
        if batch is None:
            break
        if held is not None:
            yield held
        held = batch
    if held is not None:
        size = max(1, -(-len(held.lines) // max(1, last_in)))
        starts = range(0, max(1, len(held.lines)), size)
        for at in starts:  # (a failure to read ends the last piece)
            yield RawLines(held.name, held.first + at, held.lines[at : at + size], held.failure if at == starts[-1] else None)


class _Lines:
    """The reading side of JSON Lines parsed by the workers (:func:`prepare_lines`): each batch's records are
    checked in line order as read_documents checks them (:class:`dedup.read.Acceptor`: bad records raise or are
    counted, ids seen before are bad records), and the documents taken join ``ids`` and ``dates``."""

    def __init__(self, stream: DocumentStream, ids: list[str], dates: list[float]) -> None:
        self.options = stream.options
        self.acceptor = stream.acceptor()
        self.ids, self.dates = ids, dates

    def take(self, batch: RawLines, part: dict[str, object], args: tuple) -> dict[str, object]:
        """The part to merge for ``batch`` (prepared by a worker, or here again without the documents skipped for
        an id seen before: rare)."""
        bad: list[tuple[int, str, str]] = part["bad"]  # type: ignore[assignment]
        doc_ids: list[str] = part["doc_ids"]  # type: ignore[assignment]
        dates: list[float] = part["doc_dates"]  # type: ignore[assignment]
        kept, b = [], 0
        for line, doc_id in zip(part["doc_lines"], doc_ids):  # type: ignore[call-overload]
            while b < len(bad) and bad[b][0] < line:
                self.acceptor.bad(batch.name, *bad[b])
                b += 1
            kept.append(self.acceptor.document(batch.name, line, doc_id))
        for record in bad[b:]:
            self.acceptor.bad(batch.name, *record)
        batch.raise_failure()
        if not all(kept):
            texts = [text for text, k in zip(parse_lines(batch, self.options).texts, kept) if k]
            doc_ids = [doc_id for doc_id, k in zip(doc_ids, kept) if k]
            dates = [date for date, k in zip(dates, kept) if k]
            part = prepare_chunk(texts, *args) if texts else {"seconds": {}}
        self.ids.extend(doc_ids)
        self.dates.extend(dates)
        return part


def _prepend(head: Sequence, tail: Iterator) -> Iterator:
    for chunk in head:
        if chunk is not None:
            yield chunk
    yield from tail
