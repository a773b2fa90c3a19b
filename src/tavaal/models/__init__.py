"""Task learners, the Ranker, VAEs and the discriminator; ``build_task_learner`` by name."""

from __future__ import annotations

from collections.abc import Callable

from tavaal.models.base import MLP, SmallCNN, TaskLearner, TaskOutput
from tavaal.models.drn import DRND22, DeepLabMobile
from tavaal.models.ranker import Ranker
from tavaal.models.resnet import ResNet18
from tavaal.models.taps import TappedModel
from tavaal.models.vae import (
    MLPVAE,
    ConvVAE,
    Discriminator,
    Downscaled,
    build_discriminator,
    build_vae,
)
from tavaal.registry import Registry

# name -> builder(input_shape without the batch axis, num_classes, head dropout)
ModelBuilder = Callable[[tuple[int, ...], int, float], TaskLearner]
MODELS: Registry[ModelBuilder] = Registry("model")
MODELS.register("mlp")(lambda shape, k, p: MLP(shape[0], 32, k, p))
MODELS.register("smallcnn")(lambda shape, k, p: SmallCNN(shape[0], k, p))
MODELS.register("tinycnn")(lambda shape, k, p: SmallCNN(shape[0], k, p, (16, 32, 64), pool_early=True))
MODELS.register("resnet18")(lambda shape, k, p: ResNet18(k, shape[0], "cifar", p))
MODELS.register("resnet18-imagenet")(lambda shape, k, p: ResNet18(k, shape[0], "imagenet", p))
# Segmentation (per-pixel logits): the paper's DRN, and a lighter network for CPUs.
MODELS.register("drn")(lambda shape, k, p: DRND22(k, shape[0], p))
MODELS.register("deeplabv3-mobilenet")(lambda shape, k, p: DeepLabMobile(k, shape[0], p))
SEGMENTATION_MODELS = frozenset({"drn", "deeplabv3-mobilenet"})


def build_task_learner(
    name: str, input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.0
) -> TaskLearner:
    """Build a registered task learner for inputs of ``input_shape`` (without the batch axis)."""
    return MODELS.get(name)(input_shape, num_classes, dropout)


__all__ = [
    "DRND22",
    "MLP",
    "SEGMENTATION_MODELS",
    "DeepLabMobile",
    "MODELS",
    "ConvVAE",
    "Discriminator",
    "Downscaled",
    "MLPVAE",
    "Ranker",
    "ResNet18",
    "SmallCNN",
    "TappedModel",
    "TaskLearner",
    "TaskOutput",
    "build_discriminator",
    "build_task_learner",
    "build_vae",
]
