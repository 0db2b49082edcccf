"""A saved scoring state that takes each day's orders: :class:`DailyState`.

A daily state is a :class:`rfm_fast.CustomerState` of every order loaded so far (built without
``as_of``, so no row is left out), the options it was built with (fixed for its life), a record
of every load applied (:class:`Load`) and the segments of the last scoring, from which each
update finds the customers whose segment changed. Scoring it as of any moment on or after its
latest order gives exactly what :func:`rfm_fast.score` gives over all the rows loaded.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels.dispatch import hashing
from rfm_fast._kernels.layout import FRACTION_ONE, SUM_OVERFLOW
from rfm_fast.core import arrow
from rfm_fast.core.aggregator import RowCounts
from rfm_fast.core.database import Database
from rfm_fast.core.io import (
    DEFAULT_BATCH_ROWS,
    check_output_path,
    table_from_ipc,
    table_to_ipc,
    table_to_ipc_buffer,
    write_outputs,
)
from rfm_fast.core.option_table import READ_OPTION_NAMES, SCORE_OPTION_NAMES, given_options
from rfm_fast.core.options import ReadOptions, ScoreOptions, check_window
from rfm_fast.core.pipeline import ProgressCallback, scored_result
from rfm_fast.core.result import RFMResult
from rfm_fast.core.segments import SegmentRule, rules_document, rules_of_document
from rfm_fast.core.state import CustomerState, merge_states
from rfm_fast.daily.lock import DEFAULT_WAIT_SECONDS, state_lock
from rfm_fast.daily.rows import RowDigest
from rfm_fast.daily.state_file import (
    payload_chunks,
    read_state_file,
    state_file_digest,
    state_file_writer,
    unpack_parts,
)
from rfm_fast.daily.window import LoadRows, RowTally, WindowRows, read_load
from rfm_fast.errors import RFMError

READ_OPTIONS = (
    "customer",
    "timestamp",
    "amount",
    "order",
    "frequency",
    "returns",
    "timestamp_format",
    "delimiter",
    "amount_format",
    "decimal",
)
"""The reading options a state keeps (with the CSV column types): every load is read so."""
SCORE_OPTIONS = ("bins", "method", "monetary")
CHANGE_COLUMNS = ("segment_before", "segment", "as_of", "R_before", "F_before", "M_before")


@dataclass(frozen=True)
class Load:
    """One load applied to a state: what it held and what the scoring after it found."""

    fingerprint: str
    """SHA-256 of the load's content (its per-customer totals and orders, and an order-free
    digest of its rows): the same rows loaded again, in any order or batching, have the same
    fingerprint, and other rows another."""
    source: str
    """What was read: the file name, or the kind of object."""
    rows_read: int
    rows_used: int
    first: str | None
    """The load's earliest purchase and latest row (returns included), ISO-8601; None for a
    load without usable rows."""
    last: str | None
    applied_at: str
    """When the load was applied (UTC, ISO-8601)."""
    as_of: str | None
    """The ``as_of`` of the scoring after the load."""
    customers: int
    """Customers scored after the load."""
    changed: int = 0
    """Customers whose segment changed with the load (new customers included)."""
    segments: dict[str, int] = field(default_factory=dict)
    """Customers per segment after the load."""
    forced: bool = False
    """Applied with ``force=True``, although a load with this fingerprint was applied before."""


@dataclass(frozen=True)
class DailyUpdate:
    """What :meth:`DailyState.update` did: the load's record, the scores after it, and the
    customers whose segment changed (:meth:`DailyState.changes`)."""

    load: Load
    result: RFMResult
    changes: pa.Table

    def __repr__(self) -> str:
        return (
            f"DailyUpdate(rows={self.load.rows_read:,}, customers={self.result.stats.customers:,}"
            f", changes={self.changes.num_rows:,}, as_of={self.load.as_of})"
        )


class DailyState:
    """Per-customer totals of every order loaded so far, the options they were built with, the
    loads applied and the last scoring: take each day's orders with :meth:`update`.

    Build one with :meth:`init`, or read one with :meth:`open`; :meth:`save` writes it (the
    file is replaced atomically and durably). The options are fixed at :meth:`init`.

    Examples
    --------
    >>> import datetime as dt, pyarrow as pa
    >>> from rfm_fast import DailyState
    >>> def orders(customers, day):
    ...     return pa.table({"customer": customers, "day": pa.array([day] * len(customers)),
    ...                      "amount": [10.0] * len(customers)})
    >>> state = DailyState.init(orders([1, 2, 3], dt.date(2024, 1, 1)), customer="customer",
    ...                         timestamp="day", amount="amount", bins=2, segments=None)
    >>> update = state.update(orders([1], dt.date(2024, 1, 9)))
    >>> update.result.table.column("frequency").to_pylist()
    [2, 1, 1]
    >>> len(state.loads)
    2
    """

    def __init__(
        self,
        read: dict[str, Any],
        column_types: dict[str, pa.DataType],
        scoring: dict[str, Any],
        state: CustomerState,
        loads: Sequence[Load] = (),
        scores: pa.Table | None = None,
        orders_within_loads: bool = False,
        rows: WindowRows | None = None,
    ) -> None:
        self._read_kwargs = dict(read)
        self._column_types = dict(column_types)
        self._score_kwargs = dict(scoring)
        self._read = ReadOptions.checked(**self._read_kwargs, schema=self._column_types or None)
        self._score = ScoreOptions.checked(
            **{k: scoring[k] for k in SCORE_OPTIONS},
            segments=_rules_of(scoring["rules"]),
            thresholds=scoring.get("thresholds"),
        )
        self.orders_within_loads = bool(orders_within_loads)
        """Whether no order (or purchase day) spans two loads: the state keeps no pairs."""
        self.state = state
        """The totals of every row loaded (None for a state with a window: :attr:`rows`)."""
        self.rows = rows
        """A state with a window: the rows a window can still reach, and the others counted."""
        self.loads: list[Load] = list(loads)
        self.scores = scores
        """The customer, segment and scores of the last scoring (for the changes)."""
        self._file: tuple[str, bytes | None] | None = None
        """(real path, digest) of the state file last read or saved: :meth:`save` refuses to
        replace it once another writer has changed it."""

    # ------------------------------------------------------------------ building
    @classmethod
    def init(
        cls,
        data: Any,
        *,
        customer: str,
        timestamp: str,
        amount: str,
        order: str | None = None,
        frequency: str = "orders",
        returns: str = "net",
        timestamp_format: str | None = None,
        delimiter: str | None = None,
        schema: Any = None,
        amount_format: str | None = None,
        decimal: str = ".",
        bins: int = 5,
        method: str = "exact",
        monetary: str = "sum",
        segments: Any = "default",
        thresholds: dict[str, Sequence[float]] | None = None,
        orders_within_loads: bool = False,
        window: int | None = None,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DailyState:
        """A state of the order history ``data``, scored once (as of its latest order plus a
        day) so that the first update can tell what changed.

        Parameters
        ----------
        data, customer, timestamp, amount, order, frequency, returns, timestamp_format, \
