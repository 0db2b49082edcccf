"""The daily state: any sequence of loads, in any order and saved between them, scores exactly
like one run over all the rows; loads are recorded and not applied twice; the file is checked
whole; the changes list the customers whose segment moved."""

from __future__ import annotations

import datetime as dt
import os
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from helpers import RETAIL_OPTIONS, RETAIL_SLICE, Case, assert_same_result, take
from hypothesis import given
from hypothesis import strategies as st
from strategies import cases

import rfm_fast
from rfm_fast import DailyState, RFMError
from rfm_fast.core.arrow import TimeAxis
from rfm_fast.daily import state_file

INIT_OPTIONS = ("customer", "timestamp", "amount", "order", "frequency", "returns", "bins")
INIT_OPTIONS += ("method", "monetary", "segments", "thresholds", "timestamp_format")
CASES = cases(min_rows=0, max_rows=50, exact_amounts=False)


def quietly(run, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMWarning)  # empty loads warn
        return run(*args, **kwargs)


def applied(state: DailyState, part: pa.Table) -> None:
    """Apply ``part``; a part whose content was applied before is refused, leaving the state as
    it was, and then applied with force."""
    before = state.to_bytes()
    try:
        quietly(state.update, part)
    except RFMError as exc:
        assert "applied before" in str(exc)
        assert state.to_bytes() == before
        quietly(state.update, part, force=True)
        assert state.loads[-1].forced


@given(case=CASES, data=st.data())
def test_any_sequence_of_loads_scores_like_one_run(
    case: Case, data: st.DataObject, tmp_path_factory
):
    table = case.table
    loads = data.draw(st.integers(1, 4), label="loads")
    part_of = data.draw(
        st.lists(st.integers(0, loads - 1), min_size=table.num_rows, max_size=table.num_rows),
        label="part of each row",
    )
    order = data.draw(st.permutations(range(loads)), label="load order")  # late files too
    parts = [take(table, [i for i, p in enumerate(part_of) if p == k]) for k in order]
    options = {k: v for k, v in case.options.items() if k in INIT_OPTIONS}
    path = tmp_path_factory.mktemp("state") / "orders.rfmstate"

    state = quietly(DailyState.init, parts[0], **options)
    for part in parts[1:]:
        if data.draw(st.booleans(), label="save and open"):
            state.save(path)
            state = DailyState.open(path)
        applied(state, part)

    assert_same_result(quietly(state.score), quietly(rfm_fast.score, table, **options))
    as_of = case.options.get("as_of")
    if as_of is None:
        return
    whole = quietly(rfm_fast.score, table, **options, as_of=as_of)
    try:
        got = quietly(state.score, as_of=as_of)
    except RFMError as exc:  # rows after as_of: a state cannot leave them out
        assert "before the state's latest order" in str(exc)
        axis = TimeAxis.of(state.state.time_type)
        assert state.state.counts.max_timestamp > axis.ticks_of(as_of)
        return
    assert_same_result(got, whole)


@given(case=cases(min_rows=0, max_rows=50, exact_amounts=False, window=True), data=st.data())
def test_a_window_state_scores_like_one_run_with_the_window(
    case: Case, data: st.DataObject, tmp_path_factory
):
    """A state with a window keeps only the rows a window can still reach, yet scores as
    ``rfm_fast.score(window=...)`` over every row loaded, with the row counts of all of them."""
    table = case.table
    loads = data.draw(st.integers(1, 4), label="loads")
    part_of = data.draw(
        st.lists(st.integers(0, loads - 1), min_size=table.num_rows, max_size=table.num_rows),
        label="part of each row",
    )
    order = data.draw(st.permutations(range(loads)), label="load order")  # late files too
    parts = [take(table, [i for i, p in enumerate(part_of) if p == k]) for k in order]
    options = {k: v for k, v in case.options.items() if k in (*INIT_OPTIONS, "window")}
    path = tmp_path_factory.mktemp("state") / "orders.rfmstate"

    state = quietly(DailyState.init, parts[0], **options)
    for part in parts[1:]:
        if data.draw(st.booleans(), label="save and open"):
            state.save(path)
            state = DailyState.open(path)
        applied(state, part)
        assert state.state is None and state.rows is not None
        kept = state.rows.table.num_rows
        assert kept <= table.num_rows

    assert_same_result(quietly(state.score), quietly(rfm_fast.score, table, **options))
    as_of = case.options.get("as_of")
    if as_of is None:
        return
    whole = quietly(rfm_fast.score, table, **options, as_of=as_of)
    try:
        got = quietly(state.score, as_of=as_of)
    except RFMError as exc:  # rows after as_of: a state cannot leave them out
        assert "before the state's latest order" in str(exc)
        axis = TimeAxis.of(state.rows.time_type)
        assert state.rows.latest > axis.ticks_of(as_of)
        return
    assert_same_result(got, whole)


