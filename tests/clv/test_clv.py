"""BTYD models: the published CDNOW estimates, the summary against pandas, gradients against
finite differences, parameters recovered from simulated data, and the awkward inputs."""

from __future__ import annotations

import datetime as dt

import numba
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from helpers import TEST_DATA
from hypothesis import given, settings
from hypothesis import strategies as st

from rfm_fast import RFMError, clv, datasets
from rfm_fast._kernels import btyd
from rfm_fast.clv.fitting import collapse

SAMPLE = TEST_DATA / "CDNOW_sample.txt"  # see data/README.md
COLUMNS = dict(customer="master_id", timestamp="date", amount="dollar_value", unit="W")


@pytest.fixture(scope="module")
def cdnow() -> pa.Table:
    """Calibration 1997-01-01 .. 1997-09-30 and holdout to 1998-06-30, in weeks."""
    orders = datasets.read_cdnow(SAMPLE)
    return clv.calibration_holdout(
        orders, **COLUMNS, calibration_end="1997-09-30", holdout_end="1998-06-30"
    )


def test_cdnow_summary_matches_the_published_data(cdnow):
    assert cdnow.num_rows == 2357
    first = cdnow.slice(0, 1).to_pylist()[0]  # customer 4: x = 2, t_x = 30.43, T = 38.86
    assert first["master_id"] == 4 and first["frequency"] == 2
    assert first["recency"] == pytest.approx(30.43, abs=0.005)
    assert first["T"] == pytest.approx(38.86, abs=0.005)
    assert (cdnow["frequency"].to_numpy() > 0).sum() == 946
    assert set(cdnow["duration_holdout"].to_pylist()) == {39.0}


def test_bgnbd_reproduces_fader_hardie_lee_2005(cdnow):
    model = clv.BetaGeo().fit(cdnow)
    published = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    assert {k: round(v, 3) for k, v in model.params.items()} == published
    assert round(model.log_likelihood, 1) == -9582.4
    assert model.converged and model.customers == 2357
    assert all(0 < se < 1 for se in model.standard_errors.values())


def test_gamma_gamma_reproduces_fader_hardie_2013(cdnow):
    model = clv.GammaGamma().fit(cdnow)
    published = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    assert {k: round(v, 2) for k, v in model.params.items()} == published
    assert model.customers == 946 and model.excluded == 2357 - 946


def test_holdout_evaluation(cdnow):
    model = clv.BetaGeo().fit(cdnow)
    evaluation = clv.evaluate_holdout(model, cdnow)
    totals = evaluation.totals
    assert totals["actual"] == 1882
    assert totals["predicted"] == pytest.approx(1653.4, abs=0.5)
    rows = evaluation.by_frequency.to_pylist()
    # figure 4 of the paper: customers without repeat purchases, actual 0.24, model 0.23
    assert rows[0]["customers"] == 1411
    assert rows[0]["actual"] == pytest.approx(0.237, abs=0.001)
    assert rows[0]["predicted"] == pytest.approx(0.225, abs=0.001)
    predicted = evaluation.customers["predicted"].to_numpy()
    assert np.isfinite(predicted).all() and (predicted >= 0).all()
    assert 0.5 < totals["correlation"] < 1


