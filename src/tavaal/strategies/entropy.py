"""Maximum predictive entropy: the cheap uncertainty baseline."""

from __future__ import annotations

import numpy as np

from tavaal.strategies.base import SelectionContext, Strategy, register
from tavaal.strategies.scores import entropy, probability_scores


@register
class EntropySampling(Strategy):
    name = "entropy"
    score_name = "entropy"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        h = probability_scores(ctx, entropy)  # segmentation: the mean of the pixels' entropies
        return h, h
