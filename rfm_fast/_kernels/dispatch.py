"""How the Python layer calls kernels: an ahead-of-time compiled export where one matches the
arguments exactly, else the ``@jit`` function, with Numba imported only then.

The kernels are written once, as the ``@jit`` functions of :mod:`rfm_fast._kernels`. ``pip
install .`` also compiles them ahead of time (:mod:`rfm_fast._kernels.build`, with
``numba.pycc``) into one extension module, ``rfm_fast._kernels._compiled``, for the signatures
listed in ``signatures.txt`` (recorded by :mod:`rfm_fast._kernels.record`). A process whose
calls all find an export never imports Numba or llvmlite: about half a second less at start-up.

A pycc export checks neither dtypes nor layouts, so :class:`Kernel` looks an export up by the
*exact* Numba type of every argument (dtype, dimensions, C/F/A layout, read-only and alignment
for arrays; the scalar kind as Numba would type it), and the export's name encodes those types:
an export is never called with arguments it was not compiled for. Anything else goes to the
``@jit`` function, which compiles (or loads from Numba's cache) as before.

``RFM_FAST_KERNELS`` chooses: ``auto`` (the default) as above; ``jit``, always the ``@jit``
functions; ``aot``, only exports, a missing one being an error that names the kernel and the
types (for tests). Where the compiled module is missing or was built from other kernel sources
(an in-place build older than an edit), ``auto`` prints a one-line note once and runs every
kernel under Numba.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

KERNEL_MODULES = ("binning", "buffered", "digest", "hashing", "sorting", "text", "totals")
"""The kernel modules that are compiled ahead of time. ``btyd`` (the CLV models) is not: its
likelihoods run on all cores with ``prange``, which ``numba.pycc`` does not compile, and the
models load SciPy anyway; it stays ``@jit`` only."""

SOURCE_FILES = (*KERNEL_MODULES, "config", "intrinsics", "layout")
"""The modules whose code the compiled kernels contain: their digest is built into the compiled
module, and an export is used only while the sources still have that digest."""

COMPILED_MODULE = "rfm_fast._kernels._compiled"
MODES = ("auto", "aot", "jit")
MODE_VARIABLE = "RFM_FAST_KERNELS"
REBUILD = "python -m rfm_fast._kernels.build"
RECORD = "python -m rfm_fast._kernels.record"

_HERE = Path(__file__).resolve().parent
BUILD_ERROR_FILE = _HERE / "_compiled_error.txt"
"""Written by the install's build hook where the compiled kernels could not be built: the
reason, in one line, for the note."""


def type_code(value: Any) -> str | None:
    """The Numba type of an argument, as a short code: ``int64:1C`` (a C-contiguous 1-D int64
    array), ``uint8:1C:ro`` (read-only), ``int64:2A``; ``int64``, ``uint64``, ``float64``,
    ``bool`` for scalars. ``None`` for a value that no export takes.

    It follows ``numba.typeof``: a Python ``int`` is an int64 (a uint64 from ``2**63``), a
    ``float`` a float64, a ``bool`` a boolean; an array's layout is ``C`` if C-contiguous, else
    ``F`` if Fortran-contiguous, else ``A``."""
    if isinstance(value, np.ndarray):
        flags = value.flags
        layout = "C" if flags.c_contiguous else "F" if flags.f_contiguous else "A"
        code = f"{value.dtype.name}:{value.ndim}{layout}"
        if not flags.writeable:
            code += ":ro"
        if not flags.aligned:
            code += ":unaligned"
        return code
    kind = type(value)
    if kind is bool:
        return "bool"
    if kind is int:
        bits = value.bit_length()
        if bits < 64:
            return "int64"
        return "uint64" if bits == 64 and value >= 0 else None
    if kind is float:
        return "float64"
    if isinstance(value, np.generic) and value.dtype.kind in "biuf":
        return value.dtype.name
    return None


def export_name(module: str, kernel: str, codes: Sequence[str]) -> str:
    """The compiled module's name for ``module.kernel`` over arguments of types ``codes``."""
    digest = hashlib.sha1(",".join(codes).encode()).hexdigest()[:12]
    return f"{module}__{kernel}__{digest}"


def source_digest(directory: Path = _HERE) -> int:
    """A digest (a positive int64) of the kernel sources in ``directory``."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update((directory / f"{name}.py").read_bytes())
    return int(digest.hexdigest()[:15], 16)


def kernel_mode() -> str:
    """``RFM_FAST_KERNELS``: ``auto``, ``aot`` or ``jit``."""
    mode = os.environ.get(MODE_VARIABLE, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{MODE_VARIABLE} is {mode!r}: expected one of {', '.join(MODES)}")
    return mode


class _Compiled:
    """The compiled module, loaded once, or why it is not used."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded = False
        self.module: Any = None
        self.reason = ""
        self._noted = False

    def get(self) -> Any:
        """The compiled module, or ``None`` (then :attr:`reason` says why)."""
        if not self._loaded:
            with self._lock:
                if not self._loaded:
                    self.module, self.reason = _load_compiled()
                    self._loaded = True
        return self.module

    def note_fallback(self) -> None:
        """Print, once a process, that kernels compile with Numba, and why."""
        if not self._noted:
            self._noted = True
            print(
                f"rfm_fast: compiled kernels are not built ({self.reason}); "
                "kernels compile with Numba on first use",
                file=sys.stderr,
            )


