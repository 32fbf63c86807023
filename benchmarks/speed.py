"""Speed and memory of `dedup cluster` against the pipelines users write with datasketch and rensa.

    python benchmarks/speed.py [--sizes 20000,100000,1000000] [--skip-naive-above 20000]
                               [--skip-rensa-above N] [--workers N] [--repeat 3] [--out benchmarks/results]

For each size, a corpus is generated (benchmarks/corpus.py: real paragraphs, 300-900 words, ~15%
syndicated copies) and these run back to back, each in its own subprocess (peak RSS from wait4's
rusage, which covers the subprocess and the workers it waited for; the whole process tree's RSS is
also sampled every 0.1 s). At sizes up to 20k (--repeat-up-to), where a run takes seconds and the machine's
speed drifts by 10-20%, dedup and rensa run three times (--repeat), taking turns, and the run of median
time is reported (speed.json keeps every run's seconds):

- dedup: ``dedup.jobs.run_cluster_job`` over a ``read_documents`` iterator, as ``dedup cluster IN -o OUT``,
  ending as the command ends (``dedup.cli.quick_exit``: no interpreter teardown, ~0.2 s).
- fingerprint: the fingerprinting step alone (fused numba kernel vs the numpy reference), on tokens.
- rensa: ``RMinHash`` per document + ``RMinHashLSH(0.5, 128, 16 bands)``, then the naive confirmation.
- naive: what the datasketch docs suggest: ``MinHash.update`` per word 3-shingle,
  ``MinHashLSH(threshold=0.5, num_perm=128)`` insert + query, scikit-learn ``TfidfVectorizer`` cosine
  >= 0.5 on the candidate pairs (vectorised row dots), union-find. Slow: by default only at 20k.

Writes benchmarks/results/speed.json and speed.png (time vs corpus size). Other processes on the
machine skew wall times: the load average around each run and each run's CPU seconds are recorded.
"""

from __future__ import annotations

import argparse
import compileall
import importlib.util
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PIPELINES = ("dedup", "fingerprint", "rensa", "naive")
REPEATED = ("dedup", "rensa")  # the pipelines of a few seconds at small sizes, run several times


# ----------------------------------------------------------------------------- the pipelines (run in a subprocess)


def _read(path: str):
    from dedup.read import ReadOptions, read_documents

    return read_documents([path], options=ReadOptions())


def run_dedup(path: str, out: str, workers: int | None) -> dict:
    from dedup.jobs import run_cluster_job

    started = time.perf_counter()
    result = run_cluster_job(_read(path), output=out, workers=workers)
    wall = time.perf_counter() - started
    stages = {k[len("seconds_"):]: v for k, v in result.stats.items() if k.startswith("seconds_")}
    workers_cpu = {k[len("worker_seconds_"):]: v for k, v in result.stats.items() if k.startswith("worker_seconds_")}
    return dict(docs=result.stats["documents"], seconds=wall, stages=stages, worker_stage_seconds=workers_cpu,
                clusters=result.stats["clusters"], candidate_pairs=result.stats["candidate_pairs"],
                confirmed_pairs=result.stats["confirmed_pairs"], spilled=result.stats.get("spilled"))