def test_a_window_state_lets_old_rows_go():
    """Rows more than window + 1 days older than the latest are counted, not kept."""
    state = DailyState.init(HISTORY, **COLUMNS, bins=2, segments=_RULES, window=2)
    assert state.rows.table.num_rows == 4  # 2024-01-01 .. 04: all within 3 days of the 4th
    scored_before = state.scores.column("customer").to_pylist()
    assert scored_before == [3, 4]  # as_of is the 5th: the window holds the 3rd and the 4th
    update = state.update(orders([(1, 10, 10.0, 101)]))
    assert state.rows.table.num_rows == 1  # only the 10th is within 3 days of it
    # customers who left the window are changes too: no segment, no scores now
    changes = update.changes.to_pylist()
    assert [(c["customer"], c["segment"]) for c in changes] == [
        (1, "Lapsed"),  # (the one customer scored: the lowest score of each)
        (3, None),
        (4, None),
    ]
    assert all(c["R"] is None and c["R_before"] is not None for c in changes[1:])
    assert state.rows.tally.let_go == 4
    result = state.score()
    assert result.stats.dropped["before_window"] == 4
    assert result.stats.rows_read == 5
    assert result.table.column("customer").to_pylist() == [1]
    assert state.info()["options"]["window"] == 2


def test_a_window_state_merges_loads_read_with_other_types():
    """Amounts read as integers one day and floats the next, order ids as numbers and as
    text: kept as float64 and text, as a run over both files merges them."""
    state = DailyState.init(HISTORY, **COLUMNS, bins=2, segments=_RULES, window=30)
    day = pa.table(
        {
            "customer": pa.array([1, 6], pa.int64()),
            "day": pa.array([dt.date(2024, 1, 6)] * 2, pa.date32()),
            "amount": pa.array([3, 4], pa.int64()),
            "order": pa.array(["A-1", "A-2"]),
        }
    )
    state.update(day)
    assert state.rows.table.schema.field("amount").type == pa.float64()
    assert state.rows.table.schema.field("order").type == pa.string()
    frequency = dict(
        zip(
            *state.score().table.select(["customer", "frequency"]).to_pydict().values(), strict=True
        )
    )
    assert frequency == {1: 2, 2: 1, 3: 1, 4: 1, 6: 1}


def test_a_window_state_refuses_what_it_cannot_keep():
    with pytest.raises(RFMError, match="orders_within_loads is for states without a window"):
        DailyState.init(HISTORY, **COLUMNS, window=30, orders_within_loads=True)
    with pytest.raises(RFMError, match="window must be a whole number of days"):
        DailyState.init(HISTORY, **COLUMNS, window=0)


# ---------------------------------------------------------------------- by hand
COLUMNS = {"customer": "customer", "timestamp": "day", "amount": "amount", "order": "order"}


def orders(rows: list[tuple[int, int, float, int]]) -> pa.Table:
    """(customer, day of January 2024, amount, order) rows."""
    customers, days, amounts, order_ids = zip(*rows, strict=True) if rows else ([], [], [], [])
    return pa.table(
        {
            "customer": pa.array(customers, pa.int64()),
            "day": pa.array([dt.date(2024, 1, d) for d in days], pa.date32()),
            "amount": pa.array(amounts, pa.float64()),
            "order": pa.array(order_ids, pa.int64()),
        }
    )


