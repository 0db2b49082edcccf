"""Everything in one call (:func:`analyze`, what ``rfm clv`` runs), simulation from a
fitted model, the calibration/holdout check, and p_alive added to RFM scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.clv.bgnbd import BetaGeo
from rfm_fast.clv.fitting import column_values, keyed_table
from rfm_fast.clv.gamma_gamma import GammaGamma
from rfm_fast.clv.lifetime_value import predict
from rfm_fast.clv.profiles import summary
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.core.io import DEFAULT_BATCH_ROWS
from rfm_fast.errors import RFMError

PREDICTIONS = ("p_alive", "expected_purchases", "expected_spend", "clv")
"""The prediction columns of :func:`predict` and :attr:`CLVResult.table`."""


def simulate(
    customers: int,
    *,
    r: float,
    alpha: float,
    a: float,
    b: float,
    T: float | np.ndarray,
    resolution: float | None = None,
    seed: int | None = None,
) -> pa.Table:
    """A summary drawn from the BG/NBD model itself (for tests, benchmarks and checks): the
    :meth:`~rfm_fast.clv.BetaGeo.simulate` of a model with these parameters (each model has
    its own ``simulate``).

    Each customer gets a purchase rate from gamma(r, alpha) and a dropout probability from
    beta(a, b), makes a first purchase at time 0, then repeat purchases at that rate, and drops
    out after each repeat purchase with that probability; observed until ``T``.

    Parameters
    ----------
    customers : int
        How many customers.
    r, alpha, a, b : float
        The BG/NBD parameters.
    T : float or array
        Observation length of each customer.
    resolution : float, optional
        Round ``recency`` down to and ``T`` to multiples of this (e.g. ``1 / 7`` for days
        counted in weeks), as real purchase dates are.
    seed : int, optional
        Seed of the random numbers.

    Returns
    -------
    pyarrow.Table
        ``frequency``, ``recency`` and ``T`` (no customer column, no monetary).
    """
    model = BetaGeo.from_params(r=r, alpha=alpha, a=a, b=b)
    return model.simulate(customers, T=T, resolution=resolution, seed=seed)


@dataclass(frozen=True, repr=False)
class HoldoutEvaluation:
    """Predicted against actual purchases in a holdout period (see :func:`evaluate_holdout`).

    Attributes
    ----------
    customers : pyarrow.Table
        Per customer: the customer column of the table (under its name, in its order),
        ``frequency`` (calibration), ``predicted`` and ``actual`` holdout purchases.
    by_frequency : pyarrow.Table
        Per calibration frequency (the last row gathers ``max_frequency`` and more):
        ``customers``, ``actual`` and ``predicted`` mean holdout purchases (the "conditional
        expectations" of Fader, Hardie & Lee 2005, figure 4).
    totals : dict of str to float
        ``predicted`` and ``actual`` total purchases, and per customer the mean absolute error
        ``mae``, root mean squared error ``rmse`` and the correlation ``correlation``.
    """

    customers: pa.Table
    by_frequency: pa.Table
    totals: dict[str, float]

    def __repr__(self) -> str:
        t = self.totals
        return (
            f"HoldoutEvaluation(customers={self.customers.num_rows:,}, "
            f"predicted={t['predicted']:,.1f}, actual={t['actual']:,.0f}, mae={t['mae']:.4g}, "
            f"rmse={t['rmse']:.4g}, correlation={t['correlation']:.3f})"
        )


def evaluate_holdout(
    model: PurchaseModel, calibration_and_holdout: Any, *, max_frequency: int = 7
) -> HoldoutEvaluation:
    """Compare a fitted purchase model's expected purchases in the holdout period with what each
    customer really bought.

    Parameters
    ----------
    model : PurchaseModel
        A model fitted on the calibration period (BetaGeo, ModifiedBetaGeo, ParetoNBD, ...).
    calibration_and_holdout : table
        The table of :func:`calibration_holdout`.
    max_frequency : int, default 7
        Customers with more repeat purchases in the calibration period are grouped with
        those of ``max_frequency`` in ``by_frequency``.

    Returns
    -------
    HoldoutEvaluation
        Per customer, per calibration frequency, and totals (predicted, actual, MAE, RMSE,
        correlation).

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.calibration_holdout(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                                 calibration_end="1997-09-30", unit="W")
    >>> evaluation = clv.evaluate_holdout(clv.BetaGeo().fit(table), table)
    >>> round(evaluation.totals["predicted"] / evaluation.totals["actual"], 2)
    0.86
    >>> evaluation  # doctest: +ELLIPSIS
    HoldoutEvaluation(customers=..., predicted=..., actual=..., mae=..., rmse=..., correlation=...)
    """
    actual = column_values(calibration_and_holdout, "frequency_holdout")
    duration = column_values(calibration_and_holdout, "duration_holdout")
    if duration.shape[0] == 0:
        raise RFMError("the calibration/holdout table has no customers")
    predicted = model.expected_purchases(float(duration[0]), calibration_and_holdout)
    x = column_values(calibration_and_holdout, "frequency")
    group = np.minimum(x, max_frequency).astype(np.int64)
    count = np.bincount(group, minlength=max_frequency + 1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_actual = np.bincount(group, actual, max_frequency + 1) / count
        mean_predicted = np.bincount(group, predicted, max_frequency + 1) / count
    error = predicted - actual
    return HoldoutEvaluation(
        customers=keyed_table(
            calibration_and_holdout,
            {
                "frequency": x.astype(np.int64),
                "predicted": predicted,
                "actual": actual.astype(np.int64),
            },
        ),
        by_frequency=pa.table(
            {
                "frequency": np.arange(max_frequency + 1),
                "customers": count,
                "actual": mean_actual,
                "predicted": mean_predicted,
            }
        ),
        totals={
            "predicted": float(predicted.sum()),
            "actual": float(actual.sum()),
            "mae": float(np.abs(error).mean()),
            "rmse": float(np.sqrt((error**2).mean())),
            "correlation": float(np.corrcoef(predicted, actual)[0, 1]),
        },
    )


@dataclass(frozen=True, repr=False)
class CLVResult:
    """The result of :func:`analyze`.

    Attributes
    ----------
    table : pyarrow.Table
        The summary (customer, ``frequency``, ``recency``, ``T``, ``monetary``) with
        ``p_alive``, ``expected_purchases`` (in the next ``horizon`` time units),
        ``expected_spend`` (per purchase) and ``clv`` (the discounted value of those purchases).
    purchases : PurchaseModel
        The fitted purchase model (BG/NBD unless ``analyze`` was given another).
    spend : GammaGamma
        The fitted Gamma-Gamma model.
    horizon, discount_rate, step : float
        The options the predictions were made with; ``unit`` the time unit.
    comparison : ModelComparison or None
        With ``analyze(model="auto")``: how the purchase models did on the holdout.
    """

    table: pa.Table
    purchases: PurchaseModel
    spend: GammaGamma
    unit: str | float
    horizon: float
    discount_rate: float
    step: float
    comparison: Any = None

    def __repr__(self) -> str:
        table = self.table
        totals = ""
        if table.num_rows:
            alive = pc.mean(table.column("p_alive")).as_py()
            expected = pc.sum(table.column("expected_purchases")).as_py()
            value = pc.sum(table.column("clv")).as_py()
            totals = (
                f"\n  mean p_alive {alive:.3f}, expected purchases {expected:,.1f}, "
                f"total clv {value:,.2f}"
            )
        return (
            f"CLVResult(customers={table.num_rows:,}, unit={self.unit!r}, "
            f"horizon={self.horizon:g}, discount_rate={self.discount_rate:g}, "
            f"step={self.step:.4g}){totals}\n  purchases: {self.purchases!r}"
            f"\n  spend: {self.spend!r}"
        )


def analyze(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    as_of: Any = None,
    unit: str | float = "W",
    horizon: float = 52.0,
    discount_rate: float = 0.0,
    step: float | None = None,
    timestamp_format: str | None = None,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    threads: int | None = None,
    returns: str = "net",
    delimiter: str | None = None,
    schema: Any = None,
    amount_format: str | None = None,
    decimal: str = ".",
    model: PurchaseModel | str | None = None,
    calibration_end: Any = None,
    churn_days: float | None = None,
) -> CLVResult:
    """Summary, both fits and every prediction in one call (what ``rfm clv`` runs).

    Parameters
    ----------
    data, customer, timestamp, amount, as_of, unit, timestamp_format, batch_rows, threads, \
returns, delimiter, schema, amount_format, decimal
        As for :func:`rfm_fast.clv.summary`.
    horizon : float, default 52.0
        How far ahead, in ``unit`` (default: weeks).
    discount_rate : float, default 0.0
        Per step.
    step : float, optional
        The length of a discounting step, in ``unit``. Default: ``horizon / 12`` (a month of
        a year).
    model : PurchaseModel, optional
        The purchase model to fit, such as ``clv.ParetoNBD()`` or ``clv.ModifiedBetaGeo()``
        (it is fitted in place), or ``"auto"``: fit each of :data:`rfm_fast.clv.PURCHASE_MODELS`
        on the purchases up to ``calibration_end``, score each on the holdout from there to
        ``as_of`` (:func:`rfm_fast.clv.compare_models`), and fit the best (smallest mean
        absolute error per customer) on all the purchases. Default: ``clv.BetaGeo()``.
    calibration_end : optional
        With ``model="auto"`` (and needed then): the end of the calibration period.
    churn_days : float, optional
        Adds the churn risk of :func:`rfm_fast.clv.churn_risk` in the next ``churn_days``
        days: ``p_no_purchase``, ``risk``, ``days_to_next_purchase`` and ``next_purchase``
        (a date when ``as_of`` is given, else null). Not for BG/BB.

    Returns
    -------
    CLVResult
        The summary with ``p_alive``, ``expected_purchases``, ``expected_spend`` and ``clv``,
        and both fitted models.

    Raises
    ------
    RFMError
        On bad options or input (as :func:`rfm_fast.clv.summary`), or a fit that fails.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> result = clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                      as_of="1997-09-30")
    >>> sorted(result.table.column_names)[:4]
    ['T', 'clv', 'customer_id', 'expected_purchases']
    >>> {k: round(v, 3) for k, v in result.purchases.params.items()}
    {'r': 0.252, 'alpha': 4.789, 'a': 0.723, 'b': 2.161}
    """
    if step is None:
        step = horizon / 12
    table = summary(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        as_of=as_of,
        unit=unit,
        timestamp_format=timestamp_format,
        batch_rows=batch_rows,
        threads=threads,
        returns=returns,
        delimiter=delimiter,
        schema=schema,
        amount_format=amount_format,
        decimal=decimal,
    )
    comparison = None
    if isinstance(model, str):
        from rfm_fast.clv.model_choice import PURCHASE_MODELS, compare_models

        if model != "auto":
            if model not in PURCHASE_MODELS:
                raise RFMError(
                    f"model must be a purchase model, 'auto' or one of "
                    f"{', '.join(PURCHASE_MODELS)}; got {model!r}"
                )
            model = PURCHASE_MODELS[model]()
        else:
            comparison = compare_models(
                data,
                customer=customer,
                timestamp=timestamp,
                amount=amount,
                calibration_end=calibration_end,
                holdout_end=as_of,
                unit=unit,
                timestamp_format=timestamp_format,
                batch_rows=batch_rows,
                threads=threads,
                returns=returns,
                delimiter=delimiter,
                schema=schema,
                amount_format=amount_format,
                decimal=decimal,
            )
            model = PURCHASE_MODELS[comparison.best]()
    if model is None:
        model = BetaGeo()
    if not isinstance(model, PurchaseModel):
        raise RFMError(
            f"model must be a purchase model such as clv.BetaGeo() or clv.ParetoNBD(); got "
            f"{model!r:.60}"
        )
    purchases = model.fit(table)
    spend = GammaGamma().fit(table)
    predictions = predict(
        purchases, spend, table, horizon=horizon, discount_rate=discount_rate, step=step
    )
    for name in PREDICTIONS:
        table = table.append_column(name, predictions.column(name))
    if churn_days is not None:
        from rfm_fast.clv.churn import churn_risk

        risk = churn_risk(purchases, table, days=churn_days, unit=unit, as_of=as_of)
        for name in ("p_no_purchase", "risk", "days_to_next_purchase", "next_purchase"):
            table = table.append_column(name, risk.column(name))
    return CLVResult(
        table, purchases, spend, unit, float(horizon), float(discount_rate), step, comparison
    )


def with_p_alive(result: Any, predictions: CLVResult) -> Any:
    """An :class:`rfm_fast.RFMResult` whose table also has ``p_alive`` (and
    ``expected_purchases`` and ``clv``), matched by customer; customers without a prediction
    get nulls."""
    from rfm_fast.core.scoring import RFMResult

    customer = result.table.column_names[0]
    keys = predictions.table.column(predictions.table.column_names[0])
    where = pc.index_in(result.table.column(customer), value_set=keys.combine_chunks())
    table = result.table
    for name in ("p_alive", "expected_purchases", "clv"):
        column = predictions.table.column(name).combine_chunks()
        table = table.append_column(name, column.take(where))
    return RFMResult(table, result.edges, result.stats, result.rules)
