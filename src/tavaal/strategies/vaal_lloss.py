"""The paper's ablation "VAAL + learning loss": TA-VAAL's conditioning, but the loss prediction
module is trained with the original margin loss instead of the ranking loss."""

from tavaal.strategies.adversarial import AdversarialStrategy
from tavaal.strategies.base import register


@register
class VAALLearningLoss(AdversarialStrategy):
    name = "vaal-lloss"
    conditioned = True
    ranker_loss = "margin"
