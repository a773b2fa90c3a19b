"""Least confidence: the lowest probability of the predicted class first (Lewis and Gale 1994)."""

from __future__ import annotations

import numpy as np

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.strategies.scores import least_confidence, probability_scores


@register
class LeastConfidence(Strategy):
    name = "least-confidence"
    score_name = "one_minus_max_prob"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        u = probability_scores(ctx, least_confidence)  # segmentation: the mean over pixels
        return u, u
