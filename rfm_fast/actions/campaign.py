"""Campaign measurement: treatment against control, per segment at the send, over a window.

:func:`campaign` takes the orders and a campaign table (who was in the treatment or the control
group, when the campaign was sent, and optionally what each send cost), puts each customer in
the segment they were in when the campaign was sent, follows what they bought in the ``days``
after it, and compares the groups: conversion, orders and revenue per customer, the lift with a
95% interval and a p-value, incremental revenue and return on spend. The method and its
assumptions are written down in docs/actions.md.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.actions import stats
from rfm_fast.core.arrow import parse_moment
from rfm_fast.core.io import CsvReading, ReadAgain, open_source, require_rereadable, write_table
from rfm_fast.core.options import ScoringOptions, closest_name
from rfm_fast.core.pipeline import output_keys, read_totals, scored_result
from rfm_fast.core.result import RFMResult
from rfm_fast.errors import RFMError, RFMWarning

GROUPS = ("treatment", "control")
"""The values of the campaign's ``group`` column."""
NEW_SEGMENT = "New/unknown"
"""The segment at the send of campaign customers without a purchase up to it."""
ALL = "All"
"""The last row of :attr:`CampaignResult.table`: every campaign customer."""
MIN_GROUP_SIZE = 10
"""Below this many customers in either group, a row's intervals and p-values are null."""
MAX_SEND_TIMES = 31
"""The most distinct ``sent_at`` values a campaign may have (each is scored on its own)."""

TABLE_COLUMNS = (
    "segment",
    "treatment",
    "control",
    "conversion_treatment",
    "conversion_control",
    "conversion_lift",
    "conversion_lift_low",
    "conversion_lift_high",
    "conversion_relative_lift",
    "conversion_relative_lift_low",
    "conversion_relative_lift_high",
    "conversion_p_value",
    "orders_per_customer_treatment",
    "orders_per_customer_control",
    "revenue_per_customer_treatment",
    "revenue_per_customer_control",
    "revenue_lift",
    "revenue_lift_low",
    "revenue_lift_high",
    "revenue_relative_lift",
    "revenue_p_value",
    "incremental_revenue",
    "incremental_revenue_low",
    "incremental_revenue_high",
    "cost",
    "roi",
    "roi_low",
    "roi_high",
    "note",
)
"""The columns of :attr:`CampaignResult.table`, in order (docs/actions.md says what each is)."""


