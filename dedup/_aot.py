"""Ahead-of-time compiled kernels: one extension module of every kernel signature in use, built once from the numba
kernels and loaded by later processes without importing numba.

Importing numba and loading its cached kernels takes ~0.6 s at the start of every process that uses them (numba
itself, its type registries, scipy.linalg which numba imports to find a BLAS, and each cached overload); loading
this module takes under a millisecond. The module is built by ``numba.pycc`` (a C compiler and setuptools are
needed) from the very overloads the JIT compiled in :func:`dedup.kernels.warm_up`: same code, for this machine's
CPU, each kernel still releasing the GIL. Exported functions do not check their arguments, so each call is
matched here against the exact argument types an export was compiled for (dtype, dimensions, C order, read-only
or not, alignment); any other call goes to the numba kernel (imported then), which gives the same result.

A build is keyed by the kernels' sources and the numba, numpy, Python and CPU it was made with; it is written
to a temporary directory and moved into place (the table first, the module last), so that a crash leaves no
half-written module. A build that fails leaves a note and is not tried again for the same key.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import importlib.machinery
import importlib.util
import json
import os
import sys
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

# What a build depends on: the modules the kernels are compiled from, the warm-up that compiles every overload in
# use (kernels.py), and this module (the table's format).
SOURCES = ("_jit.py", "_jit_text.py", "_jit_tokens.py", "_jit_band.py", "kernels.py", "_aot.py")
_HERE = Path(__file__).resolve().parent
_WRITEABLE = 0x400  # numpy's flag bits (ndarray.flags.num): WRITEABLE,
_ORDERED = 0x1 | 0x100  # and what every export needs of an array: C_CONTIGUOUS, ALIGNED
_ARRAY_FLAGS = _ORDERED | _WRITEABLE
_SCALARS: dict[type, str] = {int: "i8", bool: "b1", float: "f8"}  # (and numpy scalars, added as they come)
_ndarray = np.ndarray

Key = tuple  # the argument types of one call, see call_key


def call_key(args: tuple) -> Key:
    """The types of a call's arguments as the exports are matched by (what numba's ``typeof`` tells apart): an
    array by its dtype, dimensions and flags (C order, aligned, writeable), a scalar by its numba type."""
    return tuple([(v.dtype, v.ndim, v.flags.num & _ARRAY_FLAGS) if type(v) is _ndarray or isinstance(v, _ndarray)
                  else _scalar(v) for v in args])


def _scalar(value: object) -> str | None:
    kind = type(value)
    code = _SCALARS.get(kind)
    if code is None and isinstance(value, np.generic):
        code = _SCALARS[kind] = value.dtype.str[1:]
    return code


def _arg_entry(numba_type: Any) -> list | None:
    """How the table stores an export's argument of ``numba_type`` (None for a type no export is made for)."""
    from numba.core import types
    from numba.np.numpy_support import as_dtype

    if isinstance(numba_type, types.Array):
        if numba_type.layout != "C" or not numba_type.aligned:
            return None
        return ["array", as_dtype(numba_type.dtype).str, numba_type.ndim, bool(numba_type.mutable)]
    if isinstance(numba_type, (types.Integer, types.Boolean, types.Float)):
        return ["scalar", scalar_key(as_dtype(numba_type))]
    return None


def array_key(dtype: Any, ndim: int, *, writeable: bool) -> tuple[np.dtype, int, int]:
    """What :func:`call_key` gives for a C-ordered, aligned array of ``dtype`` and ``ndim`` dimensions."""
    return (np.dtype(dtype), ndim, _ORDERED | (_WRITEABLE if writeable else 0))


def scalar_key(dtype: Any) -> str:
    """What :func:`call_key` gives for a number numba types as ``dtype`` (a Python int: int64)."""
    return np.dtype(dtype).str[1:]


def _key_of(entries: list) -> Key:
    """The call_key of the calls an export with these table entries takes."""
    return tuple([array_key(e[1], e[2], writeable=e[3]) if e[0] == "array" else e[1] for e in entries])


class Kernel:
    """One kernel: its compiled exports by argument types, and the numba kernel for calls of any other types."""

    def __init__(self, name: str, exports: dict[Key, Callable[..., Any]], module: str, function: str) -> None:
        self.name = name
        self.exports = exports
        self._module, self._function = module, function
        self.fallbacks = 0  # calls that went to numba

    def __call__(self, *args: object) -> Any:
        export = self.exports.get(call_key(args))
        if export is None:
            self.fallbacks += 1
            export = getattr(importlib.import_module(self._module), self._function)
        return export(*args)


def cache_dir() -> Path:
    """Where built modules are kept: $DEDUP_CACHE_DIR, else the package's __pycache__ (as numba's own cache) when
    it can be written, else ~/.cache/dedup."""
    if os.environ.get("DEDUP_CACHE_DIR"):
        return Path(os.environ["DEDUP_CACHE_DIR"])
    here = _HERE / "__pycache__"
    with contextlib.suppress(OSError):
        here.mkdir(exist_ok=True)
    if os.access(here, os.W_OK):
        return here
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "dedup"


def _cpu() -> str:
    """What identifies this CPU's instruction set: the flags in /proc/cpuinfo, else the processor's name."""
    import platform

    with contextlib.suppress(OSError):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("flags", "Features")):
                    return line
    return platform.processor() or platform.machine()