def _summary_by_pandas(
    table: pa.Table, as_of: dt.date, days_per_unit: float, returns: str = "net"
) -> pd.DataFrame:
    """The BTYD summary written the obvious way: one purchase per customer and day. A return
    (a negative amount) is not a purchase with ``returns="net"``: it only takes its amount off
    the repeat spend; ``"drop"`` leaves it out."""
    df = table.to_pandas()
    df = df[df["d"] <= as_of].dropna(subset=["c"])
    if returns == "drop":
        df = df[~(df["a"] < 0)]
    rows = {}
    for customer, group in df.groupby("c"):
        bought = group[~(group["a"] < 0)] if returns == "net" else group
        if bought.empty:
            continue  # only returns: not a customer of the summary
        days = sorted({(d - as_of).days for d in bought["d"]})
        x = len(days) - 1
        first_day_spend = bought["a"][[(d - as_of).days == days[0] for d in bought["d"]]].sum()
        rows[customer] = {
            "frequency": x,
            "recency": (days[-1] - days[0]) / days_per_unit,
            "T": (0 - days[0]) / days_per_unit,
            "monetary": (group["a"].sum() - first_day_spend) / x if x else 0.0,
        }
    columns = ["frequency", "recency", "T", "monetary"]
    return pd.DataFrame.from_dict(rows, orient="index", columns=columns).sort_index()


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(st.integers(0, 6), st.integers(0, 30), st.integers(-5, 60)),
        min_size=1,
        max_size=60,
    ),
    st.sampled_from(["D", "W", 3.5]),
    st.permutations(range(60)),
    st.sampled_from(["net", "purchase", "drop"]),
)
def test_summary_matches_pandas_and_ignores_row_order(rows, unit, permutation, returns):
    order = [i for i in permutation if i < len(rows)]
    table = pa.table(
        {
            "c": [rows[i][0] for i in order],
            "d": pa.array([dt.date(2024, 1, 1) + dt.timedelta(days=rows[i][1]) for i in order]),
            "a": [rows[i][2] / 4 for i in order],
        }
    )
    as_of = dt.date(2024, 1, 25)  # rows after it are left out
    got = clv.summary(table, customer="c", timestamp="d", amount="a", as_of=as_of, unit=unit,
                      batch_rows=7, returns=returns).to_pandas().set_index("c")  # fmt: skip
    days_per_unit = {"D": 1.0, "W": 7.0}.get(unit, unit)
    want = _summary_by_pandas(table, as_of, days_per_unit, returns)
    assert list(got.index) == list(want.index)
    assert (got["frequency"].to_numpy(int) == want["frequency"].to_numpy(int)).all()
    for column in ("recency", "T", "monetary"):
        np.testing.assert_allclose(
            got[column].to_numpy(float), want[column].to_numpy(float), rtol=1e-12, atol=1e-12
        )


PARAMS = st.floats(0.05, 20.0)


@settings(max_examples=30)
@given(PARAMS, PARAMS, PARAMS, PARAMS, st.integers(0, 2**31))
def test_bgnbd_gradient_matches_finite_differences(r, alpha, a, b, seed):
    rng = np.random.default_rng(seed)
    n = 50
    T = rng.uniform(1, 60, n)
    x = rng.integers(0, 12, n).astype(float)
    t_x = np.where(x > 0, T * rng.uniform(0, 1, n), 0.0)
    profiles = collapse(x, t_x, T)
    args = (*profiles.at, profiles.weight, *profiles.values)
    grad = np.zeros(4)
    btyd.bgnbd_loglik(*args, r, alpha, a, b, 0.0, grad)
    params = np.array([r, alpha, a, b])
    for j in range(4):
        step = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        numeric = (
            btyd.bgnbd_loglik(*args, *up, 0.0, np.zeros(4))
            - btyd.bgnbd_loglik(*args, *down, 0.0, np.zeros(4))
        ) / (2 * step)
        assert grad[j] == pytest.approx(numeric, rel=1e-4, abs=1e-4)


@settings(max_examples=30)
@given(st.floats(0.2, 30), st.floats(0.2, 30), st.floats(0.2, 100), st.integers(0, 2**31))
def test_gamma_gamma_gradient_matches_finite_differences(p, q, gamma, seed):
    rng = np.random.default_rng(seed)
    x = rng.integers(1, 15, 40).astype(float)
    m = rng.lognormal(3, 1, 40)
    grad = np.zeros(3)
    weight = np.ones(40)
    btyd.gamma_gamma_loglik(x, m, weight, p, q, gamma, grad)
    params = np.array([p, q, gamma])
    for j in range(3):
        step = 1e-6 * params[j]
        up, down = params.copy(), params.copy()
        up[j] += step
        down[j] -= step
        numeric = (
            btyd.gamma_gamma_loglik(x, m, weight, *up, np.zeros(3))
            - btyd.gamma_gamma_loglik(x, m, weight, *down, np.zeros(3))
        ) / (2 * step)
        assert grad[j] == pytest.approx(numeric, rel=1e-4, abs=1e-4)


