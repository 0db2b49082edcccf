"""Fitting and predicting BG/NBD + Gamma-Gamma for millions of customers (target: 5M in under
10 s on 2 cores, issue 6), and fitting MBG/NBD, Pareto/NBD and BG/BB on as many customers
simulated from each (issue 15: in the range of BG/NBD). The summaries are simulated from the
models themselves, with times in weeks at day resolution, as summaries of real order histories
are (BG/BB: 6 to 52 opportunities).

    python benchmarks/bench_clv.py --customers 5M --json benchmarks/results/clv_5m.json
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np
import pyarrow as pa
from generate import parse_count  # benchmarks/ is on the path when run as a script

from rfm_fast import clv

TRUTH = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
SPEND = {"p": 6.25, "q": 3.74, "gamma": 15.44}
OTHER_MODELS = {
    "mbgnbd": (clv.ModifiedBetaGeo, {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}),
    "pareto_nbd": (clv.ParetoNBD, {"r": 0.5533, "alpha": 10.5786, "s": 0.6061, "beta": 11.6698}),
    "bgbb": (clv.BetaGeoBetaBinom, {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}),
}


def simulated_summary(customers: int, seed: int = 7) -> pa.Table:
    rng = np.random.default_rng(seed)
    T = rng.uniform(13, 156, customers)  # first purchases spread over 2.75 years, in weeks
    table = clv.simulate(customers, **TRUTH, T=T, resolution=1 / 7, seed=seed)
    x = table["frequency"].to_numpy()
    nu = rng.gamma(SPEND["q"], 1 / SPEND["gamma"], customers)
    total = rng.gamma(SPEND["p"] * np.maximum(x, 1), 1 / nu)
    monetary = np.where(x > 0, np.round(total / np.maximum(x, 1), 2), 0.0)
    return table.append_column("monetary", pa.array(monetary))


def timed(label: str, timings: dict, function, *args, **kwargs):
    started = time.perf_counter()
    result = function(*args, **kwargs)
    timings[label] = round(time.perf_counter() - started, 3)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", default="5M")
    parser.add_argument("--json")
    args = parser.parse_args()
    customers = parse_count(args.customers)
    summary = simulated_summary(customers)
    warm = summary.slice(0, 2000)  # compile (or load) the kernels outside the timings
    clv.customer_lifetime_value(
        clv.BetaGeo().fit(warm), clv.GammaGamma().fit(warm), warm, horizon=2
    )
    timings: dict[str, float] = {}
    started = time.perf_counter()
    purchases = timed("bgnbd_fit", timings, clv.BetaGeo().fit, summary)
    spend = timed("gamma_gamma_fit", timings, clv.GammaGamma().fit, summary)
    timed("p_alive", timings, purchases.p_alive, summary)
    timed("expected_purchases_52", timings, purchases.expected_purchases, 52.0, summary)
    timed("expected_spend", timings, spend.expected_spend, summary)
    timed(
        "clv_52_weeks_12_steps",
        timings,
        clv.customer_lifetime_value,
        purchases,
        spend,
        summary,
        horizon=52,
        step=52 / 12,
        discount_rate=0.01,
    )
    total = round(time.perf_counter() - started, 2)
    other = {}
    for name, (model, truth) in OTHER_MODELS.items():
        rng = np.random.default_rng(7)
        if model is clv.BetaGeoBetaBinom:
            T, resolution = rng.integers(6, 53, customers), None
        else:
            T, resolution = rng.uniform(13, 156, customers), 1 / 7
        simulated = model.from_params(**truth).simulate(
            customers, T=T, resolution=resolution, seed=7
        )
        model().fit(simulated.slice(0, 2000))  # compile (or load) the kernels
        fitted = timed(f"{name}_fit", timings, model().fit, simulated)
        other[name] = {"params": fitted.params, "truth": truth}
    report = {
        "customers": customers,
        "cores": os.cpu_count(),
        "seconds": timings,
        "total_seconds": total,
        "bgnbd": purchases.params,
        "bgnbd_truth": TRUTH,
        "gamma_gamma": spend.params,
        "gamma_gamma_truth": SPEND,
        **other,
    }
    print(json.dumps(report, indent=1))
    if args.json:
        with open(args.json, "w") as out:
            json.dump(report, out, indent=1)


if __name__ == "__main__":
    main()
