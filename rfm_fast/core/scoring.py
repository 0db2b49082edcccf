"""The public scoring API: :func:`score`, and the result it returns (:class:`RFMResult`,
:class:`RunStats`, defined in :mod:`rfm_fast.core.result`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rfm_fast.core.io import DEFAULT_BATCH_ROWS
from rfm_fast.core.option_table import given_options
from rfm_fast.core.options import FREQUENCIES, MONETARIES, ScoringOptions
from rfm_fast.core.pipeline import BatchColumns, ProgressCallback, read_totals, scored_result
from rfm_fast.core.result import RFMResult, RunStats
from rfm_fast.core.segments import SegmentsSpec
from rfm_fast.errors import RFMError

__all__ = [
    "FREQUENCIES",
    "MONETARIES",
    "BatchColumns",
    "ProgressCallback",
    "RFMResult",
    "RunStats",
    "score",
]


def score(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    order: str | None = None,
    as_of: Any = None,
    bins: int = 5,
    method: str = "exact",
    frequency: str = "orders",
    monetary: str = "sum",
    returns: str = "net",
    segments: SegmentsSpec = "default",
    playbook: bool = False,
    thresholds: dict[str, Sequence[float]] | None = None,
    timestamp_format: str | None = None,
    delimiter: str | None = None,
    schema: Mapping[str, Any] | str | None = None,
    amount_format: str | None = None,
    decimal: str = ".",
    window: int | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
    progress: ProgressCallback | None = None,
) -> RFMResult:
    """Score every customer of an order history by recency, frequency and monetary value.

    The input is read batch by batch and folded into per-customer totals by compiled kernels;
    the scores follow the contract of ``docs/semantics.md``.

    Parameters
    ----------
    data : table, data frame, mapping or path
        A pyarrow Table, RecordBatch or RecordBatchReader; a pandas or polars DataFrame; a
        mapping of column name to NumPy array; or a path (str or PathLike) to a Parquet, CSV
        (also ``.csv.gz``) or Arrow IPC/Feather file.
    customer : str
        Customer column: integers, text or dictionary-encoded. Null customers are dropped and
        counted.
    timestamp : str
        Purchase time: ``date32``, ``date64``, ``timestamp`` of any unit with or without a time
        zone, or text (ISO-8601, or see ``timestamp_format``).
    amount : str
        Amount column (integer, float or decimal), or the product of two columns written
        ``"Quantity*UnitPrice"``. Null and NaN amounts are left out of the sum.
    order : str, optional
        Order id column; frequency then counts distinct orders instead of rows.
    as_of : datetime, date, numpy.datetime64 or str, optional
        End of the observation window. Default: the latest timestamp plus one day. Rows after
        it are left out and counted.
    bins : int, default 5
        Scores run from 1 to ``bins`` (2..9); ``bins`` is best.
    method : {"exact", "split", "approx"}, default "exact"
        ``"exact"``: equal values get equal scores (ties can leave scores empty). ``"split"``:
        equal-count bins like SQL ``NTILE``, ties broken by customer key. ``"approx"``: the
        exact rule over a mergeable sketch: integer metrics exactly, monetary values within a
        relative 0.5% of each other may tie (see :mod:`rfm_fast.core.sketch`).
    frequency : {"orders", "days"}, default "orders"
        Count distinct orders (rows without ``order``), or distinct purchase days.
    monetary : {"sum", "mean"}, default "sum"
        Total of the amounts, or the total divided by the frequency.
    returns : {"net", "purchase", "drop"}, default "net"
        Rows with a negative amount (returns, cancellations): ``"net"`` subtracts them from
        monetary but does not count them as purchases (frequency, first and last purchase,
        hence recency); ``"purchase"`` takes them as any other row; ``"drop"`` leaves them out
        (counted in ``stats.dropped["returns"]``). With ``"net"``, customers whose rows are all
        returns are left out of the result (``stats.customers_only_returns``). See
        docs/semantics.md, "Returns".
    segments : str, None, path or sequence of SegmentRule, default "default"
        Segment rules: a built-in map by name (``"default"``: R x F, ``"value"``: R, F and M,
        ``"compact"``: 5 groups, ``"lifecycle"``: stages in days; see
        :data:`rfm_fast.core.segments.BUILTIN_MAPS`), None or ``"none"`` (every customer is
        "Other"), a TOML rules file, or rules built in Python.
    playbook : bool, default False
        Add the columns ``action`` (dictionary-encoded text) and ``priority`` (int16) of each
        customer's segment after ``segment`` (see :meth:`RFMResult.with_playbook`).
    thresholds : dict of str to list of float, optional
        Explicit edges for some metrics, e.g. ``{"recency": [30, 90, 180, 365]}``.
    timestamp_format : str, optional
        ``strptime`` format of a text timestamp column, such as ``"%Y%m%d"``.
    delimiter : str, optional
        CSV files: the delimiter, one character, or ``"whitespace"`` for columns separated by
        runs of spaces (the CDNOW master file). Default ``","``, a tab for ``.tsv``.
    schema : mapping or str, optional
        CSV files: types to read columns as instead of inferring them, such as
        ``{"CustomerID": "string", "Quantity": "float64"}`` or the text
        ``"CustomerID=string,Quantity=float64"`` (types: string, int64, float64, date,
        timestamp). Without it a column whose values change type far into the file is read
        again with the wider type, with a warning.
    amount_format : {None, "currency"}, optional
        Amounts held as text (``"$1,234.50"``, ``"(12.00)"``): ``"currency"`` drops currency
        symbols, spaces and thousands separators, and reads ``(12.00)`` as -12.00. Without
        it, text amounts must be plain numbers.
    decimal : {".", ","}, default "."
        The decimal separator of text amounts (``","`` for ``"1.234,50"``).
    window : int, optional
        Days: score only the rows at most this many days before ``as_of``
        (``as_of - window days <= timestamp <= as_of``), as a run over those rows alone would:
        "the last 365 days". The rows before the window are left out and counted
        (``stats.dropped["before_window"]``). Without ``as_of``, the default ``as_of`` (the
        latest timestamp of all rows plus one day) is found first, in a pass over the customer
        and timestamp columns, so the input must be readable twice (not a record batch
        reader). See docs/semantics.md, "Windows".
    batch_rows : int, default 1048576
        Rows per batch when reading files and large tables.
    threads : int, optional
        Threads that aggregate (default: one per core). The result is the same for any number;
        the next batch is read and decoded in a thread of its own meanwhile.
    progress : callable, optional
        Called after each batch with (rows read, total rows or None).

    Returns
    -------
    RFMResult
        ``.table`` (one row per customer, sorted by key), ``.edges`` and ``.stats``.

    Raises
    ------
    RFMError
        On bad options or input: missing columns, wrong column types, infinite amounts,
        unparseable ``as_of``, unreadable files, invalid segment rules. The message says what
        was expected and what was found.

    Examples
    --------
    >>> import datetime as dt
    >>> import pyarrow as pa
    >>> import rfm_fast
    >>> orders = pa.table({
    ...     "customer": [1, 1, 2, 3, 3, 3],
    ...     "day": pa.array([dt.date(2024, 1, d) for d in (2, 20, 5, 1, 10, 30)]),
    ...     "amount": [10.0, 15.0, 7.5, 20.0, 5.0, 40.0],
    ... })
    >>> result = rfm_fast.score(orders, customer="customer", timestamp="day", amount="amount",
    ...                         bins=3, segments=None)
    >>> columns = ["customer", "recency", "frequency", "monetary", "rfm_cell"]
    >>> result.table.select(columns).to_pylist()[0]
    {'customer': 1, 'recency': 11, 'frequency': 2, 'monetary': 25.0, 'rfm_cell': '222'}
    >>> result.stats.as_of
    datetime.datetime(2024, 1, 31, 0, 0)
    """
    options = ScoringOptions.checked(**given_options("score", locals()))
    if not isinstance(playbook, bool):
        raise RFMError(f"playbook must be True or False; got {playbook!r}")
    result = scored_result(read_totals(data, options.reading, progress=progress), options.scoring)
    return result.with_playbook() if playbook else result
