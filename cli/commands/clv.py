"""``rfm clv``: a purchase model and Gamma-Gamma fitted, and p_alive, purchases, spend and
CLV predicted per customer."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rfm_fast_cli.console import counted, err, out, print_table
from rfm_fast_cli.errors import reported_errors
from rfm_fast_cli.options import CommandOptions, InputArg, PurchaseModelName, reading_options
from rfm_fast_cli.run import check_output_path, database_input, write_output

import rfm_fast


@reading_options("rfm clv")
def clv_command(
    input: InputArg,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Predictions file: .parquet, .csv, .arrow."),
    ] = None,
    *,
    options: CommandOptions,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="End of the observation (ISO-8601).")
    ] = None,
    unit: Annotated[
        str, typer.Option(help="Time unit: D, W, M, Y, or a number of days (e.g. 14).")
    ] = "W",
    horizon: Annotated[float, typer.Option(help="Prediction horizon, in --unit.")] = 52.0,
    discount_rate: Annotated[float, typer.Option(help="Discount rate per step.")] = 0.0,
    step: Annotated[
        float | None, typer.Option(help="Discounting step, in --unit (default: horizon / 12).")
    ] = None,
    model: Annotated[
        PurchaseModelName,
        typer.Option(
            help="Purchase model: BG/NBD, MBG/NBD, Pareto/NBD, or auto: the best of them on "
            "the holdout after --calibration-end."
        ),
    ] = PurchaseModelName.bgnbd,
    calibration_end: Annotated[
        str | None,
        typer.Option(
            "--calibration-end",
            help="With --model auto: end of the calibration period (ISO-8601); the holdout "
            "runs from there to --as-of. Default: two thirds of the way from the first "
            "purchase to --as-of.",
        ),
    ] = None,
    churn_days: Annotated[
        float | None,
        typer.Option(
            "--churn-days",
            help="Add the churn risk in the next N days: p_no_purchase, risk (low/medium/"
            "high), days_to_next_purchase, next_purchase.",
        ),
    ] = None,
) -> None:
    """Fit a purchase model (BG/NBD unless --model) and Gamma-Gamma to INPUT and predict
    p_alive, purchases, spend and CLV per customer (needs the extra: clv)."""
    with reported_errors():
        data = database_input(input, options["query"], options["table"])
        if output is not None:
            check_output_path(output, [data])
        from rfm_fast import clv

        result = clv.analyze(
            data,
            **options.keywords("clv.analyze"),
            as_of=as_of,
            unit=_unit(unit),
            horizon=horizon,
            discount_rate=discount_rate,
            step=step,
            model=model.value,
            calibration_end=calibration_end,
            churn_days=churn_days,
        )
        by_segment = None
        if churn_days is not None:  # per RFM segment, the customers scored as rfm score does
            scores = rfm_fast.score(data, **options.keywords("score"), as_of=as_of)
            by_segment = clv.churn_by_segment(result, scores, days=churn_days)
        if output is not None:
            write_output(result.table, output)
    print_clv_summary(result, output)
    if by_segment is not None:
        columns = {
            "segment": "segment",
            "customers": "customers",
            "mean_p_alive": "p_alive",
            "high_risk": "high risk",
            "expected_revenue": "expected revenue",
            "revenue_at_risk": "at risk",
        }
        title = (
            f"Per segment, the next {churn_days:g} days (revenue at risk: if the model is right)"
        )
        if not result.p_alive_identified:  # p_alive and what rests on it say nothing here
            for name in ("mean_p_alive", "revenue_at_risk"):
                del columns[name]
            title = (
                f"Per segment, the next {churn_days:g} days (high risk: likely to buy nothing "
                "in them; p_alive and revenue at risk not shown: the fit cannot tell who "
                "stopped buying)"
            )
        print_table(by_segment, columns, title)


_UNIT_NAMES = {"D": "days", "W": "weeks", "M": "months", "Y": "years"}


def _unit(text: str) -> str | float:
    """--unit: a letter, or a number of days such as 14."""
    try:
        return float(text)
    except ValueError:
        return text


def print_clv_summary(result, output: Path | None) -> None:
    """Parameters, fit quality and the totals of the predictions (and the comparison of the
    models, and the risk bands, where the result has them)."""
    table = result.table
    if result.comparison is not None:
        from rfm_fast.clv.model_choice import format_comparison

        out.print(
            f"models on the holdout after {result.calibration_end} (best by "
            f"{result.comparison.criterion}, marked *; refitted on all the purchases):"
        )
        for line in format_comparison(result.comparison):
            out.print(line, soft_wrap=True)
    for name, model in ((result.purchases.LABEL, result.purchases), ("Gamma-Gamma", result.spend)):
        params = ", ".join(
            f"{k} {v:.4g} (se {model.standard_errors[k]:.2g})" for k, v in model.params.items()
        )
        out.print(f"{name}: {params}; log-likelihood {model.log_likelihood:,.1f}")
    out.print(
        f"Gamma-Gamma fitted on {counted(result.spend.customers, 'customer')} with repeat "
        "purchases; "
        f"{result.spend.excluded:,} others get the mean spend per purchase "
        f"{result.spend.population_mean:,.2f}"
    )
    for line in result.warnings:
        err.print(f"warning: {line}", soft_wrap=True)
    p_alive = table.column("p_alive").to_numpy()
    shown = f"{p_alive.mean():.3f}" if result.p_alive_identified else "not identifiable"
    unit = _UNIT_NAMES.get(result.unit, f"units of {result.unit} days")
    out.print(
        f"customers {table.num_rows:,}; mean p_alive {shown}; "
        f"expected purchases in the next {result.horizon:g} {unit}: "
        f"{table.column('expected_purchases').to_numpy().sum():,.0f}; "
        f"total CLV {table.column('clv').to_numpy().sum():,.2f}"
    )
    if "risk" in table.column_names:
        bands = table.column("risk").to_pylist()
        counts = ", ".join(f"{band} {bands.count(band):,}" for band in ("low", "medium", "high"))
        what = "no purchase in the window"
        if not result.p_alive_identified:
            what += "; a quiet spell only, not a customer lost"
        out.print(f"churn risk ({what}): {counts}")
    if output is not None:
        out.print(f"wrote {counted(table.num_rows, 'customer')} to {output}")