@dataclass(frozen=True)
class CampaignResult:
    """The result of :func:`campaign`.

    Attributes
    ----------
    table : pyarrow.Table
        One row per segment at the send (rule order, then ``"New/unknown"``), then the row
        ``"All"``; the columns of :data:`TABLE_COLUMNS`.
    customers : pyarrow.Table
        One row per campaign customer, in the campaign's order: the customer (under the
        orders' customer column name, in the orders' key type), ``group``, ``sent_at``,
        ``segment`` (at the send), ``orders`` and ``revenue`` (in the window), ``converted``
        (at least one order in the window) and ``cost`` (0 without a cost column).
    days : int
        The length of the outcome window.
    scores : tuple of RFMResult
        The scores at each distinct send time, in time order (one for most campaigns).
    """

    table: pa.Table
    customers: pa.Table
    days: int
    scores: tuple[RFMResult, ...]

    @property
    def sent(self) -> list[dt.datetime]:
        """The distinct send times, in order (the ``as_of`` of each of :attr:`scores`)."""
        return [s.stats.as_of for s in self.scores if s.stats.as_of is not None]

    def row(self, segment: str = ALL) -> dict[str, Any]:
        """One row of :attr:`table` as a dict (default: ``"All"``)."""
        found = self.table.filter(pc.equal(self.table.column("segment"), segment))
        if found.num_rows == 0:
            raise RFMError(
                f"no campaign customers in segment {segment!r}; the rows are: "
                + ", ".join(repr(s) for s in self.table.column("segment").to_pylist())
            )
        return found.to_pylist()[0]

    def write(self, path: str | os.PathLike) -> Path:
        """Write :attr:`table` to ``path`` (``.parquet``, ``.csv``, ``.arrow``), atomically,
        as ``rfm campaign -o`` does.

        Returns
        -------
        pathlib.Path
            The path written.

        Examples
        --------
        >>> import pathlib, tempfile, rfm_fast
        >>> sent = {"customer": [1, 2, 3, 4], "group": ["treatment", "control"] * 2,
        ...         "sent_at": ["1997-03-01"] * 4}
        >>> result = rfm_fast.campaign(rfm_fast.datasets.load_example(), sent, days=90,
        ...                            **rfm_fast.datasets.EXAMPLE_COLUMNS)
        >>> result.row("All")["note"]
        'fewer than 10 customers in a group: no intervals'
        >>> result.write(pathlib.Path(tempfile.mkdtemp()) / "lift.csv").name
        'lift.csv'
        """
        return write_table(self.table, path)

    def __repr__(self) -> str:
        total = self.row(ALL)
        sent = ", ".join(moment.isoformat(sep=" ") for moment in self.sent[:3])
        if len(self.sent) > 3:
            sent += ", ..."
        lift = total["conversion_lift"]
        low, high = total["conversion_lift_low"], total["conversion_lift_high"]
        interval = "" if low is None else f" [{low:+.4f}, {high:+.4f}]"
        return (
            f"CampaignResult(treatment={total['treatment']}, control={total['control']}, "
            f"sent={sent}, days={self.days}, "
            f"conversion_lift={'None' if lift is None else f'{lift:+.4f}'}{interval})"
        )