HISTORY = orders([(1, 1, 10.0, 100), (2, 2, 20.0, 200), (3, 3, 30.0, 300), (4, 4, 5.0, 400)])
DAY_5 = orders([(1, 5, 10.0, 101), (5, 5, 50.0, 500)])


def new_state(**options) -> DailyState:
    return DailyState.init(HISTORY, **COLUMNS, bins=2, segments=_RULES, **options)


_RULES = [
    rfm_fast.SegmentRule("Active", {"R": (2, 2)}),
    rfm_fast.SegmentRule("Lapsed", {"R": (1, 1)}),
]


def test_an_order_split_over_two_loads_counts_once():
    state = new_state()
    state.update(orders([(1, 5, 4.0, 101)]))
    state.update(orders([(1, 6, 6.0, 101)]))  # the same order 101, a line that came a day late
    row = state.score().table.slice(0, 1).to_pylist()[0]
    assert (row["frequency"], row["monetary"]) == (2, 20.0)


def test_a_load_applied_twice_is_refused_and_the_state_is_unchanged(tmp_path: Path):
    state = new_state()
    state.update(DAY_5)
    path = state.save(tmp_path / "s.rfmstate")
    saved = path.read_bytes()
    reordered = take(DAY_5, [1, 0])  # the same rows in another order: the same content
    refused = r"applied before, as load 2 \(Table, the same 2 rows\).*--force"
    with pytest.raises(RFMError, match=refused):
        state.update(reordered)
    assert len(state.loads) == 2 and state.to_bytes() == DailyState.open(path).to_bytes()
    assert path.read_bytes() == saved
    forced = state.update(reordered, force=True)
    assert forced.load.forced
    doubled = rfm_fast.score(
        pa.concat_tables([HISTORY, DAY_5, DAY_5]), **COLUMNS, bins=2, segments=_RULES
    )
    assert_same_result(state.score(), doubled)


def test_empty_loads_are_recorded_and_never_refused():
    state = new_state()
    empty = HISTORY.slice(0, 0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMDataWarning)
        for _ in range(2):
            assert state.update(empty).load.rows_read == 0
    assert len(state.loads) == 3


def test_a_load_with_other_types_is_refused_naming_the_difference():
    state = new_state()
    text_ids = DAY_5.set_column(0, "customer", DAY_5.column("customer").cast(pa.string()))
    with pytest.raises(
        RFMError, match="customer column 'customer' has type string; the state was built with int64"
    ):
        state.update(text_ids)
    stamps = DAY_5.set_column(1, "day", DAY_5.column("day").cast(pa.timestamp("s")))
    with pytest.raises(RFMError, match=r"timestamp column 'day' has type timestamp\[s\]"):
        state.update(stamps)
    with pytest.raises(RFMError, match="'amount'"):
        state.update(DAY_5.drop_columns(["amount"]))
    assert len(state.loads) == 1


def test_as_of_before_the_latest_order_is_refused():
    state = new_state()
    with pytest.raises(
        RFMError,
        match=r"as_of 2024-01-03 is before the state's latest order "
        r"\(2024-01-04\)",
    ):
        state.score(as_of="2024-01-03")
    with pytest.raises(RFMError, match="before the state's latest order"):
        state.update(DAY_5, as_of="2024-01-04")
    assert len(state.loads) == 1  # the refused update changed nothing
    assert state.score(as_of="2024-01-04").stats.as_of == dt.datetime(2024, 1, 4)


