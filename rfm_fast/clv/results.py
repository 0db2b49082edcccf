"""The result of :func:`rfm_fast.clv.analyze` (:class:`CLVResult`) and its prediction columns,
below the modules that build it (valuation) and read it (churn)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from rfm_fast.clv.diagnostics import FitDiagnostics
from rfm_fast.clv.gamma_gamma import GammaGamma
from rfm_fast.clv.purchase_model import PurchaseModel

PREDICTIONS = ("p_alive", "expected_purchases", "expected_spend", "clv")
"""The prediction columns of :func:`predict` and :attr:`CLVResult.table`."""


@dataclass(frozen=True, repr=False)
class CLVResult:
    """The result of :func:`analyze`.

    Attributes
    ----------
    table : pyarrow.Table
        The summary (customer, ``frequency``, ``recency``, ``T``, ``monetary``) with
        ``p_alive``, ``expected_purchases`` (in the next ``horizon`` time units),
        ``expected_spend`` (per purchase) and ``clv`` (the discounted value of those purchases).
    purchases : PurchaseModel
        The fitted purchase model (BG/NBD unless ``analyze`` was given another).
    spend : GammaGamma
        The fitted Gamma-Gamma model.
    horizon, discount_rate, step : float
        The options the predictions were made with; ``unit`` the time unit.
    comparison : ModelComparison or None
        With ``analyze(model="auto")``: how the purchase models did on the holdout.
    calibration_end : str or None
        With ``analyze(model="auto")``: the end of the calibration period (given, or the
        default: two thirds of the way from the first purchase to ``as_of``).
    diagnostics : tuple of FitDiagnostics
        What the purchase fit and the spend fit can be trusted with
        (:func:`rfm_fast.clv.diagnose`).
    """

    table: pa.Table
    purchases: PurchaseModel
    spend: GammaGamma
    unit: str | float
    horizon: float
    discount_rate: float
    step: float
    comparison: Any = None
    calibration_end: str | None = None
    diagnostics: tuple[FitDiagnostics, ...] = ()

    @property
    def p_alive_identified(self) -> bool:
        """Whether the purchase fit tells customers who stopped from customers who are only
        quiet; where it does not, p_alive and churn risk say nothing (see
        :mod:`rfm_fast.clv.diagnostics`)."""
        return all(d.p_alive_identified is not False for d in self.diagnostics)

    @property
    def warnings(self) -> tuple[str, ...]:
        """The plain-language warnings of both fits (empty when none)."""
        return tuple(line for d in self.diagnostics for line in d.warnings)

    def __repr__(self) -> str:
        table = self.table
        totals = ""
        if table.num_rows:
            alive = pc.mean(table.column("p_alive")).as_py()
            expected = pc.sum(table.column("expected_purchases")).as_py()
            value = pc.sum(table.column("clv")).as_py()
            shown = f"{alive:.3f}" if self.p_alive_identified else "not identifiable"
            totals = (
                f"\n  mean p_alive {shown}, expected purchases {expected:,.1f}, "
                f"total clv {value:,.2f}"
            )
        return (
            f"CLVResult(customers={table.num_rows:,}, unit={self.unit!r}, "
            f"horizon={self.horizon:g}, discount_rate={self.discount_rate:g}, "
            f"step={self.step:.4g}){totals}\n  purchases: {self.purchases!r}"
            f"\n  spend: {self.spend!r}" + "".join(f"\n  warning: {line}" for line in self.warnings)
        )
