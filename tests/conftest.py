"""Shared test configuration: Hypothesis profiles.

Profiles (choose one with the ``HYPOTHESIS_PROFILE`` environment variable):

* ``default``: local runs, about 60 examples per property;
* ``ci``: the same budget, derandomized so that a CI run is reproducible;
* ``boundscheck``: few examples, for runs with ``NUMBA_BOUNDSCHECK=1`` (every kernel is
  recompiled with bounds checks, which makes each new type combination slow to compile).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
