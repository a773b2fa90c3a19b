"""TA-VAAL (Kim et al. 2021, equations 3-7, Algorithm 1): VAAL conditioned on the Ranker's normalised
loss-ranking prediction r = sigmoid(R(x)), with the Ranker trained by the ranking loss (equation 1)."""

from tavaal.strategies.adversarial import AdversarialStrategy
from tavaal.strategies.base import register


@register
class TAVAAL(AdversarialStrategy):
    name = "tavaal"
    conditioned = True
    ranker_loss = "ranking"