def campaign(
    data: Any,
    campaign: Any,
    *,
    days: int,
    customer: str,
    timestamp: str,
    amount: str,
    **options: Any,
) -> CampaignResult:
    """Measure a campaign: treatment against control, per segment at the send.

    Parameters
    ----------
    data : table, data frame, mapping or path
        The orders: any input of :func:`rfm_fast.score`. It is read several times (twice or
        three times per distinct send time).
    campaign : table, data frame, mapping or path
        One row per customer: ``customer`` (or a column named as the orders' customer
        column), ``group`` (``"treatment"`` or ``"control"``), ``sent_at`` (a date, a
        timestamp or ISO-8601 text) and optionally ``cost`` (what the send to that customer
        cost; null counts as 0, control rows are not counted).
    days : int
        The outcome window: the orders with ``sent_at < timestamp <= sent_at + days days``.
    customer, timestamp, amount : str
        The orders' columns, as for :func:`rfm_fast.score` (``amount`` may be a product such
        as ``"Quantity*UnitPrice"``).
    **options
        Every other option of :func:`rfm_fast.score` but ``as_of`` (``order``, ``bins``,
        ``method``, ``frequency``, ``monetary``, ``returns``, ``segments``, ``thresholds``,
        ``window``, ``timestamp_format``, CSV options...). They shape the segments at the send;
        the outcomes count orders (distinct ``order`` ids, else rows) and sum the amounts, with
        returns taken as ``returns`` says.

    Returns
    -------
    CampaignResult
        ``.table`` (per segment and ``"All"``), ``.customers``, ``.scores`` and ``.write()``.

    Raises
    ------
    RFMError
        For a missing or misnamed campaign column, group values other than treatment and
        control, duplicate or null customers, null or unreadable ``sent_at``, customer ids that
        cannot be matched with the orders', a negative cost, a ``days`` that is not a positive
        integer, and whatever :func:`rfm_fast.score` refuses.

    Notes
    -----
    Each customer's segment is the one :func:`rfm_fast.score` gives with ``as_of=sent_at``
    (orders up to and including the send); customers without such orders are
    ``"New/unknown"``. Conversion is the share of customers with at least one order in the
    window; its lift has Newcombe's hybrid score interval and a pooled two-proportion z-test;
    revenue per customer has Welch's t-interval and test. Rows where a group has fewer than
    :data:`MIN_GROUP_SIZE` customers get null intervals and p-values, with a note.
    Incremental revenue is the revenue lift times the treatment customers; ROI is
    ``(incremental revenue - cost) / cost``. See docs/actions.md.

    Examples
    --------
    >>> import rfm_fast
    >>> orders = rfm_fast.datasets.load_example()
    >>> customers = orders.column("customer_id").unique().to_pylist()[:400]
    >>> sent = {
    ...     "customer": customers,
    ...     "group": ["treatment", "control"] * 200,
    ...     "sent_at": ["1997-06-01"] * 400,
    ... }
    >>> result = rfm_fast.campaign(orders, sent, days=60, customer="customer_id",
    ...                            timestamp="date", amount="dollar_value")
    >>> total = result.row("All")
    >>> total["treatment"], total["control"], round(total["conversion_treatment"], 3)
    (200, 200, 0.175)
    >>> result.table.column_names[:4]
    ['segment', 'treatment', 'control', 'conversion_treatment']
    """
    if "as_of" in options:
        raise RFMError("campaign scores the orders as of each customer's sent_at: leave out as_of")
    if isinstance(days, bool) or not isinstance(days, int | np.integer) or days <= 0:
        raise RFMError(
            f"days must be a positive whole number of days (the outcome window); got {days!r}"
        )
    days = int(days)
    checked = ScoringOptions.checked(
        customer=customer, timestamp=timestamp, amount=amount, **options
    )
    sends = read_campaign(campaign, customer)
    require_rereadable(data, "campaign")
    moments = sorted(set(sends.sent))
    reading = checked.reading
    outcome_reading = replace(reading, frequency="orders", window=None)
    reuse = reading.frequency == "orders" and reading.window is None
    totals: dict[dt.datetime, tuple[pa.Array, np.ndarray, np.ndarray]] = {}
    data_end: dict[dt.datetime, str | None] = {}

    def keep(moment: dt.datetime, aggregated: Any) -> None:
        totals[moment] = _outcome_totals(aggregated)
        data_end[moment] = _latest_if_before(aggregated, moment)

    def totals_at(moment: dt.datetime) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        if moment not in totals:
            keep(moment, read_totals(data, replace(outcome_reading, as_of=moment)))
        return totals[moment]

    scores: list[RFMResult] = []
    segment = np.empty(len(sends.sent), dtype=object)
    orders = np.zeros(len(sends.sent), dtype=np.int64)
    revenue = np.zeros(len(sends.sent), dtype=np.float64)
    keys: pa.Array | None = None
    wave = np.array([moments.index(moment) for moment in sends.sent], dtype=np.int64)
    for k, moment in enumerate(moments):
        aggregated = read_totals(data, replace(reading, as_of=moment))
        result = scored_result(aggregated, checked.scoring)
        scores.append(result)
        if reuse and moment not in totals:
            keep(moment, aggregated)
        scored = result.table.column(customer).combine_chunks()
        if keys is None:
            keys = matched_keys(sends.customers, scored.type, customer)
        rows = np.flatnonzero(wave == k)
        mine = keys.take(pa.array(rows))
        at = _positions(mine, scored)
        names = np.array(result.table.column("segment").cast(pa.string()).to_pylist(), object)
        at_send = np.full(len(rows), NEW_SEGMENT, dtype=object)
        at_send[at >= 0] = names[at[at >= 0]]
        segment[rows] = at_send
        end = moment + dt.timedelta(days=days)
        before, after = totals_at(moment), totals_at(end)
        orders[rows] = _lookup(mine, after, 1) - _lookup(mine, before, 1)
        revenue[rows] = _lookup(mine, after, 2) - _lookup(mine, before, 2)
    assert keys is not None
    short = [(m, data_end[m + dt.timedelta(days=days)]) for m in moments]
    short = [(m, latest) for m, latest in short if latest is not None]
    if short:
        moment, latest = short[0]
        end = moment + dt.timedelta(days=days)
        warnings.warn(
            f"the outcome window of the send at {moment.isoformat(sep=' ')} ends at "
            f"{end.isoformat(sep=' ')}, after the latest order ({latest}): the orders do not "
            "cover the whole window, so conversion and revenue are understated; use fewer "
            "days or more recent orders",
            RFMWarning,
            stacklevel=2,
        )
    treated = sends.treated
    customers = pa.table(
        {
            customer: keys,
            "group": pa.array(np.where(treated, GROUPS[0], GROUPS[1]), pa.string()),
            "sent_at": sends.sent_column,
            "segment": pa.array(segment.tolist(), pa.string()),
            "orders": pa.array(orders, pa.int64()),
            "revenue": pa.array(revenue, pa.float64()),
            "converted": pa.array(orders > 0),
            "cost": pa.array(sends.cost, pa.float64()),
        }
    )
    order = [*_segment_names(scores), NEW_SEGMENT]
    present = set(segment.tolist())
    rows = []
    for name in [n for n in order if n in present]:
        mask = segment == name
        rows.append(
            measure(
                name, treated[mask], orders[mask], revenue[mask], sends.cost[mask], sends.costed
            )
        )
    rows.append(measure(ALL, treated, orders, revenue, sends.cost, sends.costed))
    table = pa.Table.from_pylist(rows, schema=_table_schema())
    return CampaignResult(table, customers, days, tuple(scores))


