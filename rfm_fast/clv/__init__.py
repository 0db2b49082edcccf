"""Customer lifetime value: who is still alive, how much each customer will buy, and what they
are worth, with the buy-till-you-die models BG/NBD and Gamma-Gamma.

* :func:`summary` (and :func:`calibration_holdout`) turn an order history into the model-ready
  summary of the BTYD literature, with the same kernels as :func:`rfm_fast.score`.
* :class:`BetaGeo` fits BG/NBD (Fader, Hardie & Lee 2005) by maximum likelihood: the
  log-likelihood and its gradient are a Numba kernel over customers collapsed into distinct
  (frequency, recency, T) profiles, and scipy's L-BFGS-B drives it.
* :class:`ModifiedBetaGeo` (MBG/NBD, Batislam, Denizel & Filiztekin 2007), :class:`ParetoNBD`
  (Pareto/NBD, Schmittlein, Morrison & Colombo 1987) and :class:`BetaGeoBetaBinom` (BG/BB,
  Fader, Hardie & Shang 2010, in discrete time) are fitted and predict the same way: every
  purchase model is a :class:`PurchaseModel`.
* :class:`GammaGamma` fits the Gamma-Gamma spend model (Fader & Hardie 2013) the same way, and
  goes with any purchase model.

* :func:`customer_lifetime_value` combines the two; :func:`predict` gives every prediction on
  a summary as a table keyed by customer; :func:`analyze` runs everything at once (what
  ``rfm clv`` runs); :func:`evaluate_holdout` and :func:`simulate` check a fit.

The prediction methods take a summary table or its columns as keywords (numbers, lists or
arrays, broadcast together as NumPy broadcasts) and return a float for scalar inputs, else an
array; ``predict`` (the function and the models' methods) returns a table keyed by customer.

The modules: :mod:`~rfm_fast.clv.profiles` (the summary), :mod:`~rfm_fast.clv.fitting` (shared
by the models), :mod:`~rfm_fast.clv.purchase_model`, :mod:`~rfm_fast.clv.bgnbd`,
:mod:`~rfm_fast.clv.pareto_nbd`, :mod:`~rfm_fast.clv.bgbb`, :mod:`~rfm_fast.clv.gamma_gamma`,
:mod:`~rfm_fast.clv.lifetime_value`, :mod:`~rfm_fast.clv.holdout`,
:mod:`~rfm_fast.clv.results` and :mod:`~rfm_fast.clv.valuation`.

Needs scipy (``pip install 'rfm_fast[clv]'``). Definitions and the treatment of awkward inputs
are in docs/clv.md.
"""

from __future__ import annotations

from rfm_fast.clv.bgbb import BetaGeoBetaBinom, discrete_summary
from rfm_fast.clv.bgnbd import WARM_START_CUSTOMERS, BetaGeo, ModifiedBetaGeo
from rfm_fast.clv.churn import RISK_BANDS, churn_by_segment, churn_risk
from rfm_fast.clv.diagnostics import FitDiagnostics, diagnose
from rfm_fast.clv.fitting import GRADIENT_TOLERANCE, LOG_BOUND
from rfm_fast.clv.gamma_gamma import GammaGamma
from rfm_fast.clv.holdout import HoldoutEvaluation, evaluate_holdout, simulate
from rfm_fast.clv.lifetime_value import customer_lifetime_value, predict
from rfm_fast.clv.model_choice import PURCHASE_MODELS, ModelComparison, compare_models
from rfm_fast.clv.pareto_nbd import ParetoNBD
from rfm_fast.clv.profiles import (
    CALIBRATION_SHARE,
    UNITS,
    calibration_holdout,
    default_calibration_end,
    summary,
)
from rfm_fast.clv.purchase_model import PurchaseModel
from rfm_fast.clv.results import CLVResult
from rfm_fast.clv.valuation import analyze, with_p_alive

__all__ = [
    "CALIBRATION_SHARE",
    "GRADIENT_TOLERANCE",
    "LOG_BOUND",
    "PURCHASE_MODELS",
    "RISK_BANDS",
    "UNITS",
    "WARM_START_CUSTOMERS",
    "BetaGeo",
    "BetaGeoBetaBinom",
    "CLVResult",
    "FitDiagnostics",
    "GammaGamma",
    "HoldoutEvaluation",
    "ModelComparison",
    "ModifiedBetaGeo",
    "ParetoNBD",
    "PurchaseModel",
    "analyze",
    "calibration_holdout",
    "churn_by_segment",
    "churn_risk",
    "compare_models",
    "customer_lifetime_value",
    "default_calibration_end",
    "diagnose",
    "discrete_summary",
    "evaluate_holdout",
    "predict",
    "simulate",
    "summary",
    "with_p_alive",
]
