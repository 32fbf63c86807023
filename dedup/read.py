"""Read documents from .txt directories, JSONL, CSV/TSV (optionally gzip) and stdin."""

from __future__ import annotations

import collections
import csv
import io
import itertools
import json
import math
import os
import re
import sys
import zlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TextIO

import orjson
from isal import igzip, isal_zlib

from dedup.document import Document
from dedup.errors import InputError, OptionError

__all__ = ["Acceptor", "DocumentStream", "Parsed", "RawLines", "ReadOptions", "ReadStats", "parse_date", "parse_lines",
           "read_documents", "SUPPORTED"]

SUPPORTED = (
    "a directory of .txt/.txt.gz files, .txt, .jsonl, .ndjson, .json (JSON Lines), .csv, .tsv "
    "(each optionally .gz), or - for JSON Lines on stdin"
)
_KINDS = {".txt": "txt", ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl", ".csv": "csv", ".tsv": "tsv"}
_DATE_HINT = "expected ISO 8601 like 2017-01-03 or 2017-01-03T10:18:00Z"
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)")
_BOM = b"\xef\xbb\xbf"
_PLAIN = (str, int, bool, type(None))  # field types that orjson and json read alike
MAX_EXAMPLES = 20


@dataclass(frozen=True)
class ReadOptions:
    """How to map input fields to Document attributes and how to treat bad records."""

    id_field: str = "id"
    text_field: str = "text"
    title_field: str = "title"
    date_field: str = "date"
    source_field: str = "source"
    url_field: str = "url"
    skip_bad: bool = False
    max_chars: int = 5_000_000

    def __post_init__(self) -> None:
        for name in ("id_field", "text_field", "title_field", "date_field", "source_field", "url_field"):
            value = getattr(self, name)
            if not isinstance(value, str) or not value:
                raise OptionError(f"{name} must be a non-empty field name, got {value!r}")
        if isinstance(self.max_chars, bool) or not isinstance(self.max_chars, int) or self.max_chars < 1:
            raise OptionError(f"max_chars must be a positive integer, got {self.max_chars!r}")


@dataclass
class ReadStats:
    """Counts of documents read and bad records skipped (the latter only with skip_bad)."""

    read: int = 0
    skipped: int = 0
    reasons: collections.Counter[str] = field(default_factory=collections.Counter)
    examples: list[tuple[str, int | None, str]] = field(default_factory=list)

    def skip(self, reason: str, path: str, line: int | None, message: str) -> None:
        """Count one skipped record under ``reason``; keep the first MAX_EXAMPLES full messages."""
        self.skipped += 1
        self.reasons[reason] += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append((path, line, message))


class _Bad(Exception):
    """A bad record: ``reason`` is the short key counted in ReadStats, ``message`` the full text."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


_Item = tuple[str, int | None, "Document | _Bad"]


def parse_date(value: str | int | float | None) -> datetime | None:
    """Parse an ISO 8601 date/datetime or a unix timestamp; None or blank gives None.

    Naive strings stay naive; a trailing 'Z' and timestamps give UTC-aware datetimes.
    Raises ValueError when the value cannot be parsed.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"cannot parse date {value!r} ({_DATE_HINT})")
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        iso = text[:-1] + "+00:00" if text[-1:] in ("Z", "z") else text
        try:
            return datetime.fromisoformat(iso)
        except ValueError:
            pass
        if not _NUMBER.fullmatch(text):
            raise ValueError(f"cannot parse date {value!r} ({_DATE_HINT})")
        value = float(text)
    try:
        if not math.isfinite(value):
            raise ValueError
        return datetime.fromtimestamp(value, tz=timezone.utc)
    except (ValueError, OverflowError, OSError):
        raise ValueError(f"cannot parse date {value!r}: not a valid unix timestamp ({_DATE_HINT})") from None


def _json_type(value: Any) -> str:
    """The JSON name of a Python value's type, for messages."""
    names = {type(None): "null", bool: "boolean", int: "number", float: "number", str: "string",
             list: "array", dict: "object"}
    return names.get(type(value), type(value).__name__)


def _too_long(doc_id: str, n: int, max_chars: int) -> _Bad:
    """The error for a document longer than max_chars."""
    return _Bad("too long", f"document {doc_id!r} has {n} characters, more than max_chars={max_chars} "
                "(raise --max-chars or pass --skip-bad)")


