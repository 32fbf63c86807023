"""The `dedup` command line: thin click commands over the library functions."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Callable, NoReturn

import click

from dedup.cli_common import fail as _fail
from dedup.cli_common import read as _read
from dedup.cli_common import read_options as _read_options
from dedup.cli_common import report_skipped as _report_skipped
from dedup.cli_common import reporter as _reporter
from dedup.cli_index import index_group
from dedup.errors import DedupError
from dedup.write import json_line



@click.group()
@click.version_option(package_name="dedup")
def main() -> None:
    """Find copies of the same news story (syndicated, republished, restyled)."""


@main.command("cluster")
@click.argument("inputs", nargs=-1, required=True)
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Output file (default: stdout).")
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv", "tsv"]), default="jsonl", show_default=True)
@click.option("--pairs", "pairs_path", type=click.Path(dir_okay=False, writable=True), help="Also write confirmed pairs with scores (JSONL).")
@_read_options
@click.option("--shingle-size", type=int, default=None, help="Words per shingle (default 3).")
@click.option("--lsh-threshold", type=float, default=None, help="Estimated Jaccard for LSH candidates (default 0.1).")
@click.option("--cosine", type=float, default=None, help="TF-IDF cosine that confirms a copy (default 0.55).")
@click.option("--containment", type=float, default=None, help="Shingle containment that confirms a truncated copy (default 0.7).")
@click.option("--keep-boilerplate", is_flag=True, help="Do not strip bylines, datelines, credits and footers.")
@click.option("--workers", type=click.IntRange(min=1), default=None,
              help="Processes that normalise and fingerprint in parallel (default: one per CPU; 1: none). "
                   "The result is the same for any number.")
@click.option("-q", "--quiet", is_flag=True, help="No progress and no summary on stderr.")
def cluster_command(inputs, output, fmt, pairs_path, id_field, text_field, date_field, skip_bad, max_chars,
                    shingle_size, lsh_threshold, cosine, containment, keep_boilerplate, workers, quiet) -> None:
    """Cluster the articles in INPUT... (directories of .txt, JSONL, CSV/TSV, .gz, or - for JSONL on stdin).

    Writes one record per document: id, cluster_id (the id of the story's
    earliest article), cluster_size, canonical.
    """
    from dedup.jobs import run_cluster_job

    settings = {k: v for k, v in dict(shingle_size=shingle_size, lsh_threshold=lsh_threshold, cosine=cosine,
                                      containment=containment).items() if v is not None}
    if keep_boilerplate:
        settings["strip_boilerplate"] = False
    try:
        docs, stats = _read(inputs, id_field, text_field, date_field, skip_bad, max_chars)
        result = run_cluster_job(docs, output=output, fmt=fmt, pairs_path=pairs_path, progress=_reporter(quiet),
                                 workers=workers, **settings)
    except DedupError as error:
        raise _fail(error) from None
    _report_skipped(stats)
    if not quiet:
        s = result.stats
        click.echo(
            f"dedup: {s['documents']:,} documents, {s['clusters']:,} clusters, {s['duplicates']:,} duplicates, "
            f"{s['seconds']:.2f} s", err=True
        )


@main.command("evaluate")
@click.argument("pred", type=click.Path(exists=True, dir_okay=False))
@click.argument("gold", type=click.Path(exists=True, dir_okay=False))
@click.option("--id-field", default="id", show_default=True, help="Id field in both files.")
@click.option("--pred-field", default="cluster_id", show_default=True, help="Cluster field in PRED.")
@click.option("--gold-field", default="gold", show_default=True, help="Gold label field in GOLD (cluster mode).")
@click.option("--json", "as_json", is_flag=True, help="Print the scores as one JSON object.")
def evaluate_command(pred, gold, id_field, pred_field, gold_field, as_json) -> None:
    """Score predicted clusters PRED against GOLD clusters (id + label) or GOLD pairs (a, b, label).

    Prints pairwise precision/recall/F1, adjusted Rand index and B-cubed
    scores for gold clusters; precision/recall/F1 for gold pairs.
    """
    from dedup.evaluate import evaluate_files, format_scores

    try:
        scores = evaluate_files(pred, gold, id_field=id_field, pred_field=pred_field, gold_field=gold_field)
    except DedupError as error:
        raise _fail(error) from None
    click.echo(json.dumps(scores.as_dict()) if as_json else format_scores(scores))


@main.command("explain")
@click.argument("a")
@click.argument("b")
@click.option("--corpus", "corpus", multiple=True, help="Input(s) holding A and B as ids; TF-IDF weights come from it.")
@_read_options
@click.option("--passages", type=int, default=5, show_default=True, help="How many shared passages to list.")
@click.option("--json", "as_json", is_flag=True, help="Print the explanation as one JSON object.")
@click.option("--color/--no-color", default=None, help="Highlight shared passages (default: when stdout is a terminal).")
def explain_command(a, b, corpus, id_field, text_field, date_field, skip_bad, max_chars, passages, as_json, color) -> None:
    """Explain why articles A and B are (not) copies: scores, shared passages, decision and reason.

    A and B are two files (.txt, or one-record JSONL/CSV), or with --corpus two ids in that corpus.
    """
    from dedup.explain import explain_inputs

    try:
        result = explain_inputs(a, b, corpus=list(corpus), read=lambda inputs: _read(inputs, id_field, text_field,
                                                                                        date_field, skip_bad, max_chars)[0])
    except DedupError as error:
        raise _fail(error) from None
    if as_json:
        click.echo(json_line(result.as_dict()), nl=False)
        return
    styled = sys.stdout.isatty() if color is None else color
    mark = (lambda t: click.style(t, fg="green", bold=True)) if styled else (lambda t: f"[[{t}]]")
    click.echo(format_explanation(result, mark=mark, passages=passages))


def format_explanation(result: Any, *, mark: Callable[[str], str], passages: int) -> str:
    """Human-readable explanation: scores, decision, shared passages, A with passages marked."""
    from dedup.explain import highlight

    lines = [
        f"A: {result.a}",
        f"B: {result.b}",
        f"estimated Jaccard {result.jaccard:.2f}   TF-IDF cosine {result.cosine:.2f}   "
        f"containment {result.containment:.2f}   numbers {result.numbers:.2f}",
        f"decision: {result.reason}",
    ]
    if result.same_cluster is not None:
        lines.append(f"same cluster in the corpus: {'yes' if result.same_cluster else 'no'}")
    shown = result.passages[:passages]
    lines.append(f"shared passages: {len(result.passages)} (longest first)")
    lines += [f'  {p.words:3d} words: "{p.text[:160]}{"..." if len(p.text) > 160 else ""}"' for p in shown]
    lines += ["", "A, shared passages marked:", highlight(result.tokens_a, result.passages, mark=mark)]
    return "\n".join(lines)


main.add_command(index_group)


def run() -> NoReturn:
    """The ``dedup`` command: :func:`main`, then :func:`quick_exit` with its exit status."""
    try:
        main()
    except SystemExit as done:
        quick_exit(done.code)
    quick_exit(0)


def quick_exit(code: int | str | None) -> NoReturn:
    """End the process with ``code`` (as ``SystemExit`` takes it) once stdout and stderr are flushed, without the
    interpreter's teardown: the commands close their files themselves (result files are complete and fsynced,
    indexes closed), and with numba's compiled code loaded the teardown takes ~0.2 s, 5% of clustering 20k
    articles. Library callers never get here: only the console command (and benchmarks/speed.py, which runs
    ``dedup cluster`` as the command does)."""
    if isinstance(code, str):
        print(code, file=sys.stderr)
    status = code if isinstance(code, int) else (0 if code is None else 1)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (BrokenPipeError, ValueError):  # (a reader that went away; a closed stream)
            status = status or 1
    os._exit(status)


if __name__ == "__main__":  # pragma: no cover
    run()
