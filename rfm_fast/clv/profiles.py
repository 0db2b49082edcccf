"""The model-ready summary of an order history: per customer, repeat purchase days
(``frequency``), the age at the last one (``recency``), the age at ``as_of`` (``T``) and the
mean repeat spend (``monetary``), read with the kernels of :func:`rfm_fast.score`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import btyd, layout
from rfm_fast.core import arrow
from rfm_fast.core.aggregator import INT64_MAX, KeyTable, monetary_sums
from rfm_fast.core.io import DEFAULT_BATCH_ROWS, require_rereadable
from rfm_fast.core.options import ReadOptions
from rfm_fast.core.pipeline import BatchColumns, output_keys, read_totals
from rfm_fast.errors import RFMError

UNITS = {"D": 1.0, "W": 7.0, "M": 365.25 / 12, "Y": 365.25}
"""Days per time unit of ``recency`` and ``T``."""


def days_per_unit(unit: str | float) -> float:
    """Days per time unit: ``unit`` is one of :data:`UNITS` or a positive number of days.

    Raises
    ------
    RFMError
        For any other unit.
    """
    return _days_per_unit(unit)


def _days_per_unit(unit: str | float) -> float:
    if isinstance(unit, str):
        if unit not in UNITS:
            raise RFMError(
                f"unit must be one of {', '.join(UNITS)} or a number of days; got {unit!r}"
            )
        return UNITS[unit]
    if not unit > 0:
        raise RFMError(f"unit must be a positive number of days; got {unit!r}")
    return float(unit)


class _FirstDaySpend:
    """Observer of the aggregation: each customer's first purchase day and its exact spend."""

    def __init__(self, key_kind: str, returns: str) -> None:
        self.returns = returns
        self.customers = KeyTable(key_kind)
        self.first_day = np.empty(0, dtype=np.int64)
        self.whole = np.empty(0, dtype=np.int64)
        self.fraction = np.empty(0, dtype=np.int64)

    def __call__(self, batch: BatchColumns) -> None:
        n = batch.ticks.shape[0]
        ids = np.empty(n, dtype=np.int64)
        self.customers.factorize(batch.customers, ids)
        grown = len(self.customers) - self.first_day.shape[0]
        if grown > 0:
            self.first_day = np.append(self.first_day, np.full(grown, INT64_MAX))
            self.whole = np.append(self.whole, np.zeros(grown, dtype=np.int64))
            self.fraction = np.append(self.fraction, np.zeros(grown, dtype=np.int64))
        keep = (ids >= 0) & batch.ticks_valid.mask(n) & (batch.ticks <= batch.as_of_limit)
        has_amount = batch.amounts_valid.mask(n)
        if batch.amounts.dtype.kind == "f":
            has_amount &= ~np.isnan(batch.amounts)
        if self.returns != "purchase":  # a return is not a purchase (nor, dropped, anything)
            keep &= ~(has_amount & (batch.amounts < 0))
        btyd.first_day_sums(
            ids,
            batch.distinct.values.astype(np.int64, copy=False),
            keep,
            batch.amounts,
            has_amount,
            self.first_day,
            self.whole,
            self.fraction,
        )


def _key_kind(column: arrow.KeyColumn) -> str:
    """How a KeyTable hashes these keys: "int" or "string" (dictionaries by their entries)."""
    if isinstance(column, arrow.DictionaryColumn):
        return _key_kind(arrow.key_column(column.dictionary))
    return "int" if isinstance(column, arrow.IntColumn) else "string"


def _exact_difference(
    whole: np.ndarray, fraction: np.ndarray, keys: pa.Array | np.ndarray
) -> np.ndarray:
    """(whole, fraction) words of a difference of exact sums, rounded once to float64.

    A difference that leaves the exactly summed range (NumPy's subtraction wraps) is an
    :class:`RFMError` naming the customer, as a sum that does is.
    """
    carry = np.floor_divide(fraction, layout.FRACTION_ONE)
    overflow = (fraction == layout.SUM_OVERFLOW) | (np.abs(whole) > layout.SUM_LIMIT - 2)
    whole = whole + carry
    fraction = np.where(overflow, layout.SUM_OVERFLOW, fraction - carry * layout.FRACTION_ONE)
    return monetary_sums(whole, fraction, keys)