def test_changes_list_the_customers_whose_segment_moved():
    state = new_state()  # as of Jan 5: customers 3 and 4 are recent (R 2), 1 and 2 are not
    # as of Jan 6, after the 5th: 1 and 5 are the most recent, 3 and 4 no longer
    assert [load.segments for load in state.loads] == [{"Active": 2, "Lapsed": 2, "Other": 0}]
    done = state.update(DAY_5)  # as of Jan 6: 1 and 5 bought on the 5th
    assert done.changes.to_pylist() == [
        {
            "customer": 1,
            "segment_before": "Lapsed",
            "segment": "Active",
            "as_of": dt.date(2024, 1, 6),
            "R_before": 1,
            "F_before": 1,
            "M_before": 1,
            "R": 2,
            "F": 2,
            "M": 1,
        },
        {
            "customer": 3,
            "segment_before": "Active",
            "segment": "Lapsed",
            "as_of": dt.date(2024, 1, 6),
            "R_before": 2,
            "F_before": 1,
            "M_before": 2,
            "R": 1,
            "F": 1,
            "M": 2,
        },
        {
            "customer": 4,
            "segment_before": "Active",
            "segment": "Lapsed",
            "as_of": dt.date(2024, 1, 6),
            "R_before": 2,
            "F_before": 1,
            "M_before": 1,
            "R": 1,
            "F": 1,
            "M": 1,
        },
        {
            "customer": 5,
            "segment_before": None,
            "segment": "Active",
            "as_of": dt.date(2024, 1, 6),
            "R_before": None,
            "F_before": None,
            "M_before": None,
            "R": 2,
            "F": 1,
            "M": 2,
        },
    ]
    assert done.load.changed == 4
    again = state.score(as_of="2024-01-06")
    assert state.changes(again).num_rows == 0  # nothing moved since that scoring


def test_the_state_file_round_trips_and_records_every_load(tmp_path: Path):
    state = new_state(returns="drop", frequency="days")
    state.update(DAY_5, as_of="2024-01-09")
    opened = DailyState.open(state.save(tmp_path / "s.rfmstate"))
    assert opened.to_bytes() == state.to_bytes()
    assert_same_result(opened.score(), state.score())
    info = opened.info()
    assert info["options"]["returns"] == "drop" and info["options"]["frequency"] == "days"
    assert (info["customers"], info["rows_read"]) == (5, 6)
    assert (info["first_purchase"], info["last_purchase"]) == ("2024-01-01", "2024-01-05")
    (first, second) = info["loads"]
    assert (first["rows_read"], first["first"], first["last"]) == (4, "2024-01-01", "2024-01-04")
    assert (second["rows_read"], second["as_of"]) == (2, "2024-01-09T00:00:00")
    assert len(second["fingerprint"]) == 64


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda b: b[:-10], "damaged or truncated"),
        (lambda b: b[:30], "damaged or truncated"),
        (lambda b: b[:200] + bytes([b[200] ^ 1]) + b[201:], "checksum does not match"),
        (lambda b: b + b"x", "damaged or truncated"),
        (lambda b: b"PAR1" + b[4:], "not an rfm_fast state file"),
        (lambda b: b"", "not an rfm_fast state file"),
        (lambda b: b[:8] + (99).to_bytes(4, "little") + b[12:], "version field reads 99"),
    ],
)
def test_a_damaged_state_file_is_refused_whole(tmp_path: Path, damage, message):
    path = new_state().save(tmp_path / "s.rfmstate")
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(RFMError, match=message):
        DailyState.open(path)


def test_a_missing_state_file_says_how_to_build_one(tmp_path: Path):
    with pytest.raises(RFMError, match=r"state file not found: .*rfm state init"):
        DailyState.open(tmp_path / "nope.rfmstate")


def test_the_format_version_is_in_the_header(tmp_path: Path):
    data = new_state().save(tmp_path / "s.rfmstate").read_bytes()
    assert data[:8] == state_file.MAGIC
    assert int.from_bytes(data[8:12], "little") == state_file.FORMAT_VERSION


def test_outputs_are_written_with_the_state(tmp_path: Path):
    state = new_state()
    done = state.update(DAY_5)
    scores, changes = tmp_path / "scores.parquet", tmp_path / "changes.csv"
    state.save(tmp_path / "s.rfmstate", outputs={scores: done.result.table, changes: done.changes})
    assert pq.read_table(scores).num_rows == 5
    assert changes.read_text().splitlines()[0].startswith('"customer","segment_before"')
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "changes.csv",
        "s.rfmstate",
        "scores.parquet",
    ]


