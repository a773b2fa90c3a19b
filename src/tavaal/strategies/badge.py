"""BADGE (Ash et al., ICLR 2020): uncertainty and diversity in one batch. Each candidate's
*gradient embedding* is the gradient of the cross-entropy loss with respect to the last linear
layer, taking the model's own prediction as the label (a hypothetical label): g = (p - e_yhat) ⊗ h,
with p the class probabilities and h the layer's input (the task learner's embedding). Its norm is
large where the model is unsure; k-means++ seeding in that space (Algorithm 1) picks a batch that
is both uncertain and spread out.

g has classes x embedding-dim entries per candidate (10 x 512 for CIFAR-10's ResNet-18, 20 KB; 200
MB for 10,000 candidates). It is never built: for rank-one gradients
||a ⊗ h - b ⊗ k||² = |a|²|h|² + |b|²|k|² - 2 (a·b)(h·k), so the seeding keeps only a (N x C) and
h (N x D) on the device, and one step costs O(N (C + D)).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tavaal.errors import TavaalError
from tavaal.inference import infer
from tavaal.strategies.base import Selection, SelectionContext, Strategy, register


def gradient_factors(logits: torch.Tensor, emb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(a, h) with g = a ⊗ h the last layer's loss gradient under the predicted label:
    a = softmax(logits) - onehot(argmax), h = the embedding."""
    p = torch.softmax(logits.float(), dim=1)
    a = p - torch.nn.functional.one_hot(p.argmax(1), p.shape[1]).to(p.dtype)
    return a, emb.float()


def sq_distances(
    a: torch.Tensor, h: torch.Tensor, i: int, na: torch.Tensor | None = None, nh: torch.Tensor | None = None
) -> torch.Tensor:
    """||g_n - g_i||² for every n, from the factors (never forming g); ``na``, ``nh``: the rows'
    squared norms, when the caller already has them."""
    na = (a * a).sum(1) if na is None else na
    nh = (h * h).sum(1) if nh is None else nh
    d = na * nh + na[i] * nh[i] - 2.0 * (a @ a[i]) * (h @ h[i])
    return d.clamp_min(0.0)


def kmeans_pp(a: torch.Tensor, h: torch.Tensor, k: int, generator: torch.Generator) -> list[int]:
    """k-means++ seeding in gradient space: the largest gradient first (as the authors' code), then
    each next point with probability proportional to its squared distance to the nearest chosen."""
    na, nh = (a * a).sum(1), (h * h).sum(1)
    chosen = [int(torch.argmax(na * nh))]
    d2 = sq_distances(a, h, chosen[0], na, nh)
    for _ in range(k - 1):
        d2[chosen] = 0.0
        total = d2.sum()
        if total > 0:
            i = int(torch.multinomial(d2 / total, 1, generator=generator))
        else:  # every remaining point coincides with a chosen one: any unchosen will do
            free = torch.ones_like(d2, dtype=torch.bool)
            free[chosen] = False
            pool = torch.nonzero(free).flatten()
            i = int(pool[torch.randint(len(pool), (1,), generator=generator, device=pool.device)])
        chosen.append(i)
        d2 = torch.minimum(d2, sq_distances(a, h, i, na, nh))
    return chosen


@register
class BADGE(Strategy):
    name = "badge"
    score_name = "gradient_norm"
    score_order = "not the order"

    def check_dataset(self, dataset: Any, batch_size: int, device: torch.device) -> None:
        if dataset.is_segmentation:
            raise TavaalError(
                "badge embeds one label per sample; on segmentation use entropy, margin, coreset or tavaal"
            )

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        out = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)
        a, h = gradient_factors(out["logits"], out["embedding"])
        gen = torch.Generator(device=a.device).manual_seed(ctx.seed)
        chosen = kmeans_pp(a, h, budget, gen)
        norms = ((a * a).sum(1) * (h * h).sum(1)).sqrt().cpu().numpy()
        return Selection(np.asarray(ctx.candidates)[chosen], norms.astype(np.float64), self.score_name)