def _difference_words(
    whole: np.ndarray, fraction: np.ndarray, minus_whole: np.ndarray, minus_fraction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """``(whole - minus_whole, fraction - minus_fraction)``, with the fraction word set to
    ``SUM_OVERFLOW`` where the subtraction wrapped or ``minus`` had overflowed."""
    difference = whole - minus_whole  # wraps in NumPy: detected from the signs
    wrapped = ((whole ^ minus_whole) & (whole ^ difference)) < 0
    wrapped |= minus_fraction == layout.SUM_OVERFLOW
    return difference, np.where(wrapped, layout.SUM_OVERFLOW, fraction - minus_fraction)


@dataclass(frozen=True)
class _Profiles:
    """Per customer (sorted by key): purchase days and spend, as :func:`summary` needs them."""

    keys: pa.Array
    first_day: np.ndarray
    last_day: np.ndarray
    periods: np.ndarray
    total: np.ndarray  # exact sum of all amounts
    repeat: np.ndarray  # exact sum of the amounts after the first purchase day
    as_of_day: int | None
    rows_read: int
    rows_used: int


def _profiles(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any,
    timestamp_format: str | None,
    batch_rows: int,
    threads: int | None,
    returns: str,
    delimiter: str | None = None,
    schema: Any = None,
    amount_format: str | None = None,
    decimal: str = ".",
) -> _Profiles:
    options = ReadOptions.checked(
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        frequency="days",
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
        returns=returns,
        delimiter=delimiter,
        schema=schema,
        amount_format=amount_format,
        decimal=decimal,
    )
    observers: list[_FirstDaySpend] = []

    def observe(batch: BatchColumns) -> None:
        if not observers:
            observers.append(_FirstDaySpend(_key_kind(batch.customers), returns))
        observers[0](batch)

    aggregated = read_totals(
        data, options, keep_parts=True, observer=observe, on_restart=observers.clear
    )
    totals, _ = aggregated.totals.purchasers()
    axis = aggregated.axis
    n = len(totals)
    keys = output_keys(totals.keys, aggregated.customer_type)
    first_day = np.zeros(n, dtype=np.int64)
    first_whole = np.zeros(n, dtype=np.int64)
    first_fraction = np.zeros(n, dtype=np.int64)
    if observers and n:
        seen = observers[0]
        used = np.flatnonzero(seen.first_day != INT64_MAX)
        ids_keys = seen.customers.keys()
        if isinstance(ids_keys, np.ndarray):
            sorted_keys = totals.keys
            lookup = ids_keys[used].view(sorted_keys.dtype)
            where = np.searchsorted(sorted_keys, lookup)
        else:
            where = pc.index_in(ids_keys.take(pa.array(used)), value_set=totals.keys)
            where = where.to_numpy(zero_copy_only=False).astype(np.int64)
        first_day[where] = seen.first_day[used]
        first_whole[where] = seen.whole[used]
        first_fraction[where] = seen.fraction[used]
    whole, fraction = totals.sums
    last_day = _local_days(axis, totals.last)
    as_of_day = None
    if aggregated.as_of_ticks is not None:
        as_of_day = int(_local_days(axis, np.array([aggregated.as_of_ticks]))[0])
    return _Profiles(
        keys=keys,
        first_day=first_day,
        last_day=last_day,
        periods=totals.distinct,
        total=_exact_difference(whole, fraction, keys),
        repeat=_exact_difference(
            *_difference_words(whole, fraction, first_whole, first_fraction), keys
        ),
        as_of_day=as_of_day,
        rows_read=aggregated.counts.rows_read,
        rows_used=aggregated.counts.rows_used,
    )


def _local_days(axis: arrow.TimeAxis, ticks: np.ndarray) -> np.ndarray:
    if ticks.shape[0] == 0:
        return np.zeros(0, dtype=np.int64)
    return axis.local_days(axis.to_arrow(ticks))


def summary(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any = None,
    unit: str | float = "D",
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
    returns: str = "net",
    delimiter: str | None = None,
    schema: Any = None,
    amount_format: str | None = None,
    decimal: str = ".",
) -> pa.Table:
    """The model-ready summary of an order history, one row per customer (BTYD convention).

    Purchases on the same calendar day (in the column's time zone for zoned columns) are one
    purchase: their amounts are added.

    Parameters
    ----------
    data, customer, timestamp, amount, timestamp_format, batch_rows, threads
        As for :func:`rfm_fast.score`.
    returns : {"net", "purchase", "drop"}, default "net"
        As for :func:`rfm_fast.score`: with ``"net"``, a return is not a purchase day, its
        amount is taken off the spend of the repeat purchases, and customers with only
        returns are left out.
    delimiter, schema, amount_format, decimal : optional
        Reading the input: as for :func:`rfm_fast.score`.
    as_of : optional
        End of the observation period; rows after it are left out. Default: the latest
        timestamp plus one day, as for :func:`rfm_fast.score`.
    unit : {"D", "W", "M", "Y"} or float, default "D"
        Time unit of ``recency`` and ``T``: days, weeks, months (365.25 / 12 days), years, or
        a number of days.

    Returns
    -------
    pyarrow.Table
        Columns: the customer; ``frequency``, the number of repeat purchase days (purchase
        days minus one); ``recency``, the time from the first to the last purchase day;
        ``T``, the time from the first purchase day to the day of ``as_of``; ``monetary``, the
        mean spend of the repeat purchase days (0 without repeat purchases).

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from rfm_fast import clv
    >>> orders = pa.table({
    ...     "customer": [1, 1, 1, 2],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (1, 1, 8, 3)]),
    ...     "amount": [5.0, 5.0, 20.0, 7.0],
    ... })
    >>> clv.summary(orders, customer="customer", timestamp="day", amount="amount",
    ...             as_of="2024-01-15", unit="W").to_pylist()[0]
    {'customer': 1, 'frequency': 1, 'recency': 1.0, 'T': 2.0, 'monetary': 20.0}
    """
    days_per_unit = _days_per_unit(unit)
    profiles = _profiles(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
        returns=returns,
        delimiter=delimiter,
        schema=schema,
        amount_format=amount_format,
        decimal=decimal,
    )
    return _summary_table(customer, profiles, days_per_unit)


CALIBRATION_SHARE = 2 / 3
"""The default calibration period of a model choice: the first two thirds of the days from the
first purchase to ``as_of``; the holdout is the last third."""


def default_calibration_end(data: Any, *, as_of: Any = None, **options: Any) -> str:
    """The default end of the calibration period (an ISO date): :data:`CALIBRATION_SHARE` of
    the way from the first purchase of all to ``as_of`` (default: the latest purchase + 1 day),
    so that a model choice needs no date from the user.

    ``options`` are the reading options of :func:`summary` (``customer``, ``timestamp``,
    ``amount``, ``timestamp_format``, ``batch_rows``, ``threads``, ``returns``, ...).

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> clv.default_calibration_end(datasets.load_example(), **datasets.EXAMPLE_COLUMNS)
    '1997-12-31'
    """
    options.setdefault("timestamp_format", None)
    options.setdefault("batch_rows", DEFAULT_BATCH_ROWS)
    options.setdefault("threads", None)
    options.setdefault("returns", "net")
    profiles = _profiles(data, as_of=as_of, **options)
    if profiles.as_of_day is None or profiles.first_day.shape[0] == 0:
        raise RFMError("no purchases to split into a calibration and a holdout period")
    first = int(profiles.first_day.min())
    span = profiles.as_of_day - first
    if span < 3:
        raise RFMError(
            f"the purchases span {span} day(s): too short to keep a holdout period for choosing "
            "a model; give the calibration end, or choose the model yourself"
        )
    return str(np.datetime64(first + int(span * CALIBRATION_SHARE), "D"))


def _summary_table(customer: str, p: _Profiles, days_per_unit: float) -> pa.Table:
    frequency = p.periods - 1
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(frequency > 0, p.repeat / np.maximum(frequency, 1), 0.0)
    as_of_day = p.as_of_day if p.as_of_day is not None else 0
    return pa.table(
        {
            customer: p.keys,
            "frequency": pa.array(frequency, pa.int64()),
            "recency": (p.last_day - p.first_day) / days_per_unit,
            "T": (as_of_day - p.first_day) / days_per_unit,
            "monetary": monetary,
        }
    )


def calibration_holdout(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    calibration_end: Any,
    holdout_end: Any = None,
    unit: str | float = "D",
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
    returns: str = "net",
    delimiter: str | None = None,
    schema: Any = None,
    amount_format: str | None = None,
    decimal: str = ".",
) -> pa.Table:
    """The summary of a calibration period, with what each of its customers did afterwards.

    Customers are those with a purchase up to ``calibration_end``; their summary columns are
    :func:`summary` at ``calibration_end``. Added: ``frequency_holdout`` (purchase days after
    the calibration day, up to ``holdout_end``), ``monetary_holdout`` (their mean spend, 0
    without any) and ``duration_holdout`` (the holdout length in ``unit``).

    Parameters
    ----------
    data, customer, timestamp, amount, unit, timestamp_format, batch_rows, threads, returns, \
delimiter, schema, amount_format, decimal
        As for :func:`summary`.
    calibration_end : datetime, date or str
        The end of the calibration period (its ``as_of``).
    holdout_end : datetime, date or str, optional
        The end of the holdout period. Default: the day after the latest purchase.

    Returns
    -------
    pyarrow.Table
        The columns of :func:`summary`, then ``frequency_holdout``, ``monetary_holdout`` and
        ``duration_holdout``.

    Raises
    ------
    RFMError
        When ``holdout_end`` is not after ``calibration_end``, and as :func:`summary` does.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> from rfm_fast import clv
    >>> orders = pa.table({
    ...     "customer": [1, 1, 1, 2],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (1, 8, 20, 25)]),
    ...     "amount": [5.0, 20.0, 9.0, 7.0],
    ... })
    >>> table = clv.calibration_holdout(orders, customer="customer", timestamp="day",
    ...     amount="amount", calibration_end="2024-01-10", holdout_end="2024-01-31")
    >>> table.select(["customer", "frequency", "frequency_holdout", "duration_holdout"]).to_pylist()
    [{'customer': 1, 'frequency': 1, 'frequency_holdout': 1, 'duration_holdout': 21.0}]
    """
    days_per_unit = _days_per_unit(unit)
    require_rereadable(data, "calibration_holdout")
    options = dict(
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
        returns=returns,
        delimiter=delimiter,
        schema=schema,
        amount_format=amount_format,
        decimal=decimal,
    )
    calibration = _profiles(data, as_of=calibration_end, **options)
    whole = _profiles(data, as_of=holdout_end, **options)
    if calibration.as_of_day is None:
        raise RFMError(f"no purchases up to calibration_end {calibration_end!r}")
    if whole.as_of_day is not None and whole.as_of_day <= calibration.as_of_day:
        raise RFMError("holdout_end must be after calibration_end")
    table = _summary_table(customer, calibration, days_per_unit)
    where = pc.index_in(calibration.keys, value_set=whole.keys).to_numpy(zero_copy_only=False)
    where = where.astype(np.int64)
    periods = whole.periods[where] - calibration.periods
    spend = whole.total[where] - calibration.total
    with np.errstate(invalid="ignore", divide="ignore"):
        monetary = np.where(periods > 0, spend / np.maximum(periods, 1), 0.0)
    holdout_days = (whole.as_of_day or calibration.as_of_day) - calibration.as_of_day
    return (
        table.append_column("frequency_holdout", pa.array(periods, pa.int64()))
        .append_column("monetary_holdout", pa.array(monetary))
        .append_column(
            "duration_holdout", pa.array(np.full(len(table), holdout_days / days_per_unit))
        )
    )
