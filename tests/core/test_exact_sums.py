"""The branchless exact sum (rfm_fast._kernels.totals.exact_sum) against a model in Python
integers of the branching one it replaced: the same words out for every valid input, overflow
included."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast._kernels.config import jit
from rfm_fast._kernels.totals import FRACTION_ONE, SUM_LIMIT, SUM_OVERFLOW, exact_sum

ONE = int(FRACTION_ONE)
LIMIT = int(SUM_LIMIT)
OVERFLOW = int(SUM_OVERFLOW)


@jit
def _add(sum_whole, sum_fraction, whole, fraction):
    return exact_sum(sum_whole, sum_fraction, whole, fraction)


def model(sum_whole: int, sum_fraction: int, whole: int, fraction: int) -> tuple[int, int]:
    """The carry and the overflow test written with branches, in unbounded integers."""
    if sum_fraction == OVERFLOW or fraction == OVERFLOW:
        return sum_whole, OVERFLOW
    total = sum_fraction + fraction
    carry = 0
    if total >= ONE:
        carry, total = 1, total - ONE
    elif total <= -ONE:
        carry, total = -1, total + ONE
    step = whole + carry
    if (step > 0 and sum_whole + step > LIMIT) or (step < 0 and sum_whole + step < -LIMIT):
        return sum_whole, OVERFLOW
    return sum_whole + step, total


# Whole parts near zero and near the limits, where the carry and the overflow test matter.
wholes = st.one_of(
    st.integers(-(2**20), 2**20),
    st.integers(LIMIT - 2**20, LIMIT),
    st.integers(-LIMIT, -LIMIT + 2**20),
    st.integers(-LIMIT, LIMIT),
)
fractions = st.one_of(
    st.integers(-ONE + 1, ONE - 1),
    st.integers(ONE - 2**10, ONE - 1),
    st.integers(-ONE + 1, -ONE + 2**10),
    st.just(0),
    st.just(OVERFLOW),
)


@settings(max_examples=300)
@given(wholes, fractions, wholes, fractions)
def test_exact_sum_matches_the_branching_model(sum_whole, sum_fraction, whole, fraction):
    got = _add(np.int64(sum_whole), np.int64(sum_fraction), np.int64(whole), np.int64(fraction))
    assert (int(got[0]), int(got[1])) == model(sum_whole, sum_fraction, whole, fraction)


def test_exact_sum_edges():
    cases = [
        (LIMIT, 0, 1, 0),  # one past the limit
        (LIMIT, ONE - 1, 0, 1),  # a carry past the limit
        (-LIMIT, -(ONE - 1), 0, -1),  # a negative carry past the limit
        (LIMIT - 1, ONE - 1, 0, 1),  # a carry up to the limit
        (LIMIT, 5, -LIMIT, -5),  # back to zero
        (0, 0, 0, 0),
    ]
    for case in cases:
        got = _add(*(np.int64(v) for v in case))
        assert (int(got[0]), int(got[1])) == model(*case)
