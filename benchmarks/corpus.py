"""Deterministic large news corpora for speed benchmarks, built from real paragraphs.

    python benchmarks/corpus.py --size 100000 [--seed 7] [--out benchmarks/results/tmp]

Paragraphs come from ../shared/data (reuters21578 + bbc). Each original article
is 300-900 words of resampled paragraphs in which a quarter of the words are
swapped for other words of the same vocabulary, so that unrelated articles
share about as little wording as unrelated real stories do (re-using the
paragraphs verbatim would make every article a near-copy of hundreds of
others). About 15% of the articles are syndicated copies of an earlier one,
with the edits real republication makes: truncation, a dropped paragraph,
outlet header/byline/dateline lines and footers, and house-style
substitutions ("U.S." -> "US", "per cent" -> "percent", ...).

Output: gzip JSONL records ``{"id", "text", "date", "source", "story"}``
(``story`` is the generating story, a gold label) in
``benchmarks/results/tmp/news-<size>-s<seed>.jsonl.gz`` (gitignored). The same
size and seed give the same bytes on every run; an existing file is reused.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import re
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
OUT = Path(__file__).resolve().parent / "results" / "tmp"
VERSION = 1
SHARD = 25_000
COPY_SHARE = 0.15  # share of output articles that are copies of another one
SWAP = 0.25  # share of words of an original swapped for random vocabulary words

OUTLETS = ["The Daily Courier", "Metro Herald", "Global Wire Online", "The Morning Post", "Business Times",
           "City Gazette", "Evening Tribune", "NewsNow", "The Chronicle", "Capital Journal"]
FIRST = ["John", "Maria", "David", "Sarah", "Ahmed", "Li", "Elena", "James", "Priya", "Tom", "Anna", "Carlos"]
LAST = ["Smith", "Garcia", "Chen", "Okafor", "Muller", "Rossi", "Khan", "Novak", "Dubois", "Tanaka", "Silva"]
CITIES = ["LONDON", "NEW YORK", "TOKYO", "PARIS", "BERLIN", "WASHINGTON", "SINGAPORE", "MUMBAI", "SYDNEY", "TORONTO"]
STYLE = [("U.S.", "US"), ("U.K.", "UK"), ("per cent", "percent"), ("organisation", "organization"),
         (" Mr ", " "), ("government", "Government"), ("e-mail", "email"), ("towards", "toward")]


def paragraphs() -> list[str]:
    """Real paragraphs (>= 12 words) of reuters21578 and bbc, in file order."""
    out: list[str] = []
    for name, splitter in (("reuters21578", re.compile(r"\n\s{2,}|\n\n")), ("bbc", re.compile(r"\n\s*\n"))):
        with gzip.open(DATA / f"{name}.jsonl.gz", "rt", encoding="utf-8") as handle:
            for line in handle:
                text = json.loads(line)["text"]
                for para in splitter.split(text):
                    para = " ".join(para.split())
                    if len(para.split()) >= 12:
                        out.append(para)
    return out


class _Source:
    """Paragraphs as arrays of word numbers over one word list."""

    def __init__(self) -> None:
        paras = paragraphs()
        index: dict[str, int] = {}
        coded = [np.array([index.setdefault(w, len(index)) for w in p.split(" ")], dtype=np.int32) for p in paras]
        self.words = np.array(list(index), dtype=object)
        self.paras = coded
        self.lengths = np.array([len(p) for p in coded])
        counts = np.bincount(np.concatenate(coded), minlength=len(self.words))
        self.swap_pool = np.flatnonzero(counts >= 2).astype(np.int32)


_SRC: _Source | None = None


def _source() -> _Source:
    global _SRC
    if _SRC is None:
        _SRC = _Source()
    return _SRC


def _original(rng: np.random.Generator, src: _Source) -> list[str]:
    target = int(rng.integers(300, 901))
    out: list[str] = []
    words = 0
    while words < target:
        p = src.paras[int(rng.integers(len(src.paras)))].copy()
        p = p[: target - words] if words + len(p) > target + 20 else p
        swap = rng.random(len(p)) < SWAP
        p[swap] = src.swap_pool[rng.integers(len(src.swap_pool), size=int(swap.sum()))]
        out.append(" ".join(src.words[p]))
        words += len(p)
    return out


def _copy(rng: np.random.Generator, paras: list[str]) -> str:
    paras = list(paras)
    edits = rng.random(5)
    if edits[0] < 0.3 and len(paras) > 3:  # truncation
        paras = paras[: max(2, int(len(paras) * rng.uniform(0.4, 0.9)))]
    if edits[1] < 0.3 and len(paras) > 3:  # a dropped paragraph
        del paras[int(rng.integers(1, len(paras)))]
    if edits[2] < 0.6:  # house style
        for a, b in STYLE:
            paras = [p.replace(a, b) for p in paras]
    outlet = OUTLETS[int(rng.integers(len(OUTLETS)))]
    head: list[str] = []
    if edits[3] < 0.7:
        head.append(f"By {FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]} | {outlet}")
        head.append(f"Published {int(rng.integers(1, 28))} March 2024, {int(rng.integers(0, 24)):02d}:{int(rng.integers(0, 60)):02d} GMT")
        paras[0] = f"{CITIES[int(rng.integers(len(CITIES)))]} (Reuters) - {paras[0]}"
    tail: list[str] = []
    if edits[4] < 0.6:
        tail.append(f"(Reporting by {FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]}; "
                    f"Editing by {FIRST[int(rng.integers(len(FIRST)))]} {LAST[int(rng.integers(len(LAST)))]})")
        tail.append(f"Copyright 2024 {outlet}. All rights reserved.")
        tail.append("Read more: Top stories")
    return "\n\n".join(head + paras + tail)


def _shard(args: tuple[int, int, int, int, str]) -> str:
    """Write articles start..stop-1 of the corpus to a gzip part file; returns its path."""
    seed, shard, start, stop, path = args
    rng = np.random.default_rng([seed, shard])
    src = _source()
    base = datetime(2024, 3, 1, tzinfo=timezone.utc)
    pending: list[tuple[int, str, int]] = []  # (due position, text, story)
    i = start
    story = start * 4
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as out:
        while i < stop:
            if pending and (pending[0][0] <= i or stop - i <= len(pending)):
                _, text, sid = pending.pop(0)
            else:
                story += 1
                sid = story
                paras = _original(rng, src)
                text = "\n\n".join(paras)
                if rng.random() < COPY_SHARE / (1 - COPY_SHARE) / 2:
                    for _ in range(int(rng.integers(1, 4))):
                        pending.append((i + int(rng.integers(1, 2000)), _copy(rng, paras), sid))
                    pending.sort(key=lambda x: x[0])
            date = base + timedelta(seconds=int(i) * 7)
            out.write(json.dumps({"id": f"a{i:08d}", "text": text, "date": date.isoformat(), "source": "bench",
                                  "story": f"s{sid}"}, ensure_ascii=False) + "\n")
            i += 1
    return path


def build(size: int, *, seed: int = 7, out: Path = OUT, workers: int | None = None) -> Path:
    """The corpus of ``size`` articles (built once, then reused)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"news-v{VERSION}-{size}-s{seed}.jsonl.gz"
    if path.exists():
        return path
    jobs = []
    for shard, start in enumerate(range(0, size, SHARD)):
        jobs.append((seed, shard, start, min(size, start + SHARD), str(out / f".part-{size}-{seed}-{shard:05d}.gz")))
    workers = workers or os.cpu_count() or 1
    if workers > 1 and len(jobs) > 1:
        _source()  # load once, before forking
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            parts = pool.map(_shard, jobs, chunksize=1)
    else:
        parts = [_shard(job) for job in jobs]
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as dst:  # concatenated gzip members are one gzip stream
        for part in parts:
            with open(part, "rb") as src:
                shutil.copyfileobj(src, dst, 1 << 22)
            os.unlink(part)
    os.replace(tmp, path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, required=True)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    print(build(args.size, seed=args.seed, out=args.out, workers=args.workers))


if __name__ == "__main__":
    main()