def _load_compiled() -> tuple[Any, str]:
    try:
        module = importlib.import_module(COMPILED_MODULE)
    except ImportError as error:
        if BUILD_ERROR_FILE.exists():
            reason = BUILD_ERROR_FILE.read_text().strip().splitlines()[0]
        else:
            reason = f"no module {COMPILED_MODULE}" if "_compiled" in str(error) else str(error)
        return None, reason
    if module.source_digest() != source_digest():
        return None, f"the kernel sources changed since they were built: run {REBUILD}"
    return module, ""


_compiled = _Compiled()

recorded: set[tuple[str, str, tuple[str | None, ...]]] | None = None
"""Set to a set by :mod:`rfm_fast._kernels.record`: every kernel's argument types seen."""

twin: Callable[[Kernel, Callable[..., Any], Callable[..., Any]], Callable[..., Any]] | None = None
"""Set by ``python -m rfm_fast._kernels.record --compare``: ``twin(kernel, export, jit)`` makes
the function a kernel with an export runs, which calls both and compares their results."""


def compiled_module() -> Any:
    """The compiled kernels' module, or ``None`` where it is missing or stale."""
    return _compiled.get()


def aot_serves() -> bool:
    """Whether kernels run from the compiled module (``RFM_FAST_KERNELS`` is not ``jit`` and the
    module is built from these sources)."""
    return kernel_mode() != "jit" and compiled_module() is not None


def prepare() -> None:
    """Before a run: where kernels will compile with Numba, start loading it in a thread
    (:func:`rfm_fast._kernels.config.load_numba_in_background`); where the compiled module
    serves, nothing, and Numba is never imported."""
    if not aot_serves():
        from rfm_fast._kernels.config import load_numba_in_background

        load_numba_in_background()


class Kernel:
    """One kernel, called like the ``@jit`` function ``rfm_fast._kernels.<module>.<name>``."""

    def __init__(self, module: str, name: str) -> None:
        self.module = module
        self.name = name
        self._targets: dict[tuple[str | None, ...], Callable[..., Any]] = {}

    def __repr__(self) -> str:
        return f"Kernel({self.module}.{self.name})"

    def __call__(self, *args: Any) -> Any:
        codes = tuple(map(type_code, args))
        target = self._targets.get(codes)
        if target is None:
            target = self._targets[codes] = self._resolve(codes)
        return target(*args)

    def jit_function(self) -> Any:
        """The ``@jit`` function (imports Numba)."""
        return getattr(importlib.import_module(f"rfm_fast._kernels.{self.module}"), self.name)

    def export(self, codes: tuple[str | None, ...]) -> Callable[..., Any] | None:
        """The compiled export for arguments of types ``codes``, or ``None``."""
        module = compiled_module()
        if module is None or None in codes:
            return None
        return getattr(module, export_name(self.module, self.name, codes), None)  # type: ignore[arg-type]

    def _resolve(self, codes: tuple[str | None, ...]) -> Callable[..., Any]:
        if recorded is not None:
            recorded.add((self.module, self.name, codes))
        mode = kernel_mode()
        if mode != "jit":
            export = self.export(codes)
            if export is not None:
                return export if twin is None else twin(self, export, self.jit_function())
            if mode == "aot":
                where = _compiled.reason or "no export for these types"
                types = ", ".join(str(code) for code in codes)
                raise RuntimeError(
                    f"{MODE_VARIABLE}=aot: no compiled kernel {self.module}.{self.name}({types})"
                    f" ({where}): record the signatures with {RECORD}, then run {REBUILD}"
                )
            if compiled_module() is None:
                _compiled.note_fallback()
        return self.jit_function()


class KernelModule:
    """The kernels of one module of :mod:`rfm_fast._kernels`, as :class:`Kernel` attributes."""

    def __init__(self, module: str) -> None:
        self._module = module

    def __getattr__(self, name: str) -> Kernel:
        if name.startswith("_"):
            raise AttributeError(name)
        kernel = Kernel(self._module, name)
        setattr(self, name, kernel)
        return kernel


binning = KernelModule("binning")
buffered = KernelModule("buffered")
digest = KernelModule("digest")
hashing = KernelModule("hashing")
sorting = KernelModule("sorting")
text = KernelModule("text")
totals = KernelModule("totals")
