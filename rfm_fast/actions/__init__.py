"""Acting on the segments: measuring a campaign sent to some customers of each segment, against
a control group (:mod:`~rfm_fast.actions.campaign`, with the statistics of
:mod:`~rfm_fast.actions.stats`)."""

from __future__ import annotations

from rfm_fast.actions.campaign import CampaignResult, campaign

__all__ = ["CampaignResult", "campaign"]