def run_fingerprint(path: str, out: str, workers: int | None) -> dict:
    """Shingling + MinHash alone, on tokens prepared beforehand (not timed)."""
    import numpy as np

    t0 = time.perf_counter()
    from dedup import kernels

    ok = kernels.available()
    kernels.warm_up()
    startup = time.perf_counter() - t0
    from dedup.normalize import normalize
    from dedup.fingerprint import shingle_signatures
    from dedup.tokenize import tokenize_batch

    docs = [d.text for d, _ in zip(_read(path), range(50_000))]
    tokens = tokenize_batch([normalize(t) for t in docs])
    res = {"docs": len(docs), "numba_import_and_cache_load_seconds": startup, "numba": ok}
    kernels.set_threads(workers)
    t = time.perf_counter()
    _, fast = shingle_signatures(tokens, n=3, engine="numba")
    res["numba_seconds"] = time.perf_counter() - t
    kernels.set_threads(1)
    t = time.perf_counter()
    shingle_signatures(tokens, n=3, engine="numba")
    res["numba_1_thread_seconds"] = time.perf_counter() - t
    sub = 5_000
    head = tokenize_batch([normalize(t) for t in docs[:sub]])
    t = time.perf_counter()
    _, ref = shingle_signatures(head, n=3, engine="numpy")
    res["numpy_seconds_per_doc"] = (time.perf_counter() - t) / sub
    res["identical"] = bool(np.array_equal(ref, fast[:sub]))
    res["seconds"] = res["numba_seconds"]
    # JIT cost with an empty cache: compile every kernel in a fresh interpreter.
    with tempfile.TemporaryDirectory() as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache)
        code = "import time; t=time.perf_counter(); from dedup import kernels; kernels.warm_up(); print(time.perf_counter()-t)"
        cold = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
        res["numba_cold_compile_seconds"] = float(cold.stdout.strip().splitlines()[-1])
    return res


_WORD = re.compile(r"\w+")


def _shingles(text: str) -> set[str]:
    words = _WORD.findall(text.lower())
    return {" ".join(words[i : i + 3]) for i in range(max(1, len(words) - 2))}


def _confirm_and_cluster(ids: list[str], texts: list[str], pairs: set[tuple[int, int]], out: str, stages: dict) -> int:
    """The naive confirmation (TF-IDF cosine >= 0.5 on candidate pairs), union-find and output."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    t = time.perf_counter()
    matrix = TfidfVectorizer().fit_transform(texts)
    if pairs:
        arr = np.array(sorted(pairs))
        cos = np.asarray(matrix[arr[:, 0]].multiply(matrix[arr[:, 1]]).sum(axis=1)).ravel()
        kept = arr[cos >= 0.5]
    else:
        kept = np.zeros((0, 2), dtype=np.int64)
    stages["confirm"] = time.perf_counter() - t
    t = time.perf_counter()
    parent = list(range(len(ids)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in kept.tolist():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)
    roots = [find(i) for i in range(len(ids))]
    stages["cluster"] = time.perf_counter() - t
    t = time.perf_counter()
    with open(out, "w", encoding="utf-8") as handle:
        for i, r in enumerate(roots):
            handle.write(json.dumps({"id": ids[i], "cluster_id": ids[r]}) + "\n")
    stages["write"] = time.perf_counter() - t
    return len(set(roots))


def _minhash_lsh_pipeline(path: str, out: str, *, fingerprint, lsh) -> dict:
    """A peer pipeline: fingerprint each document (``fingerprint(text) -> sketch``), insert it into
    ``lsh``, query every sketch, then the shared confirmation (TF-IDF cosine) and union-find."""
    started = time.perf_counter()
    stages: dict[str, float] = {"read": 0.0, "fingerprint": 0.0, "candidates": 0.0}
    ids, texts, hashes = [], [], []
    t = time.perf_counter()
    for doc in _read(path):
        t1 = time.perf_counter()
        stages["read"] += t1 - t
        m = fingerprint(doc.text)
        t2 = time.perf_counter()
        stages["fingerprint"] += t2 - t1
        lsh.insert(len(ids), m)
        ids.append(doc.id)
        texts.append(doc.text)
        hashes.append(m)
        t = time.perf_counter()
        stages["candidates"] += t - t2
    t = time.perf_counter()
    pairs = {(min(i, j), max(i, j)) for i, m in enumerate(hashes) for j in lsh.query(m) if j != i}
    stages["candidates"] += time.perf_counter() - t
    del hashes, lsh
    clusters = _confirm_and_cluster(ids, texts, pairs, out, stages)
    return dict(docs=len(ids), seconds=time.perf_counter() - started, stages=stages, clusters=clusters,
                candidate_pairs=len(pairs))


def run_naive(path: str, out: str, workers: int | None) -> dict:
    """What the datasketch docs suggest: MinHash.update per shingle, MinHashLSH(threshold=0.5)."""
    from datasketch import MinHash, MinHashLSH

    def fingerprint(text: str) -> MinHash:
        m = MinHash(num_perm=128)
        for s in _shingles(text):
            m.update(s.encode("utf-8"))
        return m

    return _minhash_lsh_pipeline(path, out, fingerprint=fingerprint, lsh=MinHashLSH(threshold=0.5, num_perm=128))


def run_rensa(path: str, out: str, workers: int | None) -> dict:
    """rensa: RMinHash per document, RMinHashLSH(threshold=0.5, 16 bands)."""
    from rensa import RMinHash, RMinHashLSH

    def fingerprint(text: str) -> RMinHash:
        m = RMinHash(num_perm=128, seed=42)
        m.update(list(_shingles(text)))
        return m

    return _minhash_lsh_pipeline(path, out, fingerprint=fingerprint,
                                 lsh=RMinHashLSH(threshold=0.5, num_perm=128, num_bands=16))


def compile_bytecode() -> None:
    """Byte-compile dedup and these scripts' modules, as `pip install .` compiles what it installs (as it did the
    peers' libraries): an editable install where PYTHONDONTWRITEBYTECODE is set (many container images; this
    machine) compiles every module from source at each run, ~40 ms of a 20k run of dedup."""
    spec = importlib.util.find_spec("dedup")
    for location in [*(spec.submodule_search_locations or []), str(HERE)]:
        compileall.compile_dir(location, maxlevels=0, quiet=1)


RUNNERS = {"dedup": run_dedup, "fingerprint": run_fingerprint, "rensa": run_rensa, "naive": run_naive}


# ----------------------------------------------------------------------------- measuring a subprocess


def _tree_rss(root: int) -> int:
    """Resident bytes of ``root`` and all its descendants (from /proc)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            pid, ppid = int(entry), int(fields[1])
            rss[pid] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            children.setdefault(ppid, []).append(pid)
        except (OSError, IndexError, ValueError):
            continue
    total, stack = 0, [root]
    while stack:
        pid = stack.pop()
        total += rss.get(pid, 0)
        stack.extend(children.get(pid, []))
    return total


