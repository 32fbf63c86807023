"""Accuracy of dedup (and peers) on the labelled news sets in ../shared/data, in one table.

    python benchmarks/quality.py [--data DIR] [--json OUT] [--set NAME ...] [--option key=value ...]
"""

from __future__ import annotations

import argparse
import gzip
import json
import re
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Callable


from dedup import Document, Options, cluster
from dedup.evaluate import score_clusters
from dedup.read import ReadOptions, read_documents

DEFAULT_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RESULTS = Path(__file__).resolve().parent / "results"

# A clustering method: documents -> {id: cluster id}
Method = Callable[[list[Document]], dict[str, str]]


def load(data: Path, name: str) -> tuple[list[Document], list[dict]]:
    """Documents and raw records (for gold labels) of one data set."""
    path = data / f"{name}.jsonl.gz"
    records = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    docs = list(read_documents([path], options=ReadOptions()))
    return docs, records


def dedup_method(**settings: object) -> Method:
    def run(docs: list[Document]) -> dict[str, str]:
        return cluster(docs, **settings).assignments

    return run


def eval_gold_clusters(method: Method, data: Path, name: str) -> dict[str, object]:
    docs, records = load(data, name)
    started = time.perf_counter()
    predicted = method(docs)
    seconds = time.perf_counter() - started
    gold = {r["id"]: r["gold"] for r in records}
    scores = score_clusters(predicted, gold)
    out: dict[str, object] = {
        "set": name,
        "docs": len(docs),
        "pairwise_precision": round(scores.pairwise_precision, 4),
        "pairwise_recall": round(scores.pairwise_recall, 4),
        "pairwise_f1": round(scores.pairwise_f1, 4),
        "ari": round(scores.adjusted_rand, 4),
        "mixed_clusters": scores.mixed_clusters,
        "seconds": round(seconds, 2),
    }
    kinds = {r["id"]: r.get("kind") for r in records}
    if any(k == "roundup" for k in kinds.values()):
        size = Counter(predicted.values())
        out["roundups_merged"] = sum(1 for i, k in kinds.items() if k == "roundup" and size[predicted[i]] > 1)
    return out


