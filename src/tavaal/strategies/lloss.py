"""Learning Loss (Yoo and Kweon 2019) and the paper's ``learning loss_v2``.

Both pick the candidates with the highest predicted loss; ``lloss`` trains the loss prediction
module with the margin loss, ``lloss2`` with the ranking loss (equation 1).
"""

from __future__ import annotations

import numpy as np

from tavaal.inference import infer
from tavaal.strategies.base import SelectionContext, Strategy, register


class _PredictedLoss(Strategy):
    score_name = "predicted_loss"

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        r = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime, ranker=ctx.ranker)["rank"]
        s = r.cpu().numpy()
        return s, s


@register
class LearningLoss(_PredictedLoss):
    name = "lloss"
    ranker_loss = "margin"


@register
class LearningLossV2(_PredictedLoss):
    name = "lloss2"
    ranker_loss = "ranking"
