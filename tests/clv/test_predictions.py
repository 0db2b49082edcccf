"""The predictions of the BTYD models: every method over scalars, lists, arrays and 0-d arrays
(against the formulas of the papers written out one customer at a time), broadcasting, the
tables keyed by customer, and the short reprs of the models and results."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from scipy.special import hyp2f1

from rfm_fast import RFMError, clv, datasets

# Three customers: one without a repeat purchase, one long silent, one recent.
FREQUENCY = [0, 3, 7]
RECENCY = [0.0, 10.0, 48.5]
T = [30.0, 52.0, 50.0]
MONETARY = [0.0, 40.0, 22.5]
HORIZON = [26.0, 52.0, 13.0]
PURCHASES = [0, 2, 5]


@pytest.fixture(scope="module")
def models() -> tuple[clv.BetaGeo, clv.GammaGamma]:
    table = clv.summary(
        datasets.load_example(), **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30", unit="W"
    )
    return clv.BetaGeo().fit(table), clv.GammaGamma().fit(table)


@pytest.fixture(scope="module")
def example() -> pa.Table:
    return clv.summary(
        datasets.load_example(), **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30", unit="W"
    )


# The formulas of Fader, Hardie & Lee (2005) and Fader & Hardie (2013), one customer at a time.


def p_alive_formula(model: clv.BetaGeo, x: float, t_x: float, T: float) -> float:
    p = model.params
    if x == 0:
        return 1.0
    ratio = ((p["alpha"] + T) / (p["alpha"] + t_x)) ** (p["r"] + x)
    return 1 / (1 + p["a"] / (p["b"] + x - 1) * ratio)


def expected_purchases_formula(
    model: clv.BetaGeo, t: float, x: float, t_x: float, T: float
) -> float:  # eq. 10
    r, alpha, a, b = model.params.values()
    head = (a + b + x - 1) / (a - 1)
    tail = 1 - ((alpha + T) / (alpha + T + t)) ** (r + x) * hyp2f1(
        r + x, b + x, a + b + x - 1, t / (alpha + T + t)
    )
    return head * tail * p_alive_formula(model, x, t_x, T)


def expected_purchases_new_formula(model: clv.BetaGeo, t: float) -> float:  # eq. 9
    r, alpha, a, b = model.params.values()
    tail = 1 - (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, t / (alpha + t))
    return (a + b - 1) / (a - 1) * tail


def probability_formula(model: clv.BetaGeo, x: int, t: float) -> float:  # eq. 8
    r, alpha, a, b = model.params.values()

    def log_beta(u: float, v: float) -> float:
        return math.lgamma(u) + math.lgamma(v) - math.lgamma(u + v)

    def nbd(j: int) -> float:
        log = (
            math.lgamma(r + j)
            - math.lgamma(r)
            - math.lgamma(j + 1)
            + r * math.log(alpha / (alpha + t))
        )
        return math.exp(log + (j * math.log(t / (alpha + t)) if j else 0.0))

    value = math.exp(log_beta(a, b + x) - log_beta(a, b)) * nbd(x)
    if x > 0:
        below = sum(nbd(j) for j in range(x))
        value += math.exp(log_beta(a + 1, b + x - 1) - log_beta(a, b)) * (1 - below)
    return value


def expected_spend_formula(model: clv.GammaGamma, x: float, m: float) -> float:
    p, q, gamma = model.params.values()
    if x > 0 and m > 0:
        return (gamma + x * m) * p / (p * x + q - 1)
    return model.population_mean


# Each method: how to call it with the inputs, and the formula for customer i.
Method = tuple[Callable[..., Any], Callable[..., float]]
METHODS: dict[str, Method] = {
    "p_alive": (
        lambda bg, gg, k: bg.p_alive(frequency=k(FREQUENCY), recency=k(RECENCY), T=k(T)),
        lambda bg, gg, i: p_alive_formula(bg, FREQUENCY[i], RECENCY[i], T[i]),
    ),
    "expected_purchases": (
        lambda bg, gg, k: bg.expected_purchases(
            k(HORIZON), frequency=k(FREQUENCY), recency=k(RECENCY), T=k(T)
        ),
        lambda bg, gg, i: expected_purchases_formula(
            bg, HORIZON[i], FREQUENCY[i], RECENCY[i], T[i]
        ),
    ),
    "expected_purchases_curves": (
        lambda bg, gg, k: bg.expected_purchases_curves(
            [52.0], frequency=k(FREQUENCY), recency=k(RECENCY), T=k(T)
        )[1][0],
        lambda bg, gg, i: expected_purchases_formula(bg, 52.0, FREQUENCY[i], RECENCY[i], T[i]),
    ),
    "expected_purchases_new": (
        lambda bg, gg, k: bg.expected_purchases_new(k(HORIZON)),
        lambda bg, gg, i: expected_purchases_new_formula(bg, HORIZON[i]),
    ),
    "probability_of_purchases": (
        lambda bg, gg, k: bg.probability_of_purchases(k(PURCHASES), k(HORIZON)),
        lambda bg, gg, i: probability_formula(bg, PURCHASES[i], HORIZON[i]),
    ),
    "expected_spend": (
        lambda bg, gg, k: gg.expected_spend(frequency=k(FREQUENCY), monetary=k(MONETARY)),
        lambda bg, gg, i: expected_spend_formula(gg, FREQUENCY[i], MONETARY[i]),
    ),
    "clv": (  # no discounting, one step: expected purchases times expected spend
        lambda bg, gg, k: gg.clv(
            bg,
            frequency=k(FREQUENCY),
            recency=k(RECENCY),
            T=k(T),
            monetary=k(MONETARY),
            horizon=52,
            step=52,
        ),
        lambda bg, gg, i: (
            expected_purchases_formula(bg, 52.0, FREQUENCY[i], RECENCY[i], T[i])
            * expected_spend_formula(gg, FREQUENCY[i], MONETARY[i])
        ),
    ),
}

# How a customer's inputs are given: the first customer as a scalar or a 0-d array, or all
# three as a list or an array.
KINDS: dict[str, Callable[[list], Any]] = {
    "scalar": lambda values: values[0],
    "numpy scalar": lambda values: np.float64(values[0]),
    "0-d array": lambda values: np.array(values[0]),
    "list": lambda values: list(values),
    "array": lambda values: np.array(values),
}


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("method", METHODS)
def test_every_prediction_takes_scalars_lists_and_arrays(models, method, kind):
    bg, gg = models
    call, formula = METHODS[method]
    got = call(bg, gg, KINDS[kind])
    if kind in ("list", "array"):
        assert isinstance(got, np.ndarray) and got.shape == (3,)
        want = [formula(bg, gg, i) for i in range(3)]
        np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-14)
        # the same values, one customer at a time
        for i in range(3):
            one = call(bg, gg, lambda values, i=i: values[i])
            assert one == pytest.approx(got[i], rel=1e-12, abs=1e-15)
    else:
        assert type(got) is float  # a plain Python float, not an array
        assert got == pytest.approx(formula(bg, gg, 0), rel=1e-9, abs=1e-14)


def test_the_reported_call_works(models):
    """Issue 15: ``probability_of_purchases(2, 10)`` with a plain int raised TypeError."""
    bg, _ = models
    value = bg.probability_of_purchases(2, 10)
    assert type(value) is float
    assert value == pytest.approx(probability_formula(bg, 2, 10.0), rel=1e-9)


def test_predictions_broadcast_like_numpy(models):
    bg, gg = models
    # (3, 1) customers against (2,) horizons
    x, t_x, age = (np.array(values)[:, None] for values in (FREQUENCY, RECENCY, T))
    got = bg.expected_purchases(np.array([13.0, 52.0]), frequency=x, recency=t_x, T=age)
    assert got.shape == (3, 2)
    for i in range(3):
        for j, t in enumerate((13.0, 52.0)):
            want = expected_purchases_formula(bg, t, FREQUENCY[i], RECENCY[i], T[i])
            assert got[i, j] == pytest.approx(want, rel=1e-9)
    table = bg.probability_of_purchases(np.arange(4)[:, None], [1.0, 10.0, 100.0])
    assert table.shape == (4, 3)
    assert table[2, 1] == pytest.approx(probability_formula(bg, 2, 10.0), rel=1e-9)
    assert gg.expected_spend(frequency=[[1, 2], [3, 4]], monetary=30.0).shape == (2, 2)
    alive = bg.p_alive(frequency=[1, 2, 3], recency=5.0, T=10.0)  # scalars stretch
    assert alive.shape == (3,) and alive[1] == pytest.approx(p_alive_formula(bg, 2, 5.0, 10.0))


def test_the_keyword_form_agrees_with_the_summary_form(models, example):
    bg, gg = models
    columns = {name: example[name].to_numpy() for name in ("frequency", "recency", "T", "monetary")}
    np.testing.assert_array_equal(
        bg.p_alive(example),
        bg.p_alive(frequency=columns["frequency"], recency=columns["recency"], T=columns["T"]),
    )
    np.testing.assert_array_equal(
        bg.expected_purchases(39, example),
        bg.expected_purchases(
            39, frequency=columns["frequency"], recency=columns["recency"], T=columns["T"]
        ),
    )
    # one horizon per customer, given as a column, is the same as one for all
    per_customer = np.full(example.num_rows, 39.0)
    np.testing.assert_allclose(
        bg.expected_purchases(per_customer, example), bg.expected_purchases(39, example), rtol=1e-12
    )
    np.testing.assert_array_equal(
        gg.expected_spend(example),
        gg.expected_spend(frequency=columns["frequency"], monetary=columns["monetary"]),
    )
    np.testing.assert_array_equal(
        clv.customer_lifetime_value(bg, gg, example, horizon=52, step=4),
        clv.customer_lifetime_value(bg, gg, horizon=52, step=4, **columns),
    )
    # a mapping of scalars is a summary of one customer
    one = {"frequency": 3, "recency": 10.0, "T": 52.0}
    assert bg.p_alive(one) == bg.p_alive(**one)


def test_bad_prediction_inputs_are_clear_errors(models, example):
    bg, gg = models
    with pytest.raises(RFMError, match="x must be a whole number of purchases >= 0; got -1"):
        bg.probability_of_purchases([1, -1], 10)
    with pytest.raises(RFMError, match="x must be a whole number"):
        bg.probability_of_purchases(1.5, 10)
    with pytest.raises(RFMError, match="t must be a non-negative time; got -2"):
        bg.probability_of_purchases(1, [3, -2])
    with pytest.raises(RFMError, match="t must be a non-negative time"):
        bg.expected_purchases_new(-1)
    with pytest.raises(RFMError, match="t must be a non-negative time"):
        bg.expected_purchases([1, -1], frequency=1, recency=1, T=2)
    with pytest.raises(RFMError, match=r"do not broadcast together \(x has shape \(3,\), t has"):
        bg.probability_of_purchases([0, 1, 2], [1, 2])
    with pytest.raises(RFMError, match="t must be a number, a list or an array"):
        bg.expected_purchases_new("soon")
    with pytest.raises(RFMError, match="not both"):
        bg.p_alive(example, frequency=1)
    with pytest.raises(RFMError, match="missing: T"):
        bg.p_alive(frequency=1, recency=0)
    with pytest.raises(RFMError, match="invalid summary row 1"):
        bg.p_alive(frequency=[1, 2], recency=[1, 5], T=4)  # recency beyond T
    with pytest.raises(RFMError, match="missing: monetary"):
        gg.expected_spend(frequency=2)
    with pytest.raises(RFMError, match="times must be a list of horizons"):
        bg.expected_purchases_curves([[1, 2]], example)
    with pytest.raises(RFMError, match="t must be one number"):
        bg.predict(example, t=[1, 2])
    with pytest.raises(RFMError, match="one row per customer"):
        bg.predict({"frequency": [[1]], "recency": [[1.0]], "T": [[2.0]]})


def test_predictions_on_a_summary_are_keyed_by_customer(models, example):
    bg, gg = models
    # a shuffled summary: the predictions keep its order
    shuffled = example.take(np.random.default_rng(3).permutation(example.num_rows))
    table = bg.predict(shuffled, t=52)
    assert table.column_names == ["customer_id", "p_alive", "expected_purchases"]
    assert table["customer_id"].equals(shuffled["customer_id"])
    np.testing.assert_array_equal(table["p_alive"].to_numpy(), bg.p_alive(shuffled))
    np.testing.assert_array_equal(
        table["expected_purchases"].to_numpy(), bg.expected_purchases(52, shuffled)
    )
    assert bg.predict(shuffled).column_names == ["customer_id", "p_alive"]
    spend = gg.predict(shuffled)
    assert spend.column_names == ["customer_id", "expected_spend"]
    np.testing.assert_array_equal(spend["expected_spend"].to_numpy(), gg.expected_spend(shuffled))

    everything = clv.predict(bg, gg, shuffled, horizon=52, discount_rate=0.01, step=4)
    assert everything.column_names == [
        "customer_id", "p_alive", "expected_purchases", "expected_spend", "clv",
    ]  # fmt: skip
    assert everything["customer_id"].equals(shuffled["customer_id"])
    np.testing.assert_allclose(
        everything["clv"].to_numpy(),
        clv.customer_lifetime_value(bg, gg, shuffled, horizon=52, discount_rate=0.01, step=4),
        rtol=1e-12,
    )


def test_keyed_predictions_from_pandas_mappings_and_summaries_without_customers(models):
    bg, _ = models
    frame = pd.DataFrame(
        {"client": ["ana", "bo", "cé"], "frequency": FREQUENCY, "recency": RECENCY, "T": T}
    )
    table = bg.predict(frame)
    assert table.column_names == ["client", "p_alive"]
    assert table["client"].to_pylist() == ["ana", "bo", "cé"]
    mapping = {"id": [7, 8, 9], "frequency": FREQUENCY, "recency": RECENCY, "T": T}
    assert bg.predict(mapping, t=4)["id"].to_pylist() == [7, 8, 9]
    simulated = clv.simulate(10, r=0.5, alpha=6, a=1.2, b=3, T=52, seed=2)  # no customer column
    assert bg.predict(simulated).column_names == ["p_alive"]


def test_analyze_is_predict_on_the_summary(example):
    result = clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    predictions = clv.predict(result.purchases, result.spend, example, horizon=52)
    assert result.table.select(predictions.column_names).equals(predictions)


def test_holdout_customers_are_keyed_by_customer():
    table = clv.calibration_holdout(
        datasets.load_example(), **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30",
        unit="W",
    )  # fmt: skip
    evaluation = clv.evaluate_holdout(clv.BetaGeo().fit(table), table)
    customers = evaluation.customers
    assert customers.column_names == ["customer_id", "frequency", "predicted", "actual"]
    assert customers["customer_id"].equals(table["customer_id"])


def _assert_short(text: str, lines: int) -> None:
    assert len(text.splitlines()) <= lines and len(text) <= 120 * lines, text
    assert "pyarrow.Table" not in text and "----" not in text and "array(" not in text, text


def test_reprs_are_short_and_give_the_headline_numbers():
    result = clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, as_of="1997-09-30")
    text = repr(result)
    _assert_short(text, 4)
    customers = result.table.num_rows
    assert f"customers={customers:,}" in text and "horizon=52" in text and "unit='W'" in text
    total = result.table["clv"].to_numpy().sum()
    assert f"total clv {total:,.2f}" in text
    assert f"mean p_alive {result.table['p_alive'].to_numpy().mean():.3f}" in text
    assert repr(result.purchases) in text and repr(result.spend) in text

    bg = result.purchases
    text = repr(bg)
    _assert_short(text, 1)
    assert text.startswith("BetaGeo(r=") and f"r={bg.params['r']:.4g}" in text
    assert f"b={bg.params['b']:.4g}" in text
    assert f"log_likelihood={bg.log_likelihood:,.2f}" in text and f"customers={customers:,}" in text
    gg = result.spend
    text = repr(gg)
    _assert_short(text, 1)
    assert f"gamma={gg.params['gamma']:.4g}" in text and f"excluded={gg.excluded:,}" in text
    assert repr(clv.BetaGeo()) == "BetaGeo(not fitted)"
    assert repr(clv.GammaGamma()) == "GammaGamma(not fitted)"

    table = clv.calibration_holdout(
        datasets.load_example(), **datasets.EXAMPLE_COLUMNS, calibration_end="1997-09-30",
        unit="W",
    )  # fmt: skip
    evaluation = clv.evaluate_holdout(clv.BetaGeo().fit(table), table)
    text = repr(evaluation)
    _assert_short(text, 1)
    totals = evaluation.totals
    assert f"customers={table.num_rows:,}" in text
    assert f"actual={totals['actual']:,.0f}" in text and f"mae={totals['mae']:.4g}" in text
    assert f"correlation={totals['correlation']:.3f}" in text


def test_repr_of_collapsed_profiles():
    from rfm_fast.clv.fitting import collapse

    profiles = collapse(np.array([1.0, 1.0, 2.0]), np.array([5.0, 5.0, 5.0]))
    assert repr(profiles) == "Collapsed(customers=3, profiles=2, columns=2)"
