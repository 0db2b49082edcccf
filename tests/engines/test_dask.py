"""rfm_fast.engines.dask against a real Dask LocalCluster with 2 worker processes: identical to
rfm_fast.score on the same rows.

Needs ``rfm_fast[dask]``. The input partitions split orders and customers arbitrarily (rows
are dealt out in order, so an order's lines can straddle two partitions), and each shuffled
partition reaches the kernels as several Arrow batches (``batch_rows``).
"""

from __future__ import annotations

import pyarrow as pa
import pytest
from helpers import assert_same_scores, order_lines, require

import rfm_fast

dask = require("dask")
require("distributed")
pytestmark = [pytest.mark.slow]


@pytest.fixture(scope="module")
def client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        # a free port of its own: the scheduler's HTTP server starts even without a dashboard,
        # and the default, 8787, may be taken (another test run on the machine)
        dashboard_address="127.0.0.1:0",
        host="127.0.0.1",
    )
    with cluster, Client(cluster) as connected:
        yield connected


def _check(
    client, table: pa.Table, partitions: int = 6, **options
) -> rfm_fast.engines.dask.DaskResult:
    import dask.dataframe as dd

    import rfm_fast.engines.dask

    frame = table.to_pandas()
    expected = rfm_fast.score(frame, **options)
    ddf = dd.from_pandas(frame, npartitions=partitions, sort=False)
    result = rfm_fast.engines.dask.score_result(ddf, batch_rows=500, **options)
    got = pa.Table.from_pandas(result.table.compute(), preserve_index=False)
    assert_same_scores(got, expected, options["customer"])
    assert result.edges == expected.edges
    assert result.stats == expected.stats
    return result


def test_cdnow_example(client):
    result = _check(
        client,
        rfm_fast.datasets.load_example(),
        customer="customer_id",
        timestamp="date",
        amount="dollar_value",
    )
    assert result.stats.customers == 23_570


@pytest.mark.parametrize("method", ["exact", "approx"])
def test_order_lines_with_text_ids_nulls_and_returns(client, method):
    result = _check(
        client,
        order_lines(),
        customer="customer",
        timestamp="ordered_at",
        amount="amount",
        order="order_id",
        method=method,
    )
    assert result.stats.dropped["null_customer"] > 0


def test_days_and_mean_with_more_partitions_than_customers(client):
    table = order_lines(seed=9, rows=60)
    _check(
        client,
        table,
        partitions=10,
        customer="customer",
        timestamp="ordered_at",
        amount="amount",
        frequency="days",
        monetary="mean",
    )


def test_no_rows_is_a_clear_error(client):
    import dask.dataframe as dd

    import rfm_fast.engines.dask

    frame = order_lines(rows=20).to_pandas().iloc[:0]
    with pytest.raises(rfm_fast.RFMError, match="no rows to score"):
        rfm_fast.engines.dask.score(
            dd.from_pandas(frame, npartitions=1),
            customer="customer",
            timestamp="ordered_at",
            amount="amount",
        )
