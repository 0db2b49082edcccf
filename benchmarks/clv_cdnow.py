"""BG/NBD and Gamma-Gamma on the CDNOW sample, against the published estimates, and the
holdout evaluation (weeks 40-78) with its plot.

    python benchmarks/clv_cdnow.py --plot docs/clv_holdout.png \
        --json benchmarks/results/clv_cdnow.json

Calibration 1997-01-01 .. 1997-09-30 (39 weeks), holdout to 1998-06-30 (39 weeks), time in
weeks, purchases on the same day merged (Fader, Hardie & Lee 2005; Fader & Hardie 2013).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pyarrow.compute as pc

from rfm_fast import clv, datasets

SAMPLE = (
    Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "cdnow" / "CDNOW_sample.txt"
)
PUBLISHED_BGNBD = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426, "log_likelihood": -9582.4}
PUBLISHED_GAMMA_GAMMA = {"p": 6.25, "q": 3.74, "gamma": 15.44}
COLUMNS = dict(customer="master_id", timestamp="date", amount="dollar_value", unit="W")


def weekly_tracking(orders, model: clv.BetaGeo, weeks: int = 78):
    """Cumulative repeat purchases per week since 1997-01-01: actual, and expected by the
    model for the cohort (each customer from their first purchase on)."""
    days = orders.column("date").cast("int32").to_numpy().astype(np.int64)
    customers = orders.column("master_id").to_numpy()
    start = int(np.datetime64("1997-01-01", "D").astype(np.int64))
    order = np.lexsort((days, customers))
    customers, days = customers[order], days[order]
    first_row = np.r_[True, customers[1:] != customers[:-1]]
    new_day = np.r_[True, (customers[1:] != customers[:-1]) | (days[1:] != days[:-1])]
    repeat_days = days[new_day & ~first_row]  # one purchase per customer and day, first left out
    first_day = days[first_row]
    grid = np.arange(1, weeks + 1)
    actual = np.array([(repeat_days < start + 7 * w).sum() for w in grid])
    expected = np.array(
        [
            model.expected_purchases_new(np.clip((start + 7 * w - first_day) / 7, 0, None)).sum()
            for w in grid
        ]
    )
    return grid, actual, expected


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sample", type=Path, default=SAMPLE)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    orders = datasets.read_cdnow(args.sample)
    table = clv.calibration_holdout(
        orders, **COLUMNS, calibration_end="1997-09-30", holdout_end="1998-06-30"
    )
    purchases = clv.BetaGeo().fit(table)
    spend = clv.GammaGamma().fit(table)
    evaluation = clv.evaluate_holdout(purchases, table)
    report = {
        "customers": table.num_rows,
        "repeat_customers": int(pc.sum(pc.greater(table["frequency"], 0)).as_py()),
        "bgnbd": {**purchases.params, "log_likelihood": purchases.log_likelihood},
        "bgnbd_standard_errors": purchases.standard_errors,
        "bgnbd_published": PUBLISHED_BGNBD,
        "gamma_gamma": {**spend.params, "customers": spend.customers},
        "gamma_gamma_published": PUBLISHED_GAMMA_GAMMA,
        "holdout_totals": evaluation.totals,
        "holdout_by_frequency": evaluation.by_frequency.to_pylist(),
    }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    if args.plot:
        from matplotlib.figure import Figure

        grid, actual, expected = weekly_tracking(orders, purchases)
        figure = Figure(figsize=(11, 4))
        left, right = figure.subplots(1, 2)
        left.plot(grid, actual, color="black", label="actual")
        left.plot(grid, expected, color="#d64545", linestyle="--", label="BG/NBD")
        left.axvline(39, color="grey", linewidth=0.8)
        left.set_xlabel("week (calibration: 1-39, holdout: 40-78)")
        left.set_ylabel("cumulative repeat purchases")
        left.legend()
        rows = evaluation.by_frequency
        ticks = [str(f) for f in rows["frequency"].to_pylist()]
        ticks[-1] += "+"
        right.plot(ticks, rows["actual"].to_numpy(), "o-", color="black", label="actual")
        right.plot(ticks, rows["predicted"].to_numpy(), "s--", color="#d64545", label="BG/NBD")
        right.set_xlabel("repeat purchases in weeks 1-39")
        right.set_ylabel("mean purchases in weeks 40-78")
        right.legend()
        figure.suptitle("CDNOW sample (2,357 customers): BG/NBD against the holdout period")
        figure.savefig(args.plot, dpi=110, bbox_inches="tight")


if __name__ == "__main__":
    main()
