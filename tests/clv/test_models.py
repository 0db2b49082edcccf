"""MBG/NBD, Pareto/NBD and BG/BB: the published estimates, the likelihoods against
high-precision references across the parameter range, gradients against finite differences,
the predictions against each other, weights, and the conventions every model shares."""

from __future__ import annotations

import math

import mpmath
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import SHARED_DATA, TEST_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast import RFMError, clv, datasets
from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import collapse

DONATIONS = SHARED_DATA / "donations" / "donations.csv"
MODELS = [clv.BetaGeo, clv.ModifiedBetaGeo, clv.ParetoNBD]
PUBLISHED = {
    clv.BetaGeo: {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
    clv.ModifiedBetaGeo: {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614},
    clv.ParetoNBD: {"r": 0.5533, "alpha": 10.5786, "s": 0.6061, "beta": 11.6698},
    clv.BetaGeoBetaBinom: {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783},
}


@pytest.fixture(scope="module")
def cdnow() -> pa.Table:
    orders = datasets.read_cdnow(TEST_DATA / "CDNOW_sample.txt")
    return clv.calibration_holdout(
        orders, customer="master_id", timestamp="date", amount="dollar_value", unit="W",
        calibration_end="1997-09-30", holdout_end="1998-06-30",
    )  # fmt: skip


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    if not DONATIONS.exists():
        pytest.skip(f"the donations data is not here ({DONATIONS}); see ../shared/data/README.md")
    return pd.read_csv(DONATIONS).rename(columns={"periods": "T"})


def test_pareto_nbd_reproduces_fader_hardie_2005(cdnow):
    model = clv.ParetoNBD().fit(cdnow)
    for name, value in PUBLISHED[clv.ParetoNBD].items():
        assert model.params[name] == pytest.approx(value, rel=2e-3), name
    assert round(model.log_likelihood, 2) == -9594.98
    assert model.converged and model.customers == 2357
    assert all(0 < se < 10 for se in model.standard_errors.values())


def test_mbgnbd_reproduces_batislam_et_al_as_lifetimes_and_btydplus(cdnow):
    model = clv.ModifiedBetaGeo().fit(cdnow)
    assert {k: round(v, 3) for k, v in model.params.items()} == PUBLISHED[clv.ModifiedBetaGeo]
    assert model.converged and all(0 < se < 1 for se in model.standard_errors.values())
    # Hardie's spreadsheet value of the conditional expectation, as lifetimes tests it
    assert model.expected_purchases(39, frequency=2, recency=30.43, T=38.86) == pytest.approx(
        1.226, abs=0.05
    )


def test_mbgnbd_predictions_follow_batislam_et_al_and_wagner_hoppe():
    """p_alive (Batislam et al. 2007, appendix A, eq. 5) and the conditional expectation
    (Wagner & Hoppe 2008), written out one customer at a time."""
    from scipy.special import hyp2f1

    model = clv.ModifiedBetaGeo.from_params(**PUBLISHED[clv.ModifiedBetaGeo])
    r, alpha, a, b = model.params.values()
    for x, t_x, T in [(0, 0.0, 38.9), (2, 30.43, 38.86), (7, 5.0, 38.86)]:
        odds = a / (b + x) * ((alpha + T) / (alpha + t_x)) ** (r + x)
        assert model.p_alive(frequency=x, recency=t_x, T=T) == pytest.approx(1 / (1 + odds))
        for t in (1.0, 39.0):
            tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
                r + x, b + x + 1, a + b + x, t / (alpha + T + t)
            )
            want = (a + b + x) / (a - 1) * tail / (1 + odds)
            got = model.expected_purchases(t, frequency=x, recency=t_x, T=T)
            assert got == pytest.approx(want, rel=1e-9)


def test_bgbb_reproduces_fader_hardie_shang_2010(donations):
    model = clv.BetaGeoBetaBinom().fit(donations)  # the weights column: supporters per row
    assert {k: round(v, 3) for k, v in model.params.items()} == PUBLISHED[clv.BetaGeoBetaBinom]
    assert round(model.log_likelihood, 1) == -33225.6
    assert model.customers == 11104 and model.converged


