"""The one place where Numba compilation flags are set.

Every kernel in :mod:`rfm_fast._kernels` is compiled with :data:`jit`:

* ``cache=True``: compiled machine code is written next to the module (or to
  ``NUMBA_CACHE_DIR``), so only the first run after an install pays the compile cost;
* ``nogil=True``: kernels release the GIL, so threads (Spark, Dask, a reader thread) can run
  beside them;
* no ``fastmath``: the kernels must see NaN and infinity as they are.
"""

from __future__ import annotations

import numba

JIT_OPTIONS: dict[str, bool] = {"cache": True, "nogil": True}

jit = numba.njit(**JIT_OPTIONS)
"""Decorator for kernels (``@jit``)."""

jit_inline = numba.njit(inline="always", **JIT_OPTIONS)
"""Decorator for small helpers that are inlined into kernels at the Numba IR level."""
