"""The dedup CLI, run with click's CliRunner and checked through the Python API."""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from dedup.cli import main
from dedup.evaluate import load_assignments

from conftest import REPO, SAMPLES

A, B, C = "000_9eee5088534f1115", "001_9f742d745c6bb0a4", "002_a7efc2d8e7d45ecd"


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_cluster_samples_to_stdout() -> None:
    result = run("cluster", str(SAMPLES))
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in rows] == [A, B, C]
    assert {r["id"]: r["cluster_id"] for r in rows} == {A: A, B: A, C: C}
    assert {r["id"]: r["cluster_size"] for r in rows} == {A: 2, B: 2, C: 1}
    assert re.search(r"3 documents, 2 clusters, 1 duplicates", result.stderr)


def test_the_command_exits_with_its_status_and_all_its_output(tmp_path: Path) -> None:
    """The console command ends without the interpreter's teardown (dedup.cli.run): what it printed to a pipe is
    all there, the result file is complete, and the exit status is the command's."""
    command = [sys.executable, "-c", "from dedup.cli import run; run()"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}  # (stdout to a pipe: block-buffered)
    done = subprocess.run([*command, "cluster", str(SAMPLES)], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["id"] for line in done.stdout.splitlines()] == [A, B, C]
    assert "3 documents, 2 clusters" in done.stderr
    out = tmp_path / "out.csv"
    done = subprocess.run([*command, "cluster", str(SAMPLES), "--format", "csv", "-o", str(out)], capture_output=True, text=True)
    assert done.returncode == 0 and done.stdout == ""
    assert [row["id"] for row in csv.DictReader(out.open())] == [A, B, C]
    done = subprocess.run([*command, "cluster", str(tmp_path / "missing.jsonl")], capture_output=True, text=True)
    assert done.returncode == 1 and "no such file" in done.stderr
    done = subprocess.run([*command, "cluster"], capture_output=True, text=True)
    assert done.returncode == 2 and "Missing argument" in done.stderr


def test_ids_with_a_lone_surrogate_are_written_not_a_traceback(tmp_path: Path) -> None:
    """JSON input may hold a lone surrogate in an id (valid JSON, not encodable as UTF-8): JSONL output escapes it
    and reads back to the same id; CSV output writes it backslash-escaped."""
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a\\ud800b", "text": "A story about a thing."}\n{"id": "c", "text": "Another one."}\n')
    out = tmp_path / "out.jsonl"
    result = run("cluster", str(src), "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in out.read_text().splitlines()] == ["a\ud800b", "c"]
    result = run("cluster", str(src), "--format", "csv", "--quiet")
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in csv.DictReader(io.StringIO(result.stdout))] == ["a\\ud800b", "c"]


def test_cluster_writes_file_and_pairs(tmp_path: Path) -> None:
    out, pairs = tmp_path / "out.jsonl", tmp_path / "pairs.jsonl"
    result = run("cluster", str(SAMPLES), "-o", str(out), "--pairs", str(pairs), "--quiet")
    assert result.exit_code == 0 and result.stdout == "" and result.stderr == ""
    assert load_assignments(out) == {A: A, B: A, C: C}
    (pair,) = [json.loads(line) for line in pairs.read_text().splitlines()]
    assert {pair["a"], pair["b"]} == {A, B} and pair["cluster_id"] == A
    assert all(0 < pair[k] <= 1 for k in ("jaccard", "cosine", "containment"))


@pytest.mark.parametrize(("fmt", "delimiter"), [("csv", ","), ("tsv", "\t")])
def test_cluster_csv_and_tsv_output(tmp_path: Path, fmt: str, delimiter: str) -> None:
    out = tmp_path / f"out.{fmt}"
    assert run("cluster", str(SAMPLES), "-o", str(out), "--format", fmt, "-q").exit_code == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text()), delimiter=delimiter))
    assert {r["id"]: r["cluster_id"] for r in rows} == {A: A, B: A, C: C}


def _jsonl_from_samples(tmp_path: Path, *, gz: bool = False, extra: list[str] = ()) -> Path:
    lines = [json.dumps({"doc": p.stem, "body": p.read_text()}) for p in sorted(SAMPLES.glob("*.txt"))]
    data = "\n".join(lines + list(extra)) + "\n"
    path = tmp_path / ("in.jsonl.gz" if gz else "in.jsonl")
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as handle:
            handle.write(data)
    else:
        path.write_text(data)
    return path


def test_cluster_jsonl_gz_with_renamed_fields(tmp_path: Path) -> None:
    path = _jsonl_from_samples(tmp_path, gz=True)
    result = run("cluster", str(path), "--id-field", "doc", "--text-field", "body", "-q")
    assert result.exit_code == 0, result.output
    assert {json.loads(l)["id"]: json.loads(l)["cluster_id"] for l in result.stdout.splitlines()} == {A: A, B: A, C: C}


def test_cluster_reads_stdin(tmp_path: Path) -> None:
    data = _jsonl_from_samples(tmp_path).read_text()
    result = run("cluster", "-", "--id-field", "doc", "--text-field", "body", "-q", input=data)
    assert result.exit_code == 0, result.output
    assert len(result.stdout.splitlines()) == 3


