"""The buffered partitions of integer keys: with buffers and tables so small that every batch
fills buffers, stops scatters, grows tables in the middle of a fold and dedupes and grows pair
arrays, the totals equal those of one table and one thread."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast.core import aggregator as aggregation
from rfm_fast.core import partitions as buffered_partitions
from rfm_fast.core.aggregator import CustomerAggregator
from rfm_fast.core.arrow import TimeAxis, amount_values, key_column


@pytest.fixture
def tiny_buffers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buffered_partitions, "BUFFER_ROWS", 96)
    monkeypatch.setattr(buffered_partitions, "FIRST_BUFFER_ROWS", 4)
    monkeypatch.setattr(buffered_partitions, "FIRST_SLOTS", 4)
    monkeypatch.setattr(buffered_partitions, "FIRST_PAIRS", 4)
    monkeypatch.setattr(aggregation, "PARALLEL_MIN_ROWS", 1)  # every batch split over threads


def _totals(batches: list[pa.RecordBatch], threads: int, bits: int, distinct: bool, **kwargs):
    schema = batches[0].schema
    axis = TimeAxis.of(schema.field("ts").type)
    kind = "int" if pa.types.is_integer(schema.field("customer").type) else "string"
    aggregator = CustomerAggregator(
        kind, "int" if distinct else None, threads=threads, partition_bits=bits, **kwargs
    )
    for batch in batches:
        ticks, ticks_valid = axis.ticks(batch.column("ts"))
        amounts, amounts_valid = amount_values(batch.column("amount"))
        orders = key_column(batch.column("order")) if distinct else None
        customers = key_column(batch.column("customer"))
        assert aggregator.update(customers, ticks, ticks_valid, amounts, amounts_valid, orders) < 0
    return aggregator.finish(keep_sums=True, keep_pairs=True), aggregator.row_counts()


def _assert_same(got, expected) -> None:
    (a, a_counts), (b, b_counts) = got, expected
    assert a_counts == b_counts
    if isinstance(a.keys, np.ndarray):
        np.testing.assert_array_equal(a.keys, b.keys)
    else:
        assert a.keys.equals(b.keys)
    for name in ("first", "last", "rows", "distinct", "monetary"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), name)
    # Exact sums: (whole, fraction in 2**-60) words, equal as numbers (the words need not be).
    exact = [s[0].astype(object) * 2**60 + s[1].astype(object) for s in (a.sums, b.sums)]
    assert exact[0].tolist() == exact[1].tolist()
    if a.pairs is not None:
        got_pairs = sorted(zip(a.pairs[0].tolist(), a.pairs[1].tolist(), strict=True))
        want_pairs = sorted(zip(b.pairs[0].tolist(), b.pairs[1].tolist(), strict=True))
        assert got_pairs == want_pairs


def _orders(rng: np.random.Generator, n: int, key_type: pa.DataType, customers: int):
    info = np.iinfo(key_type.to_pandas_dtype())
    pool = rng.integers(info.min, info.max, customers, endpoint=True, dtype=info.dtype)
    lines = rng.integers(1, 4, n)  # the lines of an order sit together, as in exports
    order = np.repeat(np.arange(n), lines)[:n]
    return pa.table(
        {
            "customer": pa.array(pool[rng.integers(0, customers, n)][order], key_type),
            "ts": pa.array(rng.integers(0, 10**9, n), pa.timestamp("s"), mask=rng.random(n) < 0.02),
            "amount": pa.array(rng.normal(10, 30, n), mask=rng.random(n) < 0.05),
            "order": pa.array(order % (n // 2 + 1), mask=rng.random(n) < 0.05),
        }
    )


@pytest.mark.usefixtures("tiny_buffers")
@pytest.mark.parametrize("key_type", [pa.int64(), pa.uint64(), pa.int8(), pa.int32()])
@pytest.mark.parametrize("distinct", [False, True])
def test_tiny_buffers_give_the_totals_of_one_table(key_type: pa.DataType, distinct: bool):
    rng = np.random.default_rng(7)
    table = _orders(rng, 6_000, key_type, customers=min(900, 2**key_type.bit_width // 2))
    expected = _totals(table.to_batches(), threads=1, bits=0, distinct=distinct)
    for threads, bits, batch in ((3, 4, 700), (2, 1, 6_000), (1, 3, 257)):
        got = _totals(table.to_batches(batch), threads, bits, distinct)
        _assert_same(got, expected)


def _text_ids(rng: np.random.Generator, customers: int) -> list[str]:
    """Text ids as exports have them, and the awkward ones: empty, non-ASCII, ids that
    share a prefix, and ids far longer than the bytes buffered per record."""
    ids = [f"C{k:07d}" for k in range(customers)]
    ids[0] = ""
    ids[1] = "klant-ß-ü-東京"
    ids[2] = "x" * 300
    ids[3] = "x" * 301
    return ids


@pytest.mark.usefixtures("tiny_buffers")
@pytest.mark.parametrize("distinct", [False, True])
@pytest.mark.parametrize("encoding", ["plain", "large", "dictionary"])
def test_text_keys_with_tiny_buffers_give_the_totals_of_one_table(distinct: bool, encoding: str):
    rng = np.random.default_rng(5)
    table = _orders(rng, 6_000, pa.int64(), customers=700)
    ids = np.array(_text_ids(rng, 700), dtype=object)
    customers = ids[rng.integers(0, 700, len(table))]
    column = pa.array(customers, pa.large_string() if encoding == "large" else pa.string())
    if encoding == "dictionary":
        column = column.dictionary_encode()
    mask = rng.random(len(table)) < 0.02
    column = pc.if_else(pa.array(mask), pa.nulls(len(table), column.type), column)
    table = table.set_column(0, "customer", column)
    expected = _totals(table.to_batches(), threads=1, bits=0, distinct=distinct)
    for threads, bits, batch in ((3, 4, 700), (2, 1, 6_000), (1, 3, 257)):
        got = _totals(table.to_batches(batch), threads, bits, distinct)
        _assert_same(got, expected)
    totals, counts = expected
    assert counts.null_customer == int(mask.sum())
    kept = ~mask & np.asarray(table.column("ts").is_valid())
    used = [c for c, keep in zip(customers.tolist(), kept.tolist(), strict=True) if keep]
    assert totals.keys.to_pylist() == sorted(set(used), key=lambda c: c.encode())
    rows = {c: 0 for c in used}
    for c in used:
        rows[c] += 1
    assert totals.rows.tolist() == [rows[c] for c in totals.keys.to_pylist()]


@pytest.mark.usefixtures("tiny_buffers")
def test_amounts_may_change_between_integers_and_floats():
    """Buffered integer amounts are folded before float amounts are buffered (and back)."""
    rng = np.random.default_rng(3)
    table = _orders(rng, 3_000, pa.int64(), customers=300)
    amounts = [
        pa.array(rng.integers(-50, 50, 1_000)),
        pa.array(rng.normal(0, 20, 1_000)),
        pa.array(rng.integers(-(2**40), 2**40, 1_000)),
    ]
    batches = [
        table.slice(k * 1_000, 1_000).set_column(2, "amount", amounts[k]).to_batches()[0]
        for k in range(3)
    ]
    expected = _totals(batches, threads=1, bits=0, distinct=True)
    got = _totals(batches, threads=2, bits=2, distinct=True)
    _assert_same(got, expected)
    one_by_one = [_totals([b], threads=1, bits=0, distinct=False)[0].sums[0].sum() for b in batches]
    assert sum(one_by_one) == expected[0].sums[0].sum()


@pytest.mark.usefixtures("tiny_buffers")
@pytest.mark.parametrize("threads", [1, 2])
def test_repeats_far_apart_count_once(threads: int):
    """Orders that come back long after (not next to each other) are counted once, whether
    the pair arrays drop them while folding or only at the end."""
    rng = np.random.default_rng(11)
    n = 5_000
    # Few customers and few order ids each, drawn at random: most repeats are far apart.
    customers = rng.integers(0, 40, n)
    orders = customers * 1_000 + rng.integers(0, 25, n)
    orders[:1_000] = np.arange(1_000) + 10**6  # a unique stretch first: growth without dedupe
    table = pa.table(
        {
            "customer": pa.array(customers, pa.int64()),
            "ts": pa.array(rng.integers(0, 10**9, n), pa.timestamp("s")),
            "amount": pa.array(rng.normal(10, 30, n)),
            "order": pa.array(orders, mask=rng.random(n) < 0.03),
        }
    )
    totals, _ = _totals(table.to_batches(300), threads, bits=2, distinct=True)
    expected: dict[int, set] = {}
    nulls: dict[int, int] = {}
    for c, o in zip(customers.tolist(), table.column("order").to_pylist(), strict=True):
        if o is None:
            nulls[c] = nulls.get(c, 0) + 1
        else:
            expected.setdefault(c, set()).add(o)
    keys = sorted(set(customers.tolist()))
    assert totals.keys.tolist() == keys
    want = [len(expected.get(c, ())) + nulls.get(c, 0) for c in keys]
    assert totals.distinct.tolist() == want
    assert len(totals.pairs[0]) == sum(len(v) for v in expected.values())


@settings(max_examples=40, deadline=None)
@given(
    data=st.data(),
    threads=st.integers(1, 3),
    bits=st.integers(0, 3),
    distinct=st.booleans(),
    text=st.booleans(),
)
def test_any_split_into_batches_gives_the_same_totals(data, threads, bits, distinct, text):
    n = data.draw(st.integers(1, 400))
    seed = data.draw(st.integers(0, 2**32 - 1))
    table = _orders(
        np.random.default_rng(seed), n, pa.int64(), customers=data.draw(st.integers(1, 60))
    )
    if text:
        table = table.set_column(0, "customer", table.column("customer").cast(pa.string()))
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=6)))
    batches = [
        table.slice(lo, hi - lo).combine_chunks().to_batches()[0]
        for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)
        if hi > lo
    ]
    expected = _totals(table.to_batches(), threads=1, bits=0, distinct=distinct)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(buffered_partitions, "BUFFER_ROWS", 32)
        patch.setattr(buffered_partitions, "FIRST_BUFFER_ROWS", 2)
        patch.setattr(aggregation, "PARALLEL_MIN_ROWS", 1)
        got = _totals(batches, threads, bits, distinct)
    _assert_same(got, expected)


@settings(max_examples=60, deadline=None)
@given(
    data=st.data(),
    threads=st.integers(1, 3),
    bits=st.integers(0, 3),
    distinct=st.booleans(),
    returns=st.sampled_from(["purchase", "net", "drop"]),
    layout=st.sampled_from(["lines", "customer-sorted", "shuffled"]),
    integer_amounts=st.booleans(),
)
def test_run_records_give_the_totals_of_row_records(
    data, threads, bits, distinct, returns, layout, integer_amounts
):
    """Runs of a customer's rows (and of an order's lines) scattered as one record each give
    the totals, row counts and pairs of one record a row: nulls, returns in every mode,
    ``as_of``, runs cut by batches and threads, buffers and tables that fill up."""
    n = data.draw(st.integers(1, 600))
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    table = _orders(rng, n, pa.int64(), customers=data.draw(st.integers(1, 60)))
    if layout == "customer-sorted":
        table = table.take(pc.sort_indices(table, [("customer", "ascending")]))
    elif layout == "shuffled":
        table = table.take(pa.array(rng.permutation(n)))
    if integer_amounts:
        amounts = pc.cast(pc.round(table.column("amount")), pa.int64())
        table = table.set_column(2, "amount", amounts)
    cuts = sorted(data.draw(st.lists(st.integers(0, n), max_size=4)))
    batches = [
        table.slice(lo, hi - lo).combine_chunks().to_batches()[0]
        for lo, hi in zip([0, *cuts], [*cuts, n], strict=True)
        if hi > lo
    ]
    options = {"returns": returns, "as_of_limit": data.draw(st.integers(0, 10**9))}
    results = []
    for share in (2.0, 0.0):  # never runs, always runs
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(buffered_partitions, "BUFFER_ROWS", 32)
            patch.setattr(buffered_partitions, "FIRST_BUFFER_ROWS", 2)
            patch.setattr(buffered_partitions, "RUN_MIN_ROWS", 0)
            patch.setattr(buffered_partitions, "RUN_SHARE", share)
            patch.setattr(aggregation, "PARALLEL_MIN_ROWS", 1)
            results.append(_totals(batches, threads, bits, distinct, **options))
    _assert_same(results[1], results[0])
