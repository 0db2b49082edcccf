"""Churn risk: the probability of no purchase in a window against simulation from each model,
the bands, the dates, the segments, and the refusals."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pytest

import rfm_fast
from rfm_fast import RFMError, clv, datasets

T, WINDOW = 52.0, 13.0
TRUTH = {
    clv.BetaGeo: {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.0},
    clv.ModifiedBetaGeo: {"r": 0.5, "alpha": 6.0, "a": 1.2, "b": 3.0},
    clv.ParetoNBD: {"r": 0.55, "alpha": 10.6, "s": 0.61, "beta": 11.7},
}


def _simulate_past_t(model_class: type, customers: int, seed: int) -> tuple[pa.Table, np.ndarray]:
    """Customers followed to ``T + WINDOW`` by the model's story: their summary at ``T`` and
    whether they bought in ``(T, T + WINDOW]``."""
    params = TRUTH[model_class]
    rng = np.random.default_rng(seed)
    rate = rng.gamma(params["r"], 1 / params["alpha"], customers)
    if model_class is clv.ParetoNBD:
        death = rng.exponential(1.0, customers) / rng.gamma(
            params["s"], 1 / params["beta"], customers
        )
        repeats = np.full(customers, np.iinfo(np.int64).max)
    else:
        death = np.full(customers, np.inf)
        shift = 1 if model_class is clv.ModifiedBetaGeo else 0
        repeats = rng.geometric(rng.beta(params["a"], params["b"], customers)) - shift
    x = np.zeros(customers, dtype=np.int64)
    t_x = np.zeros(customers)
    bought = np.zeros(customers, dtype=bool)
    counts = rng.poisson(rate * (T + WINDOW))
    for i in range(customers):
        times = np.sort(rng.uniform(0, T + WINDOW, counts[i]))
        times = times[times < death[i]][: max(repeats[i], 0)]
        before = times[times <= T]
        x[i] = before.shape[0]
        t_x[i] = before[-1] if x[i] else 0.0
        bought[i] = times.shape[0] > x[i]
    return pa.table({"frequency": x, "recency": t_x, "T": np.full(customers, T)}), bought


@pytest.mark.parametrize("model_class", list(TRUTH))
def test_p_no_purchase_matches_simulation(model_class):
    summary, bought = _simulate_past_t(model_class, 30_000, seed=3)
    model = model_class.from_params(**TRUTH[model_class])
    risk = clv.churn_risk(model, summary, days=WINDOW * 7, unit="W")
    p = risk["p_no_purchase"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    # overall, and within bands of the prediction (calibration)
    assert p.mean() == pytest.approx(1 - bought.mean(), abs=0.01)
    for low, high in ((0, 0.5), (0.5, 0.8), (0.8, 0.95), (0.95, 1.01)):
        inside = (p >= low) & (p < high)
        if inside.sum() > 500:
            assert p[inside].mean() == pytest.approx(1 - bought[inside].mean(), abs=0.03)


def test_bgnbd_formula_and_bands():
    model = clv.BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    x, t_x, T_ = 3, 20.0, 38.0
    alive = model.p_alive(frequency=x, recency=t_x, T=T_)
    expected = (1 - alive) + alive * ((4.414 + T_) / (4.414 + T_ + 90 / 7)) ** (0.243 + x)
    summary = pa.table({"frequency": [x], "recency": [t_x], "T": [T_]})
    risk = clv.churn_risk(model, summary, days=90, unit="W", as_of=dt.date(2024, 1, 1))
    assert risk["p_no_purchase"][0].as_py() == pytest.approx(expected, rel=1e-12)
    median = (4.414 + T_) * (2 ** (1 / (0.243 + x)) - 1) * 7
    assert risk["days_to_next_purchase"][0].as_py() == pytest.approx(median, rel=1e-12)
    assert risk["next_purchase"][0].as_py() == dt.date(2024, 1, 1) + dt.timedelta(
        days=round(median)
    )
    # the median wait given alive: half of the customers alive wait longer
    p_wait = clv.churn_risk(model, summary, days=median, unit="W")
    if_alive = (p_wait["p_no_purchase"][0].as_py() - (1 - alive)) / alive
    assert if_alive == pytest.approx(0.5, rel=1e-9)
    bands = clv.churn.risk_band(np.array([0.0, 0.4999, 0.5, 0.7999, 0.8, 1.0]))
    assert bands.to_pylist() == ["low", "low", "medium", "medium", "high", "high"]
    assert risk["next_purchase"].type == pa.date32()
    assert clv.churn_risk(model, summary)["next_purchase"].null_count == 1


def test_pareto_nbd_if_alive_is_a_probability_falling_with_the_window():
    model = clv.ParetoNBD.from_params(**TRUTH[clv.ParetoNBD])
    summary = pa.table({"frequency": [0, 2, 10], "recency": [0.0, 30.0, 50.0], "T": [52.0] * 3})
    p = [clv.churn.p_no_purchase_if_alive(model, summary, t) for t in (0.0, 4.0, 26.0, 520.0)]
    assert np.allclose(p[0], 1.0)
    assert (np.diff(np.vstack(p), axis=0) <= 0).all()
    # never below the chance of dying before buying (no purchase ever)
    assert (p[-1] > 0).all()


def test_refusals():
    summary = pa.table({"frequency": [1], "recency": [1.0], "T": [2.0]})
    bgbb = clv.BetaGeoBetaBinom.from_params(alpha=1.2, beta=0.75, gamma=0.66, delta=2.8)
    with pytest.raises(RFMError, match="BG/NBD, MBG/NBD or Pareto/NBD"):
        clv.churn_risk(bgbb, summary)
    with pytest.raises(RFMError, match="not fitted"):
        clv.churn_risk(clv.BetaGeo(), summary)
    model = clv.BetaGeo.from_params(r=0.243, alpha=4.414, a=0.793, b=2.426)
    for days in (0, -1, float("nan"), "90", True):
        with pytest.raises(RFMError, match="days"):
            clv.churn_risk(model, summary, days=days)
    with pytest.raises(RFMError, match="as_of"):
        clv.churn_risk(model, summary, as_of="yesterday")
    with pytest.raises(RFMError, match="unit"):
        clv.churn_risk(model, summary, unit="fortnight")


def test_churn_by_segment_adds_up():
    data = datasets.load_example()
    result = clv.analyze(data, **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    scores = rfm_fast.score(data, **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    table = clv.churn_by_segment(result, scores, days=90)
    assert table["customers"].to_numpy().sum() == result.table.num_rows
    expected = result.purchases.expected_purchases(90 / 7, result.table)
    total = (expected * result.table["expected_spend"].to_numpy()).sum()
    assert table["expected_revenue"].to_numpy().sum() == pytest.approx(total, rel=1e-9)
    at_risk = table["revenue_at_risk"].to_numpy()
    assert (at_risk >= 0).all()
    assert (table["high_risk"].to_numpy() <= table["customers"].to_numpy()).all()
    with pytest.raises(RFMError, match="segment"):
        clv.churn_by_segment(result, pa.table({"customer_id": [1]}))


def test_compare_models_scores_each_model_on_the_holdout():
    data = datasets.load_example()
    comparison = clv.compare_models(
        data, **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30", holdout_end="1998-06-30"
    )
    rows = {row["model"]: row for row in comparison.table.to_pylist()}
    assert set(rows) == set(clv.PURCHASE_MODELS)
    assert comparison.best == min(rows, key=lambda name: rows[name]["mae"])
    for name, row in rows.items():
        totals = comparison.evaluations[name].totals
        assert row["mae"] == totals["mae"] and row["actual"] == totals["actual"]
        model = comparison.models[name]
        assert row["bic"] == pytest.approx(4 * np.log(model.customers) - 2 * model.log_likelihood)
    by_bic = clv.compare_models(
        data, **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30", criterion="bic",
        models=["bgnbd", "pareto-nbd"],
    )  # fmt: skip
    assert by_bic.table["model"].to_pylist() == ["bgnbd", "pareto-nbd"]
    assert by_bic.best == min(by_bic.table.to_pylist(), key=lambda row: row["bic"])["model"]
    assert "best=" in repr(by_bic)
    with pytest.raises(RFMError, match="models must be"):
        clv.compare_models(data, **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30",
                           models=["bgbb"])  # fmt: skip
    with pytest.raises(RFMError, match="criterion"):
        clv.compare_models(data, **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30",
                           criterion="aic")  # fmt: skip
    with pytest.raises(RFMError, match="calibration_end"):  # (analyze has a default split)
        clv.compare_models(data, **datasets.EXAMPLE_COLUMNS, calibration_end=None)


def test_analyze_auto_refits_the_best_and_adds_churn():
    data = datasets.load_example()
    result = clv.analyze(
        data, **datasets.EXAMPLE_COLUMNS, as_of="1998-06-30", model="auto",
        calibration_end="1997-09-30", churn_days=90,
    )  # fmt: skip
    assert isinstance(result.purchases, clv.PURCHASE_MODELS[result.comparison.best])
    assert result.purchases.customers == result.table.num_rows
    assert result.table.column_names[-4:] == [
        "p_no_purchase", "risk", "days_to_next_purchase", "next_purchase",
    ]  # fmt: skip
    assert result.table["next_purchase"].null_count == 0
    named = clv.analyze(data, **datasets.EXAMPLE_COLUMNS, model="mbgnbd")
    assert isinstance(named.purchases, clv.ModifiedBetaGeo) and named.comparison is None
    with pytest.raises(RFMError, match="'auto'"):
        clv.analyze(data, **datasets.EXAMPLE_COLUMNS, model="bgbb")