def test_bad_line_is_an_error_naming_file_and_line(tmp_path: Path) -> None:
    path = _jsonl_from_samples(tmp_path, extra=['{"doc": "x", "body": '])
    out = tmp_path / "out.jsonl"
    result = run("cluster", str(path), "--id-field", "doc", "--text-field", "body", "-o", str(out))
    assert result.exit_code == 1
    assert f"{path}:4:" in result.stderr and "Traceback" not in result.output
    assert not out.exists()  # nothing half-written


def test_skip_bad_counts_and_keeps_the_rest(tmp_path: Path) -> None:
    path = _jsonl_from_samples(tmp_path, extra=['{"doc": "x", "body": ', '{"doc": "y"}'])
    result = run("cluster", str(path), "--id-field", "doc", "--text-field", "body", "--skip-bad")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 3
    assert "skipped 2 bad record(s)" in result.stderr


def test_missing_input_is_a_clean_error(tmp_path: Path) -> None:
    result = run("cluster", str(tmp_path / "nope.jsonl"))
    assert result.exit_code == 1 and "nope.jsonl" in result.stderr and "Traceback" not in result.output


def test_bad_option_is_a_clean_error() -> None:
    result = run("cluster", str(SAMPLES), "--cosine", "2")
    assert result.exit_code == 1 and "cosine must be a number from 0 to 1" in result.stderr


def test_evaluate_command(tmp_path: Path) -> None:
    pred = tmp_path / "pred.jsonl"
    run("cluster", str(SAMPLES), "-o", str(pred), "-q")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps({"id": i, "gold": g}) + "\n" for i, g in [(A, "s1"), (B, "s1"), (C, "s2")]))
    result = run("evaluate", str(pred), str(gold), "--json")
    scores = json.loads(result.stdout)
    assert scores["pairwise_f1"] == 1.0 and scores["adjusted_rand"] == 1.0
    gold.write_text("".join(json.dumps({"id": i, "gold": g}) + "\n" for i, g in [(A, "s1"), (B, "s2"), (C, "s2")]))
    scores = json.loads(run("evaluate", str(pred), str(gold), "--json").stdout)
    assert scores["pairwise_precision"] == 0.0 and scores["mixed_clusters"] == 1


def _commands(group: click.Group, prefix: str = "") -> list[tuple[str, click.Command]]:
    out = []
    for name, command in group.commands.items():
        out.append((prefix + name, command))
        if isinstance(command, click.Group):
            out.extend(_commands(command, prefix + name + " "))
    return out


def test_every_command_has_help_and_is_documented() -> None:
    readme = (REPO / "README.md").read_text()
    for name, command in _commands(main):
        assert command.help, f"dedup {name} has no help"
        assert run(*name.split(), "--help").exit_code == 0
        assert f"dedup {name}" in readme, f"dedup {name} is not documented in README.md"


def test_workers_give_the_same_clusters(tmp_path: Path) -> None:
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert run("cluster", str(SAMPLES), "-o", str(one), "--workers", "1", "-q").exit_code == 0
    assert run("cluster", str(SAMPLES), "-o", str(two), "--workers", "2", "-q").exit_code == 0
    assert load_assignments(one) == load_assignments(two) == {A: A, B: A, C: C}


def test_an_output_that_cannot_be_written_is_refused_before_clustering(tmp_path: Path) -> None:
    """-o or --pairs in a missing directory (or naming a directory) is a clear error, found before the documents
    are read rather than after the clustering; nothing is left behind."""
    from dedup.errors import OutputError
    from dedup.jobs import run_cluster_job

    missing = str(tmp_path / "no such directory" / "out.jsonl")
    for args in (["-o", missing], ["-o", str(tmp_path / "out.jsonl"), "--pairs", missing]):
        result = run("cluster", str(SAMPLES), *args)
        assert result.exit_code == 1 and "cannot write it (no such directory)" in result.stderr, result.stderr
    assert list(tmp_path.iterdir()) == []

    def unread():
        raise AssertionError("the documents were read")
        yield

    for output in (missing, str(tmp_path)):
        with pytest.raises(OutputError):
            run_cluster_job(unread(), output=output)


def _die_on_the_second_batch(batch, *args):
    from dedup import parallel

    if batch.first > 1:
        os.kill(os.getpid(), 9)  # (as the kernel's out-of-memory killer would)
    return parallel.prepare_chunk_lines(batch, *args)


def test_a_worker_that_dies_is_a_clean_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A worker process killed (out of memory, say) ends the command with an error that says so, not a traceback
    nor a hang; no output is left."""
    from dedup import parallel

    path = tmp_path / "docs.jsonl"
    path.write_text("".join(json.dumps({"id": str(i), "text": f"story {i} " * 40}) + "\n" for i in range(12)))
    monkeypatch.setattr(parallel, "CHUNK_DOCS", 4)
    monkeypatch.setattr(parallel, "prepare_chunk_lines", parallel.prepare_lines, raising=False)
    monkeypatch.setattr(parallel, "prepare_lines", _die_on_the_second_batch)
    out = tmp_path / "out.jsonl"
    result = run("cluster", str(path), "-o", str(out), "--workers", "2")
    assert result.exit_code == 1, result.output
    assert re.search(r"worker process \d+ died \(exit code -9: killed, out of memory\?\)", result.stderr)
    assert "Traceback" not in result.output and not out.exists()
