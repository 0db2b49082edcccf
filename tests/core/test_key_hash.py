"""Integer keys travel through the partitions as their hash: ``unmix64`` must invert ``mix64``
exactly, for every int64 (sentinels included)."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from rfm_fast._kernels.config import jit
from rfm_fast._kernels.hashing import mix64, unmix64

INT64 = np.iinfo(np.int64)


@jit
def _round_trip(keys, out):
    for i in range(keys.shape[0]):
        out[i] = unmix64(mix64(keys[i]))


@given(st.lists(st.integers(int(INT64.min), int(INT64.max)), min_size=1, max_size=50))
def test_unmix64_inverts_mix64(values):
    keys = np.array(values, dtype=np.int64)
    out = np.empty_like(keys)
    _round_trip(keys, out)
    np.testing.assert_array_equal(out, keys)


def test_unmix64_at_the_edges():
    keys = np.array([0, 1, -1, INT64.min, INT64.max, INT64.min + 1], dtype=np.int64)
    out = np.empty_like(keys)
    _round_trip(keys, out)
    np.testing.assert_array_equal(out, keys)
