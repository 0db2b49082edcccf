"""A load is its rows, in any order: the fingerprint a daily state records for a load does not
depend on row order, batches or Parquet row groups, and changes with the multiset of rows."""

from __future__ import annotations

import datetime as dt
import itertools
import warnings
from collections import Counter
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import take
from hypothesis import assume, given
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

import rfm_fast
from rfm_fast import DailyState, RFMError
from rfm_fast._kernels.totals import FRACTION_ONE, sums_to_float
from rfm_fast.core.options import ReadOptions
from rfm_fast.core.pipeline import read_totals
from rfm_fast.core.state import CustomerState
from rfm_fast.daily.rows import RowDigest
from rfm_fast.daily.state import canonical_sums, content_fingerprint

COLUMNS = {"customer": "customer", "timestamp": "ts", "amount": "amount"}
START = dt.datetime(2024, 1, 1)


def sometimes_null(values: st.SearchStrategy) -> st.SearchStrategy:
    """``values``, null about one time in eight."""
    return st.tuples(st.integers(0, 7), values).map(lambda drawn: drawn[1] if drawn[0] else None)


ROWS = st.lists(
    st.tuples(
        sometimes_null(st.integers(1, 3)),  # customer
        sometimes_null(st.integers(0, 60 * 24)),  # hours after START
        # cents, returns negative: fractions that carry into the whole part in some orders
        sometimes_null(st.sampled_from([-75, -50, -1, 25, 75, 99]) | st.integers(-5_000, 20_000)),
        sometimes_null(st.integers(0, 8)),  # order id
    ),
    max_size=40,
)


def orders(rows: list[tuple[int | None, int | None, int | None, int | None]]) -> pa.Table:
    customers, hours, cents, order_ids = zip(*rows, strict=True) if rows else ([], [], [], [])
    return pa.table(
        {
            "customer": pa.array(customers, pa.int64()),
            "ts": pa.array(
                [None if h is None else START + dt.timedelta(hours=h) for h in hours],
                pa.timestamp("us"),
            ),
            "amount": pa.array([None if c is None else c / 100 for c in cents], pa.float64()),
            "order": pa.array(order_ids, pa.int64()),
        }
    )


