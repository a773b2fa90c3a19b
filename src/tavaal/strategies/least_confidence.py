"""Least confidence: the lowest probability of the predicted class first (Lewis and Gale 1994)."""

from __future__ import annotations

import numpy as np
import torch

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.train import infer


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - max_c p(c) of each row of class probabilities (over dim 1)."""
    return 1.0 - probs.max(dim=1).values


def pixel_least_confidence(logits: torch.Tensor) -> torch.Tensor:
    """Per image: the mean over pixels of each pixel's 1 - max probability."""
    return least_confidence(torch.softmax(logits, dim=1)).flatten(1).mean(1)


@register
class LeastConfidence(Strategy):
    name = "least-confidence"
    score_name = "one_minus_max_prob"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        if ctx.dataset.is_segmentation:
            reduce = pixel_least_confidence
            u = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, reduce_logits=reduce)["reduced"]
        else:
            logits = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["logits"]
            u = least_confidence(torch.softmax(logits, dim=1))
        u = u.cpu().numpy()
        return u, u
