"""Margin sampling: the smallest gap between the two most probable classes first (Scheffer et al.
2001); with entropy, the uncertainty baseline the evaluation literature finds hardest to beat."""

from __future__ import annotations

import numpy as np
import torch

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.train import infer


def margin(probs: torch.Tensor) -> torch.Tensor:
    """p(first) - p(second) of each row of class probabilities (over dim 1)."""
    top2 = probs.topk(2, dim=1).values
    return top2.select(1, 0) - top2.select(1, 1)


def pixel_margin(logits: torch.Tensor) -> torch.Tensor:
    """Per image: the mean over pixels of each pixel's margin."""
    return margin(torch.softmax(logits, dim=1)).flatten(1).mean(1)


@register
class MarginSampling(Strategy):
    name = "margin"
    score_name = "margin"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        if ctx.dataset.is_segmentation:
            m = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, reduce_logits=pixel_margin)[
                "reduced"
            ]
        else:
            logits = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["logits"]
            m = margin(torch.softmax(logits, dim=1))
        m = m.cpu().numpy()
        return m, -m  # the smallest margin first
