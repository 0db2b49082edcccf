"""Who moved where: each customer's segment at two dates, and the transitions between them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.core.io import require_rereadable
from rfm_fast.core.scoring import RFMResult, score
from rfm_fast.errors import RFMError

NEW = "(new)"
"""The "segment before" of customers whose first purchase came after the first date."""


@dataclass(frozen=True)
class Migration:
    """The result of :func:`migrate`.

    Attributes
    ----------
    before, after : RFMResult
        The scores at the first and the second date.
    customers : pyarrow.Table
        One row per customer scored at the second date: the customer, ``segment_before``
        (``"(new)"`` for customers without purchases up to the first date), ``segment_after``,
        ``R_before, F_before, M_before`` (null for new customers), ``R_after, F_after,
        M_after``, ``revenue_before`` and ``revenue_after`` (sum of the amounts up to each
        date) and ``revenue_between`` (their difference: what the customer spent after the
        first date, up to the second).
    """

    before: RFMResult
    after: RFMResult
    customers: pa.Table

    def __repr__(self) -> str:
        before, after = self.before.stats.as_of, self.after.stats.as_of
        moved = pc.sum(
            pc.not_equal(self.customers["segment_before"], self.customers["segment_after"])
        ).as_py()
        return (
            f"Migration(customers={self.customers.num_rows}, moved={moved or 0}, "
            f"before={before.isoformat() if before else None}, "
            f"after={after.isoformat() if after else None})"
        )

    @property
    def segments(self) -> list[str]:
        """Segment names in rule order ("Other" last), as both results have them."""
        return _names(self.after)

    def matrix(self) -> pa.Table:
        """The transition matrix, one row per (from, to) pair of segments, all pairs included:
        ``segment_before, segment_after, customers, share_of_before, revenue_between``.

        ``share_of_before`` is the fraction of the customers of ``segment_before`` who went to
        ``segment_after`` (each "from" row adds up to 1); ``revenue_between`` is what those
        customers spent between the two dates.
        """
        sources = [*self.segments, NEW]
        targets = self.segments
        index_from = {name: k for k, name in enumerate(sources)}
        index_to = {name: k for k, name in enumerate(targets)}
        before = np.array(
            [index_from[s] for s in self.customers.column("segment_before").to_pylist()],
            dtype=np.int64,
        )
        after = np.array(
            [index_to[s] for s in self.customers.column("segment_after").to_pylist()],
            dtype=np.int64,
        )
        cell = before * len(targets) + after
        size = len(sources) * len(targets)
        customers = np.bincount(cell, minlength=size)
        revenue = np.bincount(
            cell, weights=self.customers.column("revenue_between").to_numpy(), minlength=size
        )
        per_source = customers.reshape(len(sources), len(targets)).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            share = customers / np.repeat(per_source, len(targets))
        return pa.table(
            {
                "segment_before": np.repeat(sources, len(targets)).tolist(),
                "segment_after": np.tile(targets, len(sources)).tolist(),
                "customers": pa.array(customers, pa.int64()),
                "share_of_before": share,
                "revenue_between": revenue,
            }
        )

    def movers(self, segment_before: str, segment_after: str) -> pa.Table:
        """The customers who were in ``segment_before`` at the first date and are in
        ``segment_after`` at the second (rows of :attr:`customers`); write them with
        :func:`rfm_fast.core.io.write_table` or any Arrow writer."""
        for name, allowed in (
            (segment_before, [*self.segments, NEW]),
            (segment_after, self.segments),
        ):
            if name not in allowed:
                raise RFMError(
                    f"unknown segment {name!r}; the segments are: "
                    + ", ".join(repr(s) for s in allowed)
                )
        keep = pc.and_(
            pc.equal(self.customers.column("segment_before"), segment_before),
            pc.equal(self.customers.column("segment_after"), segment_after),
        )
        return self.customers.filter(keep)


def migrate(data: Any, *, as_of: tuple[Any, Any] | list[Any], **options: Any) -> Migration:
    """Score the same order history at two dates and follow each customer between them.

    Parameters
    ----------
    data : table, data frame, mapping or path
        Any input of :func:`rfm_fast.score`. It is read twice.
    as_of : pair of dates
        The two dates, earlier first (datetime, date, numpy.datetime64 or ISO-8601 text). Each
        scoring uses only the rows up to its date, so the first date's scores are what a run on
        that day would have given.
    **options
        Every other option of :func:`rfm_fast.score` (``customer``, ``timestamp``, ``amount``,
        ``order``, ``bins``, ``segments``, ...), used for both dates.

    Returns
    -------
    Migration
        ``.before``, ``.after``, ``.customers``, ``.matrix()`` and ``.movers(a, b)``.

    Notes
    -----
    Every customer with a purchase up to the first date has one up to the second, so each
    customer of ``before`` is in ``after``; customers whose first purchase falls between the
    dates are "(new)" before. A segment without customers at one date still has its rows in
    the matrix (with 0 customers). Scores are relative to all customers at each date: a
    customer can change segment without buying, because recency grows and others buy.

    Examples
    --------
    >>> import rfm_fast
    >>> moved = rfm_fast.migrate(
    ...     rfm_fast.datasets.load_example(),
    ...     as_of=("1998-01-01", "1998-07-01"),
    ...     **rfm_fast.datasets.EXAMPLE_COLUMNS,
    ... )
    >>> cooled = moved.movers("Champions", "Loyal Customers")
    >>> cooled.num_rows, cooled.column_names[:3]
    (1557, ['customer_id', 'segment_before', 'segment_after'])
    """
    if "as_of" in options:
        raise RFMError("give the two dates as as_of=(first, second)")
    if isinstance(as_of, str | bytes) or len(as_of) != 2:
        raise RFMError(f"as_of must be a pair of dates (first, second); got {as_of!r}")
    require_rereadable(data, "migrate")
    first, second = as_of
    before = score(data, as_of=first, **options)
    after = score(data, as_of=second, **options)
    first_at, second_at = before.stats.as_of, after.stats.as_of
    if first_at is not None and second_at is not None and first_at >= second_at:
        raise RFMError(
            f"the first as_of ({first_at}) must be earlier than the second ({second_at})"
        )
    customer = options.get("customer", "customer")
    return Migration(before, after, _customers(before, after, customer))


def _names(result: RFMResult) -> list[str]:
    return [str(n) for n in result.table.column("segment").combine_chunks().dictionary.to_pylist()]


def _revenue(result: RFMResult) -> np.ndarray:
    money = result.table.column("monetary").to_numpy()
    if result.stats.monetary == "mean":
        return money * result.table.column("frequency").to_numpy()
    return money


def _customers(before: RFMResult, after: RFMResult, customer: str) -> pa.Table:
    keys_after = after.table.column(customer)
    # Row of each "after" customer in "before" (both are sorted by key), -1 for new customers.
    where = pc.index_in(keys_after, value_set=before.table.column(customer).combine_chunks())
    where = pc.fill_null(where, -1).to_numpy(zero_copy_only=False).astype(np.int64)
    new = where < 0
    rows = np.where(new, 0, where)
    present = pa.array(~new)

    def earlier(column: str) -> pa.Array:
        values = before.table.column(column).combine_chunks()
        if len(values) == 0:
            return pa.nulls(len(rows), values.type)
        return pc.if_else(present, values.take(pa.array(rows)), pa.nulls(len(rows), values.type))

    segment_before = pc.fill_null(earlier("segment").cast(pa.string()), NEW)
    revenue_before = np.zeros(len(rows))
    if before.table.num_rows:
        revenue_before = np.where(new, 0.0, _revenue(before)[rows])
    revenue_after = _revenue(after)
    return pa.table(
        {
            customer: keys_after,
            "segment_before": segment_before,
            "segment_after": after.table.column("segment").cast(pa.string()),
            "R_before": earlier("R"),
            "F_before": earlier("F"),
            "M_before": earlier("M"),
            "R_after": after.table.column("R"),
            "F_after": after.table.column("F"),
            "M_after": after.table.column("M"),
            "revenue_before": revenue_before,
            "revenue_after": revenue_after,
            "revenue_between": revenue_after - revenue_before,
        }
    )
