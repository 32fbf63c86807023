"""Exceptions raised by dedup: every user-facing failure is a DedupError."""

from __future__ import annotations


class DedupError(Exception):
    """Base class of all errors dedup raises on purpose."""


class OptionError(DedupError, ValueError):
    """An option has an invalid value; the message says how to fix it."""


class InputError(DedupError):
    """Bad input data; names the file and line when known."""

    def __init__(self, message: str, *, path: str | None = None, line: int | None = None) -> None:
        self.path = path
        self.line = line
        self.reason = message
        where = ""
        if path is not None:
            where = f"{path}:{line}: " if line is not None else f"{path}: "
        super().__init__(where + message)


class OutputError(DedupError):
    """An output file cannot be written; names the file and says why."""


class WorkerError(DedupError, RuntimeError):
    """A worker process died, could not be given its work, or failed in a way it could not send back; says why."""
