"""Maximum predictive entropy: the cheap uncertainty baseline."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tavaal.inference import infer
from tavaal.strategies.base import SelectionContext, Strategy, register


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of class probabilities."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)


def probability_scores(ctx: SelectionContext, fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """``fn`` of each candidate's class probabilities (classes on dim 1); for segmentation the mean
    over pixels of ``fn`` of each pixel's probabilities. The one loop of the uncertainty scores."""
    if ctx.dataset.is_segmentation:

        def per_image(logits: torch.Tensor) -> torch.Tensor:
            return fn(torch.softmax(logits, dim=1)).flatten(1).mean(1)

        out = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, reduce_logits=per_image)["reduced"]
    else:
        out = fn(torch.softmax(infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["logits"], dim=1))
    return out.cpu().numpy()


@register
class EntropySampling(Strategy):
    name = "entropy"
    score_name = "entropy"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        h = probability_scores(ctx, entropy)
        return h, h