@dataclass(frozen=True)
class Sends:
    """A campaign table, checked: who, which group, when, at what cost."""

    customers: pa.Array
    treated: np.ndarray  # bool
    sent: list[dt.datetime]
    sent_column: pa.Array  # as given
    cost: np.ndarray  # float64, 0 where none
    costed: bool  # the table has a cost column


def _resolve(names: list[str], wanted: str, also: str | None = None) -> str:
    if wanted in names:
        return wanted
    if also is not None and also in names:
        return also
    close = closest_name(wanted, names) or (closest_name(also, names) if also else None)
    hint = f"; did you mean {close!r}? (rename it to {wanted!r})" if close else ""
    alternative = f" (or {also!r}, the orders' customer column)" if also else ""
    raise RFMError(
        f"the campaign has no column {wanted!r}{alternative}{hint}; it has: "
        + ", ".join(repr(n) for n in names)
        + "; a campaign has the columns customer, group, sent_at and optionally cost"
    )


def _whole_table(campaign: Any) -> pa.Table:
    csv = CsvReading()
    while True:
        try:
            source = open_source(campaign, csv=csv)
            schema, batches = source.open(source.column_names)
            return pa.Table.from_batches(list(batches), schema=schema)
        except ReadAgain:
            continue


def read_campaign(campaign: Any, orders_customer: str = "customer") -> Sends:
    """The campaign table read and checked (see :func:`campaign` for what it holds).

    Parameters
    ----------
    campaign : table, data frame, mapping or path
        The campaign table.
    orders_customer : str, default "customer"
        The orders' customer column: the campaign's customer column may have this name
        instead of ``customer``.

    Returns
    -------
    Sends
        The customers (as given), the groups, the send times as datetimes, the costs.

    Raises
    ------
    RFMError
        Saying which column is missing or which values are wrong, and how to fix it.

    Examples
    --------
    >>> sends = read_campaign({"customer": [7, 8], "group": ["treatment", "control"],
    ...                        "sent_at": ["2024-03-01", "2024-03-01 09:30"]})
    >>> sends.treated.tolist(), [str(s) for s in sends.sent]
    ([True, False], ['2024-03-01 00:00:00', '2024-03-01 09:30:00'])
    """
    table = _whole_table(campaign)
    names = table.column_names
    customer_name = _resolve(names, "customer", orders_customer)
    group_name = _resolve(names, "group")
    sent_name = _resolve(names, "sent_at")
    if "cost" not in names and closest_name("cost", names) is not None:
        raise RFMError(
            f"the campaign has a column {closest_name('cost', names)!r} but no 'cost': name "
            "the cost column 'cost' (or drop the other one)"
        )
    if table.num_rows == 0:
        raise RFMError("the campaign table has no rows; expected one row per customer")
    customers = table.column(customer_name).combine_chunks()
    if pa.types.is_dictionary(customers.type):
        customers = customers.dictionary_decode()
    _no_nulls(customers, customer_name, "customer ids")
    unique = pc.unique(customers)
    if len(unique) != len(customers):
        counts = pc.value_counts(customers)
        repeated = counts.filter(pc.greater(counts.field("counts"), 1))
        first = repeated[0]["values"].as_py()
        raise RFMError(
            f"the campaign lists {len(repeated):,} customers more than once (such as "
            f"{first!r}, {repeated[0]['counts'].as_py()} times); expected one row per customer: "
            "remove the duplicates (a customer is in one group, sent once)"
        )
    groups = table.column(group_name).combine_chunks()
    if pa.types.is_dictionary(groups.type):
        groups = groups.dictionary_decode()
    if not (pa.types.is_string(groups.type) or pa.types.is_large_string(groups.type)):
        raise RFMError(
            f"the campaign's {group_name!r} column must be text, 'treatment' or 'control'; "
            f"found {groups.type}"
        )
    counts = pc.value_counts(groups).to_pylist()
    others = [(c["values"], c["counts"]) for c in counts if c["values"] not in GROUPS]
    if others:
        found = ", ".join(
            f"{'null' if value is None else repr(value)} ({n:,} row{'' if n == 1 else 's'})"
            for value, n in others[:5]
        )
        raise RFMError(
            f"the campaign's {group_name!r} column must hold 'treatment' or 'control' "
            f"(lowercase); found {found}"
            + (f" and {len(others) - 5} other values" if len(others) > 5 else "")
        )
    treated = pc.equal(groups, GROUPS[0]).to_numpy(zero_copy_only=False)
    for name, value in (("treatment", True), ("control", False)):
        if not np.any(treated == value):
            raise RFMError(
                f"the campaign has no {name} customers; a lift needs both a treatment and a "
                "control group"
            )
    sent_column = table.column(sent_name).combine_chunks()
    sent = _send_times(sent_column, sent_name)
    if len(set(sent)) > MAX_SEND_TIMES:
        raise RFMError(
            f"the campaign has {len(set(sent)):,} distinct sent_at values; each is scored on "
            f"its own and at most {MAX_SEND_TIMES} are taken: give each wave one send time "
            "(such as its date), or measure the waves as separate campaigns"
        )
    costed = "cost" in names
    cost = np.zeros(len(customers), dtype=np.float64)
    if costed:
        cost = _costs(table.column("cost").combine_chunks())
    return Sends(customers, treated, sent, sent_column, cost, costed)


