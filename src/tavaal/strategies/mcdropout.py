"""Monte-Carlo dropout (Gal et al. 2017): T stochastic passes with the head's dropout active.

Scores: BALD mutual information H[mean p] - mean H[p] (default), the predictive entropy
H[mean p], or the variation ratio 1 - max mean p.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from tavaal.errors import TavaalError
from tavaal.inference import batches, dropout_layers, infer
from tavaal.settings import POSITIVE, Settings, setting
from tavaal.strategies.base import SelectionContext, Strategy, register, seeded
from tavaal.strategies.scores import entropy

SCORES = ("bald", "entropy", "varratio")


@dataclass
class MCDropoutParams(Settings):
    """Monte-Carlo dropout: passes, score, and the head dropout of the built-in task learners."""

    section: ClassVar[str] = "mcdropout"
    hash_defaults: ClassVar[bool] = True

    mc_samples: int = setting(25, check=POSITIVE, most=10_000)
    mc_score: str = setting("bald", choices=SCORES)
    dropout: float = setting(0.3, check=(lambda v: 0 <= v < 1, "in [0, 1)"))


def mc_score(mean_p: torch.Tensor, mean_h: torch.Tensor, score: str) -> torch.Tensor:
    """The score per sample (or pixel, class dim 1) from the mean probabilities over the passes
    and the mean per-pass entropy: BALD's mutual information, the entropy, or the variation ratio."""
    if score == "bald":
        return entropy(mean_p) - mean_h
    if score == "entropy":
        return entropy(mean_p)
    return 1.0 - mean_p.max(dim=1).values


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
    out = []
    for x in batches(ds, ctx.candidates, rt):
        mean_p = mean_h = 0.0
        for _ in range(samples):
            with rt.autocast():
                p = torch.softmax(model(x)[0].float(), dim=1)
            mean_p, mean_h = mean_p + p / samples, mean_h + entropy(p) / samples
        out.append(mc_score(mean_p, mean_h, score).flatten(1).mean(1))
    model.eval()
    return torch.cat(out)


@register
class MCDropout(Strategy):
    name = "mcdropout"
    settings = (MCDropoutParams,)

    @property
    def p(self) -> MCDropoutParams:
        return self.params[MCDropoutParams]

    @property
    def head_dropout(self) -> float:
        return self.p.dropout

    @property
    def score_name(self) -> str:  # type: ignore[override]
        return self.p.mc_score

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
            s = mc_scores_per_pixel(ctx, self.p.mc_samples, self.p.mc_score)
        else:
            s = mc_score(*mc_probabilities(ctx, self.p.mc_samples), self.p.mc_score)
        s = s.cpu().numpy()
        return s, s