def _optional(rec: Mapping[str, Any], name: str) -> str | None:
    """An optional string field: missing, null or blank give None; other values are str()-ed."""
    value = rec.get(name)
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _build(rec: Mapping[str, Any], opts: ReadOptions) -> Document:
    """Make a Document from one record (JSON object or CSV row); raises _Bad with a how-to-fix message."""
    for name, flag in ((opts.id_field, "--id-field"), (opts.text_field, "--text-field")):
        if name not in rec:
            raise _Bad(f"missing field '{name}'", f"missing field '{name}' (use {flag} to name the field)")
    doc_id, text = rec[opts.id_field], rec[opts.text_field]
    if isinstance(doc_id, int) and not isinstance(doc_id, bool):
        doc_id = str(doc_id)
    elif not isinstance(doc_id, str):
        raise _Bad("bad id", f"field '{opts.id_field}' must be a string or integer, got {_json_type(doc_id)}")
    if not doc_id.strip():
        raise _Bad("empty id", f"empty id in field '{opts.id_field}'")
    if not isinstance(text, str):
        raise _Bad("text not a string", f"field '{opts.text_field}' must be a string, got {_json_type(text)}")
    if len(text) > opts.max_chars:
        raise _too_long(doc_id, len(text), opts.max_chars)
    raw_date = rec.get(opts.date_field)
    try:
        date = parse_date(raw_date)
    except ValueError:
        raise _Bad("bad date", f"cannot parse date {raw_date!r} in field '{opts.date_field}' ({_DATE_HINT})") from None
    return Document(id=doc_id, text=text, title=_optional(rec, opts.title_field), date=date,
                    source=_optional(rec, opts.source_field), url=_optional(rec, opts.url_field))


def _open_binary(path: Path) -> io.BufferedIOBase:
    """Open a file for reading bytes, transparently gunzipping a .gz file."""
    return igzip.open(path, "rb") if path.name.lower().endswith(".gz") else open(path, "rb")


def _guarded(name: str, lines: Iterable[Any]) -> Iterator[Any]:
    """Pass lines through, turning I/O, gzip and stream-decoding failures into InputError at that line."""
    n = 0
    try:
        for n, line in enumerate(lines, 1):
            yield line
    except (OSError, EOFError, zlib.error, isal_zlib.error, UnicodeDecodeError) as e:
        raise InputError(f"cannot read file ({e})", path=name, line=n + 1) from None


def _raw_lines(path: Path) -> Iterator[bytes]:
    """Stream the byte lines of a (possibly gzipped) file."""
    try:
        f = _open_binary(path)
    except OSError as e:
        raise InputError(f"cannot read file ({e})", path=str(path)) from None
    with f:
        yield from _guarded(str(path), f)


def _decoded(lines: Iterable[bytes] | Iterable[str], *, first: int = 1) -> Iterator[tuple[int, str, _Bad | None]]:
    """Decode lines (numbered from ``first``) as UTF-8 (dropping a BOM at the start of the file);
    a bad line comes with a _Bad and a lossy text."""
    for n, line in enumerate(lines, first):
        bad = None
        if isinstance(line, bytes):
            if n == 1 and line.startswith(_BOM):
                line = line[3:]
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as e:
                bad = _Bad("invalid UTF-8", f"not valid UTF-8 (byte offset {e.start} of line {n}); "
                           "convert the file to UTF-8 or pass --skip-bad")
                text = line.decode("utf-8", errors="replace")
        else:
            text = line[1:] if n == 1 and line.startswith("\ufeff") else line
        yield n, text, bad


