"""Mergeable states: any split of the rows, merged in any order and shipped as bytes or
pickles, scores exactly like one run over all the rows."""

from __future__ import annotations

import pickle
import warnings
from dataclasses import replace

import numpy as np
import pyarrow as pa
import pytest
from helpers import Case, assert_same_result, run_engine, take
from hypothesis import given
from hypothesis import strategies as st
from strategies import CUSTOMER, cases

import rfm_fast
from rfm_fast import CustomerState, RFMError, merge_states
from rfm_fast.core.state import customer_buckets

READ_OPTIONS = ("customer", "timestamp", "amount", "order", "as_of", "frequency")
READ_OPTIONS += ("timestamp_format", "returns")
CASES = cases(min_rows=0, max_rows=60, exact_amounts=False)


def _split_options(case: Case) -> tuple[dict, dict]:
    read = {k: v for k, v in case.options.items() if k in READ_OPTIONS}
    scoring = {k: v for k, v in case.options.items() if k not in READ_OPTIONS}
    return read, scoring


def _score(state: CustomerState, scoring: dict) -> rfm_fast.RFMResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMWarning)  # empty inputs warn
        return state.score(**scoring)


def _shipped(state: CustomerState, how: int) -> CustomerState:
    if how == 0:
        return state
    if how == 1:
        return CustomerState.from_bytes(state.to_bytes())
    return pickle.loads(pickle.dumps(state))


def _merge_in_random_tree(states: list[CustomerState], data: st.DataObject) -> CustomerState:
    """Merge pairs of states picked at random, each shipped as bytes or a pickle first."""
    states = list(states)
    while len(states) > 1:
        i, j = data.draw(st.permutations(range(len(states))), label="pair")[:2]
        a, b = (_shipped(states[k], data.draw(st.integers(0, 2), label="ship")) for k in (i, j))
        merged = a + b
        states = [s for k, s in enumerate(states) if k not in (i, j)] + [merged]
    return states[0]


@given(CASES, st.data())
def test_any_split_merged_in_any_order_scores_like_one_run(case: Case, data: st.DataObject):
    expected = run_engine(case)
    read, scoring = _split_options(case)
    n = case.table.num_rows
    parts = data.draw(st.integers(1, 4), label="parts")
    # Rows are dealt to parts at random: an order's lines and a customer's orders spread out.
    owner = data.draw(st.lists(st.integers(0, parts - 1), min_size=n, max_size=n), label="owner")
    states = [
        CustomerState.of(take(case.table, [i for i in range(n) if owner[i] == p]), **read)
        for p in range(parts)
    ]
    assert_same_result(_score(_merge_in_random_tree(states, data), scoring), expected)


@given(CASES, st.integers(1, 4))
def test_complete_states_of_customer_partitions_merge(case: Case, parts: int):
    expected = run_engine(case)
    read, scoring = _split_options(case)
    keys = case.table.column(CUSTOMER).to_pylist()
    owner = [hash(str(k)) % parts for k in keys]  # every row of a customer in one part
    states = [
        CustomerState.of(
            take(case.table, [i for i, o in enumerate(owner) if o == p]), **read, complete=True
        )
        for p in range(parts)
    ]
    for state in states:
        assert state.complete and state.pair_customers is None
    merged = merge_states([_shipped(s, 1) for s in reversed(states)])
    assert_same_result(_score(merged, scoring), expected)


@given(CASES, st.integers(1, 5))
def test_the_buckets_of_a_split_merge_back_to_the_state(case: Case, buckets: int):
    read, scoring = _split_options(case)
    state = CustomerState.of(case.table, **read)
    parts = state.split(buckets)
    assert len(parts) == buckets and sum(len(p) for p in parts) == len(state)
    for part in parts:  # keys ascending inside each bucket, pairs naming its own customers
        keys = part.keys.to_pylist() if isinstance(part.keys, pa.Array) else part.keys.tolist()
        assert keys == sorted(keys)
    merged = merge_states([_shipped(p, 1) for p in reversed(parts)])
    assert merged.counts == state.counts
    assert_same_result(_score(merged, scoring), run_engine(case))


def test_split_needs_a_whole_number_of_buckets():
    state = CustomerState.of(TABLE, **COLUMNS)
    for bad in (0, -1, 2.0, True):
        with pytest.raises(RFMError, match="buckets must be a whole number"):
            state.split(bad)


TABLE = pa.table(
    {
        "c": ["a", "a", "b", "b"],
        "t": pa.array([0, 86_400, 0, 86_400 * 3], pa.timestamp("s")),
        "x": [1.0, 2.0, 3.0, 4.0],
        "o": ["o1", "o1", "o2", "o3"],
    }
)
COLUMNS = {"customer": "c", "timestamp": "t", "amount": "x", "order": "o"}