def build_key() -> str:
    """What a built module is valid for: its sources (SOURCES), numba, numpy, Python and the CPU."""
    import platform
    from importlib.metadata import version

    digest = hashlib.sha256()
    for name in SOURCES:
        digest.update((_HERE / name).read_bytes())
    try:
        numba_version = version("numba")
    except Exception:  # (numba missing or without metadata: a key nothing was built with)
        numba_version = "?"
    for part in (numba_version, np.__version__, sys.version, platform.machine(), _cpu()):
        digest.update(part.encode("utf-8", "replace"))
    return digest.hexdigest()[:20]


def _paths(key: str) -> tuple[str, Path, Path, Path]:
    name = f"_dedup_kernels_{key}"
    directory = cache_dir()
    suffix = importlib.machinery.EXTENSION_SUFFIXES[0]
    return name, directory / f"{name}{suffix}", directory / f"{name}.json", directory / f"{name}.failed"


def load(key: str | None = None) -> dict[str, Kernel] | None:
    """The kernels of the module built for ``key`` (default: this machine's :func:`build_key`), None when
    there is none (or it cannot be loaded)."""
    name, module_path, table_path, _ = _paths(key or build_key())
    if not module_path.exists():
        return None
    try:
        table = json.loads(table_path.read_text())
    except (OSError, ValueError):
        return None
    return load_from(name, module_path, table)


def failed(key: str | None = None) -> str | None:
    """Why the build for ``key`` failed, None if it did not (or was not tried)."""
    note = _paths(key or build_key())[3]
    try:
        return note.read_text()
    except OSError:
        return None


def build(dispatchers: Mapping[str, Any], key: str | None = None) -> None:
    """Compile every overload the numba ``dispatchers`` (by kernel name) hold into the module for ``key``, check
    that it loads, and move it into the cache (in the package's own __pycache__, the builds of older sources go).
    Raises what the build raised, after leaving a note (see :func:`failed`) so that later processes do not try
    again."""
    import tempfile

    key = key or build_key()
    name, module_path, table_path, note = _paths(key)
    module_path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with tempfile.TemporaryDirectory(prefix="build-", dir=module_path.parent) as tmp:
            table = _compile(name, dispatchers, tmp)
            built = Path(tmp) / module_path.name
            (Path(tmp) / table_path.name).write_text(json.dumps(table))
            check = load_from(name, built, table)
            if check is None:
                raise ImportError(f"the built module {built.name} does not load")
            os.replace(Path(tmp) / table_path.name, table_path)
            os.replace(built, module_path)
    except Exception as exc:
        with contextlib.suppress(OSError):
            note.write_text(f"{type(exc).__name__}: {exc}\n")
        raise
    if module_path.parent == _HERE / "__pycache__":  # (this install's own builds: those of older sources are stale)
        remove_others(module_path.parent, keep=name)


def remove_others(directory: Path, *, keep: str) -> None:
    """Remove the builds in ``directory`` (modules, tables, notes) but those named ``keep``."""
    for path in directory.glob("_dedup_kernels_*"):
        if path.name.split(".")[0] != keep:
            with contextlib.suppress(OSError):
                path.unlink()


def load_from(name: str, path: Path, table: Mapping[str, Any]) -> dict[str, Kernel] | None:
    """The kernels of the module at ``path`` (named ``name``) with its export ``table``; None if it does not load."""
    try:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            return None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return {kernel: Kernel(kernel, {_key_of(e["args"]): getattr(module, e["symbol"]) for e in entry["exports"]},
                               entry["module"], entry["function"])
                for kernel, entry in table["kernels"].items()}
    except (ImportError, AttributeError, KeyError, TypeError):
        return None


def _compile(name: str, dispatchers: Mapping[str, Any], directory: str) -> dict[str, Any]:
    """Export each overload of ``dispatchers`` from a module ``name`` built into ``directory``; its table."""
    from unittest import mock

    from numba.core.compiler import Flags

    with warnings.catch_warnings():  # (pycc is "pending deprecation": the README says what happens without it)
        warnings.simplefilter("ignore")
        import numba.pycc.compiler
        from numba.pycc import CC

    class ReleasingGil(Flags):  # (pycc's exports hold the GIL by default; the kernels are called from threads)
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.release_gil = True

    cc = CC(name)
    cc.output_dir = directory
    cc.target_cpu = "host"
    kernels: dict[str, Any] = {}
    for kernel, dispatcher in dispatchers.items():
        exports = []
        for i, result in enumerate(dispatcher.overloads.values()):
            args = [_arg_entry(t) for t in result.signature.args]
            if None in args:
                continue
            symbol = f"{kernel}__{i}"
            cc.export(symbol, result.signature)(dispatcher.py_func)
            exports.append({"symbol": symbol, "args": args})
        kernels[kernel] = {"module": dispatcher.py_func.__module__, "function": dispatcher.py_func.__name__,
                           "exports": exports}
    with mock.patch.object(numba.pycc.compiler, "Flags", ReleasingGil), open(os.devnull, "w") as quiet, \
            contextlib.redirect_stdout(quiet), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cc.compile()
    return {"kernels": kernels}