def measure(pipeline: str, corpus: Path, workers: int | None) -> dict:
    """Run one pipeline in a fresh subprocess; its own report plus peak RSS and CPU time."""
    with tempfile.TemporaryDirectory(dir=HERE / "results" / "tmp") as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, __file__, "--run", pipeline, "--corpus", str(corpus), "--report", str(report),
               "--output", str(Path(tmp) / "out.jsonl")]
        if workers is not None:
            cmd += ["--workers", str(workers)]
        load_before = os.getloadavg()[0]
        started = time.perf_counter()
        proc = subprocess.Popen(cmd)
        peak_tree = 0
        done = threading.Event()

        def sample() -> None:
            nonlocal peak_tree
            while not done.is_set():
                peak_tree = max(peak_tree, _tree_rss(proc.pid))
                done.wait(0.1)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        _, status, usage = os.wait4(proc.pid, 0)
        done.set()
        sampler.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.perf_counter() - started
        if proc.returncode != 0:
            return {"pipeline": pipeline, "error": f"exit code {proc.returncode}", "wall_seconds": wall}
        result = json.loads(report.read_text())
    result.update(
        pipeline=pipeline,
        process_seconds=wall,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_rss_mb=usage.ru_maxrss / 1024,
        peak_tree_rss_mb=peak_tree / 2**20,
        load_average_before=load_before,
        load_average_after=os.getloadavg()[0],
    )
    if result.get("docs") and result.get("seconds"):
        # end to end: the interpreter's start, imports and JIT cache loading count (fingerprinting
        # alone is the practical limit of one step, timed in-process)
        result["docs_per_second"] = result["docs"] / (result["seconds"] if pipeline == "fingerprint" else wall)
        result["docs_per_second_in_process"] = result["docs"] / result["seconds"]
    return result


