"""Monte-Carlo dropout (Gal et al. 2017): T stochastic passes with the head's dropout active.

Scores: BALD mutual information H[mean p] - mean H[p] (default), the predictive entropy
H[mean p], or the variation ratio 1 - max mean p.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from tavaal.config import RunConfig
from tavaal.errors import TavaalError
from tavaal.strategies.base import SelectionContext, Strategy, register, seeded
from tavaal.strategies.entropy import entropy
from tavaal.train import dropout_layers, infer


def mc_probabilities(ctx: SelectionContext, samples: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean class probabilities, mean per-pass entropy) over ``samples`` dropout passes."""
    seeded(ctx.seed)
    mean_p, mean_h = None, None
    for _ in range(samples):
        logits = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, train_mode_dropout=True)["logits"]
        p = torch.softmax(logits, dim=1)
        h = entropy(p)
        mean_p = p if mean_p is None else mean_p + p
        mean_h = h if mean_h is None else mean_h + h
    return mean_p / samples, mean_h / samples


@torch.no_grad()
def mc_scores_per_pixel(ctx: SelectionContext, samples: int, score: str) -> torch.Tensor:
    """Segmentation: each pixel's score over ``samples`` dropout passes, averaged over the image's
    pixels; batch by batch, so only one batch of pixel probabilities is held."""
    seeded(ctx.seed)
    rt, ds, model = ctx.runtime, ctx.dataset, ctx.model
    model.eval()
    for m in dropout_layers(model):
        m.train()
    idx = torch.as_tensor(np.asarray(ctx.candidates), dtype=torch.long, device=ds.x_train.device)
    out = []
    for start in range(0, idx.numel(), rt.eval_batch_size):
        x = rt.to_input(ds.batch(idx[start : start + rt.eval_batch_size], train=False))
        mean_p = mean_h = 0.0
        for _ in range(samples):
            with rt.autocast():
                p = torch.softmax(model(x)[0].float(), dim=1)
            mean_p, mean_h = mean_p + p / samples, mean_h + entropy(p) / samples
        if score == "bald":
            s = entropy(mean_p) - mean_h
        elif score == "entropy":
            s = entropy(mean_p)
        else:
            s = 1.0 - mean_p.max(dim=1).values
        out.append(s.flatten(1).mean(1))
    model.eval()
    return torch.cat(out)


@register
class MCDropout(Strategy):
    name = "mcdropout"

    def __init__(self, mc_samples: int = 25, mc_score: str = "bald", dropout: float = 0.3):
        self.mc_samples, self.mc_score, self.dropout = mc_samples, mc_score, dropout

    @classmethod
    def from_config(cls, cfg: RunConfig) -> MCDropout:
        p = cfg.mcdropout
        return cls(p.mc_samples, p.mc_score, p.dropout)

    @property
    def head_dropout(self) -> float:
        return self.dropout

    @property
    def score_name(self) -> str:  # type: ignore[override]
        return self.mc_score

    def check_model(self, model: nn.Module) -> None:
        if not dropout_layers(model):
            # Every pass would be the same: BALD 0 everywhere and a silently random selection.
            raise TavaalError(
                "mcdropout needs dropout layers with p > 0 in the task learner, and this model has "
                "none; add nn.Dropout to your model, or use a built-in --model (they get a head "
                "dropout of --dropout)"
            )

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        self.check_model(ctx.model)
        if ctx.dataset.is_segmentation:
            s = mc_scores_per_pixel(ctx, self.mc_samples, self.mc_score).cpu().numpy()
            return s, s
        p, h_each = mc_probabilities(ctx, self.mc_samples)
        if self.mc_score == "bald":
            s = entropy(p) - h_each
        elif self.mc_score == "entropy":
            s = entropy(p)
        else:
            s = 1.0 - p.max(dim=1).values
        s = s.cpu().numpy()
        return s, s
