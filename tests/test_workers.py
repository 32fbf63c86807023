"""The forked worker processes (dedup.workers): order, arrays through files, errors, deaths, Ctrl-C, clean-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dedup.errors import DedupError
from dedup.workers import WorkerError, Workers


def _echo(task: tuple[int, float]) -> int:
    value, pause = task
    time.sleep(pause)
    return value * value


def _arrays(seed: int, sizes: list[int]) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    dtypes = (np.uint8, np.bool_, np.int32, np.uint64, np.float64, np.uint32)
    return {"seed": seed, "words": b"x" * seed,
            "arrays": [rng.integers(0, 200, size).astype(dtypes[i % len(dtypes)]) for i, size in enumerate(sizes)],
            "grid": rng.random((3, 5))}


def _fail_on(value: int, bad: int) -> int:
    if value == bad:
        raise ValueError(f"no {value}")
    return value


class _Unpicklable(Exception):
    def __init__(self, lock: object) -> None:
        super().__init__("cannot travel")
        self.lock = lock

    def __reduce__(self):  # type: ignore[override]
        raise TypeError("not picklable")


def _fail_unpicklably(value: int) -> int:
    raise _Unpicklable(value)


def _die(value: int) -> int:
    if value == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    return value


def _interrupted(value: int) -> int:
    os.kill(os.getpid(), signal.SIGINT)  # (Ctrl-C reaches the whole process group)
    time.sleep(0.05)
    return value + 1


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(-1000, 1000), st.sampled_from([0.0, 0.0, 0.001, 0.01])), max_size=12),
       st.integers(1, 3), st.integers(1, 3))
def test_results_come_in_task_order_whatever_each_takes(tasks: list[tuple[int, float]], count: int, depth: int) -> None:
    with Workers(count) as workers:
        assert list(workers.map(_echo, tasks, depth=depth)) == [(task, task[0] ** 2) for task in tasks]


def test_only_depth_tasks_wait_for_each_worker() -> None:
    taken: list[int] = []

    def tasks():
        for value in range(20):
            taken.append(value)
            yield (value, 0.0)

    with Workers(2) as workers:
        results = workers.map(_echo, tasks(), depth=2)
        next(results)
        assert len(taken) <= 2 * 2 + 1
        assert [value for _, value in results] == [v * v for v in range(1, 20)]


@settings(max_examples=10, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 50), st.lists(st.integers(0, 3000), max_size=6)), min_size=1, max_size=5))
def test_arrays_come_back_equal_aligned_and_writable(tasks: list[tuple[int, list[int]]]) -> None:
    """Arrays come back as views of the result's file: aligned (compiled code takes no other), writable, equal."""
    with Workers(2) as workers:
        for (seed, sizes), result in workers.map(_arrays_of, tasks):
            expected = _arrays(seed, sizes)
            assert result["seed"] == seed and result["words"] == expected["words"]
            assert np.array_equal(result["grid"], expected["grid"])
            for got, want in zip(result["arrays"], expected["arrays"], strict=True):
                assert got.dtype == want.dtype and np.array_equal(got, want)
                assert got.flags.aligned and got.flags.writeable
                got[:1] = 0


def _arrays_of(task: tuple[int, list[int]]) -> dict[str, object]:
    return _arrays(*task)


def test_a_tasks_error_is_raised_in_its_turn() -> None:
    with Workers(2) as workers:
        got = []
        with pytest.raises(ValueError, match="no 3"):
            for _, value in workers.map(_fail_on, range(8), 3):
                got.append(value)
        assert got == [0, 1, 2]


def test_an_error_that_cannot_be_sent_back_is_a_worker_error_with_its_traceback() -> None:
    with Workers(1) as workers:
        with pytest.raises(WorkerError, match="(?s)in _fail_unpicklably.*_Unpicklable: cannot travel"):
            list(workers.map(_fail_unpicklably, [1]))


def test_a_worker_that_dies_is_an_error_not_a_hang() -> None:
    with Workers(2) as workers:
        with pytest.raises(WorkerError, match=r"died \(exit code -9: killed, out of memory\?\)"):
            list(workers.map(_die, range(4)))


def test_workers_ignore_ctrl_c_and_finish_their_tasks() -> None:
    """Ctrl-C goes to the whole process group: the workers leave it to this process (which stops them), so no
    worker prints a traceback of its own."""
    with Workers(2) as workers:
        assert [value for _, value in workers.map(_interrupted, range(4))] == [1, 2, 3, 4]


def test_closing_removes_the_processes_and_the_files() -> None:
    workers = Workers(2)
    procs, directory = list(workers._procs), workers.dir
    assert [value for _, value in workers.map(_echo, [(2, 0.0), (3, 0.0)])] == [4, 9]
    assert os.listdir(directory) == []  # (each file goes once read)
    workers.close()
    assert not os.path.exists(directory) and not any(proc.is_alive() for proc in procs)


def test_an_error_here_stops_busy_workers_at_once() -> None:
    started = time.perf_counter()
    with pytest.raises(KeyError):
        with Workers(2) as workers:
            procs, directory = list(workers._procs), workers.dir
            for _ in workers.map(_echo, [(1, 0.0)] + [(2, 30.0)] * 4):
                raise KeyError("stop")
    assert time.perf_counter() - started < 20
    assert not os.path.exists(directory) and not any(proc.is_alive() for proc in procs)


def test_workers_go_when_the_process_that_started_them_is_killed(tmp_path) -> None:
    code = ("import os, sys, time\n"
            "from dedup.workers import Workers\n"
            "workers = Workers(2, tmpdir=sys.argv[1])\n"
            "print(' '.join(str(p.pid) for p in workers._procs), flush=True)\n"
            "os.kill(os.getpid(), 9)\n")
    with subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True) as parent:
        pids = [int(pid) for pid in parent.stdout.readline().split()]  # type: ignore[union-attr]
        assert parent.wait(60) == -9
    assert len(pids) == 2
    for _ in range(200):
        if not any(_alive(pid) for pid in pids):
            break
        time.sleep(0.05)
    assert not any(_alive(pid) for pid in pids)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_workers_need_one_process() -> None:
    with pytest.raises(ValueError, match="at least one process"):
        Workers(0)


def _return_after_blocking_results(value: int, directory: str) -> int:
    for n in range(1, 50):  # (a directory where the result's file would go)
        os.makedirs(os.path.join(directory, f"task-{n}.out"), exist_ok=True)
    return value


def test_a_result_that_cannot_be_written_is_a_worker_error() -> None:
    with Workers(1) as workers:
        with pytest.raises(WorkerError, match="cannot write the workers' file .*task-1.out .*set TMPDIR"):
            list(workers.map(_return_after_blocking_results, [1], workers.dir))


def test_no_directory_for_the_files_is_a_worker_error(tmp_path) -> None:
    with pytest.raises(WorkerError, match="cannot make a directory for the workers' files .*set TMPDIR") as error:
        Workers(1, tmpdir=str(tmp_path / "missing"))
    assert isinstance(error.value, DedupError)  # (the command reports it as an error, not a traceback)


def test_a_worker_that_died_waiting_for_work_is_an_error_when_given_some() -> None:
    with Workers(1) as workers:
        proc = workers._procs[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
        with pytest.raises(WorkerError, match=r"died \(exit code -9"):
            list(workers.map(_echo, [(1, 0.0)] * 3))