def _exact_key(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def eval_exact_groups(method: Method, data: Path, name: str, *, with_title: bool) -> dict[str, object]:
    """Every group of whitespace/case-identical texts must end up in one cluster."""
    docs, records = load(data, name)
    predicted = method(docs)
    groups: dict[str, list[str]] = defaultdict(list)
    for r in records:
        key = _exact_key((r.get("title") or "") + "\n" + r["text"] if with_title else r["text"])
        groups[key].append(r["id"])
    multi = [ids for ids in groups.values() if len(ids) > 1]
    found = sum(1 for ids in multi if len({predicted[i] for i in ids}) == 1)
    clusters = Counter(predicted.values())
    return {"set": name, "docs": len(docs), "exact_groups": len(multi), "exact_groups_found": found,
            "clusters": len(clusters), "docs_in_clusters": sum(v for v in clusters.values() if v > 1)}


def eval_semeval(method: Method, data: Path) -> dict[str, object]:
    """All articles of the pair set clustered as one corpus; pairs put in one cluster should be
    similar (overall <= 2); recall of the overall <= 1.5 pairs per language pair."""
    path = data / "semeval-train-pairs.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    texts: dict[str, str] = {}
    for row in rows:
        for side in (row["a"], row["b"]):
            texts.setdefault(str(side["id"]), side["text"])
    pred = method([Document(id=i, text=t) for i, t in texts.items()])
    clustered = similar = 0
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for row in rows:
        a, b = row["a"], row["b"]
        same = pred[str(a["id"])] == pred[str(b["id"])]
        lang = f"{a['lang']}-{b['lang']}"
        if same:
            clustered += 1
            similar += row["overall"] <= 2.0
        if row["overall"] <= 1.5:
            recall[lang][1] += 1
            recall[lang][0] += same
    return {
        "set": "semeval-train-pairs",
        "pairs": len(rows),
        "articles": len(texts),
        "clustered_pairs": clustered,
        "clustered_with_overall_le_2": round(similar / clustered, 4) if clustered else 1.0,
        "recall_le_1_5": {k: f"{v[0]}/{v[1]}" for k, v in sorted(recall.items())},
    }


def run_all(method: Method, data: Path, sets: list[str]) -> list[dict[str, object]]:
    out = []
    for name in sets:
        if name in ("syndication-dev", "ecbplus-dev", "ecbplus-train"):
            out.append(eval_gold_clusters(method, data, name))
        elif name in ("reuters21578", "bbc"):
            out.append(eval_exact_groups(method, data, name, with_title=name == "bbc"))
        elif name == "semeval-train-pairs":
            out.append(eval_semeval(method, data))
        else:
            raise SystemExit(f"unknown set {name}")
    return out


ALL_SETS = ["syndication-dev", "ecbplus-dev", "ecbplus-train", "reuters21578", "bbc", "semeval-train-pairs"]


def _parse_option(text: str) -> tuple[str, object]:
    key, _, value = text.partition("=")
    for cast in (int, float):
        try:
            return key, cast(value)
        except ValueError:
            pass
    return key, {"true": True, "false": False}.get(value.lower(), value)


def threshold_curve(data: Path, *, values: list[float]) -> list[dict[str, float]]:
    """Pairwise precision/recall on syndication-dev as the cosine threshold varies (other settings default)."""
    docs, records = load(data, "syndication-dev")
    gold = {r["id"]: r["gold"] for r in records}
    out = []
    for value in values:
        scores = score_clusters(cluster(docs, cosine=value).assignments, gold)
        out.append({"cosine": value, "precision": scores.pairwise_precision, "recall": scores.pairwise_recall,
                    "f1": scores.pairwise_f1})
    return out


def plot_curve(curve: list[dict[str, float]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    xs = [c["cosine"] for c in curve]
    for key in ("precision", "recall", "f1"):
        ax.plot(xs, [c[key] for c in curve], marker="o", label=key)
    ax.axvline(Options().cosine, color="grey", linestyle="--", label="default")
    ax.set_xlabel("TF-IDF cosine threshold (with passage overlap >= 0.5)")
    ax.set_ylabel("pairwise score, syndication-dev")
    ax.set_ylim(0.8, 1.005)
    ax.legend(loc="lower left")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_table(results: dict[str, list[dict[str, object]]]) -> None:
    """One markdown table: a row per method, the key number of each set per column."""
    cols = ["syndication F1", "ARI", "roundups merged", "ecb+ mixed (dev/train)", "exact groups (reuters/bbc)",
            "semeval clustered <=2", "semeval recall <=1.5"]
    print("| method | " + " | ".join(cols) + " |")
    print("|---" * (len(cols) + 1) + "|")
    for method, rows in results.items():
        by = {r["set"]: r for r in rows}
        syn, sem = by.get("syndication-dev", {}), by.get("semeval-train-pairs", {})
        rec = sem.get("recall_le_1_5", {})
        hit = sum(int(v.split("/")[0]) for v in rec.values()) if rec else 0
        tot = sum(int(v.split("/")[1]) for v in rec.values()) if rec else 0
        cells = [
            syn.get("pairwise_f1", ""), syn.get("ari", ""), syn.get("roundups_merged", ""),
            f"{by.get('ecbplus-dev', {}).get('mixed_clusters', '')}/{by.get('ecbplus-train', {}).get('mixed_clusters', '')}",
            f"{by.get('reuters21578', {}).get('exact_groups_found', '')}/{by.get('reuters21578', {}).get('exact_groups', '')}, "
            f"{by.get('bbc', {}).get('exact_groups_found', '')}/{by.get('bbc', {}).get('exact_groups', '')}",
            f"{sem.get('clustered_with_overall_le_2', '')} of {sem.get('clustered_pairs', '')}",
            f"{hit}/{tot}" if tot else "",
        ]
        print(f"| {method} | " + " | ".join(str(c) for c in cells) + " |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--set", dest="sets", action="append", choices=ALL_SETS)
    parser.add_argument("--option", action="append", default=[], help="dedup option key=value")
    parser.add_argument("--json", type=Path, default=RESULTS / "quality.json", help="where to write the results as JSON")
    parser.add_argument("--no-peers", action="store_true", help="only this project")
    parser.add_argument("--plot", type=Path, default=RESULTS / "quality_threshold.png", help="precision/recall plot")
    parser.add_argument("--no-plot", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        print(f"data directory {args.data} not found (pass --data)", file=sys.stderr)
        return 2
    settings = dict(_parse_option(o) for o in args.option)
    sets = args.sets or ALL_SETS
    methods: dict[str, Method] = {"dedup (defaults)" if not settings else f"dedup {settings}": dedup_method(**settings)}
    if not args.no_peers:
        from peers import PEERS

        methods.update(PEERS)
    results: dict[str, object] = {}
    for name, method in methods.items():
        print(f"## {name}", file=sys.stderr)
        results[name] = run_all(method, args.data, sets)
        for row in results[name]:
            print(json.dumps(row), file=sys.stderr)
    print_table(results)  # type: ignore[arg-type]
    if not args.no_plot and "syndication-dev" in sets:
        curve = threshold_curve(args.data, values=[0.35, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9])
        results["cosine_threshold_curve"] = curve
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot_curve(curve, args.plot)
        print(f"plot: {args.plot}", file=sys.stderr)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