# ----------------------------------------------------------------------------- report


def _table(results: list[dict]) -> str:
    stages = ["read", "normalise", "tokenise", "shingle", "fingerprint", "candidates", "confirm", "cluster", "result", "write"]
    head = f"{'size':>8} {'pipeline':<12} {'docs/s':>9} {'seconds':>8} {'cpu s':>7} {'RSS MB':>7} {'tree MB':>8} {'load':>5}  " + " ".join(
        f"{s[:8]:>8}" for s in stages)
    lines = [head]
    for r in results:
        if "error" in r or r["pipeline"] == "fingerprint":
            continue
        st = r.get("stages", {})
        lines.append(
            f"{r['size']:>8} {r['pipeline']:<12} {r.get('docs_per_second', 0):>9.0f} {r['seconds']:>8.1f} {r['cpu_seconds']:>7.1f} "
            f"{r['peak_rss_mb']:>7.0f} {r['peak_tree_rss_mb']:>8.0f} {r['load_average_before']:>5.1f}  "
            + " ".join(f"{st[s]:>8.2f}" if s in st else f"{'-':>8}" for s in stages)
        )
    return "\n".join(lines)


def _plot(results: list[dict], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no plot", file=sys.stderr)
        return
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in ("dedup", "rensa", "naive"):
        rows = sorted((r["size"], r["seconds"]) for r in results if r["pipeline"] == name and "error" not in r)
        if rows:
            ax.plot([x for x, _ in rows], [y for _, y in rows], marker="o", label=name)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("articles (300-900 words)")
    ax.set_ylabel("seconds, end to end")
    ax.set_title("Clustering time vs corpus size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="20000,100000,1000000")
    parser.add_argument("--skip-naive-above", type=int, default=20_000)
    parser.add_argument("--skip-rensa-above", type=int, default=None)
    parser.add_argument("--workers", type=int, default=None, help="dedup worker processes (default: one per CPU)")
    parser.add_argument("--pipelines", default=",".join(PIPELINES))
    parser.add_argument("--repeat", type=int, default=3, help="runs of dedup and rensa per size, taking turns (median reported)")
    parser.add_argument("--repeat-up-to", type=int, default=20_000, help="largest size run --repeat times (larger: once)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--run", choices=PIPELINES, help=argparse.SUPPRESS)
    parser.add_argument("--corpus", help=argparse.SUPPRESS)
    parser.add_argument("--add", action="store_true",
                        help="keep the other sizes/pipelines already in speed.json (e.g. a 1M run added to a 20k+100k run)")
    parser.add_argument("--report", help=argparse.SUPPRESS)
    parser.add_argument("--output", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.run:  # inside the measuring subprocess
        result = RUNNERS[args.run](args.corpus, args.output, args.workers)
        Path(args.report).write_text(json.dumps(result))
        if args.run == "dedup":  # it ends as the `dedup` command ends: without the interpreter's teardown
            from dedup.cli import quick_exit

            quick_exit(0)
        return

    from corpus import build

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "tmp").mkdir(exist_ok=True)
    wanted = args.pipelines.split(",")
    results: list[dict] = []
    notes: list[str] = []
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.add and (args.out / "speed.json").exists():
        kept = json.loads((args.out / "speed.json").read_text())
        results = [r for r in kept["results"] if not (r["size"] in sizes and r["pipeline"] in wanted)]
        notes = kept.get("notes", [])
    if "dedup" in wanted:  # numba compiles once after an install or a change (timed apart, by run_fingerprint)
        print("== loading or compiling dedup's kernels (not timed)", flush=True)
        subprocess.run([sys.executable, "-c", "from dedup import kernels; kernels.warm_up()"], check=True)
    compile_bytecode()
    for size in sizes:
        print(f"== {size:,} articles: building corpus", flush=True)
        corpus = build(size, seed=args.seed)
        # Small corpora take seconds, where the machine's speed drifts by 10-20%: dedup and rensa run `repeat` times,
        # taking turns, and the run of median time is reported (with every run's seconds).
        rounds = args.repeat if size <= args.repeat_up_to else 1
        todo = list(wanted)
        if "naive" in todo and size > args.skip_naive_above:
            todo.remove("naive")
            notes.append(f"naive skipped at {size:,} (--skip-naive-above {args.skip_naive_above:,})")
            print(f"   {notes[-1]}", flush=True)
        if "rensa" in todo and args.skip_rensa_above is not None and size > args.skip_rensa_above:
            todo.remove("rensa")
            notes.append(f"rensa skipped at {size:,} (--skip-rensa-above {args.skip_rensa_above:,})")
            print(f"   {notes[-1]}", flush=True)
        runs: dict[str, list[dict]] = {}
        for turn in range(rounds):
            for name in todo:
                if turn and name not in REPEATED:
                    continue
                print(f"   running {name}" + (f" ({turn + 1} of {rounds})" if name in REPEATED and rounds > 1 else ""),
                      flush=True)
                runs.setdefault(name, []).append(measure(name, corpus, args.workers))
                print("   " + json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in runs[name][-1].items()
                                           if not isinstance(v, dict)}), flush=True)
        for name, done in runs.items():
            r = _median_run(done)
            r["size"] = size
            results.append(r)
        results.sort(key=lambda r: (r["size"], PIPELINES.index(r["pipeline"])))
        (args.out / "speed.json").write_text(json.dumps({"results": results, "notes": notes}, indent=1))
    summary = _summary(results)
    (args.out / "speed.json").write_text(json.dumps({"machine": {"cpus": os.cpu_count()}, "workers": args.workers,
                                                     "results": results, "summary": summary, "notes": notes}, indent=1))
    _plot(results, args.out / "speed.png")
    print()
    print(_table(results))
    for line in notes + [f"{k}: {v}" for k, v in summary.items()]:
        print(line)