def test_weights_are_customers_per_row(donations):
    weighted = clv.BetaGeoBetaBinom().fit(donations)
    rows = donations.loc[donations.index.repeat(donations["weights"])]
    expanded = clv.BetaGeoBetaBinom().fit(rows[["frequency", "recency", "T"]])
    for name, value in weighted.params.items():
        assert expanded.params[name] == pytest.approx(value, rel=1e-6)
    assert expanded.log_likelihood == pytest.approx(weighted.log_likelihood, rel=1e-10)
    by_keyword = clv.BetaGeoBetaBinom().fit(
        donations[["frequency", "recency", "T"]], weights=donations["weights"].to_numpy()
    )
    assert by_keyword.params == weighted.params
    with pytest.raises(RFMError, match="invalid weight in row 0"):
        clv.BetaGeo().fit({"frequency": [1], "recency": [1.0], "T": [2.0]}, weights=[-1])
    with pytest.raises(RFMError, match="one number per row"):
        clv.BetaGeo().fit({"frequency": [1], "recency": [1.0], "T": [2.0]}, weights=[1, 2])


def pareto_reference(x, t_x, T, r, alpha, s, beta) -> float:
    """The log-likelihood by the hypergeometric form of Fader & Hardie (2005), eq. 3-4, at 40
    digits."""
    x, t_x, T, r, alpha, s, beta = map(mpmath.mpf, (x, t_x, T, r, alpha, s, beta))
    m = r + s + x
    if alpha >= beta:

        def part(y):
            return mpmath.hyp2f1(m, s + 1, m + 1, (alpha - beta) / (alpha + y)) / (alpha + y) ** m
    else:

        def part(y):
            return mpmath.hyp2f1(m, r + x, m + 1, (beta - alpha) / (beta + y)) / (beta + y) ** m

    value = 1 / ((alpha + T) ** (r + x) * (beta + T) ** s) + s / m * (part(t_x) - part(T))
    lead = mpmath.loggamma(r + x) - mpmath.loggamma(r) + r * mpmath.log(alpha)
    return float(lead + s * mpmath.log(beta) + mpmath.log(value))


def test_pareto_nbd_likelihood_across_the_parameter_range():
    """r, s up to 1e3, alpha, beta up to 1e4, x up to 1000, T up to 1e4: against the
    hypergeometric form at 40 digits, never an overflow or a NaN."""
    mpmath.mp.dps = 40
    rng = np.random.default_rng(0)
    for _ in range(300):
        r, s = 10 ** rng.uniform(-2, 3, 2)
        alpha, beta = 10 ** rng.uniform(-2, 4, 2)
        T = 10 ** rng.uniform(-1, 4)
        x = float(rng.choice([0, 1, 3, 10, 100, 1000]))
        t_x = 0.0 if x == 0 else T * rng.uniform() ** (1 / x)
        grad = np.zeros(4)
        at, values = [np.zeros(1, dtype=np.int64)] * 3, [np.array([v]) for v in (x, t_x, T)]
        got = btyd.pareto_nbd_loglik(*at, np.ones(1), *values, r, alpha, s, beta, grad)
        want = pareto_reference(x, t_x, T, r, alpha, s, beta)
        assert got == pytest.approx(want, rel=1e-10, abs=1e-10), (x, t_x, T, r, alpha, s, beta)
        assert np.isfinite(grad).all()


def test_pareto_nbd_p_alive_against_the_hypergeometric_form():
    """p_alive is the 'alive' term over the likelihood (Fader & Hardie 2005, the note, eq. 18),
    here with the likelihood at 40 digits."""
    mpmath.mp.dps = 40
    model = clv.ParetoNBD.from_params(**PUBLISHED[clv.ParetoNBD])
    r, alpha, s, beta = model.params.values()
    for x, t_x, T in [(0, 0.0, 38.9), (2, 30.43, 38.86), (2, 5.0, 38.86), (40, 10.0, 300.0)]:
        log_alive = (
            math.lgamma(r + x) - math.lgamma(r) + r * math.log(alpha) + s * math.log(beta)
            - (r + x) * math.log(alpha + T) - s * math.log(beta + T)
        )  # fmt: skip
        want = math.exp(log_alive - pareto_reference(x, t_x, T, r, alpha, s, beta))
        assert model.p_alive(frequency=x, recency=t_x, T=T) == pytest.approx(want, rel=1e-9)


def bgbb_reference(x, t_x, n, alpha, beta, gamma, delta) -> float:
    """The log-likelihood of Fader, Hardie & Shang (2010), eq. 5, term by term."""

    def log_b(u, v):
        return math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)

    base = log_b(alpha, beta) + log_b(gamma, delta)
    value = math.exp(log_b(alpha + x, beta + n - x) + log_b(gamma, delta + n) - base)
    for i in range(int(n - t_x)):
        value += math.exp(
            log_b(alpha + x, beta + t_x - x + i) + log_b(gamma + 1, delta + t_x + i) - base
        )
    return math.log(value)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.floats(0.05, 50.0), min_size=4, max_size=4),
    st.integers(0, 60),
    st.integers(0, 60),
    st.integers(0, 60),
)
def test_bgbb_likelihood_against_the_formula(params, a, b, c):
    n, t_x, x = sorted((a, b, c), reverse=True)
    t_x = 0 if x == 0 else t_x
    got = btyd.bgbb_loglik(
        *(np.array([float(v)]) for v in (x, t_x, n)), np.ones(1), *params, np.zeros(4)
    )
    assert got == pytest.approx(bgbb_reference(x, t_x, n, *params), rel=1e-10, abs=1e-10)


