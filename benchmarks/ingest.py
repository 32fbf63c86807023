"""Ingestion benchmark of dedup.index: check/add latency and throughput at 100k-1M indexed articles.

Articles are generated deterministically by resampling sentences of Reuters-21578
(../shared/data/reuters21578.jsonl.gz): a new story is 6-12 random sentences with
a fifth of the words swapped for random vocabulary; a quarter of the articles are
edited copies of a recent story. Writes benchmarks/results/ingest.json.

Memory: ``rss_bytes_per_article`` is the growth of the whole resident set while building
(one-off compiled code and the index file's mapped pages included);
``anon_bytes_per_article`` the growth of the process's own (anonymous) memory after the
first 1,000 articles. Worker scaling (Redis) is timed from when every worker is ready.

    python benchmarks/ingest.py --sizes 100000 --backends sqlite redis
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing as mp
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

from dedup import Document
from dedup.index import Index

REPO = Path(__file__).resolve().parents[1]
REUTERS = REPO.parent / "shared" / "data" / "reuters21578.jsonl.gz"
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class Generator:
    """Deterministic synthetic feed: article k is always the same text."""

    def __init__(self, seed: int = 7) -> None:
        with gzip.open(REUTERS, "rt") as f:
            texts = [json.loads(line)["text"] for line in f]
        sentences = [s.strip() for t in texts for s in re.split(r"(?<=[.!?])\s+", " ".join(t.split())) if len(s) > 40]
        self.sentences = sentences
        self.vocab = sorted({w for s in sentences[:20000] for w in s.split()})
        self.seed = seed

    def _story(self, rng: np.random.Generator) -> list[str]:
        picked = [self.sentences[i] for i in rng.integers(0, len(self.sentences), rng.integers(6, 13))]
        out = []
        for s in picked:
            words = s.split()
            swap = rng.random(len(words)) < 0.2
            for j in np.flatnonzero(swap):
                words[j] = self.vocab[rng.integers(0, len(self.vocab))]
            out.append(" ".join(words))
        return out

    def article(self, k: int) -> Document:
        rng = np.random.default_rng((self.seed, k))
        if k >= 10 and rng.random() < 0.25:  # an edited copy of a recent story
            src = int(k - rng.integers(1, min(k, 2000)))
            base = self._sentences_of(src)
            if len(base) > 4:
                base = [s for i, s in enumerate(base) if i != rng.integers(0, len(base))]
            text = f"OUTLET {rng.integers(0, 1000)} - " + "\n\n".join(base)
        else:
            text = "\n\n".join(self._story(rng))
        return Document(id=f"g{k:08d}", text=text, date=T0 + timedelta(seconds=30 * k))

    def _sentences_of(self, k: int) -> list[str]:
        return [s for s in self.article(k).text.split("\n\n") if not s.startswith("OUTLET ")]

    def batch(self, lo: int, hi: int) -> list[Document]:
        return [self.article(k) for k in range(lo, hi)]


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def anon_bytes() -> int:
    """Resident anonymous memory of this process (its own data, not the file pages it maps)."""
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("RssAnon:"))


def percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1e3
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p99_ms": round(float(np.percentile(ms, 99)), 3),
            "mean_ms": round(float(ms.mean()), 3)}


def build(index: Index, gen: Generator, size: int, batch: int = 1000, log=print) -> dict[str, float]:
    start, first = time.perf_counter(), len(index)
    for lo in range(first, size, batch):
        index.add_many(gen.batch(lo, min(size, lo + batch)))
        if (lo // batch) % 50 == 0:
            log(f"  built {lo + batch:,} ({(lo + batch - first) / (time.perf_counter() - start):.0f}/s)")
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "per_second": (size - first) / seconds}


def measure(index: Index, gen: Generator, size: int, n: int = 2000) -> dict[str, object]:
    """Latency of single check and add (prepare included), and batched add throughput, at ``size`` indexed."""
    docs = gen.batch(size, size + n)
    check_s = []
    for d in docs:
        t = time.perf_counter()
        index.check(d)
        check_s.append(time.perf_counter() - t)
    add_s = []
    for d in docs:
        t = time.perf_counter()
        index.add(d)
        add_s.append(time.perf_counter() - t)
    more = gen.batch(size + n, size + n + 5000)
    t = time.perf_counter()
    for lo in range(0, len(more), 500):
        index.add_many(more[lo : lo + 500])
    batched = len(more) / (time.perf_counter() - t)
    return {"check": percentiles(check_s), "add": percentiles(add_s), "add_single_per_second": round(n / sum(add_s), 1),
            "add_many_per_second": round(batched, 1)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _worker(url: str, lo: int, hi: int, ready, queue: mp.Queue) -> None:
    gen = Generator()
    docs = gen.batch(lo, hi)
    with Index.open(url) as index:
        index.check(docs[0])  # loads the compiled kernels and the Redis scripts before the clock starts
        ready.wait()
        t = time.perf_counter()
        for k in range(0, len(docs), 200):
            index.add_many(docs[k : k + 200])
        queue.put((t, time.perf_counter()))


def scaling(url: str, start: int, count: int, workers: int) -> float:
    """Aggregate add throughput (prepare included) of ``workers`` processes adding ``count`` articles each,
    from when all are ready (articles generated, index open) until the last one is done."""
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    ready = ctx.Barrier(workers)
    procs = [ctx.Process(target=_worker, args=(url, start + w * count, start + (w + 1) * count, ready, queue))
             for w in range(workers)]
    for p in procs:
        p.start()
    spans = [queue.get() for _ in procs]
    for p in procs:
        p.join()
    return workers * count / (max(end for _, end in spans) - min(begin for begin, _ in spans))


def run_sqlite(gen: Generator, size: int, log) -> dict[str, object]:
    tmp = tempfile.mkdtemp(prefix="dedup-bench-")
    try:
        path = os.path.join(tmp, "bench.db")
        base = rss_bytes()
        with Index.open(path) as index:
            log(f"sqlite: building {size:,}")
            index.add_many(gen.batch(0, 1000))  # loads the compiled kernels: not per-article memory
            warm, warm_anon = len(index), anon_bytes()
            built = build(index, gen, size, log=log)
            mem, anon = rss_bytes() - base, anon_bytes() - warm_anon
            stats = index.stats()
            log("sqlite: measuring")
            result = measure(index, gen, size)
        reopen = time.perf_counter()
        with Index.open(path) as index:
            reopen = time.perf_counter() - reopen
        return {"backend": "sqlite", "indexed": size, "build": built, **result,
                "rss_bytes_per_article": round(mem / size), "anon_bytes_per_article": round(anon / (size - warm)),
                "file_bytes_per_article": round(stats["bytes"] / size),
                "mirror_bytes_per_article": round(stats["mirror_bytes"] / size), "reopen_seconds": round(reopen, 2)}
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_redis(gen: Generator, size: int, log) -> dict[str, object] | None:
    binary = shutil.which("redis-server")
    if binary is None:
        log("redis: no redis-server, skipped")
        return None
    port = free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--daemonize", "no"], stdout=subprocess.DEVNULL)
    try:
        url = f"redis://127.0.0.1:{port}/0"
        time.sleep(0.5)
        with Index.open(url) as index:
            log(f"redis: building {size:,}")
            built = build(index, gen, size, batch=500, log=log)
            used = index.stats()["bytes"]
            log("redis: measuring")
            result = measure(index, gen, size, n=1000)
            start = len(index) + 10
        one = scaling(url, start + 100_000, 2000, 1)
        two = scaling(url, start + 200_000, 2000, 2)
        return {"backend": "redis", "indexed": size, "build": built, **result,
                "redis_bytes_per_article": round(used / size),
                "workers_add_per_second": {"1": round(one, 1), "2": round(two, 1)}}
    finally:
        server.kill()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--backends", nargs="+", default=["sqlite", "redis"], choices=["sqlite", "redis"])
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "ingest.json"))
    args = parser.parse_args()
    if not REUTERS.exists():
        sys.exit(f"{REUTERS} not found: the benchmark generates articles from it")
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    gen = Generator()
    runs = []
    for size in args.sizes:
        for backend in args.backends:
            run = run_sqlite(gen, size, log) if backend == "sqlite" else run_redis(gen, size, log)
            if run:
                log(json.dumps(run))
                runs.append(run)
    out = Path(args.out)
    previous = json.loads(out.read_text()) if out.exists() else {"runs": []}
    keep = [r for r in previous.get("runs", []) if (r["backend"], r["indexed"]) not in {(x["backend"], x["indexed"]) for x in runs}]
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"cpu_count": os.cpu_count(), "runs": keep + runs}, indent=2) + "\n")
    log(f"wrote {out}")


if __name__ == "__main__":
    main()
