"""BG/BB (Fader, Hardie & Shang 2010), the discrete-time model of repeat transactions:
:class:`BetaGeoBetaBinom`, with p_alive and the expected transactions of each customer, and
:func:`discrete_summary`, its summary from per-period data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import Collapsed, Inputs, collapse, off_one, scipy
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.errors import RFMError


class BetaGeoBetaBinom(PurchaseModel):
    """The BG/BB model (Fader, Hardie & Shang 2010): at each of ``T`` discrete opportunities
    (years of a donor, issues of a magazine) an alive customer transacts with a probability
    that is beta(alpha, beta) across customers, and becomes inactive at the start of each
    opportunity with a probability that is beta(gamma, delta) across customers.

    The summary has ``frequency`` (opportunities with a repeat transaction), ``recency`` (the
    last of them, 0 without one) and ``T`` (the number of opportunities), all whole numbers,
    and optionally ``weights`` (customers per row): the donations data of the paper is one row
    per pattern. Horizons are numbers of opportunities.

    Examples
    --------
    >>> from rfm_fast import clv
    >>> summary = {"frequency": [0, 1, 6, 3, 2], "recency": [0, 1, 6, 4, 6], "T": 6,
    ...            "weights": [3464, 1091, 1203, 100, 200]}
    >>> model = clv.BetaGeoBetaBinom().fit(summary)
    >>> model.customers
    6058
    >>> round(model.p_alive(frequency=3, recency=4, T=6), 3)
    0.455
    >>> published = clv.BetaGeoBetaBinom.from_params(alpha=1.204, beta=0.750, gamma=0.657,
    ...                                              delta=2.783)
    >>> published.expected_purchases_new([0, 1, 6]).round(3)
    array([0.   , 0.498, 2.22 ])
    >>> published.probability_of_purchases([0, 1, 6], 6).round(4)
    array([0.3112, 0.1701, 0.1128])
    """

    NAMES = ("alpha", "beta", "gamma", "delta")
    LABEL = "BG/BB"

    @classmethod
    def _checked(cls, inputs: Inputs) -> Inputs:
        x, t_x, n = inputs.columns[:3]
        bad = ~(np.isfinite(x) & np.isfinite(t_x) & np.isfinite(n))
        bad |= (x != np.floor(x)) | (t_x != np.floor(t_x)) | (n != np.floor(n))
        bad |= (x < 0) | (t_x < x) | (t_x > n) | ((x == 0) & (t_x != 0))
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise RFMError(
                f"invalid summary row {i}: frequency={x[i]}, recency={t_x[i]}, T={n[i]}; BG/BB "
                "expects whole numbers with frequency <= recency <= T (the opportunities), "
                "and recency 0 when frequency is 0"
            )
        return inputs

    def _likelihood(self, profiles: Collapsed) -> Callable[[np.ndarray, np.ndarray], float]:
        x, t_x, n = (profiles.column(k) for k in range(3))
        weight = profiles.weight

        def loglik(params: np.ndarray, grad: np.ndarray) -> float:
            alpha, beta, gamma, delta = params
            return btyd.bgbb_loglik(x, t_x, n, weight, alpha, beta, gamma, delta, grad)

        return loglik

    def _log_terms(
        self, x: np.ndarray, t_x: np.ndarray, n: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per customer, the log-likelihood and its 'alive through n' term, both without the
        beta functions of the parameters (collapsed: the sum once per distinct customer)."""
        profiles = collapse(x, t_x, n)
        m = profiles.weight.shape[0]
        likelihood, alive = np.empty(m), np.empty(m)
        columns = (profiles.column(k) for k in range(3))
        btyd.bgbb_log_terms(*columns, *self._require_fit(), likelihood, alive)
        return likelihood[profiles.profile_of], alive[profiles.profile_of]

    def _p_alive(self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
        # eq. 11: alive in period n + 1
        _, _, gamma, delta = self._require_fit()
        likelihood, alive = self._log_terms(x, t_x, T)
        return np.exp(alive - likelihood + np.log((delta + T) / (gamma + delta + T)))

    def _expected(
        self, x: np.ndarray, t_x: np.ndarray, T: np.ndarray, times: list[float | np.ndarray]
    ) -> tuple[np.ndarray, list[np.ndarray]]:
        # eq. 13, in logs: B(alpha+x+1, beta+n-x) Gamma(gamma) R(n) / (gamma - 1) / L times
        # 1 - R(n + t) / R(n), where R(m) = Gamma(1+delta+m) / Gamma(gamma+delta+m).
        special = scipy("special")
        betaln, gammaln = special.betaln, special.gammaln

        alpha, beta, gamma, delta = self._require_fit()
        likelihood, alive = self._log_terms(x, t_x, T)
        p_alive = np.exp(alive - likelihood + np.log((delta + T) / (gamma + delta + T)))
        gamma = off_one(gamma)

        def log_r(m: np.ndarray) -> np.ndarray:
            return gammaln(1 + delta + m) - gammaln(gamma + delta + m)

        head = np.exp(betaln(alpha + x + 1, beta + T - x) + gammaln(gamma) + log_r(T) - likelihood)
        results = [head * -np.expm1(log_r(T + t) - log_r(T)) / (gamma - 1) for t in times]
        return p_alive, results

    def _expected_new(self, t: np.ndarray) -> np.ndarray:
        # Fader, Hardie & Shang 2010, eq. 8
        gammaln = scipy("special").gammaln

        alpha, beta, gamma, delta = self._require_fit()
        gamma = off_one(gamma)
        ratio = (
            gammaln(gamma + delta) + gammaln(1 + delta + t)
            - gammaln(gamma + delta + t) - gammaln(1 + delta)
        )  # fmt: skip
        return alpha / (alpha + beta) * delta / (gamma - 1) * -np.expm1(ratio)

    def _probability(self, x: np.ndarray, t: np.ndarray) -> np.ndarray:
        # Fader, Hardie & Shang 2010, eq. 7
        special = scipy("special")
        betaln, gammaln = special.betaln, special.gammaln

        alpha, beta, gamma, delta = self._require_fit()
        if (t != np.floor(t)).any():
            raise RFMError(
                f"t must be a whole number of opportunities; got {float(t[t != np.floor(t)][0]):g}"
            )

        def log_choose(m: np.ndarray, k: np.ndarray) -> np.ndarray:
            return gammaln(m + 1) - gammaln(k + 1) - gammaln(m - k + 1)

        base = -betaln(alpha, beta) - betaln(gamma, delta)
        possible = x <= t
        xs, ns = np.where(possible, x, 0), np.where(possible, t, 0)
        result = np.exp(
            log_choose(ns, xs) + betaln(alpha + xs, beta + ns - xs) + betaln(gamma, delta + ns)
            + base
        )  # fmt: skip
        # inactive from opportunity i + 1 on, with x transactions in the first i
        for i in range(int(ns.max(initial=0))):
            terms = (xs <= i) & (i < ns)
            if not terms.any():
                continue
            xi = xs[terms]
            result[terms] += np.exp(
                log_choose(i, xi) + betaln(alpha + xi, beta + i - xi)
                + betaln(gamma + 1, delta + i) + base
            )  # fmt: skip
        return np.where(possible, result, 0.0)

    def simulate(
        self,
        customers: int,
        *,
        T: float | np.ndarray,
        resolution: float | None = None,
        seed: int | None = None,
    ) -> pa.Table:
        """As :meth:`PurchaseModel.simulate`, with ``T`` whole numbers of opportunities and
        every column whole numbers.

        Examples
        --------
        >>> from rfm_fast import clv
        >>> model = clv.BetaGeoBetaBinom.from_params(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
        >>> model.simulate(4, T=6, seed=2).schema.types
        [DataType(int64), DataType(int64), DataType(int64)]
        """
        if resolution is not None:
            raise RFMError("resolution is for continuous time; BG/BB opportunities are whole")
        table = super().simulate(customers, T=T, seed=seed)
        n = table["T"].to_numpy()
        if (n != np.floor(n)).any() or (n < 0).any():
            raise RFMError("T must be whole numbers of opportunities, at least 0")
        recency = table["recency"].to_numpy().astype(np.int64)
        return table.set_column(1, "recency", pa.array(recency)).set_column(
            2, "T", pa.array(n.astype(np.int64))
        )

    def _draw(self, rng: np.random.Generator, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        # At each opportunity an alive customer first drops out with the dropout probability,
        # then, if still alive, transacts with the transaction probability.
        alpha, beta, gamma, delta = self._require_fit()
        customers = T.shape[0]
        buy = rng.beta(alpha, beta, customers)
        dropout = rng.beta(gamma, delta, customers)
        # alive in opportunities 1 .. lifetime (geometric: the first opportunity it drops at)
        lifetime = rng.geometric(np.clip(dropout, 1e-12, 1.0)) - 1
        x = np.zeros(customers, dtype=np.int64)
        t_x = np.zeros(customers)
        for period in range(1, int(T.max(initial=0)) + 1):
            bought = (period <= np.minimum(lifetime, T)) & (rng.random(customers) < buy)
            x += bought
            t_x[bought] = period
        return x, t_x


def discrete_summary(
    data: Any, *, customer: str, period: str, end: int | None = None, patterns: bool = False
) -> pa.Table:
    """The BG/BB summary of per-period data: one row per customer (or per pattern).

    Each customer's first period with a transaction is its period 0 (the first transaction,
    as the first purchase of the continuous-time summary); the opportunities are the periods
    after it, up to ``end``.

    Parameters
    ----------
    data : table
        One row per transaction (several in a period count once): an Arrow table, a pandas
        frame or a mapping of columns.
    customer : str
        The customer column.
    period : str
        The period of each transaction, a whole number (such as a year, or weeks since a
        start).
    end : int, optional
        The last period observed; later rows are left out. Default: the latest period.
    patterns : bool, default False
        Return one row per distinct (frequency, recency, T) with a ``weights`` column (the
        customers sharing it, as in the donations data), sorted, instead of one per customer.

    Returns
    -------
    pyarrow.Table
        The customer column (sorted by it; without it with ``patterns``), ``frequency`` (the
        later periods with a transaction), ``recency`` (the last of them, counted from period
        0; 0 without one) and ``T`` (the opportunities: ``end`` minus period 0).

    Examples
    --------
    >>> from rfm_fast import clv
    >>> donations = {"donor": [1, 1, 1, 2, 3, 3], "year": [1995, 1997, 1997, 1995, 1995, 1996]}
    >>> clv.discrete_summary(donations, customer="donor", period="year", end=2001).to_pylist()[0]
    {'donor': 1, 'frequency': 1, 'recency': 2, 'T': 6}
    >>> clv.discrete_summary(donations, customer="donor", period="year", end=2001,
    ...                      patterns=True).to_pydict()
    {'frequency': [0, 1, 1], 'recency': [0, 1, 2], 'T': [6, 6, 6], 'weights': [1, 1, 1]}
    """
    table = pa.table(data) if not isinstance(data, pa.Table) else data
    for name in (customer, period):
        if name not in table.column_names:
            raise RFMError(
                f"no column {name!r} in the data; it has: {', '.join(table.column_names)}"
            )
    periods = table[period]
    if not pa.types.is_integer(periods.type):
        raise RFMError(
            f"the period column {period!r} must hold whole numbers (a year, a week number); "
            f"it holds {periods.type}"
        )
    table = table.select([customer, period]).filter(pc.is_valid(table[customer]))
    table = table.filter(pc.is_valid(table[period]))
    if end is None:
        end = pc.max(table[period]).as_py()
    else:
        table = table.filter(pc.less_equal(table[period], end))
    grouped = table.group_by(customer).aggregate(
        [(period, "min"), (period, "max"), (period, "count_distinct")]
    )
    grouped = grouped.sort_by(customer)
    first = grouped[f"{period}_min"]
    summary = pa.table(
        {
            customer: grouped[customer],
            "frequency": pc.subtract(grouped[f"{period}_count_distinct"], 1),
            "recency": pc.subtract(grouped[f"{period}_max"], first),
            "T": pc.subtract(pa.scalar(end, first.type), first),
        }
    )
    if not patterns:
        return summary
    counted = summary.group_by(["frequency", "recency", "T"]).aggregate([(customer, "count")])
    counted = counted.rename_columns(["frequency", "recency", "T", "weights"])
    return counted.sort_by(
        [("T", "ascending"), ("frequency", "ascending"), ("recency", "ascending")]
    )