def _check_gradient(loglik, params: np.ndarray, k: int, relative_step: float = 1e-6) -> None:
    """Against central differences (a larger step where the log-likelihood is large, as with
    alpha in the thousands, so that rounding does not swamp the difference)."""
    grad = np.zeros(k)
    loglik(params, grad)
    for j in range(k):
        step = relative_step * params[j]
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        numeric = (loglik(up, np.zeros(k)) - loglik(down, np.zeros(k))) / (2 * step)
        assert grad[j] == pytest.approx(numeric, rel=1e-4, abs=1e-4), j


WIDE = st.floats(0.01, 1000.0)


@settings(max_examples=40, deadline=None)
@given(WIDE, st.floats(0.05, 1e4), WIDE, st.floats(0.05, 1e4), st.integers(0, 2**31))
def test_pareto_nbd_gradient_matches_finite_differences(r, alpha, s, beta, seed):
    rng = np.random.default_rng(seed)
    T = rng.uniform(1, 200, 30)
    x = rng.choice([0, 1, 2, 5, 30, 400], 30).astype(float)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, 30), 0.0)
    weight = rng.integers(1, 5, 30).astype(float)

    profiles = collapse(x, t_x, T, weights=weight)
    args = (*profiles.at, profiles.weight, *profiles.values)

    def loglik(p: np.ndarray, grad: np.ndarray) -> float:
        return btyd.pareto_nbd_loglik(*args, *p, grad)

    _check_gradient(loglik, np.array([r, alpha, s, beta]), 4, relative_step=1e-4)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(0.05, 30.0), min_size=4, max_size=4), st.integers(0, 2**31))
def test_bgbb_and_mbgnbd_gradients_match_finite_differences(params, seed):
    rng = np.random.default_rng(seed)
    n = rng.integers(1, 12, 40).astype(float)
    t_x = np.floor(n * rng.uniform(0, 1, 40))
    x = np.where(t_x > 0, np.ceil(t_x * rng.uniform(0, 1, 40)), 0.0)
    weight = np.ones(40)

    def bgbb(p: np.ndarray, grad: np.ndarray) -> float:
        return btyd.bgbb_loglik(x, t_x, n, weight, *p, grad)

    _check_gradient(bgbb, np.array(params), 4)
    profiles = collapse(x, t_x, n)
    args = (*profiles.at, profiles.weight, *profiles.values)

    def mbg(p: np.ndarray, grad: np.ndarray) -> float:
        return btyd.bgnbd_loglik(*args, *p, 1.0, grad)

    _check_gradient(mbg, np.array(params), 4)


@pytest.mark.parametrize("model", MODELS)
def test_the_likelihood_kernels_match_the_models_p_alive(model):
    """p_alive is the share of the 'alive' term of the likelihood; the predictions of a new
    customer (no history yet) are the unconditional ones."""
    fitted = model.from_params(**PUBLISHED[model])
    alive = fitted.p_alive(frequency=[0, 2, 2], recency=[0, 30.4, 5.0], T=38.9)
    assert ((alive > 0) & (alive <= 1)).all() and alive[1] > alive[2]
    for t in (1.0, 39.0, 200.0):
        new = fitted.expected_purchases(t, frequency=0, recency=0, T=0)
        assert new == pytest.approx(fitted.expected_purchases_new(t), rel=1e-9)


@pytest.mark.parametrize("model", [*MODELS, clv.BetaGeoBetaBinom])
def test_probabilities_of_purchases_add_up_to_the_expectation(model):
    fitted = model.from_params(**PUBLISHED[model])
    t = 6.0 if model is clv.BetaGeoBetaBinom else 39.0
    counts = np.arange(400)
    probabilities = fitted.probability_of_purchases(counts, t)
    assert (probabilities >= 0).all()
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    mean = (counts * probabilities).sum()
    assert mean == pytest.approx(fitted.expected_purchases_new(t), rel=1e-6)
    assert type(fitted.probability_of_purchases(2, t)) is float


