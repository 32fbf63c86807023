"""Score predicted clusters against gold clusters or gold pairs (pairwise P/R/F1, ARI, B-cubed)."""

from __future__ import annotations

import csv
import dataclasses
import gzip
import io
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, TextIO

import numpy as np
from sklearn.metrics import adjusted_rand_score

from dedup.errors import DedupError, InputError

__all__ = [
    "ClusterScores", "PairScores", "score_clusters", "score_pairs", "load_assignments", "load_gold",
    "load_gold_pairs", "evaluate_files", "format_scores", "SEMEVAL_POSITIVE_MAX",
]

#: A SemEval-2022 Task 8 pair counts as "same story" when its ``overall`` rating is at most this (1 = very similar).
SEMEVAL_POSITIVE_MAX = 1.5


@dataclass(frozen=True)
class ClusterScores:
    """Scores of a predicted clustering against gold labels (pair counts are unordered same-cluster pairs)."""

    documents: int
    gold_clusters: int
    predicted_clusters: int
    pairwise_precision: float
    pairwise_recall: float
    pairwise_f1: float
    adjusted_rand: float
    bcubed_precision: float
    bcubed_recall: float
    bcubed_f1: float
    true_pairs: int
    predicted_pairs: int
    correct_pairs: int
    mixed_clusters: int

    def as_dict(self) -> dict[str, Any]:
        """The scores as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)


@dataclass(frozen=True)
class PairScores:
    """Scores of same-cluster decisions against labelled gold pairs."""

    pairs: int
    positives: int
    predicted_positives: int
    precision: float
    recall: float
    f1: float

    def as_dict(self) -> dict[str, Any]:
        """The scores as a plain dict (JSON-serialisable)."""
        return dataclasses.asdict(self)


def _prf(correct: int, predicted: int, true: int) -> tuple[float, float, float]:
    """Precision, recall, F1; an empty denominator gives a vacuous 1.0, F1 is 0 when both are 0."""
    precision = correct / predicted if predicted > 0 else 1.0
    recall = correct / true if true > 0 else 1.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return precision, recall, f1


def _factorize(labels: Iterable[str]) -> np.ndarray:
    """Map labels to dense int64 codes 0..k-1 in first-seen order (linear time, no sorting of strings)."""
    codes: dict[str, int] = {}
    return np.fromiter((codes.setdefault(label, len(codes)) for label in labels), dtype=np.int64)


def _pairs(counts: np.ndarray) -> int:
    """Sum of n*(n-1)/2 over an array of group sizes."""
    return int((counts * (counts - 1) // 2).sum())


def _missing(ids: Iterable[str], what: str) -> DedupError:
    """A DedupError listing how many ids are missing from the predictions, with a few examples."""
    missing = sorted(set(ids))
    examples = ", ".join(repr(i) for i in missing[:5]) + (", ..." if len(missing) > 5 else "")
    return DedupError(f"{len(missing)} {what} missing from the predictions (e.g. {examples})")


def score_clusters(predicted: Mapping[str, str], gold: Mapping[str, str]) -> ClusterScores:
    """Score ``predicted`` (doc id -> cluster id) against ``gold`` (doc id -> label) over the ids in ``gold``.

    Predicted ids absent from gold are ignored; gold ids absent from predicted raise DedupError.
    Everything is computed from the gold x predicted contingency counts, in O(n) memory and time.
    """
    ids = list(gold)
    if not ids:
        raise DedupError("gold has no documents to evaluate")
    absent = [i for i in ids if i not in predicted]
    if absent:
        raise _missing(absent, "gold document ids are")
    g = _factorize(gold[i] for i in ids)
    p = _factorize(predicted[i] for i in ids)
    n = len(ids)
    n_gold, n_pred = int(g.max()) + 1, int(p.max()) + 1
    cells, n_ij = np.unique(g * n_pred + p, return_counts=True)
    cell_g, cell_p = cells // n_pred, cells % n_pred
    a = np.bincount(g, minlength=n_gold)  # gold cluster sizes
    b = np.bincount(p, minlength=n_pred)  # predicted cluster sizes
    true_pairs, predicted_pairs, correct_pairs = _pairs(a), _pairs(b), _pairs(n_ij)
    precision, recall, f1 = _prf(correct_pairs, predicted_pairs, true_pairs)
    squares = n_ij.astype(np.float64) ** 2
    b_precision = float((squares / b[cell_p]).sum() / n)
    b_recall = float((squares / a[cell_g]).sum() / n)
    b_f1 = 2 * b_precision * b_recall / (b_precision + b_recall) if b_precision + b_recall > 0 else 0.0
    return ClusterScores(
        documents=n, gold_clusters=n_gold, predicted_clusters=n_pred,
        pairwise_precision=precision, pairwise_recall=recall, pairwise_f1=f1,
        adjusted_rand=float(adjusted_rand_score(g, p)),
        bcubed_precision=b_precision, bcubed_recall=b_recall, bcubed_f1=b_f1,
        true_pairs=true_pairs, predicted_pairs=predicted_pairs, correct_pairs=correct_pairs,
        mixed_clusters=int((np.bincount(cell_p, minlength=n_pred) > 1).sum()),
    )


def score_pairs(predicted: Mapping[str, str], pairs: Iterable[tuple[str, str, bool]]) -> PairScores:
    """Score gold pairs ``(a, b, is_positive)``: a pair is predicted positive when a and b share a predicted cluster."""
    pairs = list(pairs)
    if not pairs:
        raise DedupError("no gold pairs to evaluate")
    absent = [i for a, b, _ in pairs for i in (a, b) if i not in predicted]
    if absent:
        raise _missing(absent, "pair document ids are")
    positives = predicted_positives = correct = 0
    for a, b, label in pairs:
        same = predicted[a] == predicted[b]
        positives += bool(label)
        predicted_positives += same
        correct += same and bool(label)
    precision, recall, f1 = _prf(correct, predicted_positives, positives)
    return PairScores(pairs=len(pairs), positives=positives, predicted_positives=predicted_positives,
                      precision=precision, recall=recall, f1=f1)


def _open_text(path: str | os.PathLike[str]) -> TextIO:
    """Open a UTF-8 text file, transparently gunzipping when it starts with the gzip magic bytes."""
    try:
        with open(path, "rb") as fh:
            gzipped = fh.read(2) == b"\x1f\x8b"
        if gzipped:
            return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
        return open(path, encoding="utf-8-sig", newline="")
    except OSError as exc:
        raise InputError(f"cannot open: {exc.strerror or exc}", path=os.fspath(path)) from exc


def _iter_records(path: str | os.PathLike[str]) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line number, record)`` from JSONL (the default) or a CSV/TSV file with a header row."""
    name = os.fspath(path)
    stem = name[:-3] if name.lower().endswith(".gz") else name
    delimiter = {".csv": ",", ".tsv": "\t"}.get(os.path.splitext(stem)[1].lower())
    line = 0
    try:
        with _open_text(path) as fh:
            if delimiter is not None:
                reader = csv.DictReader(fh, delimiter=delimiter)
                header = reader.fieldnames  # reads line 1
                for row in reader:
                    line = reader.line_num
                    if None in row or None in row.values():
                        raise InputError(f"expected {len(header or [])} fields", path=name, line=line)
                    yield line, row
                return
            for line, text in enumerate(fh, 1):
                if not text.strip():
                    continue
                try:
                    record = json.loads(text)
                except json.JSONDecodeError as exc:
                    raise InputError(f"invalid JSON: {exc.msg} (column {exc.colno})", path=name, line=line) from None
                if not isinstance(record, dict):
                    raise InputError(f"expected a JSON object, got {type(record).__name__}", path=name, line=line)
                yield line, record
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, csv.Error, OSError) as exc:
        raise InputError(f"cannot read: {exc}", path=name, line=line + 1) from exc