def _median_run(runs: list[dict]) -> dict:
    """The run of median wall time (of the whole process, which docs/s are computed from) among ``runs`` (the
    faster of the middle two for an even count), with every run's process seconds."""
    ordered = sorted(runs, key=lambda r: r.get("process_seconds", float("inf")))
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    if len(runs) > 1:
        chosen["runs_process_seconds"] = [r.get("process_seconds") for r in runs]
    return chosen


def _summary(results: list[dict]) -> dict:
    by = {(r["pipeline"], r["size"]): r for r in results if "error" not in r}
    out: dict[str, object] = {}
    for (name, size), r in sorted(by.items()):
        if name != "dedup":
            continue
        for peer in ("naive", "rensa"):
            other = by.get((peer, size))
            if other:
                out[f"speedup_vs_{peer}_at_{size}"] = round(r["docs_per_second"] / other["docs_per_second"], 2)
    d100, d1m = by.get(("dedup", 100_000)), by.get(("dedup", 1_000_000))
    if d100 and d1m:
        out["time_per_article_1M_over_100k"] = round((d1m["seconds"] / d1m["docs"]) / (d100["seconds"] / d100["docs"]), 3)
    fp = [r for r in results if r["pipeline"] == "fingerprint" and "error" not in r]
    for r in fp:
        out[f"fingerprint_docs_per_second_numba_at_{r['size']}"] = round(r["docs"] / r["numba_seconds"])
        out[f"fingerprint_docs_per_second_numpy_at_{r['size']}"] = round(1 / r["numpy_seconds_per_doc"])
    return out


if __name__ == "__main__":
    main()
