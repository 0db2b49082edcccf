"""The distributed steps (rfm_fast.engines.distributed) run in one process: identical to
rfm_fast.score whatever the input partitions (by customer, or rows dealt at random), buckets
and batching."""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from helpers import Case, assert_same_result, run_engine, take
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import CUSTOMER, cases

import rfm_fast
from rfm_fast import RFMError
from rfm_fast.core.sketch import bucket_keys
from rfm_fast.engines import distributed

CASES = cases(min_rows=0, max_rows=60, exact_amounts=False)


def sorted_by_customer(result: rfm_fast.RFMResult, customer: str) -> rfm_fast.RFMResult:
    """The result with its rows in customer-key order, as rfm_fast.score returns them."""
    table = result.table
    order = pc.sort_indices(table.column(customer)) if table.num_rows else pa.array([], pa.int64())
    table = table.take(order).combine_chunks() if table.num_rows else table
    return rfm_fast.RFMResult(table, result.edges, result.stats)


def customer_partitions(table: pa.Table, parts: int, batch_rows: int) -> list[list[pa.RecordBatch]]:
    """The rows dealt to ``parts`` partitions by customer, each cut into small batches."""
    keys = table.column(CUSTOMER).to_pylist()
    owner = [hash(str(k)) % parts for k in keys]
    partitions = []
    for p in range(parts):
        rows = take(table, [i for i, o in enumerate(owner) if o == p])
        partitions.append(rows.to_batches(max_chunksize=batch_rows))
    return partitions


def random_partitions(
    table: pa.Table, owners: list[int], parts: int, batch_rows: int
) -> list[list[pa.RecordBatch]]:
    """Row ``i`` dealt to partition ``owners[i] % parts``: a customer's rows, and an order's
    lines, end up spread over several partitions."""
    partitions = []
    for p in range(parts):
        rows = take(table, [i for i, o in enumerate(owners) if o % parts == p])
        partitions.append(rows.to_batches(max_chunksize=batch_rows))
    return partitions


def run_distributed(
    case: Case, parts: int, batch_rows: int, buckets: int = 4
) -> rfm_fast.RFMResult:
    spec = distributed.checked_options(**case.options)
    partitions = customer_partitions(case.table, parts, batch_rows)
    result = distributed.score_partitions(spec, partitions, case.table.schema, buckets)
    return sorted_by_customer(result, CUSTOMER)


def whole_totals(spec: distributed.ScoringOptions, table: pa.Table):
    """The totals and header of one partition holding every row, in one bucket."""
    pieces, header = distributed.combine_partition(spec, table.to_batches(), table.schema, 1)
    return distributed.merge_pieces(spec, (piece for _, piece in pieces)), header


@given(CASES, st.integers(1, 5), st.integers(1, 7), st.integers(1, 6))
def test_partitions_score_like_one_run(case: Case, parts: int, batch_rows: int, buckets: int):
    assume(case.options.get("method", "exact") != "split")
    expected = run_engine(case)
    assert_same_result(run_distributed(case, parts, batch_rows, buckets), expected)


@given(CASES, st.data(), st.integers(1, 5), st.integers(1, 6), st.sampled_from([0, 1, 1e9]))
def test_rows_dealt_at_random_score_like_one_run(
    case: Case, data, parts: int, buckets: int, share: float
):
    """The map-side combine: partitions hold any rows, so a customer's rows (and an order's
    lines) meet only when the pieces of their bucket merge. ``share`` 0 sends every
    partition's rows, 1e9 every partition's state, 1 whichever is smaller."""
    assume(case.options.get("method", "exact") != "split")
    owners = data.draw(
        st.lists(st.integers(0, 7), min_size=case.table.num_rows, max_size=case.table.num_rows)
    )
    spec = distributed.checked_options(**case.options)
    partitions = random_partitions(case.table, owners, parts, 3)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(distributed, "COMBINE_MAX_SHARE", share)
        result = distributed.score_partitions(spec, partitions, case.table.schema, buckets)
    assert_same_result(sorted_by_customer(result, CUSTOMER), run_engine(case))