def test_online_retail_in_daily_loads_scores_like_the_whole_slice():
    table = pa_csv.read_csv(RETAIL_SLICE)
    days = pc.strftime(table.column("InvoiceDate").cast(pa.timestamp("s")), "%Y-%m")
    months = sorted(set(days.to_pylist()))
    parts = [table.filter(pc.equal(days, month)) for month in months]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", rfm_fast.RFMDataWarning)
        state = DailyState.init(parts[0], **RETAIL_OPTIONS)
        for part in parts[1:]:
            state.update(part)
        whole = rfm_fast.score(table, **RETAIL_OPTIONS)
    assert len(state.loads) == len(months) == 13
    assert_same_result(state.score(), whole)


# ---------------------------------------------------------------------- kill -9
CHILD = """
import datetime as dt, os, signal, sys
import numpy as np
import pyarrow as pa
from rfm_fast import DailyState

path, first, last = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
kill_at = int(os.environ.get("KILL_AT_REPLACE", "0"))
replace, calls = os.replace, [0]

def replace_or_die(*args):  # kill -9 of this process at the chosen rename
    calls[0] += 1
    if calls[0] == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return replace(*args)

os.replace = replace_or_die
for load in range(first, last):
    state = DailyState.open(path)
    day = dt.date(2024, 1, 1) + dt.timedelta(days=load)
    orders = pa.table({"customer": [load % 7, 100 + load], "day": pa.array([day, day]),
                       "amount": [1.0 + load, 2.0], "order": [load, 1000 + load]})
    done = state.update(orders)
    state.save(path, outputs={path + ".scores.parquet": done.result.table})
"""


def load_table(load: int) -> pa.Table:
    day = dt.date(2024, 1, 1) + dt.timedelta(days=load)
    return pa.table(
        {
            "customer": [load % 7, 100 + load],
            "day": pa.array([day, day]),
            "amount": [1.0 + load, 2.0],
            "order": [load, 1000 + load],
        }
    )


def assert_state_holds_loads(path: Path) -> int:
    """The state at ``path`` opens, and scores like its recorded loads; their number."""
    state = DailyState.open(path)
    loads = len(state.loads) - 1  # after the history (load 0)
    tables = [load_table(i) for i in range(loads + 1)]
    whole = rfm_fast.score(pa.concat_tables(tables), **COLUMNS, segments=None)
    assert_same_result(state.score(), whole)
    return loads


def run_child(path: Path, first: int, last: int, kill_at: int = 0, kill_after: float = 0.0):
    import subprocess
    import sys
    import time

    env = {**os.environ, "KILL_AT_REPLACE": str(kill_at)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(path), str(first), str(last)], env=env
    )
    if kill_after:
        time.sleep(kill_after)
        child.kill()  # SIGKILL
    return child.wait(timeout=120)


@pytest.mark.slow
@pytest.mark.parametrize("kill_at", [1, 2, 3, 4])
def test_kill_9_at_any_rename_leaves_a_loadable_state(tmp_path: Path, kill_at: int):
    path = tmp_path / "s.rfmstate"
    DailyState.init(load_table(0), **COLUMNS, segments=None).save(path)
    # each load renames its scores, then the state: kill at the scores or the state rename of
    # the first or the second load
    code = run_child(path, 1, 3, kill_at=kill_at)
    assert code == -9
    assert assert_state_holds_loads(path) == (kill_at - 1) // 2
    assert run_child(path, assert_state_holds_loads(path) + 1, 4) == 0  # the rerun redoes it
    assert assert_state_holds_loads(path) == 3


@pytest.mark.slow
def test_kill_9_at_random_moments_leaves_a_loadable_state(tmp_path: Path):
    path = tmp_path / "s.rfmstate"
    DailyState.init(load_table(0), **COLUMNS, segments=None).save(path)
    rng = np.random.default_rng(9)
    done = 0
    for _ in range(4):
        run_child(path, done + 1, done + 200, kill_after=float(rng.uniform(1.0, 4.0)))
        now = assert_state_holds_loads(path)
        assert now >= done
        done = now
    assert done > 0  # the children got loads done between the kills