delimiter, schema, amount_format, decimal, batch_rows, threads, progress
            As for :func:`rfm_fast.score`: how every load is read (``batch_rows``, ``threads``
            and ``progress`` only for this call).
        bins, method, monetary, segments, thresholds
            As for :func:`rfm_fast.score`: how every scoring scores. A rules file is read now
            and its rules kept in the state.
        orders_within_loads : bool, default False
            Promise that every order (every purchase day, with ``frequency="days"``) has all
            its rows in one load, as in exports cut at midnight with orders stamped at
            checkout. The state then keeps distinct counts instead of every (customer, order)
            pair: a fraction of the size, and updates that do not grow with the history. An
            order whose rows do come in two loads is counted once in each (its customer's
            frequency is one too high); recency and monetary stay exact. Without it the state
            is exact whatever the loads.
        window : int, optional
            Days: every scoring scores only the rows at most this many days before its
            ``as_of``, as :func:`rfm_fast.score` with ``window`` does over all the rows loaded
            ("spent over $1,000 in the last 365 days" changes every day as old orders leave the
            window). The state then keeps the rows that a window can still reach, not totals:
            rows more than ``window + 1`` days older than the latest are counted and let go.

        Returns
        -------
        DailyState
        """
        given = given_options("DailyState.init", locals())
        kept_apart = ("schema", "window", "batch_rows", "threads")  # (kept or used otherwise)
        read = {k: v for k, v in given.items() if k in READ_OPTION_NAMES and k not in kept_apart}
        options = ReadOptions.checked(**read, schema=schema)
        score_options = ScoreOptions.checked(
            **{k: v for k, v in given.items() if k in SCORE_OPTION_NAMES}
        )
        scoring = {
            "bins": bins,
            "method": method,
            "monetary": monetary,
            "rules": _rules_document(score_options.rules),
            "thresholds": None
            if not score_options.thresholds
            else {k: [float(x) for x in v] for k, v in score_options.thresholds.items()},
        }
        window = check_window(window)
        if window is not None:
            if orders_within_loads:
                raise RFMError(
                    "orders_within_loads is for states without a window: a state with a window "
                    "keeps rows, and counts each order once whatever the loads"
                )
            if method == "approx":
                raise RFMError("a state with a window scores with method 'exact' or 'split'")
            load = read_load(data, _runtime(options, batch_rows, threads), window, progress)
            empty = replace(
                load.rows, table=load.rows.table.schema.empty_table(), latest=None, tally=RowTally()
            )
            daily = cls(read, options.column_types, scoring, None, (), None, rows=empty)
            daily._apply(load, _source_name(data), as_of=None, force=False)
            return daily
        rows = RowDigest()
        history = CustomerState.of_options(
            data,
            _runtime(options, batch_rows, threads),
            progress=progress,
            observer=rows,
            on_restart=rows.reset,
        )
        if orders_within_loads:
            history = history.completed()
        empty = _empty_like(history)
        daily = cls(read, options.column_types, scoring, empty, (), None, orders_within_loads)
        daily._apply(history, _source_name(data), as_of=None, force=False, rows=rows.words)
        return daily

    # ------------------------------------------------------------------ files
    @classmethod
    def open(cls, path: str | os.PathLike) -> DailyState:
        """The state saved at ``path`` (checked whole: see :mod:`rfm_fast.daily.state_file`).

        Raises
        ------
        RFMError
            When the file is missing, not a state, damaged, truncated, or of a newer format.
        """
        path = Path(path)
        digest = state_file_digest(path)  # (before the content: a later save shows as a change)
        parts = unpack_parts(read_state_file(path), 4, path)
        try:
            header = json.loads(bytes(parts[0]))
            types = table_from_ipc(parts[1]).schema
            rows = state = None
            if header.get("window") is not None:
                rows = WindowRows.from_parts(header["window"], parts[2])
            else:
                state = CustomerState.from_bytes(parts[2])  # (no copy: the arrays view the file)
            scores = table_from_ipc(parts[3]) if len(parts[3]) else None
            loads = [Load(**load) for load in header["loads"]]
            daily = cls(
                header["read"],
                {f.name: f.type for f in types},
                header["scoring"],
                state,
                loads,
                scores,
                header.get("orders_within_loads", False),
                rows,
            )
            daily._file = (os.path.realpath(path), digest)
            return daily
        except RFMError:
            raise
        except (ValueError, KeyError, TypeError, pa.ArrowException) as exc:
            raise RFMError(
                f"state file {path} passed its checksum but cannot be read ({exc}); it was "
                "written by a different rfm_fast: build it again with rfm state init"
            ) from None

    def save(
        self,
        path: str | os.PathLike,
        outputs: Mapping[str | os.PathLike | Database, pa.Table] | None = None,
        *,
        overwrite: bool = True,
        wait: float = DEFAULT_WAIT_SECONDS,
    ) -> Path:
        """Write the state to ``path``, and ``outputs`` (path: table, such as an update's scores
        and changes, in the format of each suffix) with it. An output may also be a database
        table (``rfm_fast.Database(uri, table=...)``).

        Every file is first written in full to a temporary file beside it and flushed to disk;
        then the database tables are replaced (one transaction per database), then the files
        are renamed into place, and the state last. A crash or ``kill -9`` at any moment leaves
        the previous state whole and loadable; one before the last rename leaves the previous
        state, which has not seen the load, so running the update again redoes it all (a table
        that cannot be written leaves every file, the state included, as it was). A ``path``
        that is a symbolic link keeps the link: the file it points to is replaced.

        The save holds the state's lock (:func:`rfm_fast.daily.lock.state_lock`, waiting up to
        ``wait`` seconds for another writer), and refuses to replace the file this state was
        read from (:meth:`open`) or last saved to once another writer has saved over it: that
        writer's load would be lost. Hold the lock around :meth:`open`, :meth:`update` and
        :meth:`save` to run them as one writer.

        Parameters
        ----------
        overwrite : bool, default True
            False: refuse to replace a file that exists (``rfm state init`` without
            ``--force``).

        Returns
        -------
        pathlib.Path
            The path of the state.

        Raises
        ------
        RFMError
            When the file cannot be written, was changed by another writer, exists (with
            ``overwrite=False``), or another writer holds the lock for longer than ``wait``.
        """
        path = check_output_path(path, suffixes=None)
        writer = state_file_writer(self._parts())
        with state_lock(path, wait=wait):
            check_state_target(path, overwrite)
            self._check_unchanged(path)
            write_outputs(outputs or {}, last=(path, writer), inputs=[path], durable=True)
        self._file = (os.path.realpath(path), writer.digest)
        return path

    def _check_unchanged(self, path: Path) -> None:
        """Refuse to save over the file this state came from once another writer changed it."""
        if self._file is None or self._file[0] != os.path.realpath(path):
            return
        now = state_file_digest(path)
        if now is not None and now != self._file[1]:
            raise RFMError(
                f"the state file {path} was saved by another writer after this state was read: "
                "saving would lose that writer's load, so it was not saved. Open it again "
                "(DailyState.open) and apply the load to it; hold rfm_fast.daily.lock.state_lock "
                "around open, update and save to run as one writer"
            )

    def to_bytes(self) -> bytes:
        """The payload of the state file (:mod:`rfm_fast.daily.state_file` wraps it)."""
        return b"".join(bytes(chunk) for chunk in payload_chunks(self._parts()))

    def _parts(self) -> list[list[Any]]:
        header = {
            "kind": "rfm_fast daily state",
            "read": self._read_kwargs,
            "scoring": self._score_kwargs,
            "orders_within_loads": self.orders_within_loads,
            "window": None if self.rows is None else self.rows.header(),
            "loads": [asdict(load) for load in self.loads],
        }
        types = pa.schema(list(self._column_types.items()))
        return [
            [json.dumps(header).encode()],
            [table_to_ipc_buffer(types.empty_table())],
            self.state.to_chunks() if self.rows is None else [self.rows.to_ipc()],
            [] if self.scores is None else [table_to_ipc_buffer(self.scores)],
        ]

    # ------------------------------------------------------------------ daily work
    def update(
        self,
        data: Any,
        *,
        as_of: Any = None,
        force: bool = False,
        batch_rows: int = DEFAULT_BATCH_ROWS,
        threads: int | None = None,
        progress: ProgressCallback | None = None,
    ) -> DailyUpdate:
        """Fold the orders of ``data`` in, score every customer as of ``as_of`` and find the
        customers whose segment changed since the last scoring.

        The state changes only when all of this succeeds. Save it with :meth:`save`.

        Parameters
        ----------
        data
            Any input :func:`rfm_fast.score` takes, with the state's columns and types.
        as_of : optional
            The moment to score as of; default: the latest order plus one day. It must not lie
            before an order of the state (rows after ``as_of`` would be left out of the state
            for good).
        force : bool, default False
            Apply a load whose content was applied before (its rows then count twice).
        batch_rows, threads, progress
            As for :func:`rfm_fast.score`.

        Raises
        ------
        RFMError
            When the load was applied before (and ``force`` is False), when its columns or
            types differ from the state's, or for ``as_of`` before the latest order.
        """
        runtime = _runtime(self._read, batch_rows, threads)
        if self.rows is not None:
            load = read_load(data, runtime, self.rows.window, progress)
            return self._apply(load, _source_name(data), as_of=as_of, force=force)
        rows = RowDigest()
        part = CustomerState.of_options(
            data, runtime, progress=progress, observer=rows, on_restart=rows.reset
        )
        if self.orders_within_loads:
            part = part.completed()
        return self._apply(part, _source_name(data), as_of=as_of, force=force, rows=rows.words)

    def score(self, as_of: Any = None) -> RFMResult:
        """Score every customer of the state as of ``as_of`` (default: the latest order plus one
        day), exactly as :func:`rfm_fast.score` scores all the rows loaded.

        Raises
        ------
        RFMError
            For an ``as_of`` before the state's latest order.
        """
        return self._scored(self.state if self.rows is None else self.rows, as_of)

    def changes(self, result: RFMResult) -> pa.Table:
        """The customers whose segment in ``result`` differs from the last scoring (new
        customers too, with a null ``segment_before``; customers the last scoring had and
        ``result`` has not, as a window's without a purchase in it any more, with a null
        ``segment`` and scores), sorted by customer: the customer column, then
        ``segment_before, segment, as_of, R_before, F_before, M_before, R, F, M``."""
        customer = self._customer
        after = _segments_of(result, customer)
        before = self.scores
        keys = after.column(customer).combine_chunks()
        segment = after.column("segment").combine_chunks()  # dictionary-encoded
        codes = _codes(segment, segment.dictionary)
        if before is None or not before.num_rows:
            position = np.zeros(len(keys), dtype=np.int64)
            missing = np.ones(len(keys), dtype=bool)
            earlier_codes = np.full(len(keys), -1, dtype=np.int64)
        else:
            position, missing = _positions(before.column(customer).combine_chunks(), keys)
            earlier_codes = _codes(before.column("segment").combine_chunks(), segment.dictionary)
            earlier_codes = np.where(missing, -1, earlier_codes[position])
        # a segment the last scoring had and this one has not is -2: changed, as a new customer
        changed = np.flatnonzero((earlier_codes != codes) | missing)
        picked = pa.array(changed)

        def earlier(name: str) -> pa.Array:
            type_ = pa.string() if name == "segment" else after.schema.field(name).type
            if before is None or not before.num_rows:
                return pa.nulls(len(changed), type_)
            values = before.column(name).combine_chunks().take(pa.array(position[changed]))
            return pc.if_else(pa.array(missing[changed]), pa.nulls(len(changed), type_), values)

        as_of = pa.array([result.stats.as_of], arrow.TimeAxis.of(self._time_type).type)
        names = [customer, *CHANGE_COLUMNS, "R", "F", "M"]
        changes = pa.table(
            [
                keys.take(picked),
                earlier("segment").cast(pa.string()),
                segment.take(picked).cast(pa.string()),
                as_of.take(pa.array(np.zeros(len(changed), dtype=np.int64))),
                *(earlier(name) for name in ("R", "F", "M")),
                *(after.column(name).combine_chunks().take(picked) for name in ("R", "F", "M")),
            ],
            names=names,
        )
        if before is None or not before.num_rows:
            return changes
        # customers scored before and not now (a window's: no purchase in it any more)
        known = before.column(customer).combine_chunks().cast(keys.type)
        if len(keys):
            _, gone = _positions(keys, known)
        else:
            gone = np.ones(len(known), dtype=bool)
        if not gone.any():
            return changes
        left = pa.array(np.flatnonzero(gone))
        rows = pa.table(
            [
                known.take(left),
                before.column("segment").combine_chunks().take(left).cast(pa.string()),
                pa.nulls(len(left), pa.string()),
                as_of.take(pa.array(np.zeros(len(left), dtype=np.int64))),
                *(before.column(n).combine_chunks().take(left) for n in ("R", "F", "M")),
                *(pa.nulls(len(left), after.schema.field(n).type) for n in ("R", "F", "M")),
            ],
            names=names,
        )
        both = pa.concat_tables([changes, rows.cast(changes.schema)])
        return both.take(pc.sort_indices(both, sort_keys=[(customer, "ascending")]))

    # ------------------------------------------------------------------ describing
    @property
    def options(self) -> dict[str, Any]:
        """The options the state was built with (those of :meth:`init`)."""
        types = {name: str(t) for name, t in self._column_types.items()}
        return {
            **self._read_kwargs,
            "schema": types or None,
            **self._score_kwargs,
            "orders_within_loads": self.orders_within_loads,
            "window": None if self.rows is None else self.rows.window,
        }

    def info(self) -> dict[str, Any]:
        """What the state holds: options, customers, rows, time range, and every load.

        ``customers`` counts every customer the state holds; ``customers_scored`` those with a
        purchase, which the scores and segments hold; ``customers_only_returns`` the rest, whose
        every row was a return. For a state with a window, ``first_purchase`` is the oldest row
        kept (a row a window can still reach: returns included), ``rows_kept`` their number, and
        ``customers`` those of the last scoring."""
        if self.rows is None:
            counts = self.state.counts
            axis = arrow.TimeAxis.of(self.state.time_type)
            buying = self.state.first != np.iinfo(np.int64).max
            first = int(self.state.first[buying].min()) if buying.any() else None
            last = int(self.state.last[buying].max()) if buying.any() else None
            rows_read, rows_used, customers = counts.rows_read, counts.rows_used, len(self.state)
            kept = None
        else:
            axis = arrow.TimeAxis.of(self.rows.time_type)
            ticks, _ = axis.ticks(self.rows.table.column(1).combine_chunks())
            first = int(ticks.min()) if ticks.shape[0] else None
            last = self.rows.latest
            tally = self.rows.tally
            rows_read = tally.rows_read
            rows_used = rows_read - tally.null_customer - tally.null_timestamp
            customers = 0 if self.scores is None else self.scores.num_rows
            kept = self.rows.table.num_rows
        scored = customers if self.scores is None else self.scores.num_rows
        return {
            "options": self.options,
            "customer_type": str(self._customer_type),
            "timestamp_type": str(self._time_type),
            "customers": customers,
            "customers_scored": scored,
            "customers_only_returns": customers - scored,
            "rows_read": rows_read,
            "rows_used": rows_used,
            "rows_kept": kept,
            "first_purchase": None if first is None else axis.moment_text(first),
            "last_purchase": None if last is None else axis.moment_text(last),
            "state_bytes": self.state.nbytes if self.rows is None else self.rows.nbytes,
            "loads": [asdict(load) for load in self.loads],
        }

    def __repr__(self) -> str:
        info = self.info()
        window = "" if self.rows is None else f", window={self.rows.window}"
        return (
            f"DailyState(customers={info['customers']:,}, rows={info['rows_read']:,}, "
            f"loads={len(self.loads)}{window})"
        )

    # ------------------------------------------------------------------ inside
    @property
    def _customer(self) -> str:
        return self.state.customer if self.rows is None else self.rows.table.column_names[0]

    @property
    def _customer_type(self) -> pa.DataType:
        return self.state.customer_type if self.rows is None else self.rows.customer_type

    @property
    def _time_type(self) -> pa.DataType:
        return self.state.time_type if self.rows is None else self.rows.time_type

    def _apply(
        self,
        part: CustomerState | LoadRows,
        source: str,
        as_of: Any,
        force: bool,
        rows: np.ndarray | None = None,
    ) -> DailyUpdate:
        part = self._unused_in_own_types(part)
        if isinstance(part, LoadRows):
            self._check_types(
                part.rows.customer_type, part.rows.time_type, part.rows.tally.rows_read
            )
            fingerprint, former = part.fingerprint, part.former
            tally = part.rows.tally
            rows_read = tally.rows_read
            rows_used = rows_read - tally.null_customer - tally.null_timestamp
            latest = part.rows.latest
            first = part.first if part.first is not None else latest
            merged: CustomerState | WindowRows = self.rows.merged(part.rows)
        else:
            self._check_types(part.customer_type, part.time_type, part.counts.rows_read)
            fingerprint, *former = load_fingerprints(part, rows)
            rows_read, rows_used = part.counts.rows_read, part.counts.rows_used
            latest = part.counts.max_timestamp  # of every row, returns included
            buying = part.first != np.iinfo(np.int64).max
            first = int(part.first[buying].min()) if buying.any() else latest
            merged = merge_states([self.state, part], orders_within_parts=self.orders_within_loads)
        known = {fingerprint, *former}
        earlier = [n for n, load in enumerate(self.loads, 1) if load.fingerprint in known]
        if earlier and rows_read and not force:
            first_load = self.loads[earlier[0] - 1]
            raise RFMError(
                f"this load was applied before, as load {earlier[0]} ({first_load.source}, the "
                f"same {rows_read:,} rows): the state is unchanged. Pass --force "
                "(force=True) to apply it again"
            )
        result = self._scored(merged, as_of)
        changes = self.changes(result)
        axis = arrow.TimeAxis.of(self._time_type)
        load = Load(
            fingerprint=fingerprint,
            source=source,
            rows_read=rows_read,
            rows_used=rows_used,
            first=None if first is None else axis.moment_text(first),
            last=None if latest is None else axis.moment_text(latest),
            applied_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            as_of=None if result.stats.as_of is None else result.stats.as_of.isoformat(),
            customers=result.stats.customers,
            changed=changes.num_rows,
            segments=dict(result.segment_counts()),
            forced=bool(earlier) and force,
        )
        # everything succeeded: the state changes now, all at once
        if isinstance(merged, WindowRows):
            self.rows = merged
        else:
            self.state = merged
        self.loads.append(load)
        self.scores = _segments_of(result, self._customer)
        return DailyUpdate(load, result, changes)

    def _unused_in_own_types(self, part: CustomerState | LoadRows) -> CustomerState | LoadRows:
        """A load without a usable row (no rows at all, or none with both a customer and a
        timestamp), in the state's types: its types are guesses (a database driver's for a
        query with no rows, nulls only), never a reason to refuse it. Other loads as they are."""
        if not self.loads:
            return part
        if isinstance(part, LoadRows):
            tally, rows = part.rows.tally, part.rows
            if tally.rows_read - tally.null_customer - tally.null_timestamp:
                return part
            if (rows.customer_type, rows.time_type) == (self._customer_type, self._time_type):
                return part
            empty = replace(self.rows, table=self.rows.table.schema.empty_table())
            return replace(part, rows=replace(empty, tally=tally, latest=None), first=None)
        if part.counts.rows_used or len(part.keys):
            return part
        if (part.customer_type, part.time_type) == (self._customer_type, self._time_type):
            return part
        counts = part.counts
        if part.time_type != self._time_type:  # (ticks of another unit)
            counts = replace(counts, max_timestamp=None)
        return replace(_empty_like(self.state), counts=counts)

    def _check_types(self, customer_type: pa.DataType, time_type: pa.DataType, rows: int) -> None:
        if not self.loads:
            return
        if customer_type != self._customer_type:
            raise RFMError(
                f"the load's customer column {self._customer!r} has type {customer_type}; "
                f"the state was built with {self._customer_type}: cast the column, or build a "
                "new state with rfm state init"
            )
        known = self.state.counts.rows_read if self.rows is None else self.rows.tally.rows_read
        if rows and known and time_type != self._time_type:
            column = self._read.columns.timestamp
            raise RFMError(
                f"the load's timestamp column {column!r} has type {time_type}; the state "
                f"was built with {self._time_type}: cast the column, or build a new state with "
                "rfm state init"
            )

    def _scored(self, state: CustomerState | WindowRows, as_of: Any) -> RFMResult:
        if isinstance(state, WindowRows):
            axis = arrow.TimeAxis.of(state.time_type)
            latest = state.latest
            ticks = None if as_of is None else axis.ticks_of(as_of)
        else:
            aggregated = state.aggregated()
            axis, latest = aggregated.axis, state.counts.max_timestamp
            ticks = None if as_of is None else axis.ticks_of(as_of)
        if ticks is not None and latest is not None and ticks < latest:
            raise RFMError(
                f"as_of {as_of!s} is before the state's latest order "
                f"({axis.moment_text(latest)}); a state scores as of its latest order or "
                "later (score the history itself with rfm score --as-of for an earlier date)"
            )
        if isinstance(state, WindowRows):
            return state.scored(self._read, self._score, ticks)
        if ticks is not None:
            aggregated = replace(aggregated, as_of_ticks=ticks)
        return scored_result(aggregated, self._score)


def check_state_target(path: str | os.PathLike, overwrite: bool) -> None:
    """Refuse to write a new state over a file that exists, unless ``overwrite`` (``rfm state
    init --force``): it may hold the loads of months.

    Raises
    ------
    RFMError
        When ``path`` exists and ``overwrite`` is False.
    """
    if not overwrite and os.path.lexists(path):
        raise RFMError(
            f"{path} exists and would be replaced by the new state (the loads it holds would be "
            "lost); pass --force (overwrite=True) to replace it, or give another file"
        )


def content_fingerprint(
    part: CustomerState, *, canonical: bool = True, rows: np.ndarray | None = None
) -> str:
    """SHA-256 of what a load holds: its row counts, per-customer totals (in key order, the
    exact sums in their canonical form, :func:`canonical_sums`) and the set of its distinct
    pairs (an order-free digest, :func:`pair_set_digest`), so that the same rows in any order
    or batching give the same fingerprint; with ``rows``, the order-free digest of the rows
    themselves (:class:`rfm_fast.daily.rows.RowDigest`'s words) too, so that different rows
    with the same totals give another.

    ``canonical=False`` hashes the sums' words as the state holds them, as releases before
    the canonical form did (for the loads such releases recorded, see :func:`load_fingerprints`).
    """
    sums = (part.sum_whole, part.sum_fraction)
    totals = _fingerprints(part, [canonical_sums(*sums) if canonical else sums])[0]
    return totals if rows is None else with_rows(totals, rows)


def with_rows(totals: str, rows: np.ndarray) -> str:
    """The fingerprint of a load whose totals hash to ``totals`` (a totals-only
    :func:`content_fingerprint`) and whose rows digest to the two words ``rows``."""
    digest = hashlib.sha256(b"rows\0" + totals.encode())
    digest.update(np.ascontiguousarray(rows, dtype=np.uint64).tobytes())
    return digest.hexdigest()


def _fingerprints(
    part: CustomerState, forms: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[str, ...]:
    """:func:`content_fingerprint` of ``part`` with each form of its sums (the rest hashed once)."""
    digest = hashlib.sha256()
    counts = asdict(part.counts)
    digest.update(json.dumps(counts, sort_keys=True).encode())
    digest.update(str(part.customer_type).encode() + b"\0" + str(part.time_type).encode())
    digest.update(table_to_ipc(pa.table({"key": _arrow(part.keys)})))
    for values in (part.first, part.last, part.rows):
        digest.update(np.ascontiguousarray(values))
    after: list[bytes | np.ndarray] = []  # what comes after the sums
    if part.distinct is not None:
        after.append(np.ascontiguousarray(part.distinct))
    if part.pair_customers is not None:
        values = part.pair_values
        if isinstance(values, np.ndarray):
            codes = values.view(np.int64) if values.dtype == np.uint64 else values
        else:
            text = arrow.key_column(values)
            codes = np.empty(len(values), dtype=np.int64)
            hashing.text_hashes(text.offsets, text.data, codes)
        words = np.zeros(2, dtype=np.int64)
        hashing.pair_set_digest(part.pair_customers, codes.astype(np.int64, copy=False), words)
        after.append(words.tobytes())
    fingerprints = []
    for sum_whole, sum_fraction in forms:
        form = digest.copy()
        for values in (sum_whole, sum_fraction, *after):
            form.update(np.ascontiguousarray(values) if isinstance(values, np.ndarray) else values)
        fingerprints.append(form.hexdigest())
    return tuple(fingerprints)


def canonical_sums(
    sum_whole: np.ndarray, sum_fraction: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The one (whole, fraction) pair of words of each exact sum: ``0 <= fraction < 2**60``.

    The kernels keep ``|fraction| < 2**60`` with the sign of the last carry, so one total has
    two forms (``284 + f`` and ``285 - (1 - f)``) depending on the order the amounts came in;
    a sum that overflowed (fraction :data:`SUM_OVERFLOW`) is ``(0, SUM_OVERFLOW)``.
    """
    overflow = sum_fraction == SUM_OVERFLOW
    below = (sum_fraction < 0) & ~overflow
    if not below.any() and not overflow.any():
        return sum_whole, sum_fraction
    whole = np.where(below, sum_whole - 1, sum_whole)
    fraction = np.where(below, sum_fraction + FRACTION_ONE, sum_fraction)
    return np.where(overflow, 0, whole), fraction


def load_fingerprints(part: CustomerState, rows: np.ndarray | None = None) -> tuple[str, ...]:
    """The fingerprint of a load (:func:`content_fingerprint`), then, where its sums were not
    in canonical form, the one that releases before the canonical form recorded for the same
    rows in the same order (so that a load recorded by them is still found).

    With ``rows`` (the digest of the load's rows), the fingerprint has them folded in
    (:func:`with_rows`), and the totals-only forms follow it: the ones recorded before the
    rows were digested."""
    sums = (part.sum_whole, part.sum_fraction)
    canonical = canonical_sums(*sums)
    forms = _fingerprints(part, [canonical] if canonical[1] is sums[1] else [canonical, sums])
    return forms if rows is None else (with_rows(forms[0], rows), *forms)


def _arrow(values: np.ndarray | pa.Array) -> pa.Array:
    return pa.array(values) if isinstance(values, np.ndarray) else values


def _runtime(options: ReadOptions, batch_rows: int, threads: int | None) -> ReadOptions:
    checked = ReadOptions.checked(
        customer=options.columns.customer,
        timestamp=options.columns.timestamp,
        amount=options.columns.amount,
        order=options.columns.order,
        batch_rows=batch_rows,
        threads=threads,
    )
    return replace(options, batch_rows=checked.batch_rows, threads=checked.threads)


def _empty_like(state: CustomerState) -> CustomerState:
    """A state with no customers and no rows, of the same kind as ``state``."""
    totals = ("first", "last", "rows", "sum_whole", "sum_fraction")
    empty = {name: getattr(state, name)[:0] for name in totals}
    if state.pair_customers is not None:
        empty.update(pair_customers=state.pair_customers[:0], pair_values=state.pair_values[:0])
    return replace(
        state,
        keys=state.keys[:0],
        distinct=None if state.distinct is None else state.distinct[:0],
        counts=RowCounts(),
        **empty,
    )


def _source_name(data: Any) -> str:
    if isinstance(data, Database):
        return data.name
    if isinstance(data, str | os.PathLike):
        return Path(data).name
    return type(data).__name__


def _rules_document(rules: Sequence[SegmentRule]) -> list[dict[str, Any]]:
    """The rules as JSON-ready data, every field kept (conditions on scores and raw metrics,
    description, action, priority)."""
    return rules_document(rules)


def _rules_of(document: list[dict[str, Any]]) -> tuple[SegmentRule, ...]:
    """The rules of :func:`_rules_document`'s data (older states: name and scores only)."""
    return rules_of_document(document)


def _segments_of(result: RFMResult, customer: str) -> pa.Table:
    """The customer, segment (dictionary-encoded) and scores of ``result``: what the changes
    compare."""
    table = result.table.select([customer, "segment", "R", "F", "M"])
    segment = table.column("segment").combine_chunks()
    if not pa.types.is_dictionary(segment.type):
        segment = segment.dictionary_encode()
    return table.set_column(1, "segment", segment)


def _positions(known: pa.Array, wanted: pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``wanted`` (sorted keys) is in ``known`` (sorted keys of the same kind),
    and which are not there."""
    if pa.types.is_integer(wanted.type):  # both ascending: a binary search, no hashing
        values, targets = known.cast(wanted.type).to_numpy(), wanted.to_numpy()
        at = np.minimum(np.searchsorted(values, targets), values.shape[0] - 1)
        return at.astype(np.int64), values[at] != targets
    where = pc.index_in(wanted, value_set=known.cast(wanted.type))
    missing = where.is_null().to_numpy(zero_copy_only=False)
    return where.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64), missing


def _codes(segment: pa.Array, names: pa.Array) -> np.ndarray:
    """Each segment of ``segment`` (text, or dictionary-encoded: states saved before kept
    text) as its position in ``names``; -2 for a name not there."""
    if pa.types.is_dictionary(segment.type):
        mapping = pc.index_in(segment.dictionary.cast(pa.string()), value_set=names)
        mapping = mapping.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int64)
        return mapping[segment.indices.fill_null(0).to_numpy(zero_copy_only=False)]
    where = pc.index_in(segment.cast(pa.string()), value_set=names.cast(pa.string()))
    return where.fill_null(-2).to_numpy(zero_copy_only=False).astype(np.int64)
