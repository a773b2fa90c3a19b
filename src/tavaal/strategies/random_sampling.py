"""Random sampling: uniform over the candidates, without replacement."""

from __future__ import annotations

import numpy as np

from tavaal.strategies.base import Selection, SelectionContext, Strategy, check_budget, register


@register
class RandomSampling(Strategy):
    name = "random"

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        check_budget(budget, len(ctx.candidates))
        rng = np.random.default_rng(ctx.seed)
        chosen = rng.choice(len(ctx.candidates), size=budget, replace=False)
        return Selection(np.asarray(ctx.candidates)[chosen], None, None)
