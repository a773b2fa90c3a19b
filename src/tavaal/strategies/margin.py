"""Margin sampling: the smallest gap between the two most probable classes first (Scheffer et al.
2001); with entropy, the uncertainty baseline the evaluation literature finds hardest to beat."""

from __future__ import annotations

import numpy as np
import torch

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.strategies.entropy import probability_scores


def margin(probs: torch.Tensor) -> torch.Tensor:
    """p(first) - p(second) of each row of class probabilities (classes on dim 1)."""
    top2 = probs.topk(2, dim=1).values
    return top2.select(1, 0) - top2.select(1, 1)


@register
class MarginSampling(Strategy):
    name = "margin"
    score_name = "margin"
    score_order = "lower first"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        m = probability_scores(ctx, margin)  # segmentation: the mean of the pixels' margins
        return m, -m  # the smallest margin first
