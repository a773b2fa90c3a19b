"""Random sampling: uniform over the candidates, without replacement."""

from __future__ import annotations

import numpy as np

from tavaal.strategies.base import Selection, SelectionContext, Strategy, random_picks, register


@register
class RandomSampling(Strategy):
    name = "random"

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        return Selection(random_picks(np.asarray(ctx.candidates), budget, ctx.seed), None, None)
