"""What a fit can be trusted with: parameters at a bound, imprecise parameters, whether p_alive
is identifiable, the default calibration split of a model choice, and how the CLI, the report
and the lists show a fit that cannot tell who stopped buying (Online Retail) against one that
can (CDNOW)."""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pyarrow as pa
import pytest
from helpers import SHARED_DATA
from hypothesis import given, settings
from hypothesis import strategies as st
from rfm_fast_cli.main import app
from typer.testing import CliRunner

from rfm_fast import clv, datasets
from rfm_fast.clv.diagnostics import DROPOUT_Z

ONLINE_RETAIL = SHARED_DATA / "online_retail" / "online_retail_I.csv.gz"
RETAIL_COLUMNS = dict(customer="CustomerID", timestamp="InvoiceDate", amount="Quantity*UnitPrice")
needs_online_retail = pytest.mark.skipif(
    not ONLINE_RETAIL.exists(), reason="needs ../shared/data/online_retail (not in a plain clone)"
)


def simulated(a: float, b: float, customers: int = 3000, seed: int = 1) -> pa.Table:
    return clv.simulate(
        customers, r=0.5, alpha=5.0, a=a, b=b, T=np.full(customers, 52.0), seed=seed
    )


@pytest.mark.filterwarnings("ignore::rfm_fast.errors.RFMWarning")  # the bound, on purpose
def test_no_dropout_is_not_identifiable():
    fitted = clv.BetaGeo().fit(simulated(a=1e-4, b=10.0))
    diagnostics = clv.diagnose(fitted)
    assert diagnostics.p_alive_identified is False
    assert not diagnostics.trusted
    assert any("cannot tell customers who stopped buying" in w for w in diagnostics.warnings)


def test_real_dropout_is_identifiable():
    fitted = clv.BetaGeo().fit(simulated(a=0.8, b=2.5))
    diagnostics = clv.diagnose(fitted)
    assert diagnostics.p_alive_identified is True
    assert diagnostics.at_bound == () and diagnostics.imprecise == ()
    assert diagnostics.trusted and diagnostics.warnings == ()


@settings(max_examples=60, deadline=None)
@given(
    value=st.floats(1e-6, 1e3),
    error=st.one_of(st.floats(1e-8, 1e4), st.just(math.nan)),
    bound=st.sampled_from([(), ("a",), ("b",)]),
)
def test_the_identifiability_rule(value, error, bound):
    """Identified exactly when no dropout parameter is at a bound and a >= 2 se."""
    model = clv.BetaGeo.from_params(r=1.0, alpha=1.0, a=value, b=1.0)
    model.standard_errors = {"r": 0.1, "alpha": 0.1, "a": error, "b": 0.1}
    model.at_bound = bound
    model.converged = not bound
    diagnostics = clv.diagnose(model)
    expected = not bound and math.isfinite(error) and value >= DROPOUT_Z * error
    assert diagnostics.p_alive_identified is expected
    assert ("a" in diagnostics.imprecise) is (
        "a" not in bound and not (math.isfinite(error) and error <= value)
    )
    assert diagnostics.trusted is (expected and "a" not in diagnostics.imprecise)


def test_spend_models_have_no_p_alive_verdict():
    table = clv.summary(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, unit="W")
    diagnostics = clv.diagnose(clv.GammaGamma().fit(table))
    assert diagnostics.model == "Gamma-Gamma" and diagnostics.p_alive_identified is None


def test_holdout_far_off_is_a_warning():
    model = clv.BetaGeo().fit(simulated(a=0.8, b=2.5))
    close = clv.diagnose(model, {"predicted": 110.0, "actual": 100.0, "mae": 0.5})
    far = clv.diagnose(model, {"predicted": 150.0, "actual": 100.0, "mae": 0.5})
    assert close.warnings == () and close.holdout["mae"] == 0.5
    assert len(far.warnings) == 1 and "+50%" in far.warnings[0]


