"""Acting on the segments: lists of the customers to contact (:mod:`~rfm_fast.actions.lists`),
and measuring a campaign sent to some customers of each segment, against a control group
(:mod:`~rfm_fast.actions.campaign`, with the statistics of :mod:`~rfm_fast.actions.stats`)."""

from __future__ import annotations

from rfm_fast.actions.campaign import CampaignResult, campaign
from rfm_fast.actions.lists import customer_list

__all__ = ["CampaignResult", "campaign", "customer_list"]
