"""The one place where Numba compilation flags are set.

Every kernel in :mod:`rfm_fast._kernels` is compiled with :data:`jit`:

* ``cache=True``: compiled machine code is written next to the module (or to
  ``NUMBA_CACHE_DIR``), so only the first run after an install pays the compile cost;
* ``nogil=True``: kernels release the GIL, so threads (Spark, Dask, a reader thread) can run
  beside them;
* no ``fastmath``: the kernels must see NaN and infinity as they are.
"""

from __future__ import annotations

import threading

import numba

JIT_OPTIONS: dict[str, bool] = {"cache": True, "nogil": True}

jit = numba.njit(**JIT_OPTIONS)
"""Decorator for kernels (``@jit``)."""

jit_inline = numba.njit(inline="always", **JIT_OPTIONS)
"""Decorator for small helpers that are inlined into kernels at the Numba IR level."""


@jit
def _first_kernel(value):
    """The smallest kernel: calling it makes Numba load what every kernel needs."""
    return value + 1


_loading: list[threading.Thread] = []


def load_numba_in_background() -> threading.Thread:
    """Start loading Numba's compiler state (its typing and lowering registries, about half a
    second on a first call in a process) in a thread, so that it overlaps with opening and
    decoding the input; the first real kernel call waits for it on Numba's own lock. Only the
    first call in a process starts the thread; later ones return it."""
    if not _loading:
        thread = threading.Thread(target=_first_kernel, args=(0,), name="rfm_fast-numba-load")
        thread.daemon = True
        thread.start()
        _loading.append(thread)
    return _loading[0]
