"""Write results atomically as JSONL, CSV or TSV (a crash never leaves a half-written file)."""

from __future__ import annotations

import contextlib
import csv
import enum
import io
import json
import os
import sys
import tempfile
from typing import IO, Any, Iterable, Iterator, Mapping

import orjson

from dedup.errors import OutputError


class Format(str, enum.Enum):
    """Output formats."""

    JSONL = "jsonl"
    CSV = "csv"
    TSV = "tsv"


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike[str], *, binary: bool = False) -> Iterator[IO[Any]]:
    """Open ``path`` for writing text (``binary``: bytes); the file appears complete or not at all.

    Writes go to a temporary file in the same directory, which is flushed,
    fsynced and renamed over ``path`` only when the block ends without error.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    try:
        fd, tmp = tempfile.mkstemp(prefix=".dedup-", suffix=".tmp", dir=directory)
    except OSError as error:
        raise OutputError(f"{path}: cannot write it ({error.strerror}); give a path in a directory that exists and "
                          "can be written") from None
    try:
        # (A lone surrogate, which JSON input may hold in an id, cannot be encoded: CSV gets "\\ud800" for it.)
        with (os.fdopen(fd, "wb") if binary else
              os.fdopen(fd, "w", encoding="utf-8", errors="backslashreplace", newline="")) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_records(handle: IO[str], records: Iterable[Mapping[str, object]], *, fmt: Format, columns: list[str]) -> int:
    """Write records (dicts with at least ``columns``) to an open text handle; returns the count."""
    count = 0
    if fmt is Format.JSONL:
        for record in records:
            handle.write(json_line(record))
            count += 1
        return count
    writer = csv.DictWriter(
        handle, fieldnames=columns, delimiter="\t" if fmt is Format.TSV else ",", extrasaction="ignore", lineterminator="\n"
    )
    writer.writeheader()
    for record in records:
        writer.writerow(record)
        count += 1
    return count


def json_line(record: Mapping[str, object]) -> str:
    """One JSON line: by orjson (~10x faster than json.dumps), or, for a record orjson refuses (a lone surrogate
    in a string, an integer beyond 64 bits), by json with non-ASCII characters escaped, which reads back the same."""
    try:
        return orjson.dumps(record, option=orjson.OPT_APPEND_NEWLINE).decode("utf-8")
    except TypeError:  # (orjson.JSONEncodeError is one)
        return json.dumps(record, ensure_ascii=True, separators=(",", ":")) + "\n"


def check_writable(path: str | os.PathLike[str] | None) -> None:
    """Raise OutputError unless ``path`` (None or "-": stdout) can be written by :func:`atomic_open`: checked
    before a long job rather than found at its end."""
    if path is None or os.fspath(path) == "-":
        return
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise OutputError(f"{path}: is a directory; give a file path")
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        reason = "no such directory" if not os.path.isdir(directory) else "the directory cannot be written"
        raise OutputError(f"{path}: cannot write it ({reason}); give a path in a directory that exists and can be "
                          "written")


def write_output(
    path: str | os.PathLike[str] | None, records: Iterable[Mapping[str, object]], *, fmt: Format, columns: list[str]
) -> int:
    """Write records to ``path`` atomically, or to stdout when ``path`` is None or "-"."""
    if path is None or os.fspath(path) == "-":
        if isinstance(sys.stdout, io.TextIOWrapper):
            sys.stdout.reconfigure(errors="backslashreplace")  # (see atomic_open)
        return write_records(sys.stdout, records, fmt=fmt, columns=columns)
    with atomic_open(path) as handle:
        return write_records(handle, records, fmt=fmt, columns=columns)
