"""Storage backends of the near-duplicate index: the stored record, its byte encoding, and the Store interface."""

from __future__ import annotations

import json
import math
import threading
from abc import ABC, abstractmethod
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields
from typing import Any, Iterator, Sequence

import numpy as np

from dedup.candidates import _band_keys, lsh_params
from dedup.errors import DedupError
from dedup.pipeline import Options

FORMAT_VERSION = 1
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
def u32_bytes(values: np.ndarray) -> bytes:
    """Raw little-endian uint32 bytes."""
    return np.ascontiguousarray(values, dtype="<u4").tobytes()


def u64_bytes(values: np.ndarray) -> bytes:
    """Raw little-endian uint64 bytes."""
    return np.ascontiguousarray(values, dtype="<u8").tobytes()


def u32_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`u32_bytes` (native uint32)."""
    return np.frombuffer(blob, dtype="<u4").astype(np.uint32)


def u64_array(blob: bytes) -> np.ndarray:
    """Inverse of :func:`u64_bytes` (native uint64)."""
    return np.frombuffer(blob, dtype="<u8").astype(np.uint64)


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
    bands, rows = lsh_params(options.lsh_threshold, options.num_perm)
    sigs = np.ascontiguousarray(np.atleast_2d(signatures)[:, : bands * rows])
    flat = _band_keys(sigs.reshape(-1, rows), 0, rows).reshape(len(sigs), bands)
    with np.errstate(over="ignore"):
        return flat ^ (np.arange(1, bands + 1, dtype=np.uint64) * _BAND_SALT)


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


class Store(ABC):
    """Where the index lives. All methods are called under the Index's lock;
    :meth:`writing` additionally serialises writers across processes where the backend is shared."""

    options: Options
    window: float | None
    location: str

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def contains(self, doc_id: str) -> bool: ...

    @abstractmethod
    def get(self, doc_id: str) -> Record | None:
        """The stored record of ``doc_id``, or None."""

    @abstractmethod
    def candidates(self, signature: np.ndarray, bands: np.ndarray, *, time: float, window: float | None) -> list[Record]:
        """Stored records sharing an LSH band with ``signature`` whose time is within ``window`` seconds
        of ``time`` (records or query without a date are always within)."""

    @abstractmethod
    def document_frequencies(self, tokens: np.ndarray) -> tuple[np.ndarray, int]:
        """(df of each token hash, number of documents) including the seed corpus."""

    @abstractmethod
    def stories(self) -> int:
        """Number of distinct stories."""

    @abstractmethod
    def writing(self) -> Any:
        """A context manager giving exclusive write access (across processes where the backend is
        shared); on the embedded backend it is one transaction: everything inserted or deleted inside
        is committed together at the end, or not at all."""

    @abstractmethod
    def insert(self, item: Commit) -> None:
        """Store one article (inside :meth:`writing`); it is visible to later lookups at once."""

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