@pytest.mark.slow
@pytest.mark.parametrize(
    "truth",
    [
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        {"r": 1.5, "alpha": 10.0, "a": 2.0, "b": 6.0},
    ],
)
def test_bgnbd_recovers_simulated_parameters(truth):
    summary = clv.simulate(300_000, **truth, T=np.linspace(20, 80, 300_000), seed=11)
    model = clv.BetaGeo().fit(summary)
    for name, value in truth.items():
        # within 4 standard errors of the truth (and the errors are small at this size)
        assert abs(model.params[name] - value) < 4 * model.standard_errors[name], name
        assert model.standard_errors[name] < 0.1 * value


@pytest.mark.slow
def test_gamma_gamma_recovers_simulated_parameters():
    rng = np.random.default_rng(5)
    n, p, q, gamma = 200_000, 6.25, 3.74, 15.44
    x = rng.integers(1, 10, n)
    nu = rng.gamma(q, 1 / gamma, n)
    m = rng.gamma(p * x, 1 / nu) / x
    model = clv.GammaGamma().fit({"frequency": x, "monetary": m})
    for name, value in {"p": p, "q": q, "gamma": gamma}.items():
        assert abs(model.params[name] - value) < 4 * model.standard_errors[name], name


def test_likelihood_does_not_depend_on_thread_count():
    summary = clv.simulate(20_000, r=0.5, alpha=5, a=1, b=3, T=40, resolution=1 / 7, seed=1)
    x, t_x, T = clv.BetaGeo._columns(summary)
    profiles = collapse(x, t_x, T)
    args = (*profiles.at, profiles.weight, *profiles.values, 0.5, 5.0, 1.0, 3.0, 0.0)
    values = []
    for threads in (1, numba.config.NUMBA_NUM_THREADS):
        numba.set_num_threads(threads)
        grad = np.zeros(4)
        values.append((btyd.bgnbd_loglik(*args, grad), grad.tolist()))
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    assert values[0] == values[-1]


def test_predictions_are_sane(cdnow):
    purchases = clv.BetaGeo().fit(cdnow)
    spend = clv.GammaGamma().fit(cdnow)
    alive = purchases.p_alive(cdnow)
    x = cdnow["frequency"].to_numpy()
    assert ((alive > 0) & (alive <= 1)).all()
    assert (alive[x == 0] == 1).all()  # no repeat purchase: no chance yet to drop out
    probabilities = purchases.probability_of_purchases(np.arange(200), 39)
    assert probabilities.sum() == pytest.approx(1.0, abs=1e-6)
    mean = (np.arange(200) * probabilities).sum()
    assert mean == pytest.approx(float(purchases.expected_purchases_new(39)), rel=1e-6)
    value = clv.customer_lifetime_value(purchases, spend, cdnow, horizon=52, step=4)
    undiscounted = purchases.expected_purchases(52, cdnow) * spend.expected_spend(cdnow)
    assert value == pytest.approx(undiscounted, rel=1e-9)
    discounted = clv.customer_lifetime_value(
        purchases, spend, cdnow, horizon=52, step=4, discount_rate=0.01
    )
    assert (discounted <= value + 1e-12).all() and (discounted > 0).all()
    method = spend.clv(purchases, cdnow, horizon=52, step=4, discount_rate=0.01)
    assert (method == discounted).all()


def test_single_purchases_only_is_a_clear_error():
    summary = {"frequency": [0, 0], "recency": [0, 0], "T": [5, 9]}
    with pytest.raises(RFMError, match="needs customers with repeat purchases"):
        clv.BetaGeo().fit(summary)
    with pytest.raises(RFMError, match="Gamma-Gamma needs customers with repeat purchases"):
        clv.GammaGamma().fit({"frequency": [0, 2], "monetary": [0.0, -5.0]})