def _read_jsonl(name: str, lines: Iterable[bytes] | Iterable[str], opts: ReadOptions, *, first: int = 1) -> Iterator[_Item]:
    """One record per non-blank line of JSON Lines.

    A line is parsed by orjson (~4x faster than the json module); a line orjson rejects goes
    through ``json`` again, which accepts a little more (NaN, huge integers, lone surrogates,
    a BOM) and words the errors, so the result is what ``json.loads`` gives. orjson reads integers
    beyond 64 bits as floats: a record whose fields are not all strings, integers, booleans or
    null is parsed again too."""
    fields = (opts.id_field, opts.text_field, opts.title_field, opts.date_field, opts.source_field, opts.url_field)
    for n, line in enumerate(lines, first):
        try:
            rec = orjson.loads(line)
        except orjson.JSONDecodeError:
            rec = None
        if type(rec) is not dict or not all(type(rec.get(f)) in _PLAIN for f in fields):
            yield from _read_jsonl_slow(name, n, line, opts)
            continue
        try:
            yield name, n, _build(rec, opts)
        except _Bad as e:
            yield name, n, e


def _read_jsonl_slow(name: str, first: int, line: bytes | str, opts: ReadOptions) -> Iterator[_Item]:
    """The record of one line, parsed by the json module (with its error messages)."""
    for n, text, bad in _decoded([line], first=first):
        if bad is not None:
            yield name, n, bad
            continue
        if not text or text.isspace():
            continue
        try:
            rec = json.loads(text)
        except (ValueError, RecursionError) as e:
            detail = f"{e.msg} at column {e.colno}" if isinstance(e, json.JSONDecodeError) else str(e)
            yield name, n, _Bad("malformed JSON",
                                f"malformed JSON: {detail} (each line must be one complete JSON object)")
            continue
        if not isinstance(rec, dict):
            yield name, n, _Bad("not a JSON object", f"expected a JSON object, got {_json_type(rec)} "
                                "(input must be JSON Lines: one object per line)")
            continue
        try:
            yield name, n, _build(rec, opts)
        except _Bad as e:
            yield name, n, e


def _read_csv(path: Path, delimiter: str, opts: ReadOptions) -> Iterator[_Item]:
    """One record per CSV/TSV row after the header row; line numbers are where the record starts."""
    name, bad_lines = str(path), {}

    def text_lines() -> Iterator[str]:
        for n, text, bad in _decoded(_raw_lines(path)):
            if bad is not None:
                bad_lines[n] = bad
            yield text

    csv.field_size_limit(2**31 - 1)  # long article texts; max_chars gives the friendly error
    reader = csv.reader(text_lines(), delimiter=delimiter)
    end = 0
    try:
        header = next((h for h in reader if h), None)
        if bad_lines:
            line = min(bad_lines)
            raise InputError(bad_lines[line].message, path=name, line=line)
        if header is None:
            return
        header = [h.strip() for h in header]
        for col, flag in ((opts.id_field, "--id-field"), (opts.text_field, "--text-field")):
            if col not in header:
                raise InputError(f"no column '{col}' in the header row (columns: {', '.join(header)}; "
                                  f"use {flag} to name the column)", path=name, line=reader.line_num)
        end = reader.line_num
        for row in reader:
            start, end = end + 1, reader.line_num
            bad = next((bad_lines.pop(k) for k in range(start, end + 1) if k in bad_lines), None)
            if bad is not None:
                yield name, start, bad
            elif not row:
                continue
            elif len(row) != len(header):
                yield name, start, _Bad("wrong number of fields", f"row has {len(row)} fields but the header has "
                                        f"{len(header)} (quote fields that contain the delimiter)")
            else:
                try:
                    yield name, start, _build(dict(zip(header, row)), opts)
                except _Bad as e:
                    yield name, start, e
    except csv.Error as e:
        raise InputError(f"cannot parse CSV ({e})", path=name, line=end + 1) from None


def _read_txt(path: Path, opts: ReadOptions) -> _Item:
    """A whole .txt/.txt.gz file as one document whose id is the file name without extension."""
    name = str(path)
    try:
        with _open_binary(path) as f:
            data = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise InputError(f"cannot read file ({e})", path=name) from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return name, None, _Bad("looks binary", "is UTF-16 encoded; convert it to UTF-8 or pass --skip-bad")
    if b"\x00" in data:
        return name, None, _Bad("looks binary", "looks binary (contains NUL bytes); only UTF-8 text files "
                                "can be read; remove it or pass --skip-bad")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        offset = e.start + (3 if data.startswith(_BOM) else 0)
        return name, None, _Bad("invalid UTF-8",
                                f"not valid UTF-8 (byte offset {offset}); convert it or pass --skip-bad")
    stem = path.name[: -len(".txt.gz")] if path.name.lower().endswith(".gz") else path.name[: -len(".txt")]
    if not stem.strip():
        return name, None, _Bad("empty id", "file name gives an empty id; rename the file or pass --skip-bad")
    if len(text) > opts.max_chars:
        return name, None, _too_long(stem, len(text), opts.max_chars)
    return name, None, Document(id=stem, text=text)


