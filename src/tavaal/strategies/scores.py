"""Pure uncertainty scores of class probabilities (classes on dim 1), and the one loop that turns
the task learner's outputs on the candidates into them (per image, or per pixel then averaged).
Entropy, margin, least confidence and MC dropout score with these."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from tavaal.inference import infer
from tavaal.strategies.base import SelectionContext


def entropy(probs: torch.Tensor) -> torch.Tensor:
    """Shannon entropy (nats) of each row of class probabilities."""
    return -(probs * torch.log(probs.clamp_min(1e-12))).sum(dim=1)


def margin(probs: torch.Tensor) -> torch.Tensor:
    """p(first) - p(second) of each row of class probabilities."""
    top2 = probs.topk(2, dim=1).values
    return top2.select(1, 0) - top2.select(1, 1)


def least_confidence(probs: torch.Tensor) -> torch.Tensor:
    """1 - max_c p(c) of each row of class probabilities."""
    return 1.0 - probs.max(dim=1).values


def probability_scores(ctx: SelectionContext, fn: Callable[[torch.Tensor], torch.Tensor]) -> np.ndarray:
    """``fn`` of each candidate's class probabilities; for segmentation the mean over pixels of
    ``fn`` of each pixel's probabilities."""
    if ctx.dataset.is_segmentation:

        def per_image(logits: torch.Tensor) -> torch.Tensor:
            return fn(torch.softmax(logits, dim=1)).flatten(1).mean(1)

        out = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, reduce_logits=per_image)["reduced"]
    else:
        out = fn(torch.softmax(infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["logits"], dim=1))
    return out.cpu().numpy()