def fingerprint(data, *, window: int | None, order: str | None, batch_rows: int = 1 << 20) -> str:
    """The fingerprint that a state built from ``data`` records for it."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMWarning)  # loads without usable rows warn
        state = DailyState.init(
            data,
            **COLUMNS,
            order=order,
            window=window,
            bins=2,
            segments=None,
            batch_rows=batch_rows,
        )
    return state.loads[0].fingerprint


def in_batches(table: pa.Table, cuts: list[int]) -> pa.Table:
    """``table`` as record batches cut at ``cuts``."""
    bounds = [0, *sorted(c % (table.num_rows + 1) for c in cuts), table.num_rows]
    batches = [table.slice(a, b - a).to_batches() for a, b in itertools.pairwise(bounds)]
    return pa.Table.from_batches([b for part in batches for b in part], schema=table.schema)


@pytest.mark.parametrize("window", [None, 30], ids=["totals", "window"])
@given(rows=ROWS, with_order=st.booleans(), data=st.data())
def test_a_load_is_its_rows_in_any_order_batching_or_row_groups(
    window: int | None, rows, with_order: bool, data: st.DataObject, tmp_path_factory
):
    order = "order" if with_order else None
    table = orders(rows)
    known = fingerprint(table, window=window, order=order)

    permutation = data.draw(st.permutations(range(len(rows))), label="permutation")
    cuts = data.draw(st.lists(st.integers(0, 40), max_size=4), label="batch cuts")
    batch_rows = data.draw(st.integers(1, 8), label="batch_rows")
    shuffled = in_batches(take(table, permutation), cuts)
    assert fingerprint(shuffled, window=window, order=order, batch_rows=batch_rows) == known

    group_rows = data.draw(st.integers(1, 8), label="row group size")
    path = tmp_path_factory.mktemp("load") / "orders.parquet"
    pq.write_table(take(table, permutation[::-1]), path, row_group_size=group_rows)
    assert fingerprint(path, window=window, order=order, batch_rows=batch_rows) == known

    if not rows:
        return
    at = data.draw(st.integers(0, len(rows) - 1), label="row")
    others = {
        "dropped": rows[:at] + rows[at + 1 :],
        "duplicated": [*rows, rows[at]],
    }
    usable = [i for i, (c, h, a, _) in enumerate(rows) if None not in (c, h, a)]
    if usable:
        i = data.draw(st.sampled_from(usable), label="row with an amount")
        customer, hours, cents, order_id = rows[i]
        others["a cent more"] = [*rows[:i], (customer, hours, cents + 1, order_id), *rows[i + 1 :]]
    for what, other in others.items():
        assert fingerprint(orders(other), window=window, order=order) != known, what


# The amounts 0.75, 0.75, -0.75 of one customer: in this order the exact sum is kept as
# 1 - 0.25 (the fractions carried into the whole part), reversed as 0 + 0.75.
CARRIED = [(1, 1, 75, 1), (1, 2, 75, 2), (1, 3, -75, 3), (2, 2, 1999, 4)]


@given(
    whole=st.integers(-(2**40), 2**40),
    fraction=st.integers(-int(FRACTION_ONE) + 1, int(FRACTION_ONE) - 1),
)
def test_canonical_sums_have_one_form_per_total(whole: int, fraction: int):
    if fraction > 0:  # the other form of the same total
        other = (whole + 1, fraction - int(FRACTION_ONE))
    else:
        other = (whole - 1, fraction + int(FRACTION_ONE)) if fraction < 0 else (whole, 0)
    words = np.array([whole, other[0]]), np.array([fraction, other[1]])
    canonical_whole, canonical_fraction = canonical_sums(*words)
    assert canonical_whole[0] == canonical_whole[1]
    assert canonical_fraction[0] == canonical_fraction[1]
    assert 0 <= canonical_fraction[0] < FRACTION_ONE
    values, canonical_values = np.empty(2), np.empty(2)
    assert sums_to_float(*words, values) == -1
    assert sums_to_float(canonical_whole, canonical_fraction, canonical_values) == -1
    assert values[0] == values[1] == canonical_values[0] == canonical_values[1]


def test_the_exact_sums_of_a_reordered_load_hash_alike():
    table = orders(CARRIED)
    forward = CustomerState.of(table, **COLUMNS, batch_rows=1)
    backward = CustomerState.of(take(table, [3, 2, 1, 0]), **COLUMNS, batch_rows=1)
    # the words differ (this is the order they came in), the total and the fingerprint do not
    assert forward.sum_whole.tolist() != backward.sum_whole.tolist()
    assert content_fingerprint(forward) == content_fingerprint(backward)


@pytest.mark.parametrize("window", [None, 30], ids=["totals", "window"])
def test_rfm_state_update_refuses_the_same_rows_reversed(tmp_path: Path, window: int | None):
    history, day = tmp_path / "history.csv", tmp_path / "day.csv"
    pa_csv.write_csv(orders([(3, 0, 500, 9)]), history)
    pa_csv.write_csv(orders(CARRIED), day)
    reversed_day = tmp_path / "reversed.csv"
    pa_csv.write_csv(take(orders(CARRIED), [3, 2, 1, 0]), reversed_day)
    state = tmp_path / "s.rfmstate"
    options = [f"--{k}={v}" for k, v in COLUMNS.items()] + ["--no-progress"]
    options += [] if window is None else ["--window", str(window)]
    runner = CliRunner()
    init = runner.invoke(app, ["state", "init", str(history), "-o", str(state), *options])
    assert init.exit_code == 0, init.output
    assert runner.invoke(app, ["state", "update", str(state), str(day)]).exit_code == 0
    saved = state.read_bytes()

    again = runner.invoke(app, ["state", "update", str(state), str(reversed_day)])

    assert again.exit_code == 1, again.output
    assert "this load was applied before, as load 2 (day.csv" in again.stderr
    assert state.read_bytes() == saved
    assert len(DailyState.open(state).loads) == 2


def test_a_load_recorded_by_an_older_release_is_still_found(tmp_path: Path):
    """Releases before the canonical form hashed the sums' words as they came: the same rows
    in the same order are still refused (docs/daily.md: a reordered one is not found)."""
    table = orders(CARRIED)
    state = DailyState.init(orders([(3, 0, 500, 9)]), **COLUMNS, bins=2, segments=None)
    state.update(table)
    old_form = content_fingerprint(CustomerState.of(table, **COLUMNS), canonical=False)
    assert old_form != state.loads[-1].fingerprint  # the sums of this order are not canonical
    state.loads[-1] = replace(state.loads[-1], fingerprint=old_form)
    path = state.save(tmp_path / "old.rfmstate")

    with pytest.raises(RFMError, match="applied before, as load 2"):
        DailyState.open(path).update(table)


def test_a_load_recorded_before_the_rows_were_digested_is_still_found(tmp_path: Path):
    """States saved before the digest of the rows recorded the totals' fingerprint alone."""
    table = orders([(1, 5, 1000, 1), (1, 6, 2000, 2)])
    state = DailyState.init(orders([(3, 0, 500, 9)]), **COLUMNS, bins=2, segments=None)
    state.update(table)
    totals_only = content_fingerprint(CustomerState.of(table, **COLUMNS))
    assert totals_only != state.loads[-1].fingerprint
    state.loads[-1] = replace(state.loads[-1], fingerprint=totals_only)
    path = state.save(tmp_path / "before.rfmstate")

    with pytest.raises(RFMError, match="applied before, as load 2"):
        DailyState.open(path).update(take(table, [1, 0]))