def _as_key(value: Any, field: str, path: str, line: int) -> str:
    """A record's id or label as a non-empty str (ints are accepted and converted)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and value:
        return value
    raise InputError(f"field {field!r} must be a non-empty string or integer, got {value!r}", path=path, line=line)


def load_assignments(path: str | os.PathLike[str], *, id_field: str = "id",
                     label_field: str = "cluster_id") -> dict[str, str]:
    """Read doc id -> label from JSONL (optionally gzipped) or CSV/TSV; duplicate ids are an error."""
    name = os.fspath(path)
    result: dict[str, str] = {}
    first_line: dict[str, int] = {}
    for line, record in _iter_records(path):
        for field in (id_field, label_field):
            if field not in record:
                raise InputError(f"missing field {field!r}", path=name, line=line)
        doc_id = _as_key(record[id_field], id_field, name, line)
        if doc_id in result:
            raise InputError(f"duplicate id {doc_id!r} (first on line {first_line[doc_id]})", path=name, line=line)
        result[doc_id] = _as_key(record[label_field], label_field, name, line)
        first_line[doc_id] = line
    return result


def load_gold(path: str | os.PathLike[str], *, id_field: str = "id", label_field: str = "gold") -> dict[str, str]:
    """Read doc id -> gold label; the same reader as :func:`load_assignments`."""
    return load_assignments(path, id_field=id_field, label_field=label_field)


def _pair_label(value: Any, positive: Callable[[Any], bool] | None, field: str, path: str, line: int) -> bool:
    """Turn a gold pair label into a bool: via ``positive`` if given, else bool or 0/1 (CSV strings parsed)."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text in ("true", "false"):
            value = text == "true"
        else:
            try:
                value = float(text)
            except ValueError:
                raise InputError(f"field {field!r} is not a boolean or number: {value!r}", path=path, line=line) from None
    if isinstance(value, bool) and positive is None:
        return value
    if not isinstance(value, (int, float)):
        raise InputError(f"field {field!r} is not a boolean or number: {value!r}", path=path, line=line)
    if positive is not None:
        return bool(positive(value))
    if value in (0, 1):
        return bool(value)
    raise InputError(f"field {field!r} is {value!r}, not 0/1: pass positive= to map it", path=path, line=line)


