"""Task learners, the Ranker, VAEs and the discriminator; ``build_task_learner`` by name."""

from __future__ import annotations

from tavaal.errors import did_you_mean
from tavaal.models.base import MLP, SmallCNN, TaskLearner, TaskOutput
from tavaal.models.ranker import Ranker
from tavaal.models.resnet import ResNet18
from tavaal.models.taps import TappedModel
from tavaal.models.vae import MLPVAE, ConvVAE, Discriminator, build_discriminator, build_vae

MODELS = ["mlp", "smallcnn", "resnet18", "resnet18-imagenet"]


def build_task_learner(
    name: str, input_shape: tuple[int, ...], num_classes: int, dropout: float = 0.0
) -> TaskLearner:
    """Build a registered task learner for inputs of ``input_shape`` (without the batch axis)."""
    if name == "mlp":
        return MLP(input_shape[0], 32, num_classes, dropout)
    if name == "smallcnn":
        return SmallCNN(input_shape[0], num_classes, dropout)
    if name == "resnet18":
        return ResNet18(num_classes, input_shape[0], "cifar", dropout)
    if name == "resnet18-imagenet":
        return ResNet18(num_classes, input_shape[0], "imagenet", dropout)
    raise did_you_mean("model", name, MODELS)


__all__ = [
    "MLP",
    "MODELS",
    "ConvVAE",
    "Discriminator",
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
