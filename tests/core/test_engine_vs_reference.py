"""Property tests: the compiled engine (``rfm_fast.score``) agrees with the pandas reference
(``rfm_fast.reference.score``) on random order tables: every output column, every edge and every
run statistic.

``test_matches_reference`` draws everything at random; the other tests pin one dimension (key
type, time type, order column, user ``as_of``, thresholds, tiny inputs) so that each value of it
is exercised on every run, whatever the random draw.
"""

from __future__ import annotations

import pytest
from helpers import Case, assert_matches_reference
from hypothesis import given
from hypothesis import strategies as st
from strategies import KEY_KINDS, TIME_KINDS, cases, scaled


@given(cases(window=None))
def test_matches_reference(case: Case) -> None:
    assert_matches_reference(case)


@scaled(0.5)
@given(cases(window=True))
def test_window(case: Case) -> None:
    """Only the rows at most ``window`` days before as_of (given, or the latest row of all
    plus a day) count; the others are dropped and counted as before_window."""
    assert_matches_reference(case)


@pytest.mark.parametrize("kind", KEY_KINDS)
@scaled(0.2)
@given(data=st.data())
def test_customer_key_types(kind: str, data: st.DataObject) -> None:
    """int8..uint64 (negative and huge ids), string, large_string, string_view, dictionaries."""
    assert_matches_reference(data.draw(cases(key_kinds=[kind], window=None), label="case"))


@pytest.mark.parametrize("kind", TIME_KINDS, ids=lambda k: "-".join(str(p) for p in k if p))
@scaled(0.2)
@given(data=st.data())
def test_time_types(kind: tuple, data: st.DataObject) -> None:
    """date32, date64 and timestamp s/ms/us/ns, naive and zoned, with and without as_of."""
    assert_matches_reference(data.draw(cases(time_kinds=[kind], window=None), label="case"))


@scaled(0.5)
@given(cases(order=True, min_rows=1))
def test_order_column(case: Case) -> None:
    """Orders spread over rows and customers, int and text ids, null ids."""
    assert_matches_reference(case)


@scaled(0.5)
@given(cases(as_of=True))
def test_user_as_of(case: Case) -> None:
    """as_of as datetime (naive or with an offset), date, text or datetime64; rows after it."""
    assert_matches_reference(case)


@scaled(0.5)
@given(cases(with_thresholds=True))
def test_user_thresholds(case: Case) -> None:
    assert_matches_reference(case)


@scaled(0.5)
@given(cases(customers=(1, 1), min_rows=1, max_rows=8))
def test_one_customer(case: Case) -> None:
    assert_matches_reference(case)


@scaled(0.5)
@given(cases(customers=(1, 3), max_rows=200))
def test_many_ties(case: Case) -> None:
    """Few customers and many rows: long runs of equal values in every metric."""
    assert_matches_reference(case)


@scaled(0.3)
@given(cases(max_rows=0))
def test_empty_input(case: Case) -> None:
    """No rows at all: an empty result with every column, NaN edges, and an RFMWarning."""
    result = assert_matches_reference(case)
    assert result.table.num_rows == 0
    assert result.stats.as_of is None or "as_of" in case.options
