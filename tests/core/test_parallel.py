"""The partitioned, multi-threaded aggregation gives the same result whatever the number of
threads and partitions."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rfm_fast
from rfm_fast.core import parallel
from rfm_fast.core.aggregator import PARALLEL_MIN_ROWS, CustomerAggregator
from rfm_fast.core.arrow import TimeAxis, amount_values, key_column


def _orders(n: int, text_keys: bool, seed: int = 3) -> pa.Table:
    rng = np.random.default_rng(seed)
    customers = rng.integers(-(2**62), 2**62, 20_000)[rng.integers(0, 20_000, n)]
    keys = pa.array(customers.astype(str)) if text_keys else pa.array(customers)
    keys = pc.if_else(pa.array(rng.random(n) < 0.01), pa.scalar(None, keys.type), keys)
    return pa.table(
        {
            "customer": keys,
            "ts": pa.array(rng.integers(0, 10**9, n), pa.timestamp("s"), mask=rng.random(n) < 0.01),
            "amount": pa.array(rng.normal(10, 30, n), mask=rng.random(n) < 0.02),
            "order": pa.array(rng.integers(0, n // 3, n), mask=rng.random(n) < 0.01),
        }
    )


def _totals(table: pa.Table, threads: int, bits: int, batch: int, distinct: bool):
    axis = TimeAxis.of(table.schema.field("ts").type)
    kind = "string" if pa.types.is_string(table.schema.field("customer").type) else "int"
    aggregator = CustomerAggregator(
        kind, "int" if distinct else None, 10**9 - 10**7, threads=threads, partition_bits=bits
    )
    for record_batch in table.to_batches(max_chunksize=batch):
        ticks, ticks_valid = axis.ticks(record_batch.column("ts"))
        amounts, amounts_valid = amount_values(record_batch.column("amount"))
        orders = key_column(record_batch.column("order")) if distinct else None
        customers = key_column(record_batch.column("customer"))
        assert aggregator.update(customers, ticks, ticks_valid, amounts, amounts_valid, orders) < 0
    return aggregator.finish(), aggregator.row_counts()


@pytest.mark.parametrize("text_keys", [False, True])
@pytest.mark.parametrize("distinct", [False, True])
def test_threads_and_partitions_do_not_change_the_totals(text_keys: bool, distinct: bool):
    table = _orders(3 * PARALLEL_MIN_ROWS, text_keys)
    expected, expected_counts = _totals(table, threads=1, bits=0, batch=10**9, distinct=distinct)
    assert expected_counts.after_as_of > 0 and expected_counts.null_timestamp > 0
    assert expected_counts.null_customer > 0
    for threads, bits, batch in (
        (2, 6, 2 * PARALLEL_MIN_ROWS),
        (3, 3, PARALLEL_MIN_ROWS + 7),
        (2, 8, 10**9),
        (1, 6, 5_000),
    ):
        got, counts = _totals(table, threads, bits, batch, distinct)
        assert counts == expected_counts
        for name in ("first", "last", "rows", "distinct", "monetary"):
            np.testing.assert_array_equal(getattr(got, name), getattr(expected, name), name)
        if text_keys:
            assert got.keys.equals(expected.keys)
        else:
            np.testing.assert_array_equal(got.keys, expected.keys)


def test_score_threads_option_gives_identical_results():
    table = _orders(2 * PARALLEL_MIN_ROWS + 11, text_keys=False)
    kwargs = dict(customer="customer", timestamp="ts", amount="amount", order="order")
    reader = pa.RecordBatchReader.from_batches(table.schema, table.to_batches(40_000))
    partitioned = rfm_fast.score(reader, threads=2, **kwargs)
    single = rfm_fast.score(table, threads=1, batch_rows=17_000, **kwargs)
    assert partitioned.table.equals(single.table)
    assert partitioned.stats == single.stats
    with pytest.raises(rfm_fast.RFMError, match="threads"):
        rfm_fast.score(table, threads=0, **kwargs)


@st.composite
def _integer_keys(draw) -> np.ndarray:
    """Keys as the aggregation has them: spread over 64 bits, dense, clustered, with
    duplicates (text prefixes tie), at the ends of the range, signed or unsigned."""
    n = draw(st.integers(0, 3_000))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    kind = draw(st.sampled_from(["spread", "dense", "narrow", "duplicates", "ends", "one"]))
    if kind == "spread":
        keys = rng.integers(-(2**63), 2**63 - 1, n, endpoint=True)
    elif kind == "dense":
        keys = rng.permutation(n).astype(np.int64) - n // 2
    elif kind == "narrow":  # few distinct bits, above a large base
        keys = (1 << 40) + rng.integers(0, 300, n)
    elif kind == "duplicates":
        keys = rng.integers(0, 5, n) << rng.integers(0, 60)
    elif kind == "ends":
        keys = rng.choice(np.array([-(2**63), -1, 0, 1, 2**63 - 1]), n)
    else:
        keys = np.full(n, rng.integers(-(2**63), 2**63 - 1), dtype=np.int64)
    keys = keys.astype(np.int64)
    return keys.view(np.uint64) if draw(st.booleans()) else keys


@settings(max_examples=80, deadline=None)
@given(keys=_integer_keys(), threads=st.integers(1, 4), minimum=st.sampled_from([2, 1 << 12]))
def test_radix_sort_is_numpys_stable_sort(keys: np.ndarray, threads: int, minimum: int):
    """The radix sort (from ``minimum`` keys) is NumPy's stable sort; below it, some sort."""
    expected = np.argsort(keys, kind="stable")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "RADIX_SORT_MIN", minimum)
        ordered, order = parallel.radix_sorted(keys, threads)
    assert ordered.dtype == keys.dtype
    np.testing.assert_array_equal(ordered, keys[expected])
    np.testing.assert_array_equal(keys[order], ordered)
    if keys.shape[0] >= minimum:
        np.testing.assert_array_equal(order, expected)
    else:
        np.testing.assert_array_equal(np.sort(order), np.arange(keys.shape[0]))


def _strings_of(texts: list[bytes]) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.zeros(len(texts) + 1, dtype=np.int64)
    np.cumsum([len(t) for t in texts], out=offsets[1:])
    return offsets, np.frombuffer(b"".join(texts) or b"\0", dtype=np.uint8)


@settings(max_examples=60, deadline=None)
@given(
    texts=st.lists(
        st.one_of(
            st.binary(max_size=12),
            st.binary(max_size=4).map(lambda tail: b"CUSTOMER-0000" + tail),  # shared prefix
            st.integers(0, 10**6).map(lambda k: f"c{k}".encode()),
        ),
        unique=True,
        max_size=300,
    ),
    threads=st.integers(1, 3),
    tie_run_max=st.sampled_from([1, 2, 64]),
    long_runs_max=st.sampled_from([0, 64]),
)
def test_text_sort_is_byte_order(
    texts: list[bytes], threads: int, tie_run_max: int, long_runs_max: int
):
    """Prefix sort plus tie sort equals sorting the bytes, including strings that are prefixes
    of others, empty strings, long shared prefixes and many ties (Arrow for long tie runs)."""
    offsets, data = _strings_of(texts)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(parallel, "TIE_RUN_MAX", tie_run_max)
        patch.setattr(parallel, "LONG_TIE_RUNS_MAX", long_runs_max)
        patch.setattr(parallel, "RADIX_SORT_MIN", 2)
        order = parallel.parallel_text_argsort(offsets, data, threads)
    assert [texts[i] for i in order] == sorted(texts)
