"""Forked worker processes for batch work: each task and result passes through a private file, results in order."""

from __future__ import annotations

import collections
import mmap
import multiprocessing
import multiprocessing.connection
import os
import pickle
import shutil
import signal
import tempfile
import traceback
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from dedup.errors import WorkerError

__all__ = ["WorkerError", "Workers"]


class Workers:
    """``count`` forked processes, each running ``fn(task, *args)`` on the tasks sent to it (:meth:`map`).

    Why not :class:`multiprocessing.Pool`: its worker-handler thread wakes whenever a result is waiting in the
    results pipe (since CPython 3.8, bpo-35493; measured on 3.11), so while a large result crosses it spins,
    holding the GIL: ~0.2 s of the reading process's CPU on 20k articles. Here the pipes carry only the names of files: a task is
    pickled into a file that its worker reads, a result's arrays are written out of band (pickle protocol
    5) into a file that this process maps (one copy each way, no spinning thread, no task ever blocks a
    pipe). The files are in a private directory, removed by :meth:`close`; nothing from outside is unpickled.

    The workers ignore Ctrl-C (this process stops them: no traceback from each); one that dies (killed, out
    of memory) is a :class:`WorkerError`, not a hang. Use as a context manager.
    """

    def __init__(self, count: int, *, initializer: Callable[[], None] | None = None, tmpdir: str | None = None) -> None:
        if count < 1:
            raise ValueError(f"Workers needs at least one process, not {count}")
        try:
            self.dir = tempfile.mkdtemp(prefix="dedup-work-", dir=tmpdir)
        except OSError as error:
            raise WorkerError(f"cannot make a directory for the workers' files ({error}); "
                              "set TMPDIR to a writable directory") from None
        context = multiprocessing.get_context("fork")
        self._conns: list[multiprocessing.connection.Connection] = []
        self._procs: list[Any] = []
        try:
            for _ in range(count):
                ours, theirs = context.Pipe()
                # (the worker closes its copies of this process's ends, its own and those of the workers forked
                # before it: when this process goes, it sees the end of its pipe)
                proc = context.Process(target=_serve, args=(theirs, (*self._conns, ours), initializer), daemon=True)
                proc.start()
                theirs.close()
                self._conns.append(ours)
                self._procs.append(proc)
        except BaseException:
            self.close(terminate=True)
            raise
        self._serial = 0

    def __enter__(self) -> Workers:
        return self

    def __exit__(self, kind: object, *_: object) -> None:
        self.close(terminate=kind is not None)

    def map(self, fn: Callable[..., Any], tasks: Iterable[Any], *args: Any, depth: int = 2) -> Iterator[tuple[Any, Any]]:
        """Each task with ``fn(task, *args)``, in the order of the tasks; a task's exception is raised in its turn.
        A task is taken from ``tasks`` when fewer than ``depth`` per worker are out (sent, or done and not yet
        yielded); it goes to the worker with the fewest waiting.
        ``fn`` and ``args`` must pickle (a module-level function)."""
        tasks = iter(tasks)
        waiting: list[collections.deque[int]] = [collections.deque() for _ in self._conns]
        given: collections.deque[Any] = collections.deque()  # (the tasks sent and not yet yielded, in order)
        done: dict[int, tuple[bool, Any]] = {}
        sent = taken = 0
        more = True
        while True:
            if taken in done:
                ok, value = done.pop(taken)
                taken += 1
                if not ok:
                    raise value
                yield given.popleft(), value
                continue
            while more and sent - taken < depth * len(waiting):
                task = next(tasks, _END)
                if task is _END:
                    more = False
                    break
                w = min(range(len(waiting)), key=lambda i: len(waiting[i]))
                self._send(w, fn, task, args)
                given.append(task)
                waiting[w].append(sent)
                sent += 1
            if taken == sent:
                return
            busy = {self._conns[w]: w for w in range(len(waiting)) if waiting[w]}
            for conn in multiprocessing.connection.wait(list(busy)):
                w = busy[conn]  # type: ignore[index]
                done[waiting[w].popleft()] = self._receive(w)

    def _send(self, w: int, fn: Callable[..., Any], task: Any, args: tuple) -> None:
        self._serial += 1
        path = os.path.join(self.dir, f"task-{self._serial}")
        try:
            with open(path, "wb") as f:
                pickle.dump(task, f, protocol=pickle.HIGHEST_PROTOCOL)
        except OSError as error:
            raise _unwritable(path, error) from None
        try:
            self._conns[w].send((fn, path, args))
        except OSError:
            raise self._died(w) from None

    def _receive(self, w: int) -> tuple[bool, Any]:
        try:
            ok, message = self._conns[w].recv()
        except (EOFError, OSError):
            raise self._died(w) from None
        if not ok:
            return False, message
        return True, _load(*message)

    def _died(self, w: int) -> WorkerError:
        proc = self._procs[w]
        proc.join(1.0)
        return WorkerError(f"worker process {proc.pid} died (exit code {proc.exitcode}"
                           f"{': killed, out of memory?' if proc.exitcode == -signal.SIGKILL else ''})")

    def close(self, *, terminate: bool = False) -> None:
        """Stop the workers (at once with ``terminate``, else once their tasks are done) and remove the files."""
        for conn in self._conns:
            if not terminate:
                try:
                    conn.send(None)
                except OSError:
                    pass  # (a worker gone already)
            conn.close()
        for proc in self._procs:
            if terminate:
                proc.terminate()
            proc.join(None if terminate else 10.0)
            if proc.exitcode is None:
                proc.terminate()
                proc.join()
        self._conns, self._procs = [], []
        shutil.rmtree(self.dir, ignore_errors=True)


