"""VAAL (Sinha et al. 2019): VAE + discriminator on z alone; picks the lowest D(z)."""

from tavaal.strategies.adversarial import AdversarialStrategy
from tavaal.strategies.base import register


@register
class VAAL(AdversarialStrategy):
    name = "vaal"
    conditioned = False
