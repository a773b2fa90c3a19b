"""Maximum predictive entropy: the cheap uncertainty baseline."""

from __future__ import annotations

import numpy as np
import torch

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.train import infer


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of class probabilities."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)


@register
class EntropySampling(Strategy):
    name = "entropy"
    score_name = "entropy"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        if ctx.dataset.is_segmentation:  # the mean of the pixels' entropies
            out = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, reduce_logits=pixel_entropy)
            h = out["reduced"].cpu().numpy()
            return h, h
        logits = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["logits"]
        h = entropy(torch.softmax(logits, dim=1)).cpu().numpy()
        return h, h


def pixel_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Per image: the mean over pixels of the entropy of each pixel's class probabilities."""
    return entropy(torch.softmax(logits, dim=1)).flatten(1).mean(1)
