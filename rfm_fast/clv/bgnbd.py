"""BG/NBD (Fader, Hardie & Lee 2005): :class:`BetaGeo`, with p_alive and the expected
purchases of each customer."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import (
    Collapsed,
    Fit,
    Inputs,
    broadcast_inputs,
    collapse,
    keyed_table,
    maximize,
    off_one,
    summary_inputs,
)
from rfm_fast.errors import RFMError

COLUMNS = ("frequency", "recency", "T")

WARM_START_CUSTOMERS = 200_000
"""Above this many customers, BG/NBD starts from a fit on a sample of this size."""


class BetaGeo:
    """The BG/NBD model (Fader, Hardie & Lee 2005): repeat purchases at a Poisson rate that is
    gamma(r, alpha) across customers; after each purchase a customer drops out with a
    probability that is beta(a, b) across customers.

    Examples
    --------
    >>> from rfm_fast import clv
    >>> summary = clv.simulate(20_000, r=0.5, alpha=6.0, a=1.2, b=3.0, T=52, seed=1)
    >>> model = clv.BetaGeo().fit(summary)
    >>> {k: round(v, 1) for k, v in model.params.items()}  # simulated with 0.5, 6, 1.2, 3
    {'r': 0.5, 'alpha': 6.0, 'a': 1.1, 'b': 2.7}
    """

    NAMES = ("r", "alpha", "a", "b")

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.log_likelihood = float("nan")
        self.converged = False
        self.customers = 0

    def fit(self, summary: Any) -> BetaGeo:
        """Fit by maximum likelihood to a summary with ``frequency``, ``recency`` and ``T``.

        Customers with identical (frequency, recency, T) are collapsed into one weighted
        profile first. Raises RFMError when no customer made a repeat purchase (the dropout
        parameters cannot be estimated then) or when the summary is invalid.
        """
        x, t_x, T = self._columns(summary)
        if (x > 0).sum() == 0:
            raise RFMError(
                "BG/NBD needs customers with repeat purchases (frequency > 0); every customer "
                "has a single purchase day, so the dropout process cannot be estimated"
            )
        # Times are fitted in units of their mean, so that alpha (a time scale) is near 1
        # whatever the unit; the likelihood is equivariant: alpha scales back, and the
        # log-likelihood shifts by -log(scale) per repeat purchase.
        scale = float(T.mean()) if T.mean() > 0 else 1.0
        t_x, T = t_x / scale, T / scale
        start = np.ones(4)
        if x.shape[0] > WARM_START_CUSTOMERS:
            # A fit on a fixed sample of customers is a close start: the fit on all of them
            # then needs a few iterations instead of dozens.
            sample = np.random.default_rng(0).choice(
                x.shape[0], WARM_START_CUSTOMERS, replace=False
            )
            if (x[sample] > 0).any():
                start = self._fit_profiles(
                    collapse(x[sample], t_x[sample], T[sample]), start
                ).params
        fit = self._fit_profiles(collapse(x, t_x, T), start)
        unscale = np.array([1.0, scale, 1.0, 1.0])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        self.log_likelihood = fit.log_likelihood - math.log(scale) * float(x.sum())
        self.converged = fit.converged
        self.customers = int(x.shape[0])
        return self

    @staticmethod
    def _fit_profiles(profiles: Collapsed, start: np.ndarray) -> Fit:
        weight = profiles.weight
        n = weight.sum()
        (x_at, tx_at, T_at), (x_values, tx_values, T_values) = profiles.at, profiles.values

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            r, alpha, a, b = params
            return btyd.bgnbd_loglik(
                x_at, tx_at, T_at, weight, x_values, tx_values, T_values, r, alpha, a, b, grad
            )

        return maximize(loglik, start, n, "BG/NBD")

    @staticmethod
    def _columns(summary: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``frequency``, ``recency`` and ``T`` of a summary, checked, as flat float64 arrays."""
        return BetaGeo._checked(summary_inputs(summary, dict.fromkeys(COLUMNS))).columns[:3]

    @staticmethod
    def _inputs(
        summary: Any, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, **extra: Any
    ) -> Inputs:
        """The summary columns (from ``summary`` or the keywords) and ``extra``, broadcast
        together and checked."""
        given = {"frequency": frequency, "recency": recency, "T": T}
        return BetaGeo._checked(summary_inputs(summary, given, extra))

    @staticmethod
    def _checked(inputs: Inputs) -> Inputs:
        x, t_x, T = inputs.columns[:3]
        bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T))
        bad |= (x < 0) | (x != np.floor(x)) | (t_x < 0) | (t_x > T) | ((x == 0) & (t_x != 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RFMError(
                f"invalid summary row {i}: frequency={x[i]}, recency={t_x[i]}, T={T[i]}; "
                "expected a whole frequency >= 0, 0 <= recency <= T, and recency 0 when "
                "frequency is 0"
            )
        return inputs

    def _require_fit(self) -> tuple[float, float, float, float]:
        if not self.params:
            raise RFMError("the model is not fitted yet: call .fit(summary) first")
        return tuple(self.params[n] for n in self.NAMES)

    def __repr__(self) -> str:
        if not self.params:
            return "BetaGeo(not fitted)"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        return (
            f"BetaGeo({params}, log_likelihood={self.log_likelihood:,.2f}, "
            f"customers={self.customers:,}" + ("" if self.converged else ", converged=False") + ")"
        )

    def p_alive(
        self,
        summary: Any = None,
        *,
        frequency: ArrayLike | None = None,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
    ) -> float | np.ndarray:
        """Probability that a customer is still alive at the end of the observation, ``T``.

        Parameters
        ----------
        summary : table, optional
            The customers, as :func:`rfm_fast.clv.summary` gives them: an Arrow table, a
            pandas frame or a mapping of columns.
        frequency, recency, T : number, list or array, optional
            Instead of ``summary``: the columns, broadcast together as NumPy broadcasts.

        Returns
        -------
        float or numpy.ndarray
            A float when every input is a scalar, else an array of the broadcast shape (one
            value per customer of a summary). :meth:`predict` gives a table keyed by customer.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeo().fit(clv.simulate(2_000, r=0.5, alpha=6, a=1.2, b=3, T=52,
        ...                                        seed=1))
        >>> round(model.p_alive(frequency=3, recency=10, T=52), 3)
        0.04
        >>> model.p_alive(frequency=[0, 3, 3], recency=[0, 10, 50], T=52).round(3)
        array([1.   , 0.04 , 0.777])
        """
        self._require_fit()
        inputs = self._inputs(summary, frequency, recency, T)
        return inputs.shaped(self._p_alive(*inputs.columns))

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        r, alpha, a, b = self._require_fit()
        with np.errstate(over="ignore"):
            ratio = np.exp((r + x) * (np.log(alpha + T) - np.log(alpha + t_x)))
            odds = np.where(x > 0, a / np.maximum(b + x - 1, 1e-300) * ratio, 0.0)
        return 1.0 / (1.0 + odds)

    def predict(self, summary: Any, t: float | None = None) -> pa.Table:
        """Predictions on a summary, keyed by customer.

        Parameters
        ----------
        summary : table
            The customers, as :func:`rfm_fast.clv.summary` gives them.
        t : float, optional
            A horizon, in the unit of the fit: adds the expected purchases in the next ``t``.

        Returns
        -------
        pyarrow.Table
            The summary's customer column (under its name, in its order; left out when the
            summary has none, as that of :func:`rfm_fast.clv.simulate`), ``p_alive`` and, with
            ``t``, ``expected_purchases``.

        Examples
        --------
        >>> import pyarrow as pa
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeo().fit(clv.simulate(2_000, r=0.5, alpha=6, a=1.2, b=3, T=52,
        ...                                        seed=1))
        >>> customers = pa.table({"customer_id": ["ann", "bob"], "frequency": [3, 0],
        ...                       "recency": [10.0, 0.0], "T": [52.0, 30.0]})
        >>> predictions = model.predict(customers, t=52)
        >>> predictions.column_names
        ['customer_id', 'p_alive', 'expected_purchases']
        >>> predictions["p_alive"].to_numpy().round(3)
        array([0.04, 1.  ])
        """
        if t is None:
            return keyed_table(summary, {"p_alive": self.p_alive(summary)})
        if np.ndim(t) != 0:
            raise RFMError(f"t must be one number, the horizon of every customer; got {t!r:.60}")
        alive, (expected,) = self.expected_purchases_curves([t], summary)
        return keyed_table(summary, {"p_alive": alive, "expected_purchases": expected})

    def expected_purchases(
        self,
        t: ArrayLike,
        summary: Any = None,
        *,
        frequency: ArrayLike | None = None,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
    ) -> float | np.ndarray:
        """Expected purchases of a customer in the next ``t`` time units, conditional on the
        customer's history (Fader, Hardie & Lee 2005, eq. 10).

        Parameters
        ----------
        t : number, list or array
            The horizon, in the unit of the fit; broadcast with the customers.
        summary, frequency, recency, T
            The customers, as for :meth:`p_alive`.

        Returns
        -------
        float or numpy.ndarray
            A float when every input is a scalar, else an array of the broadcast shape.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeo().fit(clv.simulate(2_000, r=0.5, alpha=6, a=1.2, b=3, T=52,
        ...                                        seed=1))
        >>> round(model.expected_purchases(52, frequency=3, recency=50, T=52), 3)
        1.826
        >>> model.expected_purchases([13, 26, 52], frequency=3, recency=50, T=52).round(3)
        array([0.559, 1.038, 1.826])
        """
        self._require_fit()
        inputs = self._inputs(summary, frequency, recency, T, t=t)
        x, t_x, T, times = inputs.columns
        self._check_times(times)
        # One horizon for every customer (the usual call) is a number, not a column to collapse.
        horizon = float(times[0]) if np.ndim(t) == 0 and times.shape[0] else times
        _, (result,) = self._expected(x, t_x, T, [horizon])
        return inputs.shaped(result)

    def expected_purchases_curves(
        self,
        times: list[float],
        summary: Any = None,
        *,
        frequency: ArrayLike | None = None,
        recency: ArrayLike | None = None,
        T: ArrayLike | None = None,
    ) -> tuple[float | np.ndarray, list[float | np.ndarray]]:
        """(:meth:`p_alive`, :meth:`expected_purchases` for each of several horizons), sharing
        the work that does not depend on the horizon.

        Parameters
        ----------
        times : list of float
            The horizons.
        summary, frequency, recency, T
            The customers, as for :meth:`p_alive`.

        Returns
        -------
        tuple
            p_alive and the list of expected purchases, one per horizon, each shaped as the
            result of :meth:`p_alive`.
        """
        self._require_fit()
        inputs = self._inputs(summary, frequency, recency, T)
        horizons = broadcast_inputs({"times": times}).columns[0]
        if np.ndim(times) != 1:
            raise RFMError(
                f"times must be a list of horizons, one number each; got {times!r:.60}: for a "
                "horizon per customer, call expected_purchases"
            )
        self._check_times(horizons)
        alive, results = self._expected(*inputs.columns, [float(t) for t in horizons])
        return inputs.shaped(alive), [inputs.shaped(result) for result in results]

    @staticmethod
    def _check_times(times: np.ndarray) -> None:
        bad = ~(times >= 0)
        if bad.any():
            raise RFMError(f"t must be a non-negative time; got {float(times[bad][0]):g}")

    def _expected(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times: list[float | np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        """p_alive and the expected purchases for each horizon of ``times`` (a number, or an
        array with one horizon per customer), of flat arrays."""
        from scipy.special import hyp2f1

        r, alpha, a, b = self._require_fit()
        # The hypergeometric part depends on (x, T) and the horizon only: computed once per
        # distinct profile.
        per_customer = [t for t in times if np.ndim(t)]
        profiles = collapse(x, T, *per_customer)
        xs, Ts = profiles.column(0), profiles.column(1)
        alive = self._p_alive(x, t_x, T)
        a = off_one(a)
        head = (a + b + xs - 1) / (a - 1)
        results = []
        k = 2
        for t in times:
            if np.ndim(t):
                t, k = profiles.column(k), k + 1
            z = t / (alpha + Ts + t)
            tail = 1 - ((alpha + Ts) / (alpha + Ts + t)) ** (r + xs) * hyp2f1(
                r + xs, b + xs, a + b + xs - 1, z
            )
            results.append((head * tail)[profiles.profile_of] * alive)
        return alive, results

    def expected_purchases_new(self, t: ArrayLike) -> float | np.ndarray:
        """Expected purchases of a new customer in a period of length ``t`` (eq. 9).

        Parameters
        ----------
        t : number, list or array
            The period length(s), in the unit of the fit.

        Returns
        -------
        float or numpy.ndarray
            A float for a scalar ``t``, else an array of its shape.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeo().fit(clv.simulate(2_000, r=0.5, alpha=6, a=1.2, b=3, T=52,
        ...                                        seed=1))
        >>> round(model.expected_purchases_new(52), 3)
        1.864
        >>> model.expected_purchases_new([0, 26, 52]).round(3)
        array([0.   , 1.241, 1.864])
        """
        from scipy.special import hyp2f1

        r, alpha, a, b = self._require_fit()
        inputs = broadcast_inputs({"t": t})
        (t,) = inputs.columns
        self._check_times(t)
        a = off_one(a)
        z = t / (alpha + t)
        tail = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)
        return inputs.shaped((a + b - 1) / (a - 1) * tail)

    def probability_of_purchases(self, x: ArrayLike, t: ArrayLike) -> float | np.ndarray:
        """P(X(t) = x): the probability that a new customer makes ``x`` purchases in a period
        of length ``t`` (Fader, Hardie & Lee 2005, eq. 8).

        Parameters
        ----------
        x : int, list or array
            Numbers of purchases (whole, at least 0).
        t : number, list or array
            Period lengths, in the unit of the fit; broadcast with ``x``.

        Returns
        -------
        float or numpy.ndarray
            A float when ``x`` and ``t`` are scalars, else an array of their broadcast shape.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeo().fit(clv.simulate(2_000, r=0.5, alpha=6, a=1.2, b=3, T=52,
        ...                                        seed=1))
        >>> round(model.probability_of_purchases(2, 10), 4)
        0.0796
        >>> model.probability_of_purchases([0, 1, 2], 10).round(4)
        array([0.623 , 0.2385, 0.0796])
        """
        from scipy.special import betainc, betaln, gammaln, xlogy

        r, alpha, a, b = self._require_fit()
        inputs = broadcast_inputs({"x": x, "t": t})
        x, t = inputs.columns
        bad = ~((x >= 0) & (x == np.floor(x)) & np.isfinite(x))
        if bad.any():
            raise RFMError(f"x must be a whole number of purchases >= 0; got {float(x[bad][0]):g}")
        self._check_times(t)
        log_poisson = (
            gammaln(r + x) - gammaln(r) - gammaln(x + 1)
            + r * np.log(alpha / (alpha + t)) + xlogy(x, t / (alpha + t))
        )  # fmt: skip
        result = np.exp(betaln(a, b + x) - betaln(a, b) + log_poisson)
        # For x > 0, plus B(a + 1, b + x - 1) / B(a, b) times the probability of at least x
        # purchases under the NBD, which is the regularized incomplete beta I_{t/(alpha+t)}(x, r)
        # (1 minus the sum of the NBD terms below x, without the cancellation).
        repeat = x > 0
        xr, tr = x[repeat], t[repeat]
        result[repeat] += np.exp(betaln(a + 1, b + xr - 1) - betaln(a, b)) * betainc(
            xr, r, tr / (alpha + tr)
        )
        return inputs.shaped(result)
