"""Pieces shared by the `dedup` commands: reading inputs, reporting skipped records, errors, progress."""

from __future__ import annotations

import sys
from typing import Any, Callable

import click


def fail(error: Exception) -> click.ClickException:
    """A library error as a clean CLI error (message, exit status 1, no traceback)."""
    return click.ClickException(str(error))


def reporter(quiet: bool) -> Callable[[str], None] | None:
    """Progress messages to stderr, only when it is a terminal and not --quiet."""
    if quiet or not sys.stderr.isatty():
        return None
    return lambda message: click.echo(f"dedup: {message}...", err=True)


def read_options(f: Callable[..., Any]) -> Callable[..., Any]:
    """The input options every command that reads articles takes."""
    for decorator in reversed(
        [
            click.option("--id-field", default="id", show_default=True, help="JSONL/CSV field holding the document id."),
            click.option("--text-field", default="text", show_default=True, help="Field holding the article text."),
            click.option("--date-field", default="date", show_default=True, help="Field holding the date (ISO 8601)."),
            click.option("--skip-bad", is_flag=True, help="Skip bad records and report a count instead of failing."),
            click.option("--max-chars", type=int, default=5_000_000, show_default=True, help="Longest document accepted."),
        ]
    ):
        f = decorator(f)
    return f


def read(inputs: tuple[str, ...], id_field: str, text_field: str, date_field: str, skip_bad: bool, max_chars: int):
    """(documents iterator, ReadStats) for the inputs, as the read options say."""
    from dedup.read import ReadOptions, ReadStats, read_documents

    stats = ReadStats()
    options = ReadOptions(
        id_field=id_field, text_field=text_field, date_field=date_field, skip_bad=skip_bad, max_chars=max_chars
    )
    return read_documents(list(inputs), options=options, stats=stats), stats


def report_skipped(stats: Any) -> None:
    """Say on stderr how many records were skipped, why, and where the first ones were."""
    if stats.skipped:
        reasons = ", ".join(f"{count} {reason}" for reason, count in stats.reasons.most_common())
        click.echo(f"dedup: skipped {stats.skipped} bad record(s): {reasons}", err=True)
        for path, line, message in stats.examples[:5]:
            where = f"{path}:{line}" if line is not None else path
            click.echo(f"dedup:   {where}: {message}", err=True)
