"""The Redis backend: same answers as SQLite, datasketch layout without pickle, several writer processes."""

from __future__ import annotations

import multiprocessing as mp
import os
import socket
import subprocess
import time
from typing import Iterator

import pytest

from dedup import DedupError, Document, cluster
from dedup.fingerprint import to_minhash
from dedup.index import Index
from dedup.pipeline import prepare

from index_helpers import A, B, C, agreement, sample_docs, syndication_sample


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def redis_url() -> Iterator[str]:
    """A private redis-server on a free loopback port, killed afterwards."""
    from dedup.store_redis import find_redis_server

    binary = find_redis_server()
    if binary is None:
        if os.environ.get("CI"):
            pytest.fail("redis-server not found but CI is set: install it (apt-get install redis-server)")
        pytest.skip("redis-server not found (apt-get install redis-server); Redis backend tests skipped")
    port = _free_port()
    server = subprocess.Popen([binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                               "--daemonize", "no"], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.kill()
        server.wait()


_counter = iter(range(10**6))


@pytest.fixture
def url(redis_url: str) -> str:
    """A fresh index (own key prefix) on the shared server."""
    return f"{redis_url}?prefix=t{next(_counter)}-{os.getpid()}"


def test_same_answers_as_sqlite(url: str) -> None:
    docs = sample_docs()
    with Index.open(url) as shared, Index() as local:
        assert shared.add_many(docs) == local.add_many(docs)
        assert {d.id: shared.cluster_of(d.id) for d in docs} == {A: A, B: A, C: C}
        assert shared.check(docs[0]) == local.check(docs[0])
        with pytest.raises(DedupError, match="already indexed; pass replace=True"):
            shared.add(docs[0])
        shared.remove(A)
        assert A not in shared and len(shared) == 2 and shared.cluster_of(B) == A
        assert shared.integrity() == []
        stats = shared.stats()
        assert stats["backend"] == "redis" and stats["documents"] == 2 and stats["stories"] == 2


def test_adding_together_same_as_sqlite(url: str) -> None:
    from conftest import SHARED_DATA

    docs = syndication_sample(400) if (SHARED_DATA / "syndication-dev.jsonl.gz").exists() else sample_docs()
    expected = cluster(docs).assignments
    with Index.open(url) as shared, Index() as local:
        assert shared.add_many(docs, together=True) == local.add_many(docs, together=True)
        assert {d.id: shared.cluster_of(d.id) for d in docs} == expected
        assert shared.integrity() == []


def test_bounded_candidates_give_the_same_answers(url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Candidates read whole only when their sketch bounds allow a copy (Redis) or always (SQLite): same answers."""
    from conftest import SHARED_DATA

    from dedup import store_redis, store_sqlite

    monkeypatch.setattr(store_redis, "_BOUND_FROM", -1)
    monkeypatch.setattr(store_sqlite, "_BOUND_FROM", 10**9)
    docs = syndication_sample(300) if (SHARED_DATA / "syndication-dev.jsonl.gz").exists() else sample_docs()
    with Index.open(url) as shared, Index() as local:
        assert shared.add_many(docs) == local.add_many(docs)
        assert [shared.check(d) for d in docs[::4]] == [local.check(d) for d in docs[::4]]
        assert shared.integrity() == []


def test_buckets_are_datasketch_minhashlsh_without_pickle(url: str) -> None:
    from datasketch import MinHashLSH

    docs = sample_docs()
    with Index.open(url) as index:
        index.add_many(docs)
        prefix = url.split("prefix=")[1].encode()
        lsh = MinHashLSH(threshold=index.options.lsh_threshold, num_perm=index.options.num_perm, prepickle=False,
                         storage_config={"type": "redis", "basename": prefix + b":lsh",
                                         "redis": {"host": "127.0.0.1", "port": int(url.split(":")[2].split("/")[0])}})
        sigs = prepare(docs, index.options).signatures
        assert set(lsh.query(to_minhash(sigs[1]))) >= {A.encode(), B.encode()}
        assert B.encode() in lsh and C.encode() in lsh
        raw = index._store._redis.hget(prefix + b":doc:" + A.encode(), "signature")  # raw little-endian, no pickle
        assert raw == sigs[0].astype("<u4").tobytes()


def test_window_and_expire(url: str) -> None:
    from datetime import datetime, timedelta, timezone

    t0 = datetime(2026, 11, 20, tzinfo=timezone.utc)
    a, b, _ = sample_docs()
    with Index.open(url, window=timedelta(hours=12)) as index:
        index.add(Document(id=A, text=a.text, date=t0))
        later = Document(id=B, text=b.text, date=t0 + timedelta(days=1))
        assert index.check(later) == [] and len(index.check(later, window=None)) == 1
        assert index.expire(before=t0 + timedelta(hours=1)) == 1
        assert len(index) == 0 and index.integrity() == []


def test_a_decision_made_stale_by_another_worker_is_made_again(url: str) -> None:
    """Adds take no lock: a worker whose candidates changed between its read and its commit decides again."""
    a, b, c = sample_docs()
    with Index.open(url) as first, Index.open(url) as second:
        second.add(c)
        store = first._store
        read = store.lookup
        reads: list[str] = []

        def lookup(record, bands, **kwargs):  # type: ignore[no-untyped-def]
            found = read(record, bands, **kwargs)
            reads.append(record.id)
            if len(reads) == 1:
                second.add(b)  # another worker stores a copy of A between A's read and A's commit
            return found

        store.lookup = lookup  # type: ignore[method-assign]
        best = first.add(a)
        assert reads == [A, A]  # read, found stale when committing, read again
        assert best is not None and best.id == B and best.cluster_id == B
        assert first.cluster_of(A) == B and len(first) == 3 and first.integrity() == []
        first.add(Document(id="unrelated", text=c.text[: len(c.text) // 3] + " and more"))
        assert len(reads) == 3  # nothing changed meanwhile: committed at the first try


def _writer(url: str, docs: list[tuple[str, str]], out: mp.Queue) -> None:
    added = 0
    with Index.open(url) as index:
        for doc_id, text in docs:
            try:
                index.add(Document(id=doc_id, text=text))
                added += 1
            except DedupError:
                pass  # another worker added it first
    out.put(added)


def test_several_processes_add_concurrently(url: str) -> None:
    from conftest import SHARED_DATA

    if (SHARED_DATA / "syndication-dev.jsonl.gz").exists():
        docs = syndication_sample(600)
    else:
        docs = sample_docs()
    pairs = [(d.id, d.text) for d in docs]
    workers = 3
    # Every id is offered to two workers: exactly one must store it.
    shards = [pairs[w::workers] + pairs[(w + 1) % workers :: workers] for w in range(workers)]
    queue: mp.Queue = mp.get_context("fork").Queue()
    procs = [mp.get_context("fork").Process(target=_writer, args=(url, shard, queue)) for shard in shards]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    added = [queue.get(timeout=5) for _ in procs]
    assert sum(added) == len(docs)  # none lost, none duplicated
    with Index.open(url) as index:
        assert len(index) == len(docs) and index.integrity() == []
        shared = {d.id: index.cluster_of(d.id) for d in docs}
    # The arrival order differs from the batch order, so compare partitions, not ids.
    ari, _same = agreement(cluster(docs).assignments, shared)
    assert ari >= 0.95, ari
