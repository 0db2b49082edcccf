"""The run scatter's tight loops (``scatter_int_runs_plain``, for inputs without nulls or
distinct values) write the records and counters of the general ``scatter_int_runs``, and stop
at the same rows when a buffer is full."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast._kernels import buffered as kernels
from rfm_fast._kernels import layout
from rfm_fast.core.partitions import slot_array

NO_BITMAP = np.empty(0, dtype=np.uint8)
NO_VALUES = np.empty(0, dtype=np.int64)


def _state(partitions: int, capacity: int):
    records = slot_array(partitions, capacity, layout.RUN_WIDTH)
    fill = np.zeros(partitions, dtype=np.int64)
    counters = np.zeros(layout.N_COUNTERS, dtype=np.int64)
    counters[layout.MAX_TIMESTAMP] = np.iinfo(np.int64).min
    return records, fill, counters


@settings(max_examples=80, deadline=None)
@given(
    data=st.data(),
    n=st.integers(0, 120),
    bits=st.integers(0, 2),
    capacity=st.integers(1, 6),
    returns=st.sampled_from([layout.RETURNS_PURCHASE, layout.RETURNS_NET]),
    integer_amounts=st.booleans(),
)
def test_plain_run_scatter_matches_the_general_one(
    data, n, bits, capacity, returns, integer_amounts
):
    run_keys = data.draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    keys = np.array(run_keys, dtype=np.int64)
    rng = np.random.default_rng(n)
    ts = rng.integers(0, 100, n).astype(np.int64)
    as_of = int(data.draw(st.integers(50, 120)))
    if integer_amounts:
        amounts = rng.integers(-50, 100, n).astype(np.int64)
    else:
        amounts = np.round(rng.normal(5, 20, n), 2)
        amounts[rng.random(n) < 0.1] = np.nan
    partitions = 1 << bits
    general = _state(partitions, capacity)
    plain = _state(partitions, capacity)
    start = 0
    while start < n:
        records, fill, counters = general
        at_general = kernels.scatter_int_runs(
            start,
            n,
            64 - bits,
            keys,
            NO_BITMAP,
            0,
            ts,
            NO_BITMAP,
            0,
            as_of,
            amounts,
            NO_BITMAP,
            0,
            returns,
            NO_VALUES,
            NO_BITMAP,
            0,
            fill,
            records,
            counters,
        )
        records, fill, counters = plain
        at_plain = kernels.scatter_int_runs_plain(
            start, n, 64 - bits, keys, ts, as_of, amounts, returns, fill, records, counters
        )
        assert at_plain == at_general
        for got, expected in zip(plain, general, strict=True):
            assert np.array_equal(got, expected)
        for records, fill, _ in (general, plain):  # a fold empties the buffers
            fill[:] = 0
            records[:] = 0
        assert at_plain > start or n == 0
        start = at_plain
