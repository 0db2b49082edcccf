"""Compile the kernels ahead of time into ``rfm_fast._kernels._compiled``, with ``numba.pycc``.

The exports are the ``@jit`` functions themselves (their ``py_func``), one per signature listed
in ``signatures.txt`` (written by :mod:`rfm_fast._kernels.record`); their names encode the
argument types (:func:`rfm_fast._kernels.dispatch.export_name`), so that
:mod:`rfm_fast._kernels.dispatch` calls an export only with arguments of exactly those types.
The module also exports ``source_digest()``, the digest of the kernel sources it was built from.

Each export releases the GIL around the kernel, as ``@jit(nogil=True)`` does: the compilation
flag ``release_gil`` makes Numba's CPython wrapper release it before the call and take it back
after, before any exception is raised, so a kernel that raises is safe too. (pycc has no option
for it, hence :func:`_exports_release_the_gil`.)

Run by the install (``setup.py``'s ``build_py``) and by hand for an in-place build::

    python -m rfm_fast._kernels.build            # writes rfm_fast/_kernels/_compiled.*.so

Needs Numba, NumPy and a C compiler (gcc or clang). pycc compiles for a generic CPU of the
platform (x86-64: SSE2), so a wheel runs on any machine of its platform.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from rfm_fast._kernels.dispatch import (
    COMPILED_MODULE,
    KERNEL_MODULES,
    export_name,
    source_digest,
)

HERE = Path(__file__).resolve().parent
SIGNATURES_FILE = HERE / "signatures.txt"


def read_signatures(path: Path = SIGNATURES_FILE) -> list[tuple[str, str, tuple[str, ...]]]:
    """``(module, kernel, argument type codes)`` for each line ``module.kernel(code, ...)``."""
    signatures = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head, _, rest = line.partition("(")
        module, _, kernel = head.partition(".")
        if not rest.endswith(")") or not kernel or module not in KERNEL_MODULES:
            raise ValueError(f"{path}:{number}: expected 'module.kernel(types)', found {line!r}")
        codes = tuple(code.strip() for code in rest[:-1].split(",") if code.strip())
        signatures.append((module, kernel, codes))
    return signatures


def numba_type(code: str):
    """The Numba type of a type code (:func:`rfm_fast._kernels.dispatch.type_code`)."""
    from numba import types
    from numba.np.numpy_support import from_dtype

    name, _, array = code.partition(":")
    dtype = from_dtype(np.dtype(name))
    if not array:
        return dtype
    shape, *flags = array.split(":")
    unknown = set(flags) - {"ro", "unaligned"}
    if unknown or len(shape) != 2 or shape[1] not in "CFA":
        raise ValueError(f"not a type code: {code!r}")
    return types.Array(
        dtype,
        int(shape[0]),
        shape[1],
        readonly="ro" in flags,
        aligned="unaligned" not in flags,
    )


@contextlib.contextmanager
def _exports_release_the_gil() -> Iterator[None]:
    """Compile pycc exports with the ``release_gil`` flag (what ``nogil=True`` sets)."""
    import numba.pycc.compiler as pycc_compiler

    compile_extra = pycc_compiler.compile_extra

    def compile_releasing_the_gil(typingctx, targetctx, func, args, return_type, flags, **kw):
        flags.release_gil = True
        return compile_extra(typingctx, targetctx, func, args, return_type, flags, **kw)

    pycc_compiler.compile_extra = compile_releasing_the_gil
    try:
        yield
    finally:
        pycc_compiler.compile_extra = compile_extra


def _digest_function(value: int):
    def digest() -> int:
        return value

    return digest


def build(output_dir: Path = HERE, signatures: Path = SIGNATURES_FILE) -> Path:
    """Compile the listed signatures into ``output_dir``; return the extension module's path."""
    import warnings

    from numba import types
    from numba.core.errors import NumbaPendingDeprecationWarning
    from numba.pycc import CC
    from numba.pycc.platform import external_compiler_works

    if not external_compiler_works():
        raise RuntimeError("no working C compiler (gcc or clang; the CC variable) was found")
    cc = CC(COMPILED_MODULE.rpartition(".")[2])
    cc.output_dir = str(output_dir)
    cc.verbose = False
    for module, kernel, codes in read_signatures(signatures):
        function = getattr(importlib.import_module(f"rfm_fast._kernels.{module}"), kernel)
        dispatcher_options = getattr(function, "targetoptions", {})
        if dispatcher_options.get("parallel"):
            raise ValueError(f"{module}.{kernel} uses prange: pycc does not compile it")
        signature = tuple(map(numba_type, codes))  # the return type is inferred
        cc.export(export_name(module, kernel, codes), signature)(function.py_func)
    cc.export("source_digest", types.int64())(_digest_function(source_digest(HERE)))
    with _exports_release_the_gil(), warnings.catch_warnings():
        warnings.simplefilter("ignore", NumbaPendingDeprecationWarning)
        cc.compile()
    return Path(output_dir) / cc._output_file


def main(argv: list[str] | None = None) -> int:
    """``python -m rfm_fast._kernels.build [--output-dir DIR]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=Path, default=HERE)
    options = parser.parse_args(argv)
    started = time.perf_counter()
    try:
        path = build(options.output_dir)
    except Exception as error:
        traceback.print_exc()
        # the last line, for the install's note: the reason in one line
        print(f"{type(error).__name__}: {str(error).strip().splitlines()[0]}", file=sys.stderr)
        return 1
    print(f"rfm_fast: compiled kernels built in {time.perf_counter() - started:.1f} s: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
