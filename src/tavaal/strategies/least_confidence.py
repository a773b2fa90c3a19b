"""Least confidence: the lowest probability of the predicted class first (Lewis and Gale 1994)."""

from __future__ import annotations

import numpy as np
import torch

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.strategies.entropy import probability_scores


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - max_c p(c) of each row of class probabilities (classes on dim 1)."""
    return 1.0 - probs.max(dim=1).values


@register
class LeastConfidence(Strategy):
    name = "least-confidence"
    score_name = "one_minus_max_prob"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        u = probability_scores(ctx, least_confidence)  # segmentation: the mean over pixels
        return u, u
