"""The `dedup index` commands: a persistent near-duplicate index for live feeds (thin over dedup.index)."""

from __future__ import annotations

import json
from datetime import timedelta

import click

from dedup.cli_common import fail as _fail
from dedup.cli_common import read as _read
from dedup.cli_common import read_options as _read_options
from dedup.cli_common import report_skipped as _report_skipped
from dedup.errors import DedupError
from dedup.write import json_line


def _hours(value: float | None) -> timedelta | None:
    if value is None:
        return None
    if value <= 0:
        raise click.BadParameter("must be a positive number of hours", param_hint="--window")
    return timedelta(hours=value)


@click.group("index")
def index_group() -> None:
    """A persistent index for live feeds: check and add articles one batch at a time.

    INDEX is a file path (SQLite, created when new) or redis://host:port/db[?prefix=NAME].
    """


@index_group.command("add")
@click.argument("index")
@click.argument("inputs", nargs=-1, required=True)
@_read_options
@click.option("--replace", is_flag=True, help="Replace articles whose id is already indexed.")
@click.option("--window", type=float, default=None, help="Time window in hours for matching (saved as the index's default).")
@click.option("--together", is_flag=True,
              help="Cluster all the input at once as `dedup cluster` does (same story ids), then join indexed stories.")
@click.option("-q", "--quiet", is_flag=True, help="No summary on stderr.")
def add_command(index, inputs, id_field, text_field, date_field, skip_bad, max_chars, replace, window, together,
                quiet) -> None:
    """Add the articles in INPUT... (directories of .txt, JSONL, CSV/TSV, .gz, or -) to INDEX.

    Each article joins the story of its best confirmed match or starts a new story. With --together
    the input is one batch (held in memory) clustered as `dedup cluster` clusters it.
    """
    from dedup.jobs import index_documents

    try:
        docs, stats = _read(inputs, id_field, text_field, date_field, skip_bad, max_chars)
        summary = index_documents(index, docs, replace=replace, window=_hours(window), together=together)
    except DedupError as error:
        raise _fail(error) from None
    _report_skipped(stats)
    if not quiet:
        click.echo(
            f"dedup: added {summary['added']:,} articles ({summary['joined']:,} joined a story, "
            f"{summary['new_stories']:,} new); index has {summary['documents']:,} articles in "
            f"{summary['stories']:,} stories; {summary['seconds']:.2f} s", err=True
        )


@index_group.command("check")
@click.argument("index")
@click.argument("inputs", nargs=-1, required=True)
@_read_options
@click.option("--window", type=float, default=None, help="Time window in hours (default: the index's).")
@click.option("--exit-code", is_flag=True, help="Exit with status 1 when any article is a duplicate (like grep).")
def check_command(index, inputs, id_field, text_field, date_field, skip_bad, max_chars, window, exit_code) -> None:
    """Check the articles in INPUT... (or - for JSONL on stdin) against INDEX without adding them.

    Prints one JSON line per article: id, duplicate_of (best match or null),
    cluster_id (its story or null) and matches with their scores.
    """
    from dedup.index import DEFAULT
    from dedup.jobs import check_documents

    duplicates = 0
    try:
        docs, stats = _read(inputs, id_field, text_field, date_field, skip_bad, max_chars)
        for row in check_documents(index, docs, window=DEFAULT if window is None else _hours(window)):
            duplicates += row["duplicate_of"] is not None
            click.echo(json_line(row), nl=False)
    except DedupError as error:
        raise _fail(error) from None
    _report_skipped(stats)
    if exit_code and duplicates:
        raise SystemExit(1)


@index_group.command("stats")
@click.argument("index")
@click.option("--json", "as_json", is_flag=True, help="Print the facts as one JSON object.")
def stats_command(index, as_json) -> None:
    """Show INDEX's size: articles, stories, bytes, format version and window."""
    from dedup.jobs import index_stats

    try:
        stats = index_stats(index)
    except DedupError as error:
        raise _fail(error) from None
    if as_json:
        click.echo(json.dumps(stats))
        return
    for key, value in stats.items():
        click.echo(f"{key}: {value}")


@index_group.command("expire")
@click.argument("index")
@click.option("--before", required=True, help="Remove articles dated before this (ISO 8601; undated: added before it).")
def expire_command(index, before) -> None:
    """Remove old articles (and their document frequencies) from INDEX to keep it bounded."""
    from dedup.jobs import expire_index
    from dedup.read import parse_date

    try:
        when = parse_date(before)
    except ValueError as error:
        raise click.BadParameter(str(error), param_hint="--before") from None
    if when is None:
        raise click.BadParameter("give a date like 2026-11-20 or 2026-11-20T06:00:00Z", param_hint="--before")
    try:
        removed = expire_index(index, before=when)
    except DedupError as error:
        raise _fail(error) from None
    click.echo(f"dedup: removed {removed:,} articles", err=True)