def load_gold_pairs(path: str | os.PathLike[str], *, a_field: str = "a", b_field: str = "b",
                    label_field: str = "label",
                    positive: Callable[[Any], bool] | None = None) -> list[tuple[str, str, bool]]:
    """Read gold pairs ``(a, b, is_positive)``; a and b are ids or objects with an ``"id"`` key."""
    name = os.fspath(path)
    pairs: list[tuple[str, str, bool]] = []
    for line, record in _iter_records(path):
        ends: list[str] = []
        for field in (a_field, b_field):
            if field not in record:
                raise InputError(f"missing field {field!r}", path=name, line=line)
            value = record[field]
            if isinstance(value, dict):
                if "id" not in value:
                    raise InputError(f"field {field!r} is an object without an 'id'", path=name, line=line)
                value = value["id"]
            ends.append(_as_key(value, field, name, line))
        if label_field not in record:
            raise InputError(f"missing field {label_field!r}", path=name, line=line)
        pairs.append((ends[0], ends[1], _pair_label(record[label_field], positive, label_field, name, line)))
    return pairs


def evaluate_files(pred_path: str | os.PathLike[str], gold_path: str | os.PathLike[str], *, id_field: str = "id",
                   pred_field: str = "cluster_id", gold_field: str = "gold", pair_label_field: str | None = None,
                   positive: Callable[[Any], bool] | None = None) -> ClusterScores | PairScores:
    """Score a predictions file against a gold file, detecting the gold format from its first record.

    A first record with fields ``a`` and ``b`` means gold pairs; the label is ``pair_label_field`` if given, else
    ``label`` if present, else SemEval's ``overall`` with positive = ``overall <= SEMEVAL_POSITIVE_MAX`` (unless
    ``positive`` is given). Otherwise the gold file holds ``id_field`` -> ``gold_field`` cluster labels.
    """
    first = next((record for _, record in _iter_records(gold_path)), None)
    if first is None:
        raise InputError("no records", path=os.fspath(gold_path))
    predicted = load_assignments(pred_path, id_field=id_field, label_field=pred_field)
    if "a" in first and "b" in first:
        field = pair_label_field or ("label" if "label" in first or "overall" not in first else "overall")
        if field == "overall" and positive is None:
            positive = lambda v: v <= SEMEVAL_POSITIVE_MAX  # noqa: E731
        return score_pairs(predicted, load_gold_pairs(gold_path, label_field=field, positive=positive))
    return score_clusters(predicted, load_gold(gold_path, id_field=id_field, label_field=gold_field))


def format_scores(scores: ClusterScores | PairScores) -> str:
    """A small aligned two-column table: counts as integers, scores with 4 decimals."""
    items = scores.as_dict()
    width = max(len(key) for key in items)
    return "\n".join(f"{key:<{width}}  {value:>9,}" if isinstance(value, int) else f"{key:<{width}}  {value:>9.4f}"
                     for key, value in items.items())