def test_text_orders_spread_over_states_are_counted_once():
    one, two = (CustomerState.of(TABLE.slice(i, 2), **COLUMNS) for i in (0, 2))
    three = CustomerState.of(TABLE.slice(1, 3), **COLUMNS)  # overlaps: rows 1..3 again
    merged = one + two
    assert merged.distinct_counts().tolist() == [1, 2]
    assert merged.rows.tolist() == [2, 2]
    # a row folded twice counts twice as a row, but its order stays one order
    assert (merged + three).distinct_counts().tolist() == [1, 2]
    assert (merged + three).rows.tolist() == [3, 4]


def test_complete_states_sharing_a_customer_are_refused():
    one, two = (CustomerState.of(TABLE.slice(i, 2), **COLUMNS, complete=True) for i in (0, 1))
    with pytest.raises(RFMError, match="complete states share customers"):
        one + two


def test_states_built_differently_are_refused():
    one = CustomerState.of(TABLE, **COLUMNS)
    two = CustomerState.of(TABLE, **{**COLUMNS, "order": None})
    with pytest.raises(RFMError, match="different frequency: 'orders' and 'rows'"):
        one + two
    three = CustomerState.of(TABLE, **COLUMNS, as_of="1970-01-03")
    with pytest.raises(RFMError, match="different as_of_limit"):
        one + three


def test_bytes_that_are_not_a_state_are_refused():
    with pytest.raises(RFMError, match="not a CustomerState"):
        CustomerState.from_bytes(b"PAR1 something else")


def test_state_size_grows_with_customers_not_rows():
    wide = pa.concat_tables([TABLE] * 50)
    small = CustomerState.of(TABLE, **{**COLUMNS, "order": None})
    large = CustomerState.of(wide, **{**COLUMNS, "order": None})
    assert len(large) == len(small) == 2
    assert large.nbytes == small.nbytes
    assert large.counts.rows_read == 200


def test_an_empty_part_merges_with_text_order_ids():
    empty = CustomerState.of(TABLE.slice(0, 0), **COLUMNS)
    full = CustomerState.of(TABLE, **COLUMNS)
    assert isinstance(empty.pair_values, pa.Array)
    assert (empty + full).distinct_counts().tolist() == [1, 2]


def test_large_unsigned_keys_survive_a_merge_with_an_empty_part():
    table = pa.table(
        {
            "c": pa.array([2**53 + 1, 2**64 - 1], pa.uint64()),
            "t": pa.array([0, 1], pa.timestamp("s")),
            "x": [1.0, 2.0],
        }
    )
    columns = {"customer": "c", "timestamp": "t", "amount": "x"}
    empty = CustomerState.of(table.slice(0, 0), **columns, complete=True)
    full = CustomerState.of(table, **columns, complete=True)
    merged = empty + full
    assert merged.keys.tolist() == [2**53 + 1, 2**64 - 1]


def test_inconsistent_arrays_are_refused_before_any_kernel_sees_them():
    state = CustomerState.of(TABLE, **COLUMNS)
    with pytest.raises(RFMError, match=r"CustomerState\.rows must be 2 int64 values"):
        replace(state, rows=state.rows[:1])
    with pytest.raises(RFMError, match=r"pairs must name customers 0\.\.1"):
        replace(state, pair_customers=state.pair_customers + 5)


def test_customer_buckets_take_text_in_numpy_and_refuse_other_keys():
    text = np.array(["a", "b", "a"])
    assert customer_buckets(text, 8).tolist() == customer_buckets(pa.array(text), 8).tolist()
    for keys in (np.array([1.5, 2.5]), pa.array([1.5, 2.5]), pa.array([True, False])):
        with pytest.raises(RFMError, match="integers or text"):
            customer_buckets(keys, 8)


def test_a_state_with_unsorted_keys_merges_by_sorting_them():
    """Keys of a state built by hand may be in any order: the merge must not take them as
    sorted (the kernels index with the positions it finds)."""
    orders = pa.table(
        {"c": [5, 3, 9, 3], "t": pa.array([0, 1, 2, 3], pa.date32()), "a": [1.0, 2.0, 3.0, 4.0]}
    )
    state = CustomerState.of(orders, customer="c", timestamp="t", amount="a")
    backwards = slice(None, None, -1)
    reversed_state = replace(
        state,
        keys=state.keys[backwards].copy(),
        **{n: getattr(state, n)[backwards].copy() for n in ("first", "last", "rows")},
        **{n: getattr(state, n)[backwards].copy() for n in ("sum_whole", "sum_fraction")},
    )
    other = CustomerState.of(orders.slice(0, 1), customer="c", timestamp="t", amount="a")
    merged = merge_states([reversed_state, other])
    assert merged.keys.tolist() == [3, 5, 9]
    assert merged.rows.tolist() == [2, 2, 1]
