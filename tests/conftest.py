"""Shared test configuration: Hypothesis profiles, and the kernels a checkout without its compiled
kernels tests.

Profiles (choose one with the ``HYPOTHESIS_PROFILE`` environment variable):

* ``default``: local runs, about 60 examples per property;
* ``ci``: the same budget, derandomized so that a CI run is reproducible;
* ``boundscheck``: few examples, for runs with ``NUMBA_BOUNDSCHECK=1`` (every kernel is
  recompiled with bounds checks, which makes each new type combination slow to compile).
"""

from __future__ import annotations

import os
import sys

from hypothesis import HealthCheck, settings

from rfm_fast._kernels import dispatch

if dispatch.kernel_mode() == "auto" and dispatch.compiled_module() is None:
    # pytest imports rfm_fast from this checkout, not from the install: where the compiled
    # kernels are not built here (a plain clone), the tests run the @jit kernels, and neither
    # this process nor the commands it starts prints the fallback note into a test's output.
    print(
        f"rfm_fast tests: the compiled kernels are not built here ({dispatch._compiled.reason});"
        f" testing the @jit kernels (build them with {dispatch.REBUILD})",
        file=sys.stderr,
    )
    os.environ[dispatch.MODE_VARIABLE] = "jit"

_SLOW_IS_FINE = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile(
    "default",
    deadline=None,
    max_examples=60,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    derandomize=True,
    print_blob=True,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.register_profile(
    "boundscheck",
    deadline=None,
    max_examples=12,
    suppress_health_check=_SLOW_IS_FINE,
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