def _no_nulls(values: pa.Array, name: str, what: str) -> None:
    if values.null_count:
        first = pc.index(pc.is_null(values), True).as_py()
        raise RFMError(
            f"the campaign's {name!r} column has {values.null_count:,} null {what} (the first "
            f"in row {first + 1}); every row needs one"
        )


def _send_times(values: pa.Array, name: str) -> list[dt.datetime]:
    _no_nulls(values, name, "send times")
    if pa.types.is_dictionary(values.type):
        values = values.dictionary_decode()
    type_ = values.type
    if not (
        pa.types.is_date(type_)
        or pa.types.is_timestamp(type_)
        or pa.types.is_string(type_)
        or pa.types.is_large_string(type_)
    ):
        raise RFMError(
            f"the campaign's {name!r} column must hold dates, timestamps or ISO-8601 text; "
            f"found {type_}"
        )
    moments = []
    parsed: dict[Any, dt.datetime] = {}
    for row, value in enumerate(values.to_pylist()):
        if value not in parsed:
            try:
                parsed[value] = parse_moment(value)
            except RFMError:
                raise RFMError(
                    f"the campaign's {name!r} column: cannot read {value!r} (row {row + 1}); "
                    "expected an ISO-8601 date or time such as '2011-09-01' or "
                    "'2011-09-01 08:00'"
                ) from None
        moments.append(parsed[value])
    kinds = {moment.tzinfo is None for moment in parsed.values()}
    if len(kinds) > 1:
        raise RFMError(
            f"the campaign's {name!r} column mixes times with and without a time zone; give "
            "all of them one way"
        )
    return moments


