"""Storage backends of the near-duplicate index: the stored record, its byte encoding, and the Store interface."""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from dedup.candidates import _band_keys, lsh_params
from dedup.errors import DedupError
from dedup.pipeline import Options

FORMAT_VERSION = 2  # 2: no stored band keys (derived from signatures), counts in 1, 2 or 4 bytes, sketches
_BAND_SALT = np.uint64(0x9E3779B97F4A7C15)  # makes equal band contents in different bands different keys


class IndexStateError(DedupError):
    """The index cannot do what was asked (already indexed, wrong format, locked, ...); says how to fix it."""


@dataclass(frozen=True, eq=False)
class Record:
    """One indexed article as stored: identity, story, dates and everything scoring needs.

    ``tokens`` are the sorted distinct stable token hashes (``TokenBatch.hashes``)
    with their term ``counts``; ``numbers`` the distinct number tokens
    (``number_agreement`` compares them); ``shingles`` the sorted distinct
    shingle hashes; ``date``/``added`` are POSIX seconds (``date`` None when unknown).
    """

    id: str
    story: str
    date: float | None
    added: float
    digest: bool
    signature: np.ndarray  # uint32, num_perm
    shingles: np.ndarray  # uint32, sorted distinct
    tokens: np.ndarray  # uint64, sorted distinct
    counts: np.ndarray  # uint32, term frequency of each token
    numbers: tuple[str, ...]

    @property
    def time(self) -> float:
        """The time used by windows and expiry: the article's date, else when it was added."""
        return self.added if self.date is None else self.date


# Byte encodings: raw little-endian arrays, never pickle.
_LE_U4, _LE_U8 = np.dtype("<u4"), np.dtype("<u8")  # (dtype objects: a string is parsed again at every call)


def u32_bytes(values: np.ndarray) -> bytes:
    """Raw little-endian uint32 bytes."""
    return np.ascontiguousarray(values, dtype=_LE_U4).tobytes()


def u64_bytes(values: np.ndarray) -> bytes:
    """Raw little-endian uint64 bytes."""
    return np.ascontiguousarray(values, dtype=_LE_U8).tobytes()


def u32_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`u32_bytes` (native uint32)."""
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


def u64_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`u64_bytes` (native uint64)."""
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)


def counts_bytes(counts: np.ndarray) -> bytes:
    """Term counts as raw little-endian unsigned integers of the smallest width (1, 2 or 4 bytes) holding them."""
    top = int(counts.max()) if len(counts) else 0
    dtype = "<u1" if top < 1 << 8 else "<u2" if top < 1 << 16 else "<u4"
    return np.ascontiguousarray(counts, dtype=dtype).tobytes()


_COUNT_TYPES = {1: "<u1", 2: "<u2", 4: "<u4"}


