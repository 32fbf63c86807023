"""`dedup index` commands, run with click's CliRunner and checked through the Python API."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from dedup.cli import main
from dedup.index import Index

from conftest import SAMPLES
from index_helpers import A, B, C


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def test_add_check_stats_expire(tmp_path: Path) -> None:
    path = str(tmp_path / "feed.db")
    jsonl = tmp_path / "two.jsonl"
    jsonl.write_text("".join(
        json.dumps({"doc": p.stem, "body": p.read_text(), "when": "2026-11-20T06:00:00Z"}) + "\n"
        for p in sorted(SAMPLES.glob("*.txt"))[:2]
    ))
    result = run("index", "add", path, str(jsonl), "--id-field", "doc", "--text-field", "body", "--date-field", "when")
    assert result.exit_code == 0, result.output
    assert "added 2 articles (1 joined a story, 1 new)" in result.stderr
    with Index.open(path, read_only=True) as index:
        assert len(index) == 2 and index.cluster_of(B) == A and index.get(A).date.year == 2026

    result = run("index", "check", path, str(SAMPLES / f"{C}.txt"), str(SAMPLES / f"{B}.txt"), "--exit-code")
    assert result.exit_code == 1
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert rows[0] == {"id": C, "duplicate_of": None, "cluster_id": None, "matches": []}
    assert rows[1]["duplicate_of"] == A and rows[1]["cluster_id"] == A
    assert set(rows[1]["matches"][0]) == {"id", "cluster_id", "jaccard", "cosine", "containment"}

    stdin = json.dumps({"id": "new", "text": (SAMPLES / f"{C}.txt").read_text()}) + "\n"
    result = run("index", "check", path, "-", "--exit-code", input=stdin)
    assert result.exit_code == 0 and json.loads(result.stdout)["duplicate_of"] is None

    result = run("index", "stats", path, "--json")
    stats = json.loads(result.stdout)
    assert stats["documents"] == 2 and stats["stories"] == 1 and stats["format_version"] == 2 and stats["bytes"] > 0

    result = run("index", "expire", path, "--before", "2026-11-21")
    assert result.exit_code == 0 and "removed 2 articles" in result.stderr
    with Index.open(path, read_only=True) as index:
        assert len(index) == 0 and index.integrity() == []


def test_errors_say_how_to_fix(tmp_path: Path) -> None:
    path = str(tmp_path / "feed.db")
    assert run("index", "add", path, str(SAMPLES), "-q").exit_code == 0
    result = run("index", "add", path, str(SAMPLES))
    assert result.exit_code == 1 and "already indexed; pass replace=True" in result.stderr
    assert run("index", "add", path, str(SAMPLES), "--replace", "-q").exit_code == 0
    result = run("index", "check", str(tmp_path / "missing.db"), str(SAMPLES))
    assert result.exit_code == 1 and "no such index" in result.stderr
    result = run("index", "add", str(tmp_path / "missing" / "feed.db"), str(SAMPLES))
    assert result.exit_code == 1 and "cannot create or open the index" in result.stderr and "Traceback" not in result.stderr
    result = run("index", "expire", path, "--before", "yesterday")
    assert result.exit_code == 2 and "ISO 8601" in result.stderr
    for command in ("add", "check", "stats", "expire"):
        assert run("index", command, "--help").exit_code == 0


def test_add_together_gives_the_ids_of_dedup_cluster(tmp_path: Path) -> None:
    """`dedup index add --together` on a new index: the story ids `dedup cluster` writes."""
    path = str(tmp_path / "feed.db")
    jsonl = tmp_path / "dated.jsonl"
    hours = {A: 5, B: 0, C: 1}  # out of date order: the story of A and B is named after B
    jsonl.write_text("".join(
        json.dumps({"id": p.stem, "text": p.read_text(), "date": f"2026-11-20T0{hours[p.stem]}:00:00Z"}) + "\n"
        for p in sorted(SAMPLES.glob("*.txt"))
    ))
    out = tmp_path / "clusters.jsonl"
    assert run("cluster", str(jsonl), "-o", str(out), "--quiet").exit_code == 0
    expected = {row["id"]: row["cluster_id"] for row in map(json.loads, out.read_text().splitlines())}
    assert expected == {A: B, B: B, C: C}
    result = run("index", "add", path, str(jsonl), "--together")
    assert result.exit_code == 0, result.output
    assert "added 3 articles (1 joined a story, 2 new)" in result.stderr
    with Index.open(path, read_only=True) as index:
        assert {i: index.cluster_of(i) for i in expected} == expected


def test_check_prints_an_id_with_a_lone_surrogate(tmp_path: Path) -> None:
    """JSON input may hold a lone surrogate in an id (valid JSON, not encodable as UTF-8): `index check` prints it
    escaped, and the line reads back to the same id (no UnicodeEncodeError traceback)."""
    index = str(tmp_path / "idx.db")
    assert run("index", "add", index, str(SAMPLES), "--quiet").exit_code == 0
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a\\ud800b", "text": "A story about a thing."}\n')
    result = run("index", "check", index, str(src))
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["id"] for line in result.stdout.splitlines()] == ["a\ud800b"]