def test_a_partition_sends_its_state_or_its_rows_whichever_is_smaller():
    spec = distributed.checked_options(customer="c", timestamp="t", amount="a")
    moments = pa.array([0] * 1000, pa.timestamp("s"))
    repeats = pa.table({"c": [1, 2] * 500, "t": moments, "a": [1.0] * 1000})
    singles = pa.table({"c": list(range(1000)), "t": moments, "a": [1.0] * 1000})
    kinds = {}
    for name, table in (("repeats", repeats), ("singles", singles)):
        pieces, header = distributed.combine_partition(spec, table.to_batches(), table.schema, 3)
        kinds[name] = {piece[:1] for _, piece in pieces}
        assert header.counts.rows_read == 1000
        totals = distributed.merge_pieces(spec, (piece for _, piece in pieces))
        assert totals.num_rows == len(set(table.column("c").to_pylist()))
    assert kinds == {"repeats": {distributed.STATE_PIECE}, "singles": {distributed.ROWS_PIECE}}


def test_rows_and_states_of_one_customer_fall_in_one_bucket():
    """The bucket of the raw customer column is that of the state's keys, whatever its type."""
    from rfm_fast.core.state import customer_buckets

    texts = ["a", "bb", None, "ccc", "a"]
    for column in (
        pa.array([5, -3, None, 2**40, 5], pa.int64()),
        pa.array([5, 3, None, 7, 5], pa.int32()),
        pa.array([5, 3, None, 2**63 + 9, 5], pa.uint64()),
        pa.array(texts, pa.string()),
        pa.array(texts, pa.large_string()),
        pa.array(texts, pa.string()).dictionary_encode(),
    ):
        table = pa.table({"c": column, "t": pa.array([0] * 5, pa.timestamp("s")), "a": [1.0] * 5})
        state = rfm_fast.CustomerState.of(table, customer="c", timestamp="t", amount="a")
        rows = customer_buckets(column, 7)
        keys = customer_buckets(state.keys, 7)
        values = column.to_pylist()
        by_key = dict(zip(sorted(v for v in set(values) if v is not None), keys, strict=True))
        assert all(rows[i] == by_key[v] for i, v in enumerate(values) if v is not None)


def test_a_customer_falls_in_one_bucket_whatever_the_partition(monkeypatch):
    monkeypatch.setattr(distributed, "COMBINE_MAX_SHARE", 1e9)  # states, even of a few rows
    spec = distributed.checked_options(customer="c", timestamp="t", amount="a", order="o")
    table = pa.table(
        {
            "c": ["x", "y", "z", "x", "y", "w"] * 3,
            "t": pa.array(list(range(18)), pa.timestamp("s")),
            "a": [1.0] * 18,
            "o": [1, 2, 3, 1, 4, 5] * 3,
        }
    )
    buckets_of = []
    for part in (table.slice(0, 6), table.slice(6, 7), table.slice(13)):
        pieces, _ = distributed.combine_partition(spec, part.to_batches(), part.schema, 3)
        assert {piece[:1] for _, piece in pieces} == {distributed.STATE_PIECE}
        states = {b: rfm_fast.CustomerState.from_bytes(piece[1:]) for b, piece in pieces}
        buckets_of.append({k: b for b, s in states.items() for k in s.keys.to_pylist()})
    assert buckets_of[0] == buckets_of[1] == buckets_of[2]
    assert sorted(buckets_of[0]) == ["w", "x", "y", "z"]


@pytest.mark.slow
@pytest.mark.parametrize("method", ["exact", "approx"])
@pytest.mark.parametrize("monetary", ["sum", "mean"])
def test_many_customers_with_ties_and_spread(method: str, monetary: str):
    """Thousands of customers: heavy ties, values sharing sketch buckets, negatives and zeros."""
    rng = np.random.default_rng(7)
    n = 40_000
    customers = rng.integers(0, 6_000, n)
    spend = np.round(rng.lognormal(3, 1.2, n), 2)
    spend[rng.random(n) < 0.1] = 9.99  # a popular price: many exact ties
    spend[rng.random(n) < 0.02] *= -1  # returns
    table = pa.table(
        {
            CUSTOMER: customers,
            "ts": pa.array(rng.integers(0, 400 * 86_400, n), pa.timestamp("s")),
            "amount": spend,
            "order": rng.integers(0, 20_000, n),
        }
    )
    options = dict(customer=CUSTOMER, timestamp="ts", amount="amount", order="order")
    options.update(method=method, monetary=monetary)
    case = Case(table, options)
    expected = run_engine(case)
    money = expected.table.column("monetary").to_numpy()
    # the cut-off ranks land inside crowded buckets, so the exact path needs candidates
    assert np.unique(bucket_keys(money)).shape[0] < money.shape[0] / 2
    for parts in (1, 3, 8):
        assert_same_result(run_distributed(case, parts, 5_000), expected)