@pytest.mark.filterwarnings("ignore::rfm_fast.errors.RFMWarning")  # 6 customers: may not converge
def test_non_positive_repeat_spend_is_left_out_and_counted():
    x = np.array([1, 2, 3, 2, 4, 1, 3, 2])
    m = np.array([10.0, 12.0, 9.0, 0.0, 11.0, -3.0, 14.0, 8.0])
    model = clv.GammaGamma().fit({"frequency": x, "monetary": m})
    assert model.excluded == 2 and model.customers == 6
    expected = model.expected_spend({"frequency": x, "monetary": m})
    assert np.isfinite(list(model.params.values())).all()
    assert expected[3] == expected[5] == pytest.approx(model.population_mean)


def test_invalid_summaries_and_unfitted_models():
    with pytest.raises(RFMError, match="invalid summary row 0"):
        clv.BetaGeo().fit({"frequency": [1], "recency": [9], "T": [5]})  # recency beyond T
    with pytest.raises(RFMError, match="needs a 'T' column"):
        clv.BetaGeo().fit({"frequency": [1], "recency": [1]})
    with pytest.raises(RFMError, match="not fitted yet"):
        clv.BetaGeo().p_alive({"frequency": [1], "recency": [1], "T": [2]})
    with pytest.raises(RFMError, match="unit must be one of"):
        clv.summary(pa.table({"c": [1]}), customer="c", timestamp="t", amount="a", unit="fortnight")


def test_as_of_before_a_customers_first_purchase_leaves_the_customer_out():
    table = pa.table(
        {
            "c": [1, 1, 2],
            "d": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 5), dt.date(2024, 3, 1)]),
            "a": [1.0, 2.0, 3.0],
        }
    )
    summary = clv.summary(table, customer="c", timestamp="d", amount="a", as_of="2024-02-01")
    assert summary["c"].to_pylist() == [1]  # customer 2 had not bought yet
    assert summary["T"].to_pylist() == [31.0]


@pytest.mark.filterwarnings("ignore::rfm_fast.errors.RFMWarning")  # may stop at a bound
def test_tiny_data_never_gives_nan_parameters():
    model = clv.BetaGeo().fit({"frequency": [1, 0], "recency": [1.0, 0.0], "T": [2.0, 3.0]})
    assert np.isfinite(list(model.params.values())).all()
    spend = clv.GammaGamma().fit({"frequency": [1], "monetary": [10.0]})
    assert np.isfinite(list(spend.params.values())).all()


def test_fits_do_not_depend_on_the_currency_or_time_unit(cdnow):
    """gamma scales with money and alpha with time; the other parameters do not move. A fit in
    won instead of dollars (x 1e5) once stopped at the search bound and was silently wrong."""
    spend = clv.GammaGamma().fit(cdnow)
    frequency, monetary = cdnow["frequency"].to_numpy(), cdnow["monetary"].to_numpy()
    in_won = clv.GammaGamma().fit({"frequency": frequency, "monetary": monetary * 1e5})
    assert in_won.converged
    assert in_won.params["gamma"] == pytest.approx(spend.params["gamma"] * 1e5, rel=1e-5)
    assert in_won.params["p"] == pytest.approx(spend.params["p"], rel=1e-5)
    assert in_won.params["q"] == pytest.approx(spend.params["q"], rel=1e-5)
    x, t_x, T = clv.BetaGeo._columns(cdnow)
    purchases = clv.BetaGeo().fit(cdnow)
    in_minutes = clv.BetaGeo().fit({"frequency": x, "recency": t_x * 10080, "T": T * 10080})
    assert in_minutes.params["alpha"] == pytest.approx(purchases.params["alpha"] * 10080, rel=1e-5)
    assert in_minutes.params["r"] == pytest.approx(purchases.params["r"], rel=1e-5)
    # the log-likelihood of the same data moves by -log(scale) per repeat purchase
    shift = -np.log(10080) * x.sum()
    assert in_minutes.log_likelihood == pytest.approx(purchases.log_likelihood + shift, rel=1e-9)


def test_no_purchases_in_no_time(cdnow):
    purchases = clv.BetaGeo().fit(cdnow)
    assert purchases.probability_of_purchases([0, 1, 2], 0.0).tolist() == [1.0, 0.0, 0.0]