def _costs(values: pa.Array) -> np.ndarray:
    type_ = values.type
    if not (
        pa.types.is_integer(type_) or pa.types.is_floating(type_) or pa.types.is_decimal(type_)
    ):
        raise RFMError(f"the campaign's 'cost' column must hold numbers; found {type_}")
    cost = pc.fill_null(values.cast(pa.float64()), 0.0).to_numpy(zero_copy_only=False)
    bad = np.flatnonzero(~np.isfinite(cost) | (cost < 0))
    if len(bad):
        raise RFMError(
            f"the campaign's 'cost' column must hold finite amounts of 0 or more; found "
            f"{float(cost[bad[0]])!r} in row {bad[0] + 1}"
        )
    return cost


def matched_keys(keys: pa.Array, target: pa.DataType, name: str) -> pa.Array:
    """The campaign's customer ids in the orders' key type ``target``: integers and whole
    floats are taken as they are, text is read as whole numbers when the orders' ids are
    integers, and integers are written as text when the orders' ids are text.

    Raises
    ------
    RFMError
        When an id cannot be taken so (text that is not a whole number, a fraction).

    Examples
    --------
    >>> import pyarrow as pa
    >>> matched_keys(pa.array(["17", " 18", "+19"]), pa.int64(), "id").to_pylist()
    [17, 18, 19]
    >>> matched_keys(pa.array([17.0]), pa.string(), "id").to_pylist()
    ['17']
    """
    type_ = keys.type
    text = pa.types.is_string(type_) or pa.types.is_large_string(type_)
    if pa.types.is_floating(type_):
        values = keys.to_numpy(zero_copy_only=False)
        fraction = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)))
        if len(fraction):
            raise RFMError(
                f"the campaign's customer ids are numbers with fractions, such as "
                f"{float(values[fraction[0]])!r} (row {fraction[0] + 1}); the orders' "
                f"{name!r} ids are {target}: give whole-number or text ids"
            )
        huge = np.flatnonzero(np.abs(values) >= 2.0**53)
        if len(huge):
            raise RFMError(
                f"the campaign's customer ids are floats, and row {huge[0] + 1} has "
                f"{float(values[huge[0]])!r}, too large to be an exact id (a CSV reader reads "
                "whole numbers beyond int64, such as 20-digit ids, as floats); the orders' "
                f"{name!r} ids are {target}: give the campaign the same ids as the orders"
            )
        keys, type_ = keys.cast(pa.int64()), pa.int64()
    if pa.types.is_integer(target):
        if text:
            stripped = pc.utf8_trim_whitespace(keys)
            whole = pc.match_substring_regex(stripped, r"^[+-]?[0-9]{1,19}$")
            if not pc.all(whole).as_py():
                first = pc.index(whole, False).as_py()
                raise RFMError(
                    f"the campaign's customer ids are text such as {keys[first].as_py()!r} "
                    f"(row {first + 1}), and the orders' {name!r} ids are integers ({target}); "
                    "give the campaign the same ids as the orders"
                )
            unsigned = pc.replace_substring_regex(stripped, r"^\+", "")  # "+4" is 4
            try:
                keys = unsigned.cast(pa.int64())
            except pa.ArrowInvalid:
                raise RFMError(
                    f"some campaign customer ids do not fit the orders' {name!r} type ({target}), "
                    "such as " + _first_beyond_int64(unsigned)
                ) from None
        elif not pa.types.is_integer(type_):
            raise RFMError(
                f"the campaign's customer ids are {type_}; the orders' {name!r} ids are "
                f"integers ({target})"
            )
        try:
            return keys.cast(target)
        except (pa.ArrowInvalid, OverflowError):
            raise RFMError(
                f"some campaign customer ids do not fit the orders' {name!r} type ({target})"
            ) from None
    target_text = pa.types.is_string(target) or pa.types.is_large_string(target)
    if target_text and (pa.types.is_integer(type_) or text):
        return keys.cast(pa.string()).cast(target)
    raise RFMError(
        f"the campaign's customer ids are {type_} and the orders' {name!r} ids are {target}; "
        "give both as integers or as text"
    )