def test_plan_needs_candidates_only_for_crowded_buckets():
    spec = distributed.checked_options(
        customer="c", timestamp="t", amount="a", bins=2, segments=None
    )
    table = pa.table(
        {"c": [1, 2, 3, 4], "t": pa.array([0, 0, 0, 0], pa.timestamp("s")), "a": [1.0] * 4}
    )
    totals, header = whole_totals(spec, table)
    as_of = distributed.as_of_ticks(header)
    summary = distributed.histograms_of(spec, totals, header, as_of)
    assert summary.customers == 4
    final = distributed.plan(spec, summary, as_of)
    # all four customers tie in one bucket whose largest value is every cut-off: no pending
    assert final.pending == () and final.edges["monetary"] == [1.0]
    assert final.empty["monetary"] == [2]


def test_split_is_refused_across_partitions():
    with pytest.raises(RFMError, match="'split' breaks ties by customer key"):
        distributed.checked_options(customer="c", timestamp="t", amount="a", method="split")


def test_a_window_is_refused_across_partitions():
    """Not silently ignored: the partitions would score every row."""
    with pytest.raises(RFMError, match="window is not available across partitions"):
        distributed.checked_options(customer="c", timestamp="t", amount="a", window=30)


def test_summaries_and_candidates_travel_as_bytes():
    spec = distributed.checked_options(
        customer="c", timestamp="t", amount="a", bins=3, segments=None
    )
    table = pa.table(
        {
            "c": list(range(9)),
            "t": pa.array(list(range(9)), pa.timestamp("s")),
            "a": [1.0, 1.001, 1.002, 1.003, 5.0, 5.0, 5.0, 7.0, 9.0],
        }
    )
    totals, header = whole_totals(spec, table)
    header = distributed.PartitionHeader.from_bytes(header.to_bytes())
    as_of = distributed.as_of_ticks(header)
    summary = distributed.Histograms.from_bytes(
        distributed.histograms_of(spec, totals, header, as_of).to_bytes()
    )
    current = distributed.plan(spec, summary, as_of)
    assert current.pending  # rank 2 (1.002) sits inside the bucket of 1.0 .. 1.003
    part = distributed.candidates(spec, totals, header, current)
    final = distributed.refine(spec, current, [distributed.Candidates.from_bytes(part.to_bytes())])
    expected = rfm_fast.score(table, customer="c", timestamp="t", amount="a", bins=3, segments=None)
    assert final.edges == expected.edges


def test_a_column_named_like_a_product_is_one_column():
    spec = distributed.checked_options(customer="c", timestamp="t", amount="Quantity*UnitPrice")
    assert spec.reading.columns.names_in(["c", "t", "Quantity*UnitPrice"]) == [
        "c",
        "t",
        "Quantity*UnitPrice",
    ]
    assert spec.reading.columns.names_in(["c", "t", "Quantity", "UnitPrice"]) == [
        "c",
        "t",
        "Quantity",
        "UnitPrice",
    ]


def test_float_ids_that_are_whole_numbers_across_partitions():
    """Rows sent as rows (one or two per customer) are bucketed by the same int64 ids."""
    import datetime as dt

    table = pa.table(
        {
            "c": [1.0, 2.0, 3.0, None],
            "t": pa.array([dt.date(2024, 1, d) for d in (1, 2, 3, 4)]),
            "a": [1.0, 2.0, 3.0, 4.0],
        }
    )
    spec = distributed.checked_options(customer="c", timestamp="t", amount="a", segments=None)
    parts = [table.slice(0, 2).to_batches(), table.slice(2).to_batches()]
    result = distributed.score_partitions(spec, parts, table.schema)
    expected = rfm_fast.score(table, customer="c", timestamp="t", amount="a", segments=None)
    assert result.table.sort_by("c").equals(expected.table)
    assert result.stats == expected.stats


@given(CASES, st.integers(1, 5), st.sampled_from(["lifecycle", "value"]))
def test_raw_metric_and_value_maps_score_like_one_run(case: Case, parts: int, name: str):
    assume(case.options.get("method", "exact") != "split")
    assume(name == "lifecycle" or case.options.get("bins", 5) == 5)
    options = {**case.options, "segments": name}
    spec = distributed.checked_options(**options)
    partitions = customer_partitions(case.table, parts, 7)
    result = distributed.score_partitions(spec, partitions, case.table.schema, 3)
    assert result.rules == rfm_fast.BUILTIN_MAPS[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMWarning)
        expected = rfm_fast.score(case.table, **options)
    assert_same_result(sorted_by_customer(result, CUSTOMER), expected)