def _txt_files(root: Path) -> list[Path]:
    """Every non-hidden *.txt / *.txt.gz file under ``root`` (recursively), sorted by relative path."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [Path(folder, f) for f in files
                  if not f.startswith(".") and f.lower().endswith((".txt", ".txt.gz"))]
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _classify(inp: str | os.PathLike[str]) -> tuple[str, Path]:
    """Check an input exists and has a supported type; return (kind, path)."""
    path = Path(inp)
    if os.fspath(inp) == "-":
        return "stdin", path
    if path.is_dir():
        return "dir", path
    if not path.exists():
        raise InputError("no such file or directory", path=str(path))
    lower = path.name.lower()
    for ext, kind in _KINDS.items():
        if lower.endswith(ext) or lower.endswith(ext + ".gz"):
            return kind, path
    raise InputError(f"unsupported file type; supported inputs: {SUPPORTED}", path=str(path))


def _items(kind: str, path: Path, opts: ReadOptions, stdin: TextIO | None) -> Iterator[_Item]:
    """The records of one input, in file order."""
    if kind == "stdin":
        stream: Any = stdin if stdin is not None else getattr(sys.stdin, "buffer", sys.stdin)
        yield from _read_jsonl("<stdin>", _guarded("<stdin>", stream), opts)
    elif kind == "dir":
        files = _txt_files(path)
        if not files:
            raise InputError("directory contains no .txt or .txt.gz files (a directory input reads only those)",
                             path=str(path))
        for file in files:
            yield _read_txt(file, opts)
    elif kind == "txt":
        yield _read_txt(path, opts)
    elif kind == "jsonl":
        yield from _read_jsonl(str(path), _raw_lines(path), opts)
    else:
        yield from _read_csv(path, "\t" if kind == "tsv" else ",", opts)


def read_documents(
    inputs: Sequence[str | os.PathLike[str]],
    *,
    options: ReadOptions = ReadOptions(),
    stats: ReadStats | None = None,
    stdin: TextIO | None = None,
) -> DocumentStream:
    """Stream Documents from ``inputs`` in order, checking ids are unique across all of them.

    Every input is checked (exists, supported type) before this returns; bad records raise
    InputError naming file and line, or with ``options.skip_bad`` are skipped and counted in ``stats``.
    """
    classified = [_classify(inp) for inp in inputs]
    return DocumentStream(classified, options, stats if stats is not None else ReadStats(), stdin)


@dataclass(frozen=True)
class RawLines:
    """Consecutive lines of one JSON Lines input, not parsed yet (see :meth:`DocumentStream.raw_batches`)."""

    name: str  # the input, as errors name it
    first: int  # the number of its first line
    lines: list[bytes] | list[str]
    failure: tuple[str, int | None] | None = None  # (reason, line): reading failed after these lines

    def raise_failure(self) -> None:
        """Raise the InputError reading the input ended with after these lines, if it did."""
        if self.failure is not None:
            raise InputError(self.failure[0], path=self.name, line=self.failure[1])


@dataclass(frozen=True)
class Parsed:
    """The records of a :class:`RawLines` batch, as :func:`parse_lines` gives them: the documents (their lines,
    ids, dates and texts) and the bad records (line, reason, message), each in line order."""

    lines: list[int]
    ids: list[str]
    dates: list[datetime | None]
    texts: list[str]
    bad: list[tuple[int, str, str]]


def parse_lines(batch: RawLines, options: ReadOptions) -> Parsed:
    """Parse a batch of JSON Lines as :func:`read_documents` parses them (anywhere: a worker process, say); the
    checks across batches (unique ids) and what to do with bad records are :class:`Acceptor`'s."""
    parsed = Parsed([], [], [], [], [])
    for _, line, item in _read_jsonl(batch.name, batch.lines, options, first=batch.first):
        if isinstance(item, _Bad):
            parsed.bad.append((line, item.reason, item.message))  # type: ignore[arg-type]
        else:
            parsed.lines.append(line)  # type: ignore[arg-type]
            parsed.ids.append(item.id)
            parsed.dates.append(item.date)
            parsed.texts.append(item.text)
    return parsed