def _first_beyond_int64(texts: pa.Array) -> str:
    """The first of ``texts`` (whole numbers as text) that int64 does not hold, quoted with its
    row (the error path only: a Python loop)."""
    for row, text in enumerate(texts.to_pylist()):
        if text is not None and not -(2**63) <= int(text) < 2**63:
            return f"{text!r} (row {row + 1})"
    return "one of them"


def _outcome_totals(aggregated: Any) -> tuple[pa.Array, np.ndarray, np.ndarray]:
    """(keys, orders, revenue) of every customer of a read, customers with only returns
    included (their net revenue counts)."""
    totals = aggregated.totals
    keys = output_keys(totals.keys, aggregated.customer_type)
    counted = totals.rows if totals.distinct is None else totals.distinct
    return keys, np.asarray(counted, dtype=np.int64), np.asarray(totals.monetary, np.float64)


def _latest_if_before(aggregated: Any, moment: dt.datetime) -> str | None:
    """The latest order's time, as text, when the input ends before ``moment`` (no row was
    after it); None when some row was."""
    counts = aggregated.counts
    if counts.after_as_of or counts.max_timestamp is None:
        return None
    if counts.max_timestamp >= aggregated.axis.ticks_of(moment):
        return None
    return aggregated.axis.moment_text(counts.max_timestamp)


def _positions(keys: pa.Array, among: pa.Array) -> np.ndarray:
    """Where each of ``keys`` is in ``among``, -1 where it is not."""
    if len(among) == 0:
        return np.full(len(keys), -1, dtype=np.int64)
    if among.type != keys.type:
        among = among.cast(keys.type)
    found = pc.index_in(keys, value_set=among)
    return pc.fill_null(found, -1).to_numpy(zero_copy_only=False).astype(np.int64)


def _lookup(keys: pa.Array, totals: tuple[pa.Array, np.ndarray, np.ndarray], k: int) -> np.ndarray:
    at = _positions(keys, totals[0])
    values = totals[k]
    if len(values) == 0:
        return np.zeros(len(keys), dtype=values.dtype)
    return np.where(at >= 0, values[np.maximum(at, 0)], 0)


def _segment_names(scores: list[RFMResult]) -> list[str]:
    names: list[str] = []
    for result in scores:
        column = result.table.column("segment").combine_chunks()
        names += [str(n) for n in column.dictionary.to_pylist() if str(n) not in names]
    return names


def _table_schema() -> pa.Schema:
    types = {"segment": pa.string(), "treatment": pa.int64(), "control": pa.int64()}
    types["note"] = pa.string()
    return pa.schema([(name, types.get(name, pa.float64())) for name in TABLE_COLUMNS])


def _ratio(a: float, b: float) -> float | None:
    return a / b - 1 if b > 0 else None