# ---------------------------------------------------------------------- orders within loads
@given(case=cases(min_rows=0, max_rows=50, exact_amounts=False, order=True), data=st.data())
def test_loads_of_whole_orders_score_like_one_run_without_pairs(case: Case, data: st.DataObject):
    table = case.table
    options = {k: v for k, v in case.options.items() if k in INIT_OPTIONS}
    options["frequency"] = "orders"  # every order goes to one load
    labels = [repr(v) for v in table.column("order").to_pylist()]
    loads = data.draw(st.integers(1, 3), label="loads")
    load_of = {x: data.draw(st.integers(0, loads - 1), label=x) for x in sorted(set(labels))}
    parts = [
        take(table, [i for i, x in enumerate(labels) if load_of[x] == k]) for k in range(loads)
    ]
    state = quietly(DailyState.init, parts[0], **options, orders_within_loads=True)
    for part in parts[1:]:
        applied(state, part)
    assert state.state.pair_customers is None  # counts only
    assert_same_result(quietly(state.score), quietly(rfm_fast.score, table, **options))


def test_an_order_in_two_loads_counts_once_in_each_without_pairs():
    state = new_state(orders_within_loads=True)
    state.update(orders([(1, 5, 4.0, 101)]))
    state.update(orders([(1, 6, 6.0, 101)]))  # order 101 again: the promise is broken
    row = state.score().table.slice(0, 1).to_pylist()[0]
    assert (row["frequency"], row["monetary"]) == (3, 20.0)  # 2 with pairs; monetary exact
    assert state.options["orders_within_loads"] is True


def test_order_ids_read_as_numbers_in_one_load_and_text_in_another_are_one_kind():
    """A CSV export whose invoice numbers that day all look like numbers is read as int64; on
    another day a cancellation ``C581001`` makes them text. ``581000`` is the same order in
    both, as one read of all the files (text) would have it."""
    table = orders([(1, 1, 5.0, 581000), (1, 2, 5.0, 581001)])
    text = table.set_column(3, "order", pa.array(["581001", "581002"]))  # 581001 again
    text = text.set_column(1, "day", pa.array([dt.date(2024, 1, 3)] * 2, pa.date32()))
    for first, second in ((table, text), (text, table)):
        state = DailyState.init(first, **COLUMNS, bins=2, segments=None)
        state.update(second, force=True)
        assert state.score().table.column("frequency").to_pylist() == [3]


def test_rules_with_a_playbook_and_raw_metrics_round_trip(tmp_path: Path):
    rules = (
        rfm_fast.SegmentRule(
            "Fresh", {"R": (2, 2)}, {"tenure": (None, 30), "monetary": (-5.5, None)},
            description="new and spending", action="Welcome them", priority=1,
        ),
        rfm_fast.SegmentRule("Active", {"R": (2, 2)}, action="Keep them"),
        rfm_fast.SegmentRule("Lapsed", {}, {"recency": (3, None)}, priority=4),
    )  # fmt: skip
    state = DailyState.init(HISTORY, **COLUMNS, bins=2, segments=rules)
    state.update(DAY_5)
    reopened = DailyState.open(state.save(tmp_path / "s.rfmstate"))
    result = reopened.score()
    assert result.rules == rules
    expected = rfm_fast.score(pa.concat_tables([HISTORY, DAY_5]), **COLUMNS, bins=2, segments=rules)
    assert_same_result(result, expected)
    assert reopened.to_bytes() == state.to_bytes()


def test_rules_of_an_older_state_header_still_read():
    from rfm_fast.core.segments import rules_of_document

    old = [{"name": "Active", "R": [2, 2]}, {"name": "Lapsed", "R": [1, 1], "F": [1, 2]}]
    assert rules_of_document(old) == (
        rfm_fast.SegmentRule("Active", {"R": (2, 2)}),
        rfm_fast.SegmentRule("Lapsed", {"R": (1, 1), "F": (1, 2)}),
    )
