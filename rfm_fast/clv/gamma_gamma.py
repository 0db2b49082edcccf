"""The Gamma-Gamma spend model (Fader & Hardie 2013): :class:`GammaGamma`, the expected
spend per purchase of each customer."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import (
    collapse,
    column_values,
    fit_weights,
    keyed_table,
    maximize,
    summary_inputs,
)
from rfm_fast.clv.lifetime_value import customer_lifetime_value
from rfm_fast.errors import RFMError

if TYPE_CHECKING:  # only in annotations: the models do not import each other
    from rfm_fast.clv.purchase_model import PurchaseModel


class GammaGamma:
    """The Gamma-Gamma model of spend per transaction (Fader & Hardie 2013): a customer's
    transaction values are gamma(p, nu), and nu is gamma(q, gamma) across customers.

    Fitted on customers with at least one repeat purchase and a positive mean repeat spend;
    the others are left out of the fit and counted in ``.excluded``.
    """

    NAMES = ("p", "q", "gamma")
    LABEL = "Gamma-Gamma"

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.at_bound: tuple[str, ...] = ()
        self.log_likelihood = float("nan")
        self.converged = False
        self.customers = 0
        self.excluded = 0

    def fit(self, summary: Any, weights: Any = None) -> GammaGamma:
        """Fit by maximum likelihood to a summary with ``frequency`` and ``monetary``.

        ``weights`` (a column name or one number per row; default: the summary's ``weights``
        column where it has one) gives the customers each row stands for, as for the
        purchase models.
        """
        x = column_values(summary, "frequency")
        m = column_values(summary, "monetary")
        w = fit_weights(summary, weights, x.shape[0])
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        if w is not None:
            self.excluded = round(float(w[~usable].sum()))
            usable &= w > 0
        else:
            self.excluded = int((~usable).sum())
        if not usable.any():
            raise RFMError(
                "Gamma-Gamma needs customers with repeat purchases of positive mean value; "
                "this summary has none"
            )
        profiles = collapse(x[usable], m[usable], weights=None if w is None else w[usable])
        xs, ms, weight = profiles.column(0), profiles.column(1), profiles.weight
        n = weight.sum()

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            p, q, gamma = params
            return btyd.gamma_gamma_loglik(xs, ms, weight, p, q, gamma, grad)

        # Spend is fitted in units of its mean, so that gamma (a money scale) is near 1
        # whatever the currency; gamma scales back, and the log-likelihood shifts by
        # -log(scale) per customer.
        scale = float(np.average(ms, weights=weight))
        ms = ms / scale
        fit = maximize(loglik, np.array([1.0, 2.0, 1.0]), n, "Gamma-Gamma")
        unscale = np.array([1.0, 1.0, scale])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        self.log_likelihood = fit.log_likelihood - math.log(scale) * n
        self.converged = fit.converged
        self.at_bound = tuple(n for n, bound in zip(self.NAMES, fit.at_bound, strict=True) if bound)
        self.customers = round(float(n))
        return self

    def _require_fit(self) -> tuple[float, float, float]:
        if not self.params:
            raise RFMError("the model is not fitted yet: call .fit(summary) first")
        return tuple(self.params[n] for n in self.NAMES)

    @property
    def population_mean(self) -> float:
        """Mean spend per transaction across customers, ``gamma * p / (q - 1)`` (infinite when
        q <= 1)."""
        p, q, gamma = self._require_fit()
        return gamma * p / (q - 1) if q > 1 else math.inf

    def __repr__(self) -> str:
        if not self.params:
            return "GammaGamma(not fitted)"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return (
            f"GammaGamma({params}, log_likelihood={self.log_likelihood:,.2f}, "
            f"customers={self.customers:,}, excluded={self.excluded:,}"
            + ("" if self.converged else ", converged=False")
            + ")"
        )

    def expected_spend(
        self,
        summary: Any = None,
        *,
        frequency: ArrayLike | None = None,
        monetary: ArrayLike | None = None,
    ) -> float | np.ndarray:
        """Expected spend per transaction of a customer (eq. 4 of the note): a weighted mean
        of the population mean and the customer's own mean repeat spend.

        Customers left out of the fit (no repeat purchase, or a mean repeat spend of 0 or
        less) get the population mean.

        Parameters
        ----------
        summary : table, optional
            The customers, as :func:`rfm_fast.clv.summary` gives them: an Arrow table, a
            pandas frame or a mapping of columns.
        frequency, monetary : number, list or array, optional
            Instead of ``summary``: the columns, broadcast together as NumPy broadcasts.

        Returns
        -------
        float or numpy.ndarray
            A float when every input is a scalar, else an array of the broadcast shape (one
            value per customer of a summary). :meth:`predict` gives a table keyed by customer.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.GammaGamma().fit({"frequency": [1, 2, 5, 3, 1, 4],
        ...                               "monetary": [20.0, 35.0, 18.0, 50.0, 9.0, 27.0]})
        >>> round(model.expected_spend(frequency=4, monetary=30.0), 2)
        28.98
        >>> model.expected_spend(frequency=[0, 4], monetary=30.0).round(2)
        array([28.17, 28.98])
        """
        p, q, gamma = self._require_fit()
        inputs = summary_inputs(summary, {"frequency": frequency, "monetary": monetary})
        x, m = inputs.columns
        usable = (x > 0) & (m > 0) & np.isfinite(m)
        own = (gamma + x * np.where(usable, m, 0)) * p / (p * x + q - 1)
        return inputs.shaped(np.where(usable, own, self.population_mean))

    def predict(self, summary: Any) -> pa.Table:
        """Expected spend per transaction on a summary, keyed by customer.

        Returns
        -------
        pyarrow.Table
            The summary's customer column (under its name, in its order; left out when the
            summary has none) and ``expected_spend``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import clv
        >>> customers = pa.table({"customer_id": ["ann", "bob", "cy", "dee", "ed", "flo"],
        ...                       "frequency": [1, 2, 5, 3, 1, 4],
        ...                       "monetary": [20.0, 35.0, 18.0, 50.0, 9.0, 27.0]})
        >>> spend = clv.GammaGamma().fit(customers).predict(customers)
        >>> spend.column_names, spend.num_rows
        (['customer_id', 'expected_spend'], 6)
        """
        return keyed_table(summary, {"expected_spend": self.expected_spend(summary)})

    def clv(
        self,
        purchases: PurchaseModel,
        summary: Any = None,
        *,
        horizon: float,
        discount_rate: float = 0.0,
        step: float = 1.0,
        frequency: ArrayLike | None = None,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
        monetary: ArrayLike | None = None,
    ) -> float | np.ndarray:
        """Lifetime value of a customer with this spend model and the fitted purchase
        model ``purchases``.

        Parameters
        ----------
        purchases : BetaGeo
            The fitted purchase model.
        summary, horizon, discount_rate, step, frequency, recency, T, monetary
            As for :func:`rfm_fast.clv.customer_lifetime_value`.

        Returns
        -------
        float or numpy.ndarray
            A float when every input is a scalar, else an array of the broadcast shape (one
            value per customer of a summary).
        """
        return customer_lifetime_value(
            purchases,
            self,
            summary,
            horizon=horizon,
            discount_rate=discount_rate,
            step=step,
            frequency=frequency,
            recency=recency,
            T=T,
            monetary=monetary,
        )