def test_bgbb_predictions(donations):
    model = clv.BetaGeoBetaBinom().fit(donations)
    alive = model.p_alive(donations)
    assert ((alive > 0) & (alive <= 1)).all()
    # the paper's figure: the expected repeat transactions of a new supporter in 1996-2001
    assert model.expected_purchases_new(6) == pytest.approx(
        (model.probability_of_purchases(np.arange(7), 6) * np.arange(7)).sum(), rel=1e-9
    )
    # a new customer, and p_alive by the formula of the paper (eq. 11) for (x, t_x, n)
    assert model.expected_purchases(5, frequency=0, recency=0, T=0) == pytest.approx(
        model.expected_purchases_new(5), rel=1e-9
    )
    a, b, g, d = model.params.values()
    likelihood = math.exp(bgbb_reference(3, 4, 6, a, b, g, d))

    def beta(u, v):
        return math.exp(math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v))

    want = beta(a + 3, b + 3) / beta(a, b) * beta(g, d + 7) / beta(g, d) / likelihood
    assert model.p_alive(frequency=3, recency=4, T=6) == pytest.approx(want, rel=1e-9)
    # eq. 13 against its sum over the next opportunities: alive through n + k and buying
    for n_star in (1, 5, 20):
        summed = sum(
            beta(a + 4, b + 3) / beta(a, b) * beta(g, d + 6 + k) / beta(g, d)
            for k in range(1, n_star + 1)
        )
        got = model.expected_purchases(n_star, frequency=3, recency=4, T=6)
        assert got == pytest.approx(summed / likelihood, rel=1e-9)
    with pytest.raises(RFMError, match="BG/BB expects whole numbers"):
        model.p_alive(frequency=3, recency=2, T=6)


def test_discrete_summary_rebuilds_the_donations_patterns(donations):
    """Per-year donations drawn to match each pattern of the paper's table (1995 the first
    year, then the repeat years up to the last), summarized back into the same table."""
    rng = np.random.default_rng(4)
    donors, years = [], []
    donor = 0
    for x, t_x, w in donations[["frequency", "recency", "weights"]].itertuples(index=False):
        for _ in range(w):
            chosen = [0] + ([t_x] if x else [])
            chosen += list(rng.choice(np.arange(1, t_x), x - 1, replace=False)) if x > 1 else []
            chosen += [t_x] if x else []  # a second row in a year counts once
            donors += [donor] * len(chosen)
            years += [1995 + int(c) for c in chosen]
            donor += 1
    shuffled = rng.permutation(len(donors))
    data = pa.table({"donor": np.array(donors)[shuffled], "year": np.array(years)[shuffled]})
    per_donor = clv.discrete_summary(data, customer="donor", period="year", end=2001)
    assert per_donor.num_rows == 11104 and per_donor["donor"].to_pylist() == list(range(11104))
    table = clv.discrete_summary(data, customer="donor", period="year", end=2001, patterns=True)
    want = donations.sort_values(["T", "frequency", "recency"]).reset_index(drop=True)
    assert table.to_pandas()[["frequency", "recency", "T", "weights"]].equals(
        want[["frequency", "recency", "T", "weights"]]
    )
    fitted = clv.BetaGeoBetaBinom().fit(table)
    assert {k: round(v, 3) for k, v in fitted.params.items()} == PUBLISHED[clv.BetaGeoBetaBinom]
    with pytest.raises(RFMError, match="must hold whole numbers"):
        clv.discrete_summary({"c": [1], "p": [1.5]}, customer="c", period="p")


@pytest.mark.parametrize("model", [*MODELS, clv.BetaGeoBetaBinom])
def test_every_model_follows_the_conventions(model, cdnow, donations):
    """Scalars give floats, lists arrays; tables keyed by customer; Gamma-Gamma and the
    lifetime value take any purchase model; short reprs."""
    summary = (
        pa.Table.from_pandas(
            donations.assign(monetary=np.random.default_rng(1).lognormal(3, 0.5, len(donations)))
        )
        if model is clv.BetaGeoBetaBinom
        else cdnow
    )
    purchases = model().fit(summary)
    assert purchases.converged
    one = {"frequency": 2, "recency": 4, "T": 6}
    assert type(purchases.p_alive(**one)) is float
    assert type(purchases.expected_purchases(3, **one)) is float
    many = purchases.expected_purchases([1, 3], frequency=[2, 2], recency=4, T=6)
    assert isinstance(many, np.ndarray) and many.shape == (2,) and many[0] < many[1]
    table = purchases.predict(summary, t=10)
    assert table.num_rows == summary.num_rows
    assert table.column_names[-2:] == ["p_alive", "expected_purchases"]
    spend = clv.GammaGamma().fit(cdnow)  # any spend model goes with any purchase model
    predictions = clv.predict(purchases, spend, summary, horizon=12, step=1)
    value = predictions["clv"].to_numpy()
    assert np.isfinite(value).all() and (value >= 0).all()
    np.testing.assert_allclose(
        value,
        purchases.expected_purchases(12, summary) * spend.expected_spend(summary),
        rtol=1e-9,
    )
    if model is not clv.BetaGeoBetaBinom:
        evaluation = clv.evaluate_holdout(purchases, cdnow)
        assert 0.8 < evaluation.totals["predicted"] / evaluation.totals["actual"] < 0.95
    text = repr(purchases)
    assert text.startswith(f"{model.__name__}(") and len(text) < 160 and "\n" not in text
    assert repr(model()) == f"{model.__name__}(not fitted)"
    with pytest.raises(RFMError, match="not fitted yet"):
        model().p_alive(**one)
    with pytest.raises(RFMError, match="takes the parameters"):
        model.from_params(r=1.0)