def measure(
    segment: str,
    treated: np.ndarray,
    orders: np.ndarray,
    revenue: np.ndarray,
    cost: np.ndarray,
    costed: bool = True,
) -> dict[str, Any]:
    """One row of :attr:`CampaignResult.table` from the customers of a segment.

    Parameters
    ----------
    segment : str
        The row's name.
    treated : numpy.ndarray of bool
        True for treatment customers, False for control ones.
    orders, revenue : numpy.ndarray
        Each customer's orders and revenue in the window.
    cost : numpy.ndarray
        Each customer's cost (control customers' is not counted).
    costed : bool, default True
        False: the campaign has no costs (``cost`` and ``roi`` are null).

    Returns
    -------
    dict
        The row, keyed by :data:`TABLE_COLUMNS`.

    Examples
    --------
    >>> import numpy as np
    >>> treated = np.repeat([True, False], 50)
    >>> orders = np.tile([1, 0, 0, 0, 0], 20)
    >>> row = measure("x", treated, orders, orders * 20.0, np.where(treated, 1.0, 0.0))
    >>> row["conversion_treatment"], row["revenue_per_customer_treatment"], row["cost"]
    (0.2, 4.0, 50.0)
    >>> row["conversion_lift"], row["incremental_revenue"], row["roi"]
    (0.0, 0.0, -1.0)
    """
    n1, n2 = int(np.count_nonzero(treated)), int(np.count_nonzero(~treated))
    converted = orders > 0
    x1, x2 = int(np.count_nonzero(converted & treated)), int(np.count_nonzero(converted & ~treated))
    row: dict[str, Any] = dict.fromkeys(TABLE_COLUMNS)
    row.update(segment=segment, treatment=n1, control=n2)
    notes = []
    spent = float(cost[treated].sum()) if costed else None
    row["cost"] = spent
    if n1:
        row["conversion_treatment"] = x1 / n1
        row["orders_per_customer_treatment"] = float(orders[treated].mean())
        row["revenue_per_customer_treatment"] = float(revenue[treated].mean())
    if n2:
        row["conversion_control"] = x2 / n2
        row["orders_per_customer_control"] = float(orders[~treated].mean())
        row["revenue_per_customer_control"] = float(revenue[~treated].mean())
    if not (n1 and n2):
        row["note"] = f"no {'treatment' if not n1 else 'control'} customers"
        return row
    p1, p2 = x1 / n1, x2 / n2
    m1, m2 = row["revenue_per_customer_treatment"], row["revenue_per_customer_control"]
    row["conversion_lift"] = p1 - p2
    row["conversion_relative_lift"] = _ratio(p1, p2)
    row["revenue_lift"] = m1 - m2
    row["revenue_relative_lift"] = _ratio(m1, m2)
    row["incremental_revenue"] = (m1 - m2) * n1
    if spent is not None and spent > 0:
        row["roi"] = (row["incremental_revenue"] - spent) / spent
    if min(n1, n2) < MIN_GROUP_SIZE:
        row["note"] = f"fewer than {MIN_GROUP_SIZE} customers in a group: no intervals"
        return row
    row["conversion_lift_low"], row["conversion_lift_high"] = stats.newcombe_interval(
        x1, n1, x2, n2
    )
    ratio = stats.ratio_interval(x1, n1, x2, n2)
    if ratio is not None:
        row["conversion_relative_lift_low"] = ratio[0] - 1
        row["conversion_relative_lift_high"] = ratio[1] - 1
    row["conversion_p_value"] = stats.two_proportion_p_value(x1, n1, x2, n2)
    if row["conversion_p_value"] is None:
        notes.append("no conversions in either group" if x1 == 0 else "everyone converted")
    welch = stats.welch(revenue[treated], revenue[~treated])
    if welch.low is None:
        notes.append("revenue does not vary: no revenue interval")
    else:
        row["revenue_lift_low"], row["revenue_lift_high"] = welch.low, welch.high
        row["revenue_p_value"] = welch.p_value
        row["incremental_revenue_low"] = welch.low * n1
        row["incremental_revenue_high"] = welch.high * n1
        if spent is not None and spent > 0:
            row["roi_low"] = (welch.low * n1 - spent) / spent
            row["roi_high"] = (welch.high * n1 - spent) / spent
    row["note"] = "; ".join(notes) or None
    for name, value in row.items():
        if isinstance(value, float) and math.isnan(value):
            row[name] = None
    return row
