"""The ahead-of-time kernels (dedup._aot): chosen by the argument types numba would tell apart, the same results as
numba's kernels, loaded without numba, and a build that fails or is cut short never breaks a run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup import _aot, kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason="numba not installed")

DTYPES = ["u1", "i4", "u4", "i8", "u8", "f8", "b1"]


@st.composite
def arrays(draw: st.DrawFn) -> np.ndarray:
    """Arrays as kernels may get them: any dtype, 1 or 2 dimensions, sliced, transposed, read-only, unaligned."""
    dtype = np.dtype(draw(st.sampled_from(DTYPES)))
    shape = draw(st.sampled_from([(6,), (0,), (3, 4), (1, 5)]))
    a = np.zeros(shape, dtype=dtype)
    view = draw(st.sampled_from(["plain", "step", "transposed", "unaligned", "swapped"]))
    if view == "step":
        a = a[::2]
    elif view == "transposed":
        a = a.T
    elif view == "unaligned" and dtype.itemsize > 1:
        a = np.frombuffer(bytearray(a.nbytes + 1), dtype=dtype, offset=1, count=a.size).reshape(a.shape)
    elif view == "swapped":
        a = a.astype(dtype.newbyteorder())
    if draw(st.booleans()):
        a.flags.writeable = False
    return a


@settings(max_examples=300, deadline=None)
@given(arrays())
def test_an_array_matches_the_export_numba_would_compile_for_it(a: np.ndarray) -> None:
    """An array's key is that of numba's type for it when an export can take it (C order, native byte order,
    aligned: numba's type does not say, an unaligned array goes to numba), and no export's key otherwise."""
    import numba

    try:
        entry = _aot._arg_entry(numba.typeof(a))
    except Exception:  # (numba has no type for some arrays, e.g. of swapped bytes)
        entry = None
    key = _aot.call_key((a,))
    if entry is not None and a.flags.aligned:
        assert key == _aot._key_of([entry])
    else:
        for dtype in DTYPES:
            for writeable in (True, False):
                assert key != _aot._key_of([["array", np.dtype(dtype).str, a.ndim, writeable]])


@pytest.mark.parametrize("value", [0, -5, 2**40, True, False, 1.5, np.int64(3), np.uint64(3), np.int32(3), np.float64(2.0),
                                   np.bool_(True), np.uint8(7)])
def test_a_scalar_matches_the_export_numba_would_compile_for_it(value: object) -> None:
    import numba

    assert _aot.call_key((value,)) == _aot._key_of([_aot._arg_entry(numba.typeof(value))])


def _built() -> None:
    """Skip unless this machine has the module (a C compiler and setuptools are needed to build it)."""
    if os.environ.get("DEDUP_NO_AOT"):
        pytest.skip("DEDUP_NO_AOT is set")
    kernels.warm_up()
    if not kernels.build_ahead_of_time():
        pytest.skip(f"no ahead-of-time kernels on this machine: {_aot.failed()}")


_RUN = r"""
import json, sys
from dedup import kernels, parallel, pipeline
from dedup.read import read_documents
from dedup.pipeline import cluster
parallel.CHUNK_DOCS = 64            # several chunks, in worker processes
parallel.SPILL_BYTES = 1000         # spilled columns, scored by blocks
pipeline.SCORE_BLOCK_BYTES = 5_000
kernels.MIN_PAIRS = 0               # the compiled scorer
kernels.warm_up()
calls = {}
for name in ("score_rows", "tfidf_norms", "gather", "residual_sources", "components"):
    def counted(*args, _kernel=kernels._state[name], _name=name):
        calls[_name] = calls.get(_name, 0) + 1
        return _kernel(*args)
    kernels._state[name] = counted
result = cluster(read_documents([sys.argv[1]]), workers=2)
fallbacks = {name: k.fallbacks for name, k in kernels._state.items() if getattr(k, "fallbacks", 0)}
print(json.dumps({"aot": kernels.ahead_of_time(), "numba": "numba" in sys.modules, "fallbacks": fallbacks, "calls": calls,
                  "spilled": result.stats["spilled"], "assignments": result.assignments, "digests": sorted(result.digests),
                  "pairs": [[p.a, p.b, p.jaccard, p.cosine, p.containment, p.numbers] for p in result.pairs]}))
"""


def test_the_module_gives_numbas_results_without_numba(tmp_path: Path) -> None:
    """A process with the built module clusters a corpus (worker processes, spilled columns, scoring by blocks,
    the compiled scorer and digest guard) without importing numba and without a call falling back to numba's
    kernels, and finds what numba's kernels find (DEDUP_NO_AOT)."""
    from test_speed_paths import _quoting_docs

    _built()
    docs = [(d.id, d.text) for d in _quoting_docs(600)]
    docs += [(f"digest{k}", docs[4 * k + 1][1] + "\n\n" + docs[4 * k + 2][1]) for k in range(10)]  # (two stories each)
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": i, "text": text}) + "\n" for i, text in docs))
    runs = {}
    for mode, extra in (("aot", {}), ("numba", {"DEDUP_NO_AOT": "1"})):
        env = {**os.environ, **extra}
        done = subprocess.run([sys.executable, "-c", _RUN, str(corpus)], capture_output=True, text=True, env=env, check=True)
        runs[mode] = json.loads(done.stdout)
    aot, jit = runs["aot"], runs["numba"]
    assert (aot["aot"], aot["numba"], aot["fallbacks"]) == (True, False, {})
    assert (jit["aot"], jit["numba"]) == (False, True)
    assert aot["spilled"] == 1 and len(aot["digests"]) == 10
    assert set(aot["calls"]) == {"score_rows", "tfidf_norms", "gather", "residual_sources", "components"}
    for field in ("assignments", "digests", "pairs"):
        assert aot[field] == jit[field], field


def test_a_call_of_other_types_goes_to_numba() -> None:
    """A call no export takes (here float32 values, and a strided array) is run by numba's kernel: same result."""
    _built()
    built = _aot.load()
    assert built is not None
    gather = built["gather"]
    values = np.arange(10, dtype=np.float32)
    starts, offsets = np.array([2, 7], dtype=np.int64), np.array([0, 2, 5], dtype=np.int64)
    for other in (values, np.arange(20, dtype=np.uint32)[::2]):
        out = np.zeros(5, dtype=other.dtype)
        before = gather.fallbacks
        gather(other, starts, offsets, out, 0, 2)
        assert gather.fallbacks == before + 1
        assert out.tolist() == [other[2], other[3], other[7], other[8], other[9]]
    exported = np.arange(10, dtype=np.uint32)
    out = np.zeros(5, dtype=np.uint32)
    before = gather.fallbacks
    gather(exported, starts, offsets, out, 0, 2)
    assert gather.fallbacks == before and out.tolist() == [2, 3, 7, 8, 9]


def test_a_failed_build_is_noted_and_not_tried_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEDUP_CACHE_DIR", str(tmp_path))
    monkeypatch.delenv("DEDUP_NO_AOT", raising=False)

    def broken(*args: object) -> dict:
        raise RuntimeError("no C compiler")

    monkeypatch.setattr(_aot, "_compile", broken)
    with pytest.raises(RuntimeError):
        _aot.build({})
    assert _aot.failed() == "RuntimeError: no C compiler\n"
    assert list(tmp_path.glob("*.so")) == [] and list(tmp_path.glob("build-*")) == []
    tried = []
    monkeypatch.setattr(_aot, "build", lambda *args: tried.append(args))
    monkeypatch.setitem(kernels._state, "aot", False)
    assert kernels.build_ahead_of_time() is False and tried == []


def test_a_module_cut_short_is_not_loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module without its table, or a file that is no module, is not loaded: the kernels come from numba."""
    monkeypatch.setenv("DEDUP_CACHE_DIR", str(tmp_path))
    name, module_path, table_path, _ = _aot._paths("k" * 20)
    module_path.write_bytes(b"\x7fELF not really")
    assert _aot.load("k" * 20) is None
    table_path.write_text(json.dumps({"kernels": {}}))
    assert _aot.load("k" * 20) is None


def test_the_key_follows_the_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for source in _aot.SOURCES:
        shutil.copy(Path(_aot.__file__).parent / source, tmp_path / source)
    monkeypatch.setattr(_aot, "_HERE", tmp_path)
    first = _aot.build_key()
    assert _aot.build_key() == first
    with open(tmp_path / "_jit.py", "a") as f:
        f.write("\n# changed\n")
    assert _aot.build_key() != first


def test_builds_of_other_sources_are_removed(tmp_path: Path) -> None:
    names = ["_dedup_kernels_aaa.cpython-311-x86_64-linux-gnu.so", "_dedup_kernels_aaa.json", "_dedup_kernels_bbb.json",
             "_dedup_kernels_bbb.cpython-311-x86_64-linux-gnu.so", "_dedup_kernels_ccc.failed", "other.pyc"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    _aot.remove_others(tmp_path, keep="_dedup_kernels_bbb")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names[2:4] + ["other.pyc"])


def test_the_per_article_calls_reach_their_exports(monkeypatch: pytest.MonkeyPatch) -> None:
    """The calls made once an article (normalising) skip matching their arguments: the argument types their call
    sites declare are the types they pass, and the module has an export for each."""
    from dedup import normalize, pagenoise

    _built()
    built = _aot.load()
    assert built is not None
    seen: dict[str, tuple] = {}
    real = kernels._site

    def recorded(site: str):
        function = real(site)

        def call(*args: object) -> object:
            seen[site] = _aot.call_key(args)
            return function(*args)
        return call

    monkeypatch.setattr(kernels, "_site", recorded)
    kernels.has_gaps(b"a  b")
    kernels.word_key(b"reuters")
    kernels.screen_lines(b"By John Smith\nText", normalize._screen_table())
    kernels.prefixed_words(b" cookies", pagenoise._prefix_table())
    assert seen == {site: key for site, (_, key) in kernels._SITES.items()}
    for site, (name, key) in kernels._SITES.items():
        assert key in built[name].exports, site


def test_tables_not_made_here_are_refused() -> None:
    table = kernels.screen_table(np.zeros(256, bool), np.array([1, 2], np.uint64), np.ones(2, np.uint8))
    with pytest.raises(TypeError):
        kernels.screen_lines(b"a b", tuple(table))  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        kernels.prefixed_words(b" ab", tuple(kernels.prefix_table([b"ab"])))  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        kernels.screen_table(np.zeros(256, bool), np.array([2, 1], np.uint64), np.ones(2, np.uint8))


def test_a_long_warm_up_is_announced(monkeypatch: pytest.MonkeyPatch) -> None:
    """Preparing a corpus in workers says so when the kernels come from numba (the first run on a machine
    compiles them: ~30 s), and says nothing when they are built ahead of time."""
    from test_speed_paths import _docs

    from dedup.parallel import prepare_corpus

    monkeypatch.setattr(kernels, "build_ahead_of_time", lambda: False)
    for built, expected in ((False, 1), (True, 0)):
        said: list[str] = []
        monkeypatch.setattr(kernels, "ahead_of_time", lambda built=built: built)
        corpus = prepare_corpus(iter(_docs(120)), shingle_size=3, num_perm=16, seed=1, strip_boilerplate=True,
                                workers=2, chunk_docs=50, progress=said.append)
        corpus.close()
        assert len(said) == expected and all("first run on a machine compiles" in s for s in said)


_INDEX_RUN = r"""
import json, sys
from datetime import datetime, timezone
from dedup import Document, kernels
from dedup.index import Index
docs = [Document(id=d["id"], text=d["text"]) for d in map(json.loads, open(sys.argv[1]))]
path = sys.argv[2]
found = []
with Index.open(path) as index:
    index.add_many(docs[:150])
    for doc in docs[150:200]:
        found.append([[m.id, m.cosine, m.containment] for m in index.check(doc)])
        index.add(doc)
    index.remove(docs[3].id)
with Index.open(path, read_only=True) as index:  # (the buckets rebuilt from what is stored)
    found += [[[m.id, m.cosine, m.containment] for m in index.check(doc)] for doc in docs[200:260]]
with Index.open(path) as index:
    found.append(index.expire(before=datetime(2999, 1, 1, tzinfo=timezone.utc)))  # (all: the buckets compacted)
print(json.dumps({"aot": kernels.ahead_of_time(), "numba": "numba" in sys.modules, "found": found,
                  "fallbacks": {n: k.fallbacks for n, k in kernels._state.items() if getattr(k, "fallbacks", 0)}}))
"""


def test_the_index_runs_on_the_module_without_numba(tmp_path: Path) -> None:
    """An index written, checked, added to, removed from, expired and reopened in a fresh process with the module
    neither imports numba nor sends a call to it, and finds the matches and scores numba's kernels find."""
    from test_speed_paths import _quoting_docs

    _built()
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"id": d.id, "text": d.text}) + "\n" for d in _quoting_docs(260)))
    runs = {}
    for mode, extra in (("aot", {}), ("numba", {"DEDUP_NO_AOT": "1"})):
        done = subprocess.run([sys.executable, "-c", _INDEX_RUN, str(corpus), str(tmp_path / f"{mode}.db")],
                              capture_output=True, text=True, env={**os.environ, **extra}, check=True)
        runs[mode] = json.loads(done.stdout)
    aot, jit = runs["aot"], runs["numba"]
    assert (aot["aot"], aot["numba"], aot["fallbacks"]) == (True, False, {})
    assert (jit["aot"], jit["numba"]) == (False, True)
    assert sum(map(len, aot["found"][:-1])) > 20 and aot["found"][-1] == 199
    assert aot["found"] == jit["found"]