_END = object()


def _serve(conn: multiprocessing.connection.Connection, others: tuple, initializer: Callable[[], None] | None) -> None:
    """A worker's loop: run each task sent, reply with its result's file (or the exception), until None comes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    for other in others:
        other.close()
    if initializer is not None:
        initializer()
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # (the parent is gone)
            return
        if message is None:
            return
        fn, path, args = message
        reply = _run(fn, path, args)
        try:
            conn.send(reply)
        except OSError:  # (the parent is gone)
            return


def _run(fn: Callable[..., Any], path: str, args: tuple) -> tuple[bool, Any]:
    """The reply for one task: (True, where its result is) or (False, the exception, raised in the parent in its turn)."""
    try:
        with open(path, "rb") as f:
            task = pickle.load(f)
        os.unlink(path)
        result = fn(task, *args)
    except BaseException as error:
        return False, _picklable(error)
    try:
        return True, _store(result, path + ".out")
    except OSError as error:
        return False, _unwritable(path + ".out", error)


def _store(value: Any, path: str) -> tuple[str, int, list[int]]:
    """Write ``value`` to ``path``: its pickle, then the raw data of its arrays (out of band), each from a multiple
    of _ALIGN (an unaligned array is another type to compiled code); what _load needs."""
    buffers: list[pickle.PickleBuffer] = []
    head = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    sizes = []
    with open(path, "wb", buffering=0) as f:
        f.write(head)
        at = len(head)
        for buffer in buffers:
            raw = buffer.raw()
            f.write(bytes(-at % _ALIGN))
            f.write(raw)
            at += -at % _ALIGN + raw.nbytes
            sizes.append(raw.nbytes)
    return path, len(head), sizes


def _load(path: str, head: int, sizes: list[int]) -> Any:
    """The value _store wrote to ``path`` (its arrays are views of the file, mapped copy-on-write); removes it."""
    with open(path, "rb") as f:
        if not sizes:
            data = f.read()
            os.unlink(path)
            return pickle.loads(data)
        view = memoryview(mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_COPY))
    os.unlink(path)
    buffers, at = [], head
    for size in sizes:
        at += -at % _ALIGN
        buffers.append(view[at : at + size])
        at += size
    return pickle.loads(view[:head], buffers=buffers)


_ALIGN = 64


def _unwritable(path: str, error: OSError) -> WorkerError:
    return WorkerError(f"cannot write the workers' file {path} ({error.strerror or error}); "
                       "set TMPDIR to a directory with free space")


def _picklable(error: BaseException) -> BaseException:
    """``error`` if it survives pickling, else a WorkerError with its traceback."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        text = "".join(traceback.format_exception(type(error), error, error.__traceback__))
        return WorkerError(f"a worker failed:\n{text}")
