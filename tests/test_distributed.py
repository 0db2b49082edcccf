"""The distributed steps (rfm_fast.distributed) run in one process over partitions of the
customers: identical to rfm_fast.score whatever the partitioning and batching."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from strategies import CUSTOMER, Case, assert_same_result, cases, run_engine
from test_invariance import _take

import rfm_fast
from rfm_fast import RFMError, distributed
from rfm_fast.sketch import bucket_keys

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
        rows = _take(table, [i for i, o in enumerate(owner) if o == p])
        partitions.append(rows.to_batches(max_chunksize=batch_rows))
    return partitions


def run_distributed(case: Case, parts: int, batch_rows: int) -> rfm_fast.RFMResult:
    spec = distributed.Spec.of(**case.options)
    partitions = customer_partitions(case.table, parts, batch_rows)
    result = distributed.score_partitions(spec, partitions, case.table.schema)
    return sorted_by_customer(result, CUSTOMER)


@given(CASES, st.integers(1, 5), st.integers(1, 7))
def test_partitions_score_like_one_run(case: Case, parts: int, batch_rows: int):
    assume(case.options.get("method", "exact") != "split")
    expected = run_engine(case)
    assert_same_result(run_distributed(case, parts, batch_rows), expected)


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
    spec = distributed.Spec.of(customer="c", timestamp="t", amount="a", bins=2, segments=None)
    table = pa.table(
        {"c": [1, 2, 3, 4], "t": pa.array([0, 0, 0, 0], pa.timestamp("s")), "a": [1.0] * 4}
    )
    totals, header = distributed.partition_totals(spec, table.to_batches(), table.schema)
    as_of = distributed.as_of_ticks(header)
    summary = distributed.summarize(spec, totals, header, as_of)
    assert summary.customers == 4
    final = distributed.plan(spec, summary, as_of)
    # all four customers tie in one bucket whose largest value is every cut-off: no pending
    assert final.pending == () and final.edges["monetary"] == [1.0]
    assert final.empty["monetary"] == [2]


def test_split_is_refused_across_partitions():
    with pytest.raises(RFMError, match="'split' breaks ties by customer key"):
        distributed.Spec.of(customer="c", timestamp="t", amount="a", method="split")


def test_summaries_and_candidates_travel_as_bytes():
    spec = distributed.Spec.of(customer="c", timestamp="t", amount="a", bins=3, segments=None)
    table = pa.table(
        {
            "c": list(range(9)),
            "t": pa.array(list(range(9)), pa.timestamp("s")),
            "a": [1.0, 1.001, 1.002, 1.003, 5.0, 5.0, 5.0, 7.0, 9.0],
        }
    )
    totals, header = distributed.partition_totals(spec, table.to_batches(), table.schema)
    header = distributed.PartitionHeader.from_bytes(header.to_bytes())
    as_of = distributed.as_of_ticks(header)
    summary = distributed.Summary.from_bytes(
        distributed.summarize(spec, totals, header, as_of).to_bytes()
    )
    current = distributed.plan(spec, summary, as_of)
    assert current.pending  # rank 2 (1.002) sits inside the bucket of 1.0 .. 1.003
    part = distributed.candidates(spec, totals, header, current)
    final = distributed.refine(spec, current, [distributed.Candidates.from_bytes(part.to_bytes())])
    expected = rfm_fast.score(table, customer="c", timestamp="t", amount="a", bins=3, segments=None)
    assert final.edges == expected.edges


def test_a_column_named_like_a_product_is_one_column():
    spec = distributed.Spec.of(customer="c", timestamp="t", amount="Quantity*UnitPrice")
    assert spec.columns_in(["c", "t", "Quantity*UnitPrice"]) == ["c", "t", "Quantity*UnitPrice"]
    assert spec.columns_in(["c", "t", "Quantity", "UnitPrice"]) == [
        "c",
        "t",
        "Quantity",
        "UnitPrice",
    ]
