"""Margin sampling: the smallest gap between the two most probable classes first (Scheffer et al.
2001); with entropy, the uncertainty baseline the evaluation literature finds hardest to beat."""

from __future__ import annotations

import numpy as np

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.strategies.scores import margin, probability_scores


@register
class MarginSampling(Strategy):
    name = "margin"
    score_name = "margin"
    score_order = "lower first"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        m = probability_scores(ctx, margin)  # segmentation: the mean of the pixels' margins
        return m, -m  # the smallest margin first
