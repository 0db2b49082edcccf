"""What the purchase models share (:class:`PurchaseModel`): the fit on a summary collapsed into
weighted profiles, the parameters and their standard errors, and the predictions over
scalars, lists, arrays and summaries, with tables keyed by customer.

BG/NBD and MBG/NBD (:mod:`~rfm_fast.clv.bgnbd`), Pareto/NBD (:mod:`~rfm_fast.clv.pareto_nbd`)
and BG/BB (:mod:`~rfm_fast.clv.bgbb`) each give the likelihood kernel and the formulas of
their model; everything else is here, so that the spend model and the lifetime value take any
of them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Self

import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike

from rfm_fast.clv.fitting import (
    Collapsed,
    Fit,
    Inputs,
    broadcast_inputs,
    collapse,
    fit_weights,
    keyed_table,
    maximize,
    summary_inputs,
)
from rfm_fast.errors import RFMError

COLUMNS = ("frequency", "recency", "T")

WARM_START_CUSTOMERS = 200_000
"""Above this many rows, a fit starts from a fit on a sample of this size."""


MAX_FREQUENCY = 1e15
"""The largest frequency a model takes: far beyond any customer's purchases, and where float64
still tells x from x + r."""


class PurchaseModel:
    """Base of the purchase models: fitted on ``frequency``, ``recency`` and ``T`` (with an
    optional ``weights`` column of customers per row), they give ``p_alive`` and the expected
    purchases of each customer.

    Subclasses set :attr:`NAMES` (the parameters), :attr:`LABEL`, :attr:`TIME_SCALED` (the
    parameters in units of time) and implement the likelihood and the formulas.
    """

    NAMES: tuple[str, ...] = ()
    LABEL = ""
    TIME_SCALED: tuple[str, ...] = ()
    """Parameters in units of time: the fit runs on times in units of their mean, and these
    are scaled back."""

    def __init__(self) -> None:
        self.params: dict[str, float] = {}
        self.standard_errors: dict[str, float] = {}
        self.at_bound: tuple[str, ...] = ()
        self.log_likelihood = float("nan")
        self.converged = False
        self.customers = 0

    @classmethod
    def from_params(cls, **params: float) -> Self:
        """A model with the given parameters, for predictions and :meth:`simulate` without a
        fit.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> clv.BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
        BetaGeo(r=0.243, alpha=4.414, a=0.793, b=2.426, not fitted)
        """
        if set(params) != set(cls.NAMES):
            raise RFMError(
                f"{cls.__name__} takes the parameters {', '.join(cls.NAMES)}; got "
                + (", ".join(params) or "none")
            )
        bad = [name for name, value in params.items() if not (math.isfinite(value) and value > 0)]
        if bad:
            raise RFMError(f"parameters must be finite and positive; got {bad[0]}={params[bad[0]]}")
        model = cls()
        model.params = {name: float(params[name]) for name in cls.NAMES}
        return model

    def fit(self, summary: Any, weights: Any = None) -> Self:
        """Fit by maximum likelihood to a summary with ``frequency``, ``recency`` and ``T``.

        Parameters
        ----------
        summary : table
            An Arrow table, a pandas frame or a mapping of columns, as
            :func:`rfm_fast.clv.summary` gives it.
        weights : str or array, optional
            The number of customers each row stands for: a column name, or one number per
            row. Default: the summary's ``weights`` column where it has one, else 1 per row.

        Returns
        -------
        The model, fitted: ``params``, ``standard_errors`` (from the Hessian),
        ``log_likelihood``, ``converged`` and ``customers``.

        Raises
        ------
        RFMError
            When no customer made a repeat purchase (dropout cannot be estimated then), or the
            summary or the weights are invalid.
        """
        x, t_x, T = self._columns(summary)
        w = fit_weights(summary, weights, x.shape[0])
        if w is not None:
            keep = w > 0
            x, t_x, T, w = x[keep], t_x[keep], T[keep], w[keep]
        if not (x > 0).any():
            raise RFMError(
                f"{self.LABEL} needs customers with repeat purchases (frequency > 0); every "
                "customer has a single purchase, so the dropout process cannot be estimated"
            )
        total = float(x.shape[0] if w is None else w.sum())
        # Times are fitted in units of their mean, so that the time scales are near 1 whatever
        # the unit; the likelihood is equivariant: they scale back, and the log-likelihood
        # shifts by -log(scale) per repeat purchase.
        scale = 1.0
        if self.TIME_SCALED:
            mean = float(T.mean() if w is None else np.average(T, weights=w))
            scale = mean if mean > 0 else 1.0
            t_x, T = t_x / scale, T / scale
        start = self._start()
        if x.shape[0] > WARM_START_CUSTOMERS:
            # A fit on a fixed sample of rows is a close start: the fit on all of them then
            # needs a few iterations instead of dozens.
            sample = np.random.default_rng(0).choice(
                x.shape[0], WARM_START_CUSTOMERS, replace=False
            )
            if (x[sample] > 0).any():
                sampled = None if w is None else w[sample]
                profiles = collapse(x[sample], t_x[sample], T[sample], weights=sampled)
                start = self._fit_profiles(profiles, start).params
        fit = self._fit_profiles(collapse(x, t_x, T, weights=w), start)
        unscale = np.array([scale if name in self.TIME_SCALED else 1.0 for name in self.NAMES])
        self.params = dict(zip(self.NAMES, map(float, fit.params * unscale), strict=True))
        errors = fit.standard_errors * unscale
        self.standard_errors = dict(zip(self.NAMES, map(float, errors), strict=True))
        repeat = float(x.sum() if w is None else (w * x).sum())
        self.log_likelihood = fit.log_likelihood - math.log(scale) * repeat
        self.converged = fit.converged
        self.at_bound = tuple(n for n, bound in zip(self.NAMES, fit.at_bound, strict=True) if bound)
        self.customers = round(total)
        return self

    def _start(self) -> np.ndarray:
        """Where the search starts (times in units of their mean)."""
        return np.ones(len(self.NAMES))

    def _fit_profiles(self, profiles: Collapsed, start: np.ndarray) -> Fit:
        return maximize(self._likelihood(profiles), start, profiles.weight.sum(), self.LABEL)

    def _likelihood(self, profiles: Collapsed) -> Callable[[np.ndarray, np.ndarray], float]:
        """The weighted log-likelihood of the profiles at parameters (writing the gradient)."""
        raise NotImplementedError

    @classmethod
    def _columns(cls, summary: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``frequency``, ``recency`` and ``T`` of a summary, checked, as flat float64 arrays."""
        return cls._checked(summary_inputs(summary, dict.fromkeys(COLUMNS))).columns[:3]

    @classmethod
    def _inputs(
        cls, summary: Any, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike, **extra: Any
    ) -> Inputs:
        """The summary columns (from ``summary`` or the keywords) and ``extra``, broadcast
        together and checked."""
        given = {"frequency": frequency, "recency": recency, "T": T}
        return cls._checked(summary_inputs(summary, given, extra))

    @classmethod
    def _checked(cls, inputs: Inputs) -> Inputs:
        x, t_x, T = inputs.columns[:3]
        bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(T))
        bad |= (x < 0) | (x != np.floor(x)) | (t_x < 0) | (t_x > T) | ((x == 0) & (t_x != 0))
        bad |= x > MAX_FREQUENCY  # (beyond, r + x == x in float64: no prediction means much)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RFMError(
                f"invalid summary row {i}: frequency={x[i]}, recency={t_x[i]}, T={T[i]}; "
                f"expected a whole frequency from 0 to {MAX_FREQUENCY:.0e}, 0 <= recency <= T, "
                "and recency 0 when frequency is 0"
            )
        return inputs

    def _require_fit(self) -> tuple[float, ...]:
        if not self.params:
            raise RFMError("the model is not fitted yet: call .fit(summary) first")
        return tuple(self.params[n] for n in self.NAMES)

    def __repr__(self) -> str:
        name = type(self).__name__
        if not self.params:
            return f"{name}(not fitted)"
        params = ", ".join(f"{k}={v:.4g}" for k, v in self.params.items())
        if not self.customers:
            return f"{name}({params}, not fitted)"
        return (
            f"{name}({params}, log_likelihood={self.log_likelihood:,.2f}, "
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
        raise NotImplementedError

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
        customer's history.

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
        raise NotImplementedError

    def expected_purchases_new(self, t: ArrayLike) -> float | np.ndarray:
        """Expected purchases of a new customer (one who has just made a first purchase) in a
        period of length ``t``: for BG/BB, in the next ``t`` opportunities.

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
        self._require_fit()
        inputs = broadcast_inputs({"t": t})
        (times,) = inputs.columns
        self._check_times(times)
        return inputs.shaped(self._expected_new(times))

    def _expected_new(self, t: np.ndarray) -> np.ndarray:
        """:meth:`expected_purchases_new` of a flat array of checked times."""
        raise NotImplementedError

    def probability_of_purchases(self, x: ArrayLike, t: ArrayLike) -> float | np.ndarray:
        """P(X(t) = x): the probability that a new customer makes ``x`` purchases in a period
        of length ``t`` (for BG/BB, ``x`` transactions in ``t`` opportunities).

        Parameters
        ----------
        x : int, list or array
            Numbers of purchases (whole, at least 0).
        t : number, list or array
            Period lengths, in the unit of the fit (for BG/BB, whole numbers of
            opportunities); broadcast with ``x``.

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
        self._require_fit()
        inputs = broadcast_inputs({"x": x, "t": t})
        counts, times = inputs.columns
        bad = ~((counts >= 0) & (counts == np.floor(counts)) & np.isfinite(counts))
        if bad.any():
            raise RFMError(
                f"x must be a whole number of purchases >= 0; got {float(counts[bad][0]):g}"
            )
        self._check_times(times)
        return inputs.shaped(self._probability(counts, times))

    def _probability(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        """:meth:`probability_of_purchases` of flat arrays of checked inputs."""
        raise NotImplementedError

    def simulate(
        self,
        customers: int,
        *,
        T: float | np.ndarray,
        resolution: float | None = None,
        seed: int | None = None,
    ) -> pa.Table:
        """A summary drawn from the model with its parameters (for tests, benchmarks and
        checks): customers who make a first purchase at time 0 and then behave as the model
        says (see the class), observed until ``T``.

        Parameters
        ----------
        customers : int
            How many customers.
        T : float or array
            Observation length of each customer (for BG/BB, whole numbers of opportunities).
        resolution : float, optional
            Round ``recency`` down to and ``T`` to multiples of this (e.g. ``1 / 7`` for days
            counted in weeks), as real purchase dates are. Not for BG/BB.
        seed : int, optional
            Seed of the random numbers.

        Returns
        -------
        pyarrow.Table
            ``frequency``, ``recency`` and ``T`` (no customer column, no monetary).

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.ModifiedBetaGeo.from_params(r=0.525, alpha=6.183, a=0.891, b=1.614)
        >>> model.simulate(3, T=39.0, seed=2).column_names
        ['frequency', 'recency', 'T']
        """
        self._require_fit()
        rng = np.random.default_rng(seed)
        T = np.broadcast_to(np.asarray(T, dtype=float), (customers,)).copy()
        x, t_x = self._draw(rng, T)
        if resolution:
            T = np.round(T / resolution) * resolution
            t_x = np.minimum(np.floor(t_x / resolution) * resolution, T)
        return pa.table({"frequency": x.astype(np.int64), "recency": t_x, "T": T})

    def _draw(self, rng: np.random.Generator, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(frequency, recency) of customers observed for ``T``, drawn from the model."""
        raise NotImplementedError
