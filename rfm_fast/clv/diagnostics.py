"""How far a fitted model can be trusted (:class:`FitDiagnostics`, :func:`diagnose`).

A maximum-likelihood fit always returns numbers; whether they mean anything is another matter.
Three things are checked, each from the fit itself:

* **parameters at a bound**: the search stopped at the edge of its range (e^±12 after scaling),
  so the data do not pin the parameter down;
* **imprecise parameters**: a standard error larger than the estimate (or none: a flat
  likelihood), so the estimate could as well be half or double;
* **p_alive identifiable**: the purchase models tell "stopped buying" from "quiet for now" only
  through the dropout process. When its parameter cannot be told from zero (an estimate within
  two standard errors of 0, or at a bound), the fit sees no dropout: p_alive is near 1 for
  nearly everyone, churn risk is only the chance of a quiet spell, and lifetime value assumes
  every customer stays. On the UCI Online Retail year, BG/NBD gives ``a 0.0039 (se 0.011)``:
  not identifiable; on CDNOW ``a 0.49 (se 0.027)``: identifiable.

With a holdout (``rfm clv --model auto``), the predicted and actual holdout purchases are kept
too, and a total more than :data:`HOLDOUT_TOLERANCE` off is a warning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

DROPOUT_Z = 2.0
"""The dropout parameter is identified when its estimate is at least this many standard errors
above zero (about a two-sided 95% interval that excludes zero)."""

HOLDOUT_TOLERANCE = 0.2
"""A holdout total predicted more than this fraction above or below the actual one is a
warning."""

DROPOUT_PARAMETERS = {
    "BG/NBD": ("a", "b"),
    "MBG/NBD": ("a", "b"),
    "Pareto/NBD": ("s", "beta"),
    "BG/BB": ("gamma", "delta"),
}
"""Per purchase model, the parameters of its dropout distribution; the first is the one that
takes dropout to zero as it goes to zero (BG/NBD's ``a`` of the beta distribution of the dropout
probability, Pareto/NBD's shape ``s`` of the gamma distribution of the dropout rate, BG/BB's
``gamma``)."""


@dataclass(frozen=True)
class FitDiagnostics:
    """What a fit can be trusted with (see the module documentation).

    Attributes
    ----------
    model : str
        The model's label (``"BG/NBD"``, ``"Gamma-Gamma"``, ...).
    at_bound : tuple of str
        Parameters whose search stopped at a bound.
    imprecise : tuple of str
        Parameters (not at a bound) whose standard error is larger than the estimate or not
        finite.
    p_alive_identified : bool or None
        Whether the fit tells customers who stopped from customers who are only quiet; ``None``
        for a spend model.
    converged : bool
        Whether the optimizer converged inside the bounds.
    holdout : dict of str to float, optional
        ``predicted`` and ``actual`` holdout purchases and ``mae``, where a holdout was scored.
    warnings : tuple of str
        One plain-language sentence per problem found; empty when none was.
    """

    model: str
    at_bound: tuple[str, ...]
    imprecise: tuple[str, ...]
    p_alive_identified: bool | None
    converged: bool
    holdout: dict[str, float] | None
    warnings: tuple[str, ...]

    @property
    def trusted(self) -> bool:
        """True when no problem was found."""
        return not self.warnings


def _names(names: tuple[str, ...]) -> str:
    return ", ".join(names)


def diagnose(model: Any, holdout: dict[str, float] | None = None) -> FitDiagnostics:
    """The diagnostics of a fitted purchase or spend model.

    Parameters
    ----------
    model : PurchaseModel or GammaGamma
        A fitted model.
    holdout : dict, optional
        ``predicted``, ``actual`` and ``mae`` of the model on a holdout period (the ``totals``
        of :func:`rfm_fast.clv.evaluate_holdout`).

    Returns
    -------
    FitDiagnostics

    Examples
    --------
    >>> from rfm_fast import clv, datasets
    >>> table = clv.summary(datasets.load_example(), **datasets.EXAMPLE_COLUMNS, unit="W")
    >>> diagnostics = clv.diagnose(clv.BetaGeo().fit(table))
    >>> diagnostics.p_alive_identified, diagnostics.warnings
    (True, ())
    """
    label = getattr(model, "LABEL", "") or type(model).__name__
    at_bound = tuple(getattr(model, "at_bound", ()))
    params, errors = model.params, model.standard_errors
    imprecise = tuple(
        name
        for name in params
        if name not in at_bound
        and not (math.isfinite(errors.get(name, math.nan)) and errors[name] <= params[name])
    )
    messages = []
    if at_bound:
        messages.append(
            f"{label}: the fit stopped at the edge of its search for {_names(at_bound)}: the "
            "data do not pin these down"
        )
    if imprecise:
        messages.append(
            f"{label}: {_names(imprecise)} imprecise (standard error larger than the "
            "estimate, or none)"
        )
    identified = None
    dropout = DROPOUT_PARAMETERS.get(label)
    if dropout is not None:
        shape = dropout[0]
        value, error = params[shape], errors.get(shape, math.nan)
        identified = (
            not any(name in at_bound for name in dropout)
            and math.isfinite(error)
            and value >= DROPOUT_Z * error
        )
        if not identified:
            messages.append(
                f"{label} cannot tell customers who stopped buying from customers who are only "
                f"quiet (dropout {shape} {value:.3g}, standard error {error:.2g}: not told from "
                "zero): p_alive is near 1 for almost everyone and says nothing here, churn risk "
                "is only the chance of a quiet spell, and lifetime value assumes every customer "
                "stays"
            )
    converged = bool(getattr(model, "converged", True))
    if not converged and not at_bound:
        messages.append(f"{label}: the optimizer stopped before converging")
    if holdout is not None and holdout.get("actual"):
        off = holdout["predicted"] / holdout["actual"] - 1
        if abs(off) > HOLDOUT_TOLERANCE:
            messages.append(
                f"{label} predicted {holdout['predicted']:,.0f} purchases in the holdout period "
                f"against {holdout['actual']:,.0f} made ({off:+.0%})"
            )
    return FitDiagnostics(
        model=label,
        at_bound=at_bound,
        imprecise=imprecise,
        p_alive_identified=identified,
        converged=converged,
        holdout=None if holdout is None else dict(holdout),
        warnings=tuple(messages),
    )