def test_a_window_load_read_in_small_batches_is_the_same_load():
    """Rows let go while reading (older than any window can reach) used to enter the
    fingerprint as they were let go, which depends on the batches."""
    table = orders([(1 + day % 3, 24 * day, 100 + day, day) for day in range(40)])
    known = fingerprint(table, window=5, order=None)
    assert fingerprint(table, window=5, order=None, batch_rows=1) == known
    assert fingerprint(take(table, list(range(39, -1, -1))), window=5, order=None) == known


# ---------------------------------------------------------------- different rows, same totals
# Customer 9's rows are built so that both loads have the same per-customer totals (first,
# last, rows, exact sums, orders): only a digest of the rows tells them apart. Amounts moved
# between rows are quarters (cents / 100 exact in binary), so that the exact sums are equal.
QUARTERS = st.integers(-200, 800).map(lambda k: 25 * k)  # returns too
CENTS = sometimes_null(st.integers(-5_000, 20_000))  # returns and null amounts
ORDER = sometimes_null(st.integers(0, 8))  # null orders


@st.composite
def same_totals(draw: st.DrawFn) -> tuple[str, list[tuple], list[tuple]]:
    """A case name and two lists of customer 9's rows with equal totals, as different
    multisets."""
    hours = sorted(draw(st.lists(st.integers(0, 60 * 24), min_size=4, max_size=4, unique=True)))
    case = draw(st.sampled_from(["amount split otherwise", "amount moved", "timestamps swapped"]))
    if case == "amount split otherwise":  # one amount as x + (a - x) or y + (a - y)
        total, x, y = draw(QUARTERS), draw(QUARTERS), draw(QUARTERS)
        # as many returns (and zeros) in both: they are counted
        assume(sorted(np.sign([x, total - x])) == sorted(np.sign([y, total - y])))
        order = draw(ORDER)

        def split(part: int) -> list[tuple]:
            return [(9, hours[0], part, order), (9, hours[0], total - part, order)]

        return case, split(x), split(y)
    if case == "amount moved":  # d from one row of customer 9 to another
        a, b = draw(QUARTERS), draw(QUARTERS)
        d = draw(QUARTERS.filter(bool))
        assume(np.sign(a) == np.sign(a + d) and np.sign(b) == np.sign(b - d))
        at = draw(st.sampled_from(hours[:2])), draw(st.sampled_from(hours[2:]))
        orders_ = draw(ORDER), draw(ORDER)
        return (
            case,
            [(9, at[0], a, orders_[0]), (9, at[1], b, orders_[1])],
            [(9, at[0], a + d, orders_[0]), (9, at[1], b - d, orders_[1])],
        )
    # the middle rows' timestamps swapped: first and last purchases stay where they are
    ends = draw(st.integers(1, 20_000)), draw(st.integers(1, 20_000))  # purchases
    middle = [(draw(CENTS), draw(ORDER)) for _ in range(2)]
    outer = [(9, hours[0], ends[0], 100), (9, hours[3], ends[1], 101)]  # orders of their own
    return (
        case,
        [*outer, (9, hours[1], *middle[0]), (9, hours[2], *middle[1])],
        [*outer, (9, hours[2], *middle[0]), (9, hours[1], *middle[1])],
    )


