"""Tests for dedup.read: every input format, every bad-record case, skip_bad accounting."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dedup.document import Document
from dedup.errors import DedupError, InputError, OptionError
from dedup.read import ReadOptions, ReadStats, parse_date, read_documents

REPO = Path(__file__).resolve().parents[1]
DATA = REPO.parent / "shared" / "data"


def write_jsonl(path: Path, records: list, *, compress: bool = False) -> Path:
    """Write records (dicts, or raw str lines) as JSON Lines."""
    text = "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)
    if compress:
        path.write_bytes(gzip.compress(text.encode("utf-8")))
    else:
        path.write_text(text, encoding="utf-8")
    return path


def write_csv(path: Path, rows: list[list[str]], *, delimiter: str = ",", compress: bool = False) -> Path:
    """Write rows (the first is the header) with the csv module."""
    buf = io.StringIO()
    csv.writer(buf, delimiter=delimiter).writerows(rows)
    data = buf.getvalue().encode("utf-8")
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def read(*inputs, **kwargs) -> list[Document]:
    return list(read_documents(list(inputs), **kwargs))


def error(*inputs, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        read(*inputs, **kwargs)
    return info.value


# ---------------------------------------------------------------- formats


def test_txt_directory_nested_and_gz_sorted(tmp_path: Path) -> None:
    (tmp_path / "sub").mkdir()
    (tmp_path / "b.txt").write_text("bee", encoding="utf-8")
    (tmp_path / "a.txt").write_text("ay\nsecond line\n", encoding="utf-8")
    (tmp_path / "sub" / "c.txt.gz").write_bytes(gzip.compress("sea".encode()))
    (tmp_path / "notes.md").write_text("not a document")
    (tmp_path / ".hidden.txt").write_text("hidden")
    docs = read(tmp_path)
    assert [(d.id, d.text) for d in docs] == [("a", "ay\nsecond line\n"), ("b", "bee"), ("c", "sea")]
    assert all(d.title is None and d.date is None for d in docs)


def test_single_txt_file_with_bom(tmp_path: Path) -> None:
    path = tmp_path / "story-1.txt"
    path.write_bytes("\ufeffHéllo wörld".encode("utf-8"))
    assert read(path) == [Document(id="story-1", text="Héllo wörld")]


def test_samples_directory() -> None:
    samples = REPO / "samples"
    stems = sorted(p.name[:-4] for p in samples.glob("*.txt"))
    docs = read(samples)
    assert len(docs) == 3
    assert [d.id for d in docs] == stems
    assert all(d.text.strip() for d in docs)


@pytest.mark.parametrize("name", ["in.jsonl", "in.ndjson", "in.json", "in.jsonl.gz", "in.JSONL"])
def test_jsonl_all_fields(tmp_path: Path, name: str) -> None:
    records = [
        {"id": "a", "text": "alpha", "title": "T", "date": "2017-01-03T10:18:00Z", "source": "Reuters",
         "url": "http://x/a", "extra": [1, 2]},
        {"id": 7, "text": "seven", "title": None, "date": None},
    ]
    path = write_jsonl(tmp_path / name, records, compress=name.endswith(".gz"))
    a, b = read(path)
    assert a == Document(id="a", text="alpha", title="T", date=datetime(2017, 1, 3, 10, 18, tzinfo=timezone.utc),
                         source="Reuters", url="http://x/a")
    assert b == Document(id="7", text="seven")


def test_jsonl_blank_lines_and_empty_text_kept(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_text('\n{"id": "a", "text": ""}\n   \n{"id": "b", "text": "  "}\n\n', encoding="utf-8")
    stats = ReadStats()
    docs = read(path, stats=stats)
    assert [(d.id, d.text) for d in docs] == [("a", ""), ("b", "  ")]
    assert (stats.read, stats.skipped) == (2, 0)


def test_jsonl_unicode_line_separators_and_crlf(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    line = json.dumps({"id": "a", "text": "x\u2028y\u0085z\rw"}, ensure_ascii=False)
    path.write_bytes(b"\xef\xbb\xbf" + line.encode() + b"\r\n" + b'{"id": "b", "text": "t"}\r\n')
    assert [(d.id, d.text) for d in read(path)] == [("a", "x\u2028y\u0085z\rw"), ("b", "t")]


def test_non_string_optional_fields_are_stringified(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "t", "title": 12, "source": "", "url": 1.5}])
    (doc,) = read(path)
    assert (doc.title, doc.source, doc.url) == ("12", None, "1.5")


@pytest.mark.parametrize(("name", "delimiter"),
                         [("in.csv", ","), ("in.tsv", "\t"), ("in.csv.gz", ","), ("in.tsv.gz", "\t")])
def test_csv_and_tsv(tmp_path: Path, name: str, delimiter: str) -> None:
    rows = [["id", "title", "text", "date"],
            ["1", "First", 'multi\nline, with "quotes"\tand tab', "2017-01-03"],
            ["002", "", "second", ""]]
    path = write_csv(tmp_path / name, rows, delimiter=delimiter, compress=name.endswith(".gz"))
    a, b = read(path)
    assert a == Document(id="1", text='multi\nline, with "quotes"\tand tab', title="First", date=datetime(2017, 1, 3))
    assert b == Document(id="002", text="second")


def test_csv_long_field_and_bom(tmp_path: Path) -> None:
    text = "word " * 100_000  # longer than the csv module's default field size limit
    path = tmp_path / "in.csv"
    path.write_bytes(b"\xef\xbb\xbfid,text\r\nx," + text.encode() + b"\r\n")
    (doc,) = read(path)
    assert (doc.id, doc.text) == ("x", text)


def test_empty_csv_and_jsonl_give_no_documents(tmp_path: Path) -> None:
    (tmp_path / "e.csv").write_text("")
    (tmp_path / "h.csv").write_text("id,text\n")
    (tmp_path / "e.jsonl").write_text("")
    assert read(tmp_path / "e.csv", tmp_path / "h.csv", tmp_path / "e.jsonl") == []


def test_stdin_parameter_and_several_inputs_in_order(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "first.jsonl", [{"id": "f", "text": "file"}])
    stdin = io.StringIO('{"id": "s1", "text": "from stdin"}\n\n{"id": "s2", "text": "more"}\n')
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "t.txt").write_text("txt")
    assert [d.id for d in read(first, "-", tmp_path / "d", stdin=stdin)] == ["f", "s1", "s2", "t"]


def test_stdin_errors_name_stdin() -> None:
    err = error("-", stdin=io.StringIO('{"id": "a", "text": "x"}\nnope\n'))
    assert str(err).startswith("<stdin>:2: malformed JSON")


def test_stdin_stream_decoding_error_is_input_error() -> None:
    stream = io.TextIOWrapper(io.BytesIO(b'{"id": "a", "text": "x"}\n\xff\xfe\n'), encoding="utf-8")
    err = error("-", stdin=stream)
    assert str(err).startswith("<stdin>:") and "cannot read" in str(err)


def test_directory_without_txt_files(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "in.jsonl", [{"id": "a", "text": "x"}])
    err = error(tmp_path)
    assert str(err) == f"{tmp_path}: directory contains no .txt or .txt.gz files (a directory input reads only those)"


def test_stdin_defaults_to_sys_stdin_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = io.BytesIO(b'{"id": "a", "text": "x\xc3\xa9"}\n')
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(raw, encoding="utf-8"))
    assert read("-") == [Document(id="a", text="xé")]


def test_field_renaming(tmp_path: Path) -> None:
    rec = {"doc_id": 5, "body": "b", "headline": "h", "published": "2017-01-03 10:18", "outlet": "o", "link": "l"}
    path = write_jsonl(tmp_path / "in.jsonl", [rec])
    options = ReadOptions(id_field="doc_id", text_field="body", title_field="headline", date_field="published",
                          source_field="outlet", url_field="link")
    assert read(path, options=options) == [
        Document(id="5", text="b", title="h", date=datetime(2017, 1, 3, 10, 18), source="o", url="l")]
    csv_path = write_csv(tmp_path / "in.csv", [["doc_id", "body"], ["x", "y"]])
    assert read(csv_path, options=options) == [Document(id="x", text="y")]


def test_read_options_validation() -> None:
    with pytest.raises(OptionError):
        ReadOptions(max_chars=0)
    with pytest.raises(OptionError):
        ReadOptions(text_field="")


# ---------------------------------------------------------------- input errors


def test_nonexistent_path_raised_eagerly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no_such.jsonl: no such file"):
        read_documents([tmp_path / "no_such.jsonl"])


def test_unknown_extension_lists_supported(tmp_path: Path) -> None:
    path = tmp_path / "data.xml"
    path.write_text("<x/>")
    err = error(path)
    assert "data.xml" in str(err) and ".jsonl" in str(err) and ".csv" in str(err) and ".txt" in str(err)


def test_corrupt_gzip_is_input_error(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl.gz"
    data = "".join(json.dumps({"id": str(i), "text": "x" * 50}) + "\n" for i in range(1000)).encode()
    path.write_bytes(gzip.compress(data)[:-20])
    err = error(path, options=ReadOptions(skip_bad=True))  # a truncated file is never silently cut short
    assert "in.jsonl.gz" in str(err) and "cannot read file" in str(err)
    bad_txt = tmp_path / "t.txt.gz"
    bad_txt.write_bytes(b"not gzip at all")
    assert "t.txt.gz" in str(error(bad_txt))


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"id": "a", "text": ', "malformed JSON"),
        ('["id", "text"]', "expected a JSON object, got array"),
        ('"just a string"', "expected a JSON object, got string"),
        ('{"text": "t"}', "missing field 'id' (use --id-field"),
        ('{"id": "a"}', "missing field 'text' (use --text-field"),
        ('{"id": 1.5, "text": "t"}', "field 'id' must be a string or integer, got number"),
        ('{"id": true, "text": "t"}', "field 'id' must be a string or integer, got boolean"),
        ('{"id": null, "text": "t"}', "got null"),
        ('{"id": "", "text": "t"}', "empty id"),
        ('{"id": "  ", "text": "t"}', "empty id"),
        ('{"id": "a", "text": 3}', "field 'text' must be a string, got number"),
        ('{"id": "a", "text": null}', "field 'text' must be a string, got null"),
        ('{"id": "a", "text": "t", "date": "xyz"}',
         "cannot parse date 'xyz' in field 'date' (expected ISO 8601 like 2017-01-03 or 2017-01-03T10:18:00Z)"),
        ('{"id": "a", "text": "t", "date": "2017-13-45"}', "cannot parse date '2017-13-45'"),
        ('{"id": "a", "text": "t", "date": [2017]}', "cannot parse date [2017]"),
        ('{"id": "a", "text": "t", "date": 1e300}', "cannot parse date 1e+300"),
        ("[" * 100_000, "malformed JSON"),
    ],
)
def test_jsonl_bad_record_names_file_and_line(tmp_path: Path, line: str, expected: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", [{"id": "ok", "text": "fine"}, "", line])
    err = error(path)
    assert str(err).startswith(f"{path}:3: ")
    assert expected in str(err)
    assert (err.path, err.line) == (str(path), 3)
    stats = ReadStats()
    assert [d.id for d in read(path, options=ReadOptions(skip_bad=True), stats=stats)] == ["ok"]
    assert (stats.read, stats.skipped) == (1, 1)
    assert stats.examples == [(str(path), 3, err.reason)]


def test_jsonl_invalid_utf8_line(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "text": "x"}\n{"id": "b", "text": "caf\xe9"}\n{"id": "c", "text": "y"}\n')
    err = error(path)
    assert str(err).startswith(f"{path}:2: not valid UTF-8")
    stats = ReadStats()
    assert [d.id for d in read(path, options=ReadOptions(skip_bad=True), stats=stats)] == ["a", "c"]
    assert stats.reasons == {"invalid UTF-8": 1}


def test_csv_wrong_column_count_line_number(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_text('id,text\na,"two\nlines"\nb,too,many\nc,fine\n', encoding="utf-8")
    err = error(path)
    assert str(err).startswith(f"{path}:4: row has 3 fields but the header has 2")
    stats = ReadStats()
    assert [d.id for d in read(path, options=ReadOptions(skip_bad=True), stats=stats)] == ["a", "c"]
    assert stats.reasons == {"wrong number of fields": 1}


def test_csv_record_errors_point_at_record_start(tmp_path: Path) -> None:
    path = tmp_path / "in.tsv"
    path.write_text('id\ttext\tdate\na\t"multi\nline\ntext"\t\n\nb\tx\tsoon\n', encoding="utf-8")
    err = error(path)
    assert str(err).startswith(f"{path}:6: cannot parse date 'soon' in field 'date'")


def test_csv_missing_column_in_header(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [["id", "body"], ["a", "b"]])
    err = error(path, options=ReadOptions(skip_bad=True))
    assert str(err).startswith(f"{path}:1: no column 'text' in the header row (columns: id, body; use --text-field")


def test_csv_invalid_utf8_in_multiline_record(tmp_path: Path) -> None:
    path = tmp_path / "in.csv"
    path.write_bytes(b'id,text\na,"ok"\nb,"first\nsecond \xff line"\nc,fine\n')
    err = error(path)
    assert str(err).startswith(f"{path}:3: not valid UTF-8 (byte offset 7 of line 4)")
    stats = ReadStats()
    assert [d.id for d in read(path, options=ReadOptions(skip_bad=True), stats=stats)] == ["a", "c"]
    assert stats.skipped == 1


def test_csv_empty_id_and_blank_optional_fields(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "in.csv", [["id", "text", "url"], ["a", "t", ""], ["", "t", "u"]])
    err = error(path)
    assert str(err).startswith(f"{path}:3: empty id")


def test_txt_invalid_utf8(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("fine")
    (tmp_path / "latin1.txt").write_bytes("café".encode("latin-1"))
    err = error(tmp_path)
    assert str(err) == f"{tmp_path / 'latin1.txt'}: not valid UTF-8 (byte offset 3); convert it or pass --skip-bad"
    stats = ReadStats()
    assert [d.id for d in read(tmp_path, options=ReadOptions(skip_bad=True), stats=stats)] == ["good"]
    assert stats.reasons == {"invalid UTF-8": 1}


@pytest.mark.parametrize("data", [b"PK\x03\x04\x00\x00binary", "utf-16 text".encode("utf-16")])
def test_txt_binary(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "blob.txt"
    path.write_bytes(data)
    err = error(path)
    assert "blob.txt" in str(err)
    assert "looks binary" in str(err) or "UTF-16" in str(err)
    stats = ReadStats()
    assert read(path, options=ReadOptions(skip_bad=True), stats=stats) == []
    assert stats.reasons == {"looks binary": 1}


def test_duplicate_ids_across_inputs(tmp_path: Path) -> None:
    first = write_jsonl(tmp_path / "one.jsonl", [{"id": "x", "text": "1"}, {"id": "y", "text": "2"}])
    second = write_jsonl(tmp_path / "two.jsonl", [{"id": "z", "text": "3"}, {"id": "x", "text": "4"}])
    err = error(first, second)
    assert str(err) == f"{second}:2: duplicate id 'x' (first seen at {first}:1)"
    stats = ReadStats()
    docs = read(first, second, options=ReadOptions(skip_bad=True), stats=stats)
    assert [(d.id, d.text) for d in docs] == [("x", "1"), ("y", "2"), ("z", "3")]
    assert stats.reasons == {"duplicate id": 1}


def test_duplicate_int_and_str_id(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": 1, "text": "a"}, {"id": "1", "text": "b"}])
    assert "duplicate id '1'" in str(error(path))


def test_duplicate_stems_in_nested_txt_dirs(tmp_path: Path) -> None:
    for sub in ("a", "b"):
        (tmp_path / sub).mkdir()
        (tmp_path / sub / "story.txt").write_text(sub)
    err = error(tmp_path)
    first, second = tmp_path / "a" / "story.txt", tmp_path / "b" / "story.txt"
    assert str(err) == f"{second}: duplicate id 'story' (first seen at {first})"


def test_too_long_documents(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", [{"id": "short", "text": "x" * 10}, {"id": "big", "text": "x" * 11}])
    options = ReadOptions(max_chars=10)
    err = error(path, options=options)
    assert str(err).startswith(f"{path}:2: document 'big' has 11 characters, more than max_chars=10")
    txt = tmp_path / "long.txt"
    txt.write_text("y" * 11)
    assert "document 'long' has 11 characters" in str(error(txt, options=options))
    stats = ReadStats()
    docs = read(path, txt, options=ReadOptions(max_chars=10, skip_bad=True), stats=stats)
    assert [d.id for d in docs] == ["short"]
    assert stats.reasons == {"too long": 2}


def test_errors_are_dedup_errors_not_tracebacks(tmp_path: Path) -> None:
    path = tmp_path / "in.jsonl"
    path.write_bytes(b'{"id": "a", "text": "\\ud800"}\n\x00\x01\x02\n{"id": {"x": 1}, "text": "t"}\n')
    stats = ReadStats()
    docs = read(path, options=ReadOptions(skip_bad=True), stats=stats)
    assert [d.id for d in docs] == ["a"]
    assert stats.skipped == 2
    with pytest.raises(DedupError):
        read(path)


def test_skip_bad_nothing_silently_dropped(tmp_path: Path) -> None:
    lines = [
        {"id": "ok1", "text": "a"},
        "{broken",
        {"id": "ok2", "text": "", "date": "2017-01-03"},
        {"text": "no id"},
        {"id": "ok3", "text": "b"},
        {"id": "ok1", "text": "dup"},
        {"id": "bad-date", "text": "c", "date": "tomorrow"},
        {"id": "x" * 3, "text": 5},
        "",
        "42",
    ]
    records = sum(1 for r in lines if r != "")
    path = write_jsonl(tmp_path / "mixed.jsonl", lines)
    stats = ReadStats()
    docs = read(path, options=ReadOptions(skip_bad=True), stats=stats)
    assert [d.id for d in docs] == ["ok1", "ok2", "ok3"]
    assert stats.read == len(docs)
    assert stats.read + stats.skipped == records
    assert stats.reasons == {"malformed JSON": 1, "missing field 'id'": 1, "duplicate id": 1, "bad date": 1,
                             "text not a string": 1, "not a JSON object": 1}
    assert [line for _, line, _ in stats.examples] == [2, 4, 6, 7, 8, 10]


def test_examples_are_capped(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "in.jsonl", ["nope"] * 50)
    stats = ReadStats()
    assert read(path, options=ReadOptions(skip_bad=True), stats=stats) == []
    assert stats.skipped == 50 and len(stats.examples) == 20


# ---------------------------------------------------------------- dates


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("2017-01-03", datetime(2017, 1, 3)),
        ("2017-01-03T10:18:00", datetime(2017, 1, 3, 10, 18)),
        ("2017-01-03T10:18:00Z", datetime(2017, 1, 3, 10, 18, tzinfo=timezone.utc)),
        ("2017-01-03T10:18:00.250Z", datetime(2017, 1, 3, 10, 18, 0, 250000, tzinfo=timezone.utc)),
        ("2017-01-03 10:18", datetime(2017, 1, 3, 10, 18)),
        ("2017-01-03 10:18:59", datetime(2017, 1, 3, 10, 18, 59)),
        ("2017-01-03T10:18:00+00:00", datetime(2017, 1, 3, 10, 18, tzinfo=timezone.utc)),
        (1483438680, datetime(2017, 1, 3, 10, 18, tzinfo=timezone.utc)),
        (1483438680.5, datetime(2017, 1, 3, 10, 18, 0, 500000, tzinfo=timezone.utc)),
        ("1483438680", datetime(2017, 1, 3, 10, 18, tzinfo=timezone.utc)),
    ],
)
def test_parse_date(value, expected) -> None:
    assert parse_date(value) == expected
    if expected is not None:
        assert (parse_date(value).tzinfo is None) == (expected.tzinfo is None)


@pytest.mark.parametrize("value", ["xyz", "03/01/2017", "2017-02-30", "1e400", True, float("nan"), 10**20, [1]])
def test_parse_date_rejects(value) -> None:
    with pytest.raises(ValueError, match="cannot parse date"):
        parse_date(value)


# ---------------------------------------------------------------- round trips and real data

ids = st.one_of(st.text(min_size=1).filter(lambda s: s.strip()), st.integers(min_value=-(2**63), max_value=2**63))


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.dictionaries(ids, st.text(), max_size=8), ensure_ascii=st.booleans())
def test_jsonl_round_trip(tmp_path: Path, docs: dict, ensure_ascii: bool) -> None:
    if len({str(k) for k in docs}) < len(docs):
        return  # 1 and "1" would be a (correctly reported) duplicate
    path = tmp_path / "rt.jsonl"
    with path.open("w", encoding="utf-8", newline="") as f:
        for doc_id, text in docs.items():
            f.write(json.dumps({"id": doc_id, "text": text}, ensure_ascii=ensure_ascii) + "\n")
    assert [(d.id, d.text) for d in read(path)] == [(str(k), v) for k, v in docs.items()]


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(docs=st.dictionaries(st.text(min_size=1).filter(lambda s: s.strip()), st.text(), max_size=8),
       delimiter=st.sampled_from([",", "\t"]))
def test_csv_round_trip(tmp_path: Path, docs: dict, delimiter: str) -> None:
    path = write_csv(tmp_path / ("rt.csv" if delimiter == "," else "rt.tsv"),
                     [["id", "text"], *([k, v] for k, v in docs.items())], delimiter=delimiter)
    assert [(d.id, d.text) for d in read(path)] == list(docs.items())


@pytest.mark.shared
def test_real_ecbplus_dev() -> None:
    path = DATA / "ecbplus-dev.jsonl.gz"
    if not path.exists():
        pytest.skip(f"{path} not present")
    stats = ReadStats()
    docs = read(path, stats=stats)
    assert len(docs) == 196 == stats.read
    assert stats.skipped == 0
    assert len({d.id for d in docs}) == 196
    assert all(d.text and d.source == "ECB+" for d in docs)


# ----------------------------------------------------------------------------- the fast JSON path

_json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-2**70, 2**70) | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3), max_leaves=8)
_odd_lines = st.sampled_from([b"", b"   ", b"NaN", b'{"id": "x", "text": NaN}', b'{"id": "x", "text": "a\\ud800"}',
                              b'{"id": "x", "text": "t", "n": 1e400}', b'\xef\xbb\xbf{"id": "b", "text": "t"}',
                              b'{"id": "x", "text": "\xff"}', b'{"id": "x", "id": "y", "text": "t"}', b"[1]", b'"s"',
                              b'{"id": 5, "text": "t"}', b'{"id": "x"', b'{"id": "x", "text": "t"} x'])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    _odd_lines,
    st.builds(lambda i, t, extra: json.dumps({"id": i, "text": t, **extra}).encode(), st.text(min_size=1, max_size=8),
              st.text(max_size=30), st.dictionaries(st.sampled_from(["date", "title", "x"]), _json_values, max_size=2)),
    st.builds(lambda v: json.dumps(v).encode(), _json_values)), max_size=8))
def test_orjson_reading_gives_what_the_json_module_gives(lines: list[bytes]) -> None:
    from dedup import read

    opts = ReadOptions(skip_bad=True)
    fast = [(n, repr(item)) for _, n, item in read._read_jsonl("f", lines, opts)]
    slow = [(n, repr(item)) for n, line in enumerate(lines, 1) for _, n, item in read._read_jsonl_slow("f", n, line, opts)]
    assert fast == slow


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(
    _odd_lines, st.sampled_from([b'{"id": "d1", "text": "a repeated id"}', b'{"id": "d2", "text": "the bomb killed 24 people"}',
                                 b'{"id": "y", "text": "t", "date": "not a date"}', b'{"id": "z", "text": "' + b"w " * 40 + b'"}']),
    st.builds(lambda i, t: json.dumps({"id": f"d{i}", "text": t}).encode(), st.integers(0, 30),
              st.sampled_from(["police said the bomb killed 24 people in baghdad on tuesday", "shares rose 3.5 percent",
                               "oil prices fell", "police said the bomb killed 24 people in baghdad"]))), max_size=40),
       st.integers(1, 9), st.booleans(), st.sampled_from([1, 2]))
def test_json_lines_parsed_where_they_are_prepared_read_as_documents_are(lines: list[bytes], chunk: int, skip_bad: bool,
                                                                          workers: int) -> None:
    """dedup cluster takes JSON Lines from read_documents as raw lines, parsed in batches where they are prepared
    (dedup.parallel): whatever the lines, the outcome is that of the documents read one by one here, the same
    error (file and line) or the same records skipped, counted and clustered."""
    from unittest import mock

    from dedup import cluster, parallel
    from dedup.errors import InputError

    data = b"\n".join(lines)
    outcomes = []
    for raw in (True, False):
        stats = ReadStats()
        docs = read_documents(["-"], stdin=io.BytesIO(data), options=ReadOptions(skip_bad=skip_bad, max_chars=60),
                              stats=stats)
        try:
            with mock.patch.object(parallel, "CHUNK_DOCS", chunk):
                result = cluster(docs if raw else list(docs), workers=workers)
            outcomes.append((result.ids, result.assignments, stats.read, stats.skipped, dict(stats.reasons), stats.examples))
        except InputError as error:
            outcomes.append(str(error))
    assert outcomes[0] == outcomes[1]


@pytest.mark.parametrize("skip_bad", [False, True])
def test_a_read_failure_after_bad_records_is_met_in_line_order_when_lines_are_parsed_in_batches(tmp_path, skip_bad: bool) -> None:
    """A gzip file cut short fails to read at a line; the records before it in its batch are checked first, so a
    bad record just before it is the error, as when documents are read one by one; skipped, the records before
    it are counted alike and the failure is the error."""
    import gzip
    from unittest import mock

    from dedup import cluster, parallel
    from dedup.errors import InputError

    lines = [json.dumps({"id": f"d{i}", "text": f"story {i % 7} police said the bomb killed {i % 5} people"})
             for i in range(400)]
    path = tmp_path / "cut.jsonl.gz"

    def write() -> None:
        data = gzip.compress(("\n".join(lines) + "\n").encode())
        path.write_bytes(data[: len(data) * 2 // 3])

    write()
    with pytest.raises(InputError) as failed:
        list(read_documents([path]))
    at = failed.value.line  # (where reading fails)
    lines[at - 3] = "{not json"  # (line at - 2: in the batch that ends with the failure)
    write()
    outcomes = []
    for raw in (True, False):
        stats = ReadStats()
        docs = read_documents([path], options=ReadOptions(skip_bad=skip_bad), stats=stats)
        with pytest.raises(InputError) as error, mock.patch.object(parallel, "CHUNK_DOCS", (at + 5) // 2):
            cluster(docs if raw else list(docs), workers=2)
        outcomes.append((str(error.value), stats.read, stats.skipped))
    assert outcomes[0] == outcomes[1]
    assert (f":{at - 2}: malformed JSON" in outcomes[0][0]) != skip_bad
