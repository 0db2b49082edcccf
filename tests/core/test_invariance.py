"""The result does not depend on how the input is cut into batches, on the order of its rows,
or on the way it is handed over (table, batch size, record batch reader).

Amounts here are any finite floats, tiny and subnormal ones included: the sums must be
bit-identical however the rows are ordered and grouped.
"""

from __future__ import annotations

import itertools

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from helpers import Case, assert_same_result, run_engine, take
from hypothesis import given
from hypothesis import strategies as st
from strategies import cases

from rfm_fast import RFMError

CASES = cases(min_rows=1, max_rows=60, exact_amounts=False, window=None)


def _boundaries(data: st.DataObject, n: int) -> list[int]:
    """Random cut points 0 = c0 <= c1 <= ... <= ck = n (empty batches included)."""
    cuts = data.draw(st.lists(st.integers(0, n), max_size=8), label="cuts")
    return [0, *sorted(cuts), n]


def _redictionary(column: pa.Array, dictionary: pa.Array) -> pa.Array:
    """``column`` (a dictionary array) re-encoded over another ``dictionary``."""
    values = column.cast(column.type.value_type)
    indices = pc.index_in(values, value_set=dictionary).cast(column.type.index_type)
    return pa.DictionaryArray.from_arrays(indices, dictionary)


def _batches(table: pa.Table, cuts: list[int], data: st.DataObject) -> list[pa.RecordBatch]:
    """The table cut at ``cuts``; dictionary columns get a different dictionary per batch
    (the full dictionary in a random order, so most batches have unused entries)."""
    table = table.combine_chunks()
    batches = []
    for start, stop in itertools.pairwise(cuts):
        batch = table.slice(start, stop - start).to_batches()
        batch = batch[0] if batch else pa.RecordBatch.from_pylist([], schema=table.schema)
        columns = []
        for field, column in zip(table.schema, batch.columns, strict=True):
            if pa.types.is_dictionary(field.type) and data.draw(st.booleans(), label="recode"):
                order = data.draw(st.permutations(range(len(column.dictionary))), label="order")
                column = _redictionary(column, column.dictionary.take(pa.array(order, pa.int64())))
            columns.append(column)
        batches.append(pa.RecordBatch.from_arrays(columns, schema=table.schema))
    return batches


@given(CASES, st.data())
def test_any_batch_boundaries(case: Case, data: st.DataObject) -> None:
    expected = run_engine(case)
    batches = _batches(case.table, _boundaries(data, case.table.num_rows), data)
    table = pa.Table.from_batches(batches, schema=case.table.schema)
    assert_same_result(run_engine(case, table), expected)


@given(CASES, st.integers(1, 7))
def test_any_batch_rows(case: Case, batch_rows: int) -> None:
    expected = run_engine(case)
    assert_same_result(run_engine(case, batch_rows=batch_rows), expected)


@given(CASES, st.data())
def test_any_row_order(case: Case, data: st.DataObject) -> None:
    expected = run_engine(case)
    order = data.draw(st.permutations(range(case.table.num_rows)), label="permutation")
    shuffled = take(case.table, order)
    assert_same_result(run_engine(case, shuffled), expected)
    assert_same_result(run_engine(case, shuffled, batch_rows=3), expected)


@given(CASES, st.data())
def test_record_batch_reader(case: Case, data: st.DataObject) -> None:
    expected = run_engine(case)
    batches = _batches(case.table, _boundaries(data, case.table.num_rows), data)
    reader = pa.RecordBatchReader.from_batches(case.table.schema, batches)
    if "window" in case.options and "as_of" not in case.options:
        # the default as_of of a window needs a pass of its own: a reader is read only once
        with pytest.raises(RFMError, match="a window without as_of reads its input twice"):
            run_engine(case, reader)
    else:
        assert_same_result(run_engine(case, reader), expected)
    # a single record batch, and the table as one chunk
    batch = case.table.combine_chunks().to_batches()[0]
    assert_same_result(run_engine(case, batch), expected)