@pytest.mark.parametrize("window", [None, 30], ids=["totals", "window"])
@given(rows=ROWS, case=same_totals(), with_order=st.booleans(), data=st.data())
def test_different_rows_with_the_same_totals_are_different_loads(
    window: int | None, rows, case, with_order: bool, data: st.DataObject
):
    what, ours, theirs = case
    if not with_order:  # without an order column, rows differing only in it are the same
        ours, theirs = [(*r[:3], None) for r in ours], [(*r[:3], None) for r in theirs]
    assume(Counter(ours) != Counter(theirs))
    order = "order" if with_order else None
    one, other = orders([*rows, *ours]), orders([*rows, *theirs])
    if window is None:  # the case is built right: the totals alone are alike
        options = {**COLUMNS, "order": order}
        assert content_fingerprint(CustomerState.of(one, **options)) == content_fingerprint(
            CustomerState.of(other, **options)
        ), what
    known = fingerprint(one, window=window, order=order)
    permutation = data.draw(st.permutations(range(other.num_rows)), label="permutation")
    batch_rows = data.draw(st.integers(1, 8), label="batch_rows")
    shuffled = take(other, permutation)
    assert fingerprint(shuffled, window=window, order=order, batch_rows=batch_rows) != known, what


def test_moving_a_cent_between_two_rows_is_another_load(tmp_path: Path):
    """10 + 20 against 15 + 15 on the same timestamps: the same totals, another load."""
    history = orders([(3, 0, 500, 9)])
    state = DailyState.init(history, **COLUMNS, bins=2, segments=None)
    ours, theirs = (
        orders([(1, 5, 1000, 1), (1, 6, 2000, 2)]),
        orders([(1, 5, 1500, 1), (1, 6, 1500, 2)]),
    )
    assert content_fingerprint(CustomerState.of(ours, **COLUMNS)) == content_fingerprint(
        CustomerState.of(theirs, **COLUMNS)
    )
    state.update(ours)

    again = state.update(theirs)

    assert not again.load.forced
    assert len({load.fingerprint for load in state.loads}) == 3
    with pytest.raises(RFMError, match="applied before, as load 3"):
        state.update(orders([(1, 6, 1500, 2), (1, 5, 1500, 1)]))


def key_variants(values: list[str | None]) -> list[pa.Array]:
    """The same text keys as string, large_string and dictionary arrays."""
    plain = pa.array(values, pa.string())
    return [plain, plain.cast(pa.large_string()), plain.dictionary_encode()]


@given(
    rows=st.lists(
        st.tuples(
            sometimes_null(st.sampled_from(["a", "b", "ü", ""])),
            sometimes_null(st.integers(0, 10**6)),
            sometimes_null(st.integers(-(10**6), 10**6)),
            sometimes_null(st.sampled_from(["o1", "o2", "", "ö"])),
        ),
        max_size=30,
    ),
    data=st.data(),
)
def test_the_row_digest_is_one_for_every_key_encoding_order_and_batching(rows, data):
    """Text keys hash by their bytes whatever the encoding (dictionary ones by their values),
    whole amounts alike as integers or floats, and the rows in any order and batches."""
    customers, seconds, amounts, order_ids = zip(*rows, strict=True) if rows else ([],) * 4
    ts = pa.array(seconds, pa.int64()).cast(pa.timestamp("s"))
    digests = set()
    for customer, order in itertools.product(key_variants(customers), key_variants(order_ids)):
        for amount in (pa.array(amounts, pa.int64()), pa.array(amounts, pa.float64())):
            table = pa.table({"customer": customer, "ts": ts, "amount": amount, "order": order})
            permutation = data.draw(st.permutations(range(len(rows))), label="permutation")
            cuts = data.draw(st.lists(st.integers(0, 30), max_size=3), label="batch cuts")
            digests.add(row_words(in_batches(take(table, permutation), cuts)))
    assert len(digests) == 1
    if any(None not in row[:2] for row in rows):  # a row used: the digest is not empty
        assert digests != {(0, 0)}


def row_words(table: pa.Table) -> tuple[int, int]:
    rows = RowDigest()
    options = ReadOptions.checked(**COLUMNS, order="order", batch_rows=7)
    read_totals(table, options, observer=rows, on_restart=rows.reset)
    return int(rows.words[0]), int(rows.words[1])


def test_rows_after_as_of_and_without_a_customer_or_timestamp_are_not_digested():
    used = [(1, 5, 100, 1), (2, 6, None, None)]
    with_others = [*used, (None, 5, 100, 1), (1, None, 100, 1), (1, 24 * 40, 100, 1)]
    options = ReadOptions.checked(**COLUMNS, order="order", as_of=START + dt.timedelta(days=30))
    words = []
    for rows in (used, with_others):
        digest = RowDigest()
        read_totals(orders(rows), options, observer=digest)
        words.append(digest.words.tolist())
    assert words[0] == words[1] != [0, 0]