def counts_array(blob: bytes, tokens: int) -> np.ndarray:
    """Inverse of :func:`counts_bytes` for ``tokens`` counts (the width is the blob's length / tokens)."""
    if not tokens:
        return np.zeros(0, dtype=np.uint32)
    return np.frombuffer(blob, dtype=_COUNT_TYPES[len(blob) // tokens]).astype(np.uint32)


def flat_counts(blobs: Sequence[bytes], lengths: np.ndarray) -> np.ndarray:
    """The :func:`counts_bytes` blobs of several articles (``lengths[k]`` tokens each), decoded and concatenated."""
    total = int(lengths.sum())
    if total and sum(map(len, blobs)) == total:  # the usual case: every count below 256
        return np.frombuffer(b"".join(blobs), dtype="<u1").astype(np.uint32)
    return np.concatenate([counts_array(b, int(n)) for b, n in zip(blobs, lengths.tolist())] or [np.zeros(0, np.uint32)])


def numbers_text(numbers: Sequence[str]) -> str:
    """The number tokens joined by spaces (they are digit runs, so this is reversible)."""
    return " ".join(numbers)


def numbers_tuple(text: str) -> tuple[str, ...]:
    """Inverse of :func:`numbers_text`."""
    return tuple(text.split()) if text else ()


def band_keys(signatures: np.ndarray, options: Options) -> np.ndarray:
    """One 64-bit key per LSH band of each signature, shape (docs, bands).

    Bands and rows are ``MinHashLSH(lsh_threshold, num_perm)``'s (as in
    :func:`dedup.candidates.candidate_pairs`); the band hash is
    ``candidates._band_keys``, salted by band number. Keys only find
    candidates: a candidate is kept when a whole band is equal.
    """
    from dedup.bandmirror import salted_band_keys  # (loads numba when there is: the index uses it anyway)

    bands, rows = lsh_params(options.lsh_threshold, options.num_perm)
    sigs = np.ascontiguousarray(np.atleast_2d(signatures)[:, : bands * rows])
    compiled = salted_band_keys(sigs, rows, _band_salts(bands))
    if compiled is not None:
        return compiled
    flat = _band_keys(sigs.reshape(-1, rows), 0, rows).reshape(len(sigs), bands)
    return flat ^ _band_salts(bands)


@lru_cache(maxsize=8)
def _band_salts(bands: int) -> np.ndarray:
    """What band ``b``'s keys are xored with: ``(b + 1) * _BAND_SALT`` (mod 2**64), read-only."""
    with np.errstate(over="ignore"):
        salts = np.arange(1, bands + 1, dtype=np.uint64) * _BAND_SALT
    salts.flags.writeable = False
    return salts


def shares_band(query: np.ndarray, signatures: np.ndarray, options: Options) -> np.ndarray:
    """Which rows of ``signatures`` share a whole LSH band with ``query`` (exact MinHashLSH semantics)."""
    bands, rows = lsh_params(options.lsh_threshold, options.num_perm)
    if len(signatures) == 0:
        return np.zeros(0, dtype=bool)
    q = query[: bands * rows].reshape(bands, rows)
    s = signatures[:, : bands * rows].reshape(len(signatures), bands, rows)
    return np.any(np.all(s == q, axis=2), axis=1)


def options_json(options: Options) -> str:
    """The options as a JSON object (stored in the index's metadata)."""
    return json.dumps(asdict(options), sort_keys=True)


def options_from_json(text: str) -> Options:
    """Inverse of :func:`options_json`; unknown keys (from a newer dedup) are an error."""
    data = json.loads(text)
    known = {f.name for f in fields(Options)}
    extra = sorted(set(data) - known)
    if extra:
        raise IndexStateError(f"the index was written with options this dedup does not know ({', '.join(extra)}); upgrade dedup")
    return Options(**data)


def check_options(stored: Options, wanted: Options | None, where: str) -> Options:
    """The stored options, after checking that explicitly requested ones agree."""
    if wanted is not None and wanted != stored:
        diff = [f.name for f in fields(Options) if getattr(stored, f.name) != getattr(wanted, f.name)]
        raise IndexStateError(
            f"{where} was built with different options ({', '.join(diff)}); open it without options= to use "
            "its own, or build a new index with the new options"
        )
    return stored


def window_seconds(value: float | None) -> str:
    """A window for the metadata table ("" = none)."""
    return "" if value is None else repr(float(value))


def parse_window(text: str | None) -> float | None:
    """Inverse of :func:`window_seconds`."""
    if not text:
        return None
    value = float(text)
    return value if math.isfinite(value) else None


class RWLock:
    """Many readers or one writer (threads of one process); writers are re-entrant."""

    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._readers = 0
        self._writer: int | None = None
        self._depth = 0

    @contextmanager
    def read(self) -> Iterator[None]:
        """Hold the lock shared (a thread holding it for writing may also read)."""
        me = threading.get_ident()
        with self._cond:
            if self._writer != me:
                while self._writer is not None:
                    self._cond.wait()
                self._readers += 1
                mine = True
            else:
                mine = False
        try:
            yield
        finally:
            if mine:
                with self._cond:
                    self._readers -= 1
                    if not self._readers:
                        self._cond.notify_all()

    @contextmanager
    def write(self) -> Iterator[None]:
        """Hold the lock exclusively."""
        me = threading.get_ident()
        with self._cond:
            if self._writer == me:
                self._depth += 1
            else:
                while self._writer is not None or self._readers:
                    self._cond.wait()
                self._writer, self._depth = me, 1
        try:
            yield
        finally:
            with self._cond:
                self._depth -= 1
                if not self._depth:
                    self._writer = None
                    self._cond.notify_all()


@dataclass(frozen=True)
class Commit:
    """One article to store: its record, its band keys, and the stories it merges into ``record.story``."""

    record: Record
    bands: np.ndarray  # uint64, one key per band
    merge: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Candidates:
    """Stored articles sharing an LSH band with a query, as columns (variable-length arrays flat, with offsets).

    Candidate ``k`` has shingles ``shingles[shingle_offsets[k]:shingle_offsets[k+1]]``
    and tokens (sorted distinct hashes) ``tokens[token_offsets[k]:token_offsets[k+1]]``
    with their ``counts`` and document frequencies ``df``.
    """

    ids: list[str]
    stories: list[str]
    dates: list[float | None]
    added: list[float]
    digests: list[bool]
    numbers: list[str]  # numbers_text of each candidate's number tokens
    signatures: np.ndarray  # (k, num_perm) uint32
    shingles: np.ndarray  # uint32
    shingle_offsets: np.ndarray  # int64, k + 1
    tokens: np.ndarray  # uint64
    counts: np.ndarray  # uint32
    token_offsets: np.ndarray  # int64, k + 1
    df: np.ndarray  # float64, document frequency of each token (seed corpus included)

    def __len__(self) -> int:
        return len(self.ids)

    def time(self, k: int) -> float:
        """The time of candidate ``k`` used by windows (its date, else when it was added)."""
        date = self.dates[k]
        return self.added[k] if date is None else date

    @staticmethod
    def empty(num_perm: int) -> Candidates:
        """No candidates (one shared instance per ``num_perm``: its arrays are read-only)."""
        return _no_candidates(num_perm)


@lru_cache(maxsize=8)
def _no_candidates(num_perm: int) -> Candidates:
    zero = np.zeros(1, dtype=np.int64)
    arrays = (np.zeros((0, num_perm), np.uint32), np.zeros(0, np.uint32), zero, np.zeros(0, np.uint64),
              np.zeros(0, np.uint32), np.zeros(0))
    for a in arrays:
        a.flags.writeable = False
    sigs, shingles, _, tokens, counts, df = arrays
    return Candidates((), (), (), (), (), (), sigs, shingles, zero, tokens, counts, zero, df)  # type: ignore[arg-type]


def offsets_of(lengths: Sequence[int]) -> np.ndarray:
    """Offsets (k + 1, starting at 0) of consecutive segments of the given lengths."""
    out = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


@dataclass(frozen=True, eq=False)
class Lookup:
    """What deciding about one article needs from the store, read at one moment."""

    candidates: Candidates
    query_df: np.ndarray | None  # float64, document frequency of each of the query's tokens (None: no candidates)
    documents: int  # indexed articles plus seed documents
    query_indexed: bool | None  # the query's id is indexed (its tokens are already counted); None: no candidates
    token: Any = None  # the backend's record of what was read (Redis checks it when committing)


Plausible = Callable[[np.ndarray, np.ndarray], np.ndarray]


class Conflict(Exception):
    """Another writer changed what a decision was based on; decide again (shared backends only)."""


class Store(ABC):
    """Where the index lives. All methods are called under the Index's lock;
    :meth:`writing` additionally serialises writers across processes where the backend needs it."""

    options: Options
    window: float | None
    location: str

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def contains(self, doc_id: str) -> bool: ...

    def contains_many(self, doc_ids: Sequence[str]) -> list[bool]:
        """:meth:`contains` of each id."""
        return [self.contains(d) for d in doc_ids]

    def expect_new(self, doc_id: str) -> None:
        """Inside :meth:`writing`: ``doc_id`` is about to be inserted (not replaced); raise IndexStateError
        if it is stored already. A backend whose :meth:`insert` refuses a stored id by itself may defer
        the check to it (no read now)."""
        if self.contains(doc_id):
            raise IndexStateError(f"{doc_id!r} is already indexed; pass replace=True to replace it")

    @abstractmethod
    def get(self, doc_id: str) -> Record | None:
        """The stored record of ``doc_id``, or None."""

    @abstractmethod
    def lookup(self, record: Record, bands: np.ndarray, *, window: float | None, plausible: Plausible | None = None) -> Lookup:
        """The stored articles other than ``record.id`` sharing a whole LSH band with ``record``
        (``bands`` are its band keys) dated within ``window`` seconds of ``record.date`` (articles
        or a query without a date are always within), in the order they were added, with the
        document frequencies of their tokens and of the query's.

        ``plausible(containment, cosine)`` says which articles could be copies given upper bounds
        of their scores; a backend that can bound them cheaply leaves out the others."""

    @abstractmethod
    def stories(self) -> int:
        """Number of distinct stories."""

    @abstractmethod
    def writing(self) -> Any:
        """A context manager for changes; on the embedded backend it is one transaction: everything
        inserted or deleted inside is committed together at the end, or not at all."""

    @abstractmethod
    def insert(self, item: Commit, lookup: Lookup | None) -> None:
        """Store one article (inside :meth:`writing`); it is visible to later lookups at once.
        ``lookup`` is what the decision was based on: a shared backend raises :class:`Conflict`
        when another writer changed it meanwhile (nothing is stored then)."""

    @abstractmethod
    def delete(self, doc_ids: Sequence[str]) -> int:
        """Remove articles (their buckets and document frequencies, inside :meth:`writing`); returns how many existed."""

    @abstractmethod
    def expire(self, before: float) -> int:
        """Remove every article whose time is before ``before`` (inside :meth:`writing`); returns how many."""

    @abstractmethod
    def seed(self, tokens: np.ndarray, counts: np.ndarray, docs: int) -> None:
        """Add a reference corpus's document frequencies (``counts[k]`` documents have ``tokens[k]``)."""

    @abstractmethod
    def set_window(self, window: float | None) -> None:
        """Persist the default window (seconds, None for none)."""

    @abstractmethod
    def stats(self) -> dict[str, Any]:
        """Backend facts for ``dedup index stats``."""

    @abstractmethod
    def integrity(self) -> list[str]:
        """Problems found by a full consistency check (empty when consistent)."""

    @abstractmethod
    def close(self) -> None: ...
