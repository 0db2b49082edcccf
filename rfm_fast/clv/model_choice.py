"""Choosing the purchase model: fit each on a calibration period, score each on the holdout
that follows, and pick the best (:func:`compare_models`, what ``rfm clv --model auto`` and
``clv.analyze(model="auto")`` run)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from rfm_fast.clv.bgnbd import BetaGeo, ModifiedBetaGeo
from rfm_fast.clv.holdout import HoldoutEvaluation, evaluate_holdout
from rfm_fast.clv.pareto_nbd import ParetoNBD
from rfm_fast.clv.profiles import calibration_holdout
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.errors import RFMError

PURCHASE_MODELS: dict[str, type[PurchaseModel]] = {
    "bgnbd": BetaGeo,
    "mbgnbd": ModifiedBetaGeo,
    "pareto-nbd": ParetoNBD,
}
"""The purchase models of order histories by name (``rfm clv --model``); BG/BB, for discrete
opportunities, fits summaries of its own."""

CRITERIA = ("mae", "rmse", "curve_error", "total_error", "bic")
"""What :func:`compare_models` may choose by; the smallest wins."""


@dataclass(frozen=True, repr=False)
class ModelComparison:
    """The purchase models fitted on a calibration period and scored on its holdout (see
    :func:`compare_models`).

    Attributes
    ----------
    table : pyarrow.Table
        One row per model, in the order compared: ``model`` (its name in
        :data:`PURCHASE_MODELS`), ``label``, ``log_likelihood`` and ``bic`` (of the
        calibration fit), ``predicted`` and ``actual`` holdout purchases, ``total_error``
        (their relative difference, absolute), ``mae`` and ``rmse`` (per customer),
        ``curve_error`` (the mean absolute gap between the predicted and actual mean holdout
        purchases per calibration frequency, weighted by customers) and ``correlation``.
    best : str
        The name of the chosen model.
    criterion : str
        What it was chosen by.
    evaluations : dict of str to HoldoutEvaluation
        The holdout evaluation of each model.
    models : dict of str to PurchaseModel
        The models fitted on the calibration period.
    """

    table: pa.Table
    best: str
    criterion: str
    evaluations: dict[str, HoldoutEvaluation]
    models: dict[str, PurchaseModel]

    def __repr__(self) -> str:
        lines = [f"ModelComparison(best={self.best!r}, criterion={self.criterion!r})"]
        lines.extend(format_comparison(self))
        return "\n".join(lines)


def format_comparison(comparison: ModelComparison) -> list[str]:
    """The comparison table as lines of text (what ``rfm clv --model auto`` prints)."""
    header = (
        f"{'model':<11} {'log-lik':>12} {'BIC':>12} {'predicted':>10} {'actual':>8} "
        f"{'MAE':>7} {'RMSE':>7} {'curve':>7} {'corr':>6}"
    )
    lines = [header]
    for row in comparison.table.to_pylist():
        mark = " *" if row["model"] == comparison.best else ""
        lines.append(
            f"{row['label']:<11} {row['log_likelihood']:>12,.1f} {row['bic']:>12,.1f} "
            f"{row['predicted']:>10,.1f} {row['actual']:>8,.0f} {row['mae']:>7.4f} "
            f"{row['rmse']:>7.4f} {row['curve_error']:>7.4f} {row['correlation']:>6.3f}{mark}"
        )
    return lines


def compare_models(
    data: Any,
    *,
    customer: str,
    timestamp: str,
    amount: str,
    calibration_end: Any,
    holdout_end: Any = None,
    unit: str | float = "W",
    models: list[str] | None = None,
    criterion: str = "mae",
    **options: Any,
) -> ModelComparison:
    """Fit each purchase model on the purchases up to ``calibration_end``, predict each
    customer's purchases up to ``holdout_end``, and compare.

    Parameters
    ----------
    data, customer, timestamp, amount, calibration_end, holdout_end, unit
        As for :func:`rfm_fast.clv.calibration_holdout`.
    models : list of str, optional
        Names from :data:`PURCHASE_MODELS`. Default: all of them.
    criterion : {"mae", "rmse", "curve_error", "total_error", "bic"}, default "mae"
        What to choose by (the smallest wins): by default the mean absolute error of each
        customer's holdout purchases, the question a model is used to answer.
    **options
        Passed to :func:`rfm_fast.clv.calibration_holdout` (``timestamp_format``,
        ``returns``, ``delimiter``, ...).

    Returns
    -------
    ModelComparison
        The table, the chosen model's name, the evaluations and the calibration fits. A model
        whose fit fails is left out; when all fail, the first failure is raised.

    Raises
    ------
    RFMError
        On an unknown model or criterion, bad input, or when no model could be fitted.

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> comparison = clv.compare_models(datasets.load_example(), **datasets.EXAMPLE_COLUMNS,
    ...                                 calibration_end="1997-09-30")
    >>> comparison.table["model"].to_pylist()
    ['bgnbd', 'mbgnbd', 'pareto-nbd']
    >>> comparison.best in clv.PURCHASE_MODELS
    True
    """
    names = list(PURCHASE_MODELS) if models is None else list(models)
    unknown = [name for name in names if name not in PURCHASE_MODELS]
    if unknown or not names:
        raise RFMError(
            f"models must be names from {', '.join(PURCHASE_MODELS)}; got {unknown or names}"
        )
    if criterion not in CRITERIA:
        raise RFMError(f"criterion must be one of {', '.join(CRITERIA)}; got {criterion!r}")
    if calibration_end is None:
        raise RFMError(
            "choosing a model needs a calibration period: give calibration_end (rfm clv "
            "--calibration-end DATE), the last day of the calibration period"
        )
    table = calibration_holdout(
        data,
        customer=customer,
        timestamp=timestamp,
        amount=amount,
        calibration_end=calibration_end,
        holdout_end=holdout_end,
        unit=unit,
        **options,
    )
    if table.num_rows == 0:
        raise RFMError("no customer bought in the calibration period")
    rows: list[dict[str, Any]] = []
    evaluations: dict[str, HoldoutEvaluation] = {}
    fitted: dict[str, PurchaseModel] = {}
    failure: RFMError | None = None
    for name in names:
        try:
            model = PURCHASE_MODELS[name]().fit(table)
        except RFMError as error:
            failure = failure or error
            continue
        evaluation = evaluate_holdout(model, table)
        totals = evaluation.totals
        curve = evaluation.by_frequency
        count = curve["customers"].to_numpy().astype(float)
        gap = np.abs(curve["predicted"].to_numpy() - curve["actual"].to_numpy())
        gap = np.where(count > 0, gap, 0.0)
        k = len(model.params)
        rows.append(
            {
                "model": name,
                "label": model.LABEL,
                "log_likelihood": model.log_likelihood,
                "bic": k * math.log(model.customers) - 2 * model.log_likelihood,
                "predicted": totals["predicted"],
                "actual": totals["actual"],
                "total_error": abs(totals["predicted"] - totals["actual"])
                / max(totals["actual"], 1.0),
                "mae": totals["mae"],
                "rmse": totals["rmse"],
                "curve_error": float((gap * count).sum() / count.sum()),
                "correlation": totals["correlation"],
            }
        )
        evaluations[name] = evaluation
        fitted[name] = model
    if not rows:
        raise failure or RFMError("no purchase model could be fitted")
    best = min(rows, key=lambda row: row[criterion])["model"]
    return ModelComparison(pa.Table.from_pylist(rows), best, criterion, evaluations, fitted)