def test_analyze_takes_any_purchase_model():
    result = clv.analyze(
        datasets.load_example(), **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30",
        model=clv.ParetoNBD(),
    )  # fmt: skip
    assert isinstance(result.purchases, clv.ParetoNBD) and "ParetoNBD(" in repr(result)
    assert np.isfinite(result.table["clv"].to_numpy()).all()
    with pytest.raises(RFMError, match="model must be a purchase model"):
        clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, model="pareto")


def test_pareto_nbd_fit_does_not_depend_on_the_time_unit(cdnow):
    weeks = clv.ParetoNBD().fit(cdnow)
    x, t_x, T = clv.ParetoNBD._columns(cdnow)
    days = clv.ParetoNBD().fit({"frequency": x, "recency": t_x * 7, "T": T * 7})
    assert days.params["alpha"] == pytest.approx(weeks.params["alpha"] * 7, rel=1e-5)
    assert days.params["beta"] == pytest.approx(weeks.params["beta"] * 7, rel=1e-5)
    assert days.params["s"] == pytest.approx(weeks.params["s"], rel=1e-5)
    shift = -np.log(7) * x.sum()
    assert days.log_likelihood == pytest.approx(weeks.log_likelihood + shift, rel=1e-9)


def test_single_purchases_only_is_a_clear_error():
    for model in (*MODELS, clv.BetaGeoBetaBinom):
        with pytest.raises(RFMError, match="needs customers with repeat purchases"):
            model().fit({"frequency": [0, 0], "recency": [0, 0], "T": [5, 9]})


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "T"),
    [(clv.ModifiedBetaGeo, 52.0), (clv.ParetoNBD, 52.0), (clv.BetaGeoBetaBinom, 12)],
)
def test_fits_recover_simulated_parameters(model, T):
    truth = model.from_params(**PUBLISHED[model])
    summary = truth.simulate(300_000, T=T if model is clv.BetaGeoBetaBinom else
                             np.linspace(20, 80, 300_000), seed=11)  # fmt: skip
    fitted = model().fit(summary)
    for name, value in truth.params.items():
        assert abs(fitted.params[name] - value) < 4 * fitted.standard_errors[name], name


def test_pareto_nbd_series_and_panels_agree():
    """Where the series converges (shifts within a factor of 2), it gives the integrals of the
    panels: the two ways of the kernel agree."""
    rng = np.random.default_rng(1)
    checked = 0
    for _ in range(500):
        p, q = 10 ** rng.uniform(-2, 3), 1 + 10 ** rng.uniform(-2, 3)
        big = 10 ** rng.uniform(-2, 4)
        small = big * (1 - 0.5 * rng.uniform() ** 2)
        t0 = 10 ** rng.uniform(-3, 4) * rng.uniform()
        t1 = t0 + 10 ** rng.uniform(-2, 4)
        *series, converged = btyd.pareto_nbd_series(p, q, big, small, t0, t1)
        if not converged:
            continue
        checked += 1
        panels = btyd.pareto_nbd_integral(p, q, big, small, t0, t1)
        np.testing.assert_allclose(series, panels, rtol=1e-7, atol=1e-14 * panels[0])
    assert checked > 300


def test_a_frequency_past_what_float64_tells_apart_is_refused():
    """Beyond 1e15 purchases, r + x == x: a prediction would be a silent wrong number."""
    model = clv.ParetoNBD.from_params(r=0.55, alpha=10.6, s=0.61, beta=11.7)
    assert model.p_alive(frequency=1e15, recency=50, T=52) == 0.0
    with pytest.raises(RFMError, match="a whole frequency from 0 to 1e"):
        model.p_alive(frequency=1e17, recency=50, T=52)