class Acceptor:
    """What read_documents does with each record, in order: a bad one raises InputError naming the file and line,
    or (``skip_bad``) is counted in the stats; a document whose id was seen before is a bad record too; the others
    are counted as read."""

    def __init__(self, options: ReadOptions, stats: ReadStats) -> None:
        self.options, self.stats = options, stats
        self._seen: dict[str, str] = {}

    def bad(self, name: str, line: int | None, reason: str, message: str) -> None:
        """A bad record: raise, or count it (skip_bad)."""
        if not self.options.skip_bad:
            raise InputError(message, path=name, line=line)
        self.stats.skip(reason, name, line, message)

    def document(self, name: str, line: int | None, doc_id: str) -> bool:
        """Whether the document with ``doc_id`` is taken (False: it was skipped, a duplicate id)."""
        first = self._seen.get(doc_id)
        if first is not None:
            self.bad(name, line, "duplicate id", f"duplicate id {doc_id!r} (first seen at {first})")
            return False
        self._seen[doc_id] = name if line is None else f"{name}:{line}"
        self.stats.read += 1
        return True


class DocumentStream(Iterator[Document]):
    """The Documents of read_documents' inputs, read as they are iterated.

    Inputs that are all JSON Lines can instead be taken as batches of raw lines (:meth:`raw_batches`), for
    :func:`parse_lines` to parse where the documents are worked on and an :meth:`acceptor` to check in order
    (dedup.parallel: worker processes then parse the JSON while this one reads)."""

    def __init__(self, classified: list[tuple[str, Path]], options: ReadOptions, stats: ReadStats,
                 stdin: TextIO | None) -> None:
        self.options, self.stats = options, stats
        self._classified, self._stdin = classified, stdin
        self._docs: Iterator[Document] | None = None

    def __iter__(self) -> DocumentStream:
        return self

    def __next__(self) -> Document:
        if self._docs is None:
            self._docs = _generate(self._classified, self.options, self.stats, self._stdin)
        return next(self._docs)

    def acceptor(self) -> Acceptor:
        """A new :class:`Acceptor` for this stream's options and stats."""
        return Acceptor(self.options, self.stats)

    def raw_batches(self, size: int) -> Iterator[RawLines] | None:
        """Batches of up to ``size`` lines of the inputs, in order (a batch holds lines of one input); None when
        an input is not JSON Lines or the documents are being iterated already. Taking them is reading the stream.
        When reading an input fails, its last batch holds the lines read before and the failure
        (:meth:`RawLines.raise_failure`, once its records are checked) and no batch follows."""
        if self._docs is not None or not all(kind in ("jsonl", "stdin") for kind, _ in self._classified):
            return None
        self._docs = iter(())
        return self._batches(size)

    def _batches(self, size: int) -> Iterator[RawLines]:
        for kind, path in self._classified:
            if kind == "stdin":
                stream: Any = self._stdin if self._stdin is not None else getattr(sys.stdin, "buffer", sys.stdin)
                name, lines = "<stdin>", _guarded("<stdin>", stream)
            else:
                name, lines = str(path), _raw_lines(path)
            first = 1
            while True:
                batch: list = []
                try:
                    batch.extend(itertools.islice(lines, size))
                except InputError as error:  # (after the lines read before it, as when documents are read one by one)
                    yield RawLines(name, first, batch, failure=(error.reason, error.line))
                    return
                if not batch:
                    break
                yield RawLines(name, first, batch)
                first += len(batch)


def _generate(classified: list[tuple[str, Path]], opts: ReadOptions, stats: ReadStats,
              stdin: TextIO | None) -> Iterator[Document]:
    """The generator behind read_documents: duplicate-id check, skip/raise and counting."""
    acceptor = Acceptor(opts, stats)
    for kind, path in classified:
        for name, line, item in _items(kind, path, opts, stdin):
            if isinstance(item, _Bad):
                acceptor.bad(name, line, item.reason, item.message)
            elif acceptor.document(name, line, item.id):
                yield item