def test_default_calibration_end_is_two_thirds_of_the_days():
    orders = pa.table(
        {
            "customer": [1, 1, 2],
            "day": pa.array([dt.date(2024, 1, 1), dt.date(2024, 1, 20), dt.date(2024, 1, 31)]),
            "amount": [5.0, 5.0, 7.0],
        }
    )
    columns = dict(customer="customer", timestamp="day", amount="amount")
    # first purchase 2024-01-01, as_of 2024-02-01 (latest + 1 day): 31 days, two thirds is 20
    assert clv.default_calibration_end(orders, **columns) == "2024-01-21"
    assert clv.default_calibration_end(orders, **columns, as_of="2024-01-31") == "2024-01-21"


def test_model_auto_needs_no_calibration_date():
    result = clv.analyze(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, model="auto")
    assert result.calibration_end == "1997-12-31"
    assert result.comparison is not None
    purchases = result.diagnostics[0]
    assert purchases.holdout is not None and purchases.holdout["actual"] > 0
    assert result.p_alive_identified and result.warnings == ()  # CDNOW: dropout is clear


@needs_online_retail
@pytest.mark.slow
def test_online_retail_is_flagged_and_cdnow_is_not(tmp_path):
    runner = CliRunner()
    retail = runner.invoke(
        app,
        ["clv", str(ONLINE_RETAIL), "--customer", "CustomerID", "--timestamp", "InvoiceDate",
         "--amount", "Quantity*UnitPrice", "--churn-days", "90"],
    )  # fmt: skip
    assert retail.exit_code == 0, retail.output
    assert "mean p_alive not identifiable" in retail.stdout
    assert "warning: BG/NBD cannot tell customers who stopped buying" in retail.stderr
    header = next(line for line in retail.stdout.splitlines() if "segment" in line and "|" in line)
    assert "customers" in header and "p_alive" not in header and "at risk" not in header
    assert "a quiet spell only, not a customer lost" in retail.stdout

    cdnow = runner.invoke(
        app,
        ["clv", str(datasets.example_path()), "--customer", "customer_id", "--timestamp", "date",
         "--amount", "dollar_value", "--churn-days", "90"],
    )  # fmt: skip
    assert cdnow.exit_code == 0, cdnow.output
    assert "mean p_alive 0." in cdnow.stdout and "warning" not in cdnow.stderr
    header = next(line for line in cdnow.stdout.splitlines() if "segment" in line and "|" in line)
    assert "p_alive" in header and "high risk" in header

    # the list leaves p_alive out, with the reason on stderr
    output = tmp_path / "list.csv"
    listed = runner.invoke(
        app,
        ["export", str(ONLINE_RETAIL), "--customer", "CustomerID", "--timestamp", "InvoiceDate",
         "--amount", "Quantity*UnitPrice", "--order", "InvoiceNo", "--clv", "-o", str(output)],
    )  # fmt: skip
    assert listed.exit_code == 0, listed.output
    header = output.read_text().splitlines()[0].replace('"', "").split(",")
    assert "clv" in header and "p_alive" not in header
    assert "p_alive is left out" in listed.stderr


@needs_online_retail
@pytest.mark.slow
def test_the_report_says_p_alive_is_not_to_be_trusted(tmp_path):
    import rfm_fast
    from rfm_fast.insight.report import build_report

    options = dict(RETAIL_COLUMNS, order="InvoiceNo")
    result = rfm_fast.score(ONLINE_RETAIL, **options)
    predictions = clv.analyze(ONLINE_RETAIL, **RETAIL_COLUMNS)
    document = build_report(result, clv=predictions)
    section = document[document.index("id='lifetime-value'") :]
    assert "id='clv-warning'" in section and "Treat these predictions with care" in section
    assert "mean p_alive" not in section and "id='p-alive'" not in section
    assert "the next 52 weeks" in section


def test_the_report_shows_p_alive_where_it_is_identified():
    import rfm_fast
    from rfm_fast.insight.report import build_report

    data = datasets.load_example()
    result = rfm_fast.score(data, **datasets.EXAMPLE_COLUMNS)
    predictions = clv.analyze(data, **datasets.EXAMPLE_COLUMNS)
    document = build_report(result, clv=predictions)
    section = document[document.index("id='lifetime-value'") :]
    assert "clv-warning" not in section and "mean p_alive" in section
    assert "Models: BG/NBD" in section
