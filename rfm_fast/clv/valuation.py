"""Everything in one call (:func:`analyze`, what ``rfm clv`` runs), and p_alive added to RFM
scores (:func:`with_p_alive`)."""

from __future__ import annotations

import warnings
from typing import Any

import pyarrow.compute as pc

from rfm_fast.clv.bgnbd import BetaGeo
from rfm_fast.clv.churn import churn_risk
from rfm_fast.clv.diagnostics import diagnose
from rfm_fast.clv.fitting import scipy
from rfm_fast.clv.gamma_gamma import GammaGamma
from rfm_fast.clv.lifetime_value import predict
from rfm_fast.clv.model_choice import PURCHASE_MODELS, compare_models
from rfm_fast.clv.profiles import default_calibration_end, summary
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.clv.results import PREDICTIONS, CLVResult
from rfm_fast.core.io import DEFAULT_BATCH_ROWS
from rfm_fast.core.option_table import given_options
from rfm_fast.errors import RFMError, RFMWarning


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
        With ``model="auto"``: the end of the calibration period. Default: two thirds of the
        way from the first purchase to ``as_of``
        (:func:`rfm_fast.clv.default_calibration_end`).
    churn_days : float, optional
        Adds the churn risk of :func:`rfm_fast.clv.churn_risk` in the next ``churn_days``
        days: ``p_no_purchase``, ``risk``, ``days_to_next_purchase`` and ``next_purchase``
        (a date when ``as_of`` is given, else null). Not for BG/BB.

    Returns
    -------
    CLVResult
        The summary with ``p_alive``, ``expected_purchases``, ``expected_spend`` and ``clv``,
        both fitted models, and what each fit can be trusted with (``diagnostics``: warnings
        of the fits are collected there rather than issued).

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
    reading = given_options("clv.analyze", locals())
    del reading["as_of"]  # (the holdout of model="auto" ends at as_of: given apart below)
    scipy("optimize")  # without scipy, say so before the input is read
    if step is None:
        step = horizon / 12
    table = summary(data, **reading, as_of=as_of, unit=unit)
    # The fits' warnings (of the comparison too) are summed up in the diagnostics instead.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RFMWarning)
        if model == "auto":
            if calibration_end is None:
                calibration_end = default_calibration_end(data, as_of=as_of, **reading)
            comparison = compare_models(
                data, calibration_end=calibration_end, holdout_end=as_of, unit=unit, **reading
            )
            model = PURCHASE_MODELS[comparison.best]()
        else:
            comparison = None
            model = _purchase_model(model)
        purchases = model.fit(table)
        spend = GammaGamma().fit(table)
    for warning in caught:
        if not issubclass(warning.category, RFMWarning):
            warnings.warn_explicit(
                warning.message, warning.category, warning.filename, warning.lineno
            )
    holdout = None if comparison is None else comparison.evaluations[comparison.best].totals
    diagnostics = (diagnose(purchases, holdout), diagnose(spend))
    predictions = predict(
        purchases, spend, table, horizon=horizon, discount_rate=discount_rate, step=step
    )
    for name in PREDICTIONS:
        table = table.append_column(name, predictions.column(name))
    if churn_days is not None:
        risk = churn_risk(purchases, table, days=churn_days, unit=unit, as_of=as_of)
        for name in ("p_no_purchase", "risk", "days_to_next_purchase", "next_purchase"):
            table = table.append_column(name, risk.column(name))
    return CLVResult(
        table,
        purchases,
        spend,
        unit,
        float(horizon),
        float(discount_rate),
        step,
        comparison,
        None if comparison is None else str(calibration_end),
        diagnostics,
    )


def _purchase_model(model: PurchaseModel | str | None) -> PurchaseModel:
    """The purchase model ``analyze`` was given: a model, a name of
    :data:`~rfm_fast.clv.PURCHASE_MODELS`, or None for BG/NBD."""
    if model is None:
        return BetaGeo()
    if isinstance(model, str):
        if model not in PURCHASE_MODELS:
            raise RFMError(
                f"model must be a purchase model, 'auto' or one of "
                f"{', '.join(PURCHASE_MODELS)}; got {model!r}"
            )
        return PURCHASE_MODELS[model]()
    if not isinstance(model, PurchaseModel):
        raise RFMError(
            f"model must be a purchase model such as clv.BetaGeo() or clv.ParetoNBD(); got "
            f"{model!r:.60}"
        )
    return model


def with_p_alive(
    result: Any, predictions: CLVResult, columns: tuple[str, ...] | None = None
) -> Any:
    """An :class:`rfm_fast.RFMResult` whose table also has ``p_alive``, ``expected_purchases``
    and ``clv``, matched by customer; customers without a prediction get nulls.

    ``columns`` chooses the prediction columns. By default ``p_alive`` is left out where the
    purchase fit cannot tell customers who stopped buying from quiet ones
    (``predictions.p_alive_identified`` is False, see :func:`rfm_fast.clv.diagnose`): there it
    is near 1 for everyone and would mislead a list or a filter."""
    from rfm_fast.core.scoring import RFMResult

    if columns is None:
        columns = ("p_alive", "expected_purchases", "clv")
        if not predictions.p_alive_identified:
            columns = columns[1:]
    customer = result.table.column_names[0]
    keys = predictions.table.column(predictions.table.column_names[0])
    where = pc.index_in(result.table.column(customer), value_set=keys.combine_chunks())
    table = result.table
    for name in columns:
        column = predictions.table.column(name).combine_chunks()
        table = table.append_column(name, column.take(where))
    return RFMResult(table, result.edges, result.stats, result.rules)
