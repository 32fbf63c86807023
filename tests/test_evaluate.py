"""Tests for dedup.evaluate: metrics against brute-force references, file loading, pairs mode."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import adjusted_rand_score

from dedup.errors import DedupError, InputError
from dedup.evaluate import (
    ClusterScores, PairScores, evaluate_files, format_scores, load_assignments, load_gold, load_gold_pairs,
    score_clusters, score_pairs,
)


def brute_force(pred: dict[str, str], gold: dict[str, str]) -> dict[str, float]:
    """Reference scores by enumerating every pair and every document."""
    ids = list(gold)
    true = predicted = correct = 0
    for x, y in itertools.combinations(ids, 2):
        same_gold, same_pred = gold[x] == gold[y], pred[x] == pred[y]
        true += same_gold
        predicted += same_pred
        correct += same_gold and same_pred
    precision = correct / predicted if predicted else 1.0
    recall = correct / true if true else 1.0
    bp = br = 0.0
    for d in ids:
        pc = {e for e in ids if pred[e] == pred[d]}
        gc = {e for e in ids if gold[e] == gold[d]}
        bp += len(pc & gc) / len(pc)
        br += len(pc & gc) / len(gc)
    bp, br = bp / len(ids), br / len(ids)
    return {
        "true_pairs": true, "predicted_pairs": predicted, "correct_pairs": correct,
        "pairwise_precision": precision, "pairwise_recall": recall,
        "pairwise_f1": 2 * precision * recall / (precision + recall) if precision + recall else 0.0,
        "bcubed_precision": bp, "bcubed_recall": br, "bcubed_f1": 2 * bp * br / (bp + br),
        "mixed_clusters": sum(len({gold[d] for d in ids if pred[d] == c}) > 1 for c in {pred[d] for d in ids}),
    }


labelings = st.integers(1, 25).flatmap(lambda n: st.tuples(
    st.lists(st.integers(0, 6), min_size=n, max_size=n), st.lists(st.integers(0, 6), min_size=n, max_size=n)))


@settings(max_examples=300, deadline=None)
@given(labelings)
def test_matches_brute_force(labels: tuple[list[int], list[int]]) -> None:
    gold_labels, pred_labels = labels
    gold = {f"d{i}": f"g{v}" for i, v in enumerate(gold_labels)}
    pred = {f"d{i}": f"p{v}" for i, v in enumerate(pred_labels)}
    scores = score_clusters(pred, gold)
    for key, value in brute_force(pred, gold).items():
        assert getattr(scores, key) == pytest.approx(value), key
    assert scores.adjusted_rand == pytest.approx(adjusted_rand_score(gold_labels, pred_labels))
    assert scores.documents == len(gold)
    assert scores.gold_clusters == len(set(gold_labels))
    assert scores.predicted_clusters == len(set(pred_labels))


@settings(max_examples=100, deadline=None)
@given(labelings, st.randoms())
def test_label_permutation_invariance(labels: tuple[list[int], list[int]], rnd) -> None:
    gold_labels, pred_labels = labels
    gold = {f"d{i}": f"g{v}" for i, v in enumerate(gold_labels)}
    pred = {f"d{i}": f"p{v}" for i, v in enumerate(pred_labels)}
    perm = list(range(7))
    rnd.shuffle(perm)
    renamed = {d: f"q{perm[int(c[1:])]}" for d, c in pred.items()}
    order = list(gold)
    rnd.shuffle(order)
    shuffled = score_clusters(renamed, {d: gold[d] for d in order}).as_dict()
    assert shuffled == pytest.approx(score_clusters(pred, gold).as_dict())


def test_perfect_prediction() -> None:
    gold = {"a": "x", "b": "x", "c": "y", "d": "z"}
    scores = score_clusters({"a": "1", "b": "1", "c": "2", "d": "3"}, gold)
    for name in ("pairwise_precision", "pairwise_recall", "pairwise_f1", "adjusted_rand",
                 "bcubed_precision", "bcubed_recall", "bcubed_f1"):
        assert getattr(scores, name) == 1.0, name
    assert scores.mixed_clusters == 0 and scores.correct_pairs == scores.true_pairs == 1


def test_all_singletons() -> None:
    gold = {"a": "x", "b": "x", "c": "x", "d": "y"}
    scores = score_clusters({d: d for d in gold}, gold)
    assert scores.pairwise_recall == 0.0 and scores.pairwise_precision == 1.0 and scores.pairwise_f1 == 0.0
    assert scores.predicted_pairs == 0 and scores.true_pairs == 3
    assert scores.bcubed_precision == 1.0 and scores.bcubed_recall == pytest.approx((1 / 3 * 3 + 1) / 4)


def test_mixed_clusters() -> None:
    gold = {"a": "x", "b": "y", "c": "x", "d": "x", "e": "z", "f": "z"}
    pred = {"a": "1", "b": "1", "c": "2", "d": "2", "e": "3", "f": "4", "extra": "1"}
    scores = score_clusters(pred, gold)
    assert scores.mixed_clusters == 1 and scores.predicted_clusters == 4
    assert score_clusters({d: "all" for d in gold}, gold).mixed_clusters == 1


def test_missing_ids_raise() -> None:
    gold = {f"d{i}": "x" for i in range(10)}
    with pytest.raises(DedupError, match="8 gold document ids.*'d2'"):
        score_clusters({"d0": "1", "d1": "1"}, gold)
    with pytest.raises(DedupError, match="gold has no documents"):
        score_clusters({}, {})
    with pytest.raises(DedupError, match="1 pair document id"):
        score_pairs({"a": "1"}, [("a", "b", True)])


def test_score_pairs() -> None:
    pred = {"a": "1", "b": "1", "c": "2", "d": "2", "e": "3"}
    scores = score_pairs(pred, [("a", "b", True), ("c", "d", False), ("a", "e", True), ("b", "c", False)])
    assert scores == PairScores(pairs=4, positives=2, predicted_positives=2, precision=0.5, recall=0.5, f1=0.5)


def write_jsonl(path: Path, rows: list[object], gz: bool = False) -> Path:
    text = "".join(json.dumps(r) + "\n" for r in rows)
    if gz:
        with gzip.open(path, "wt", encoding="utf-8") as fh:
            fh.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_load_jsonl_gz_csv_tsv(tmp_path: Path) -> None:
    rows = [{"id": "a", "cluster_id": "c1"}, {"id": 7, "cluster_id": 3}]
    expected = {"a": "c1", "7": "3"}
    assert load_assignments(write_jsonl(tmp_path / "p.jsonl", rows)) == expected
    assert load_assignments(write_jsonl(tmp_path / "p.jsonl.gz", rows, gz=True)) == expected
    (tmp_path / "p.csv").write_text("id,cluster_id,x\na,c1,\n7,3,z\n", encoding="utf-8")
    assert load_assignments(tmp_path / "p.csv") == expected
    (tmp_path / "g.tsv").write_text("doc\tstory\na\tS\n", encoding="utf-8")
    assert load_gold(tmp_path / "g.tsv", id_field="doc", label_field="story") == {"a": "S"}


@pytest.mark.parametrize("content, line, message", [
    ('{"id": "a", "cluster_id": "1"}\n{"id": "b", "cluster_id": \n', 2, "invalid JSON"),
    ('{"id": "a", "cluster_id": "1"}\n\n[1, 2]\n', 3, "expected a JSON object"),
    ('{"id": "a"}\n', 1, "missing field 'cluster_id'"),
    ('{"id": "a", "cluster_id": "1"}\n{"id": "a", "cluster_id": "2"}\n', 2, "duplicate id 'a'.*line 1"),
    ('{"id": null, "cluster_id": "1"}\n', 1, "non-empty string"),
])
def test_malformed_jsonl(tmp_path: Path, content: str, line: int, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_assignments(path)
    assert info.value.path == str(path) and info.value.line == line
    assert str(info.value).startswith(f"{path}:{line}: ")


def test_malformed_csv_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("id,cluster_id\na,1\nb\n", encoding="utf-8")
    with pytest.raises(InputError, match="expected 2 fields") as info:
        load_assignments(path)
    assert info.value.line == 3
    with pytest.raises(InputError, match="cannot open"):
        load_assignments(tmp_path / "nope.jsonl")


SEMEVAL = [
    {"pair_id": "1_2", "a": {"id": "1", "lang": "en"}, "b": {"id": "2", "lang": "en"}, "overall": 1.25},
    {"pair_id": "1_3", "a": {"id": "1"}, "b": {"id": "3"}, "overall": 3.5},
    {"pair_id": "3_4", "a": {"id": "3"}, "b": {"id": "4"}, "overall": 1.0},
    {"pair_id": "2_4", "a": {"id": "2"}, "b": {"id": "4"}, "overall": 4.0},
]


def test_semeval_like_pairs(tmp_path: Path) -> None:
    gold_path = write_jsonl(tmp_path / "pairs.jsonl.gz", SEMEVAL, gz=True)
    pairs = load_gold_pairs(gold_path, label_field="overall", positive=lambda v: v <= 1.5)
    assert pairs == [("1", "2", True), ("1", "3", False), ("3", "4", True), ("2", "4", False)]
    with pytest.raises(InputError, match="pass positive="):
        load_gold_pairs(gold_path, label_field="overall")
    pred_path = write_jsonl(tmp_path / "pred.jsonl", [{"id": d, "cluster_id": c} for d, c in
                                                      [("1", "x"), ("2", "x"), ("3", "x"), ("4", "y")]])
    scores = evaluate_files(pred_path, gold_path)
    assert scores == PairScores(pairs=4, positives=2, predicted_positives=2, precision=0.5, recall=0.5, f1=0.5)
    assert "precision" in format_scores(scores)


def test_plain_pairs_with_labels(tmp_path: Path) -> None:
    path = write_jsonl(tmp_path / "p.jsonl", [{"a": "x", "b": "y", "label": True}, {"a": "x", "b": "z", "label": 0}])
    assert load_gold_pairs(path) == [("x", "y", True), ("x", "z", False)]
    bad = write_jsonl(tmp_path / "bad.jsonl", [{"a": "x", "b": {"lang": "en"}, "label": 1}])
    with pytest.raises(InputError, match="without an 'id'") as info:
        load_gold_pairs(bad)
    assert info.value.line == 1


def test_evaluate_files_clusters_mode(tmp_path: Path) -> None:
    gold_path = write_jsonl(tmp_path / "gold.jsonl", [{"id": d, "gold": g, "text": "t"} for d, g in
                                                      [("a", "s1"), ("b", "s1"), ("c", "s2")]])
    pred_path = tmp_path / "pred.csv"
    pred_path.write_text("id,cluster_id\na,1\nb,1\nc,1\nz,9\n", encoding="utf-8")
    scores = evaluate_files(pred_path, gold_path)
    assert isinstance(scores, ClusterScores)
    assert (scores.true_pairs, scores.predicted_pairs, scores.correct_pairs) == (1, 3, 1)
    assert scores.mixed_clusters == 1
    table = format_scores(scores)
    assert "pairwise_f1" in table and "0.5000" in table and len({line.index("  ") for line in table.splitlines()}) >= 1
    pred_path.write_text("id,cluster_id\na,1\n", encoding="utf-8")
    with pytest.raises(DedupError, match="2 gold document ids"):
        evaluate_files(pred_path, gold_path)
