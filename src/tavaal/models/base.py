"""The task-learner contract: ``forward(x) -> (logits, embedding, features)``.

``features`` are the tapped intermediate outputs that feed the Ranker; ``embedding`` feeds
Core-set. ``feature_dims`` lists each feature's channel (or vector) size so a Ranker can be built
without a dry run.
"""

from __future__ import annotations

import torch
from torch import nn

TaskOutput = tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]


class TaskLearner(nn.Module):
    """Base class; subclasses set ``feature_dims`` and ``embedding_dim`` and implement forward."""

    feature_dims: list[int]
    embedding_dim: int

    def forward(self, x: torch.Tensor) -> TaskOutput:  # pragma: no cover - abstract
        raise NotImplementedError


class MLP(TaskLearner):
    """Section 4.1's 3-layer MLP; the Ranker taps its middle layer."""

    def __init__(self, in_dim: int = 2, hidden: int = 32, num_classes: int = 2, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.fc2 = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.fc3 = nn.Linear(hidden, num_classes)
        self.feature_dims = [hidden]
        self.embedding_dim = hidden

    def forward(self, x: torch.Tensor) -> TaskOutput:
        h1 = torch.relu(self.fc1(x))
        h2 = torch.relu(self.fc2(h1))
        return self.fc3(self.dropout(h2)), h2, [h2]


class SmallCNN(TaskLearner):
    """Three conv blocks for small images (8x8 digits): 32, 64, 128 channels. ``widths`` and
    ``pool_early`` (a 2x2 max-pool after the first block as well) make the ``tinycnn`` variant for
    32x32 images on a CPU: 16, 32, 64 channels at 32, 16 and 8 pixels, 2.8 M multiply-adds per
    image against smallcnn's 39 M."""

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        dropout: float = 0.0,
        widths: tuple[int, int, int] = (32, 64, 128),
        pool_early: bool = False,
    ):
        super().__init__()

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(
                nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
            )

        w1, w2, w3 = widths
        self.b1, self.b2, self.b3 = block(in_channels, w1), block(w1, w2), block(w2, w3)
        self.pool = nn.MaxPool2d(2)
        self.pool_early = pool_early
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(w3, num_classes)
        self.feature_dims = [w1, w2, w3]
        self.embedding_dim = w3

    def forward(self, x: torch.Tensor) -> TaskOutput:
        f1 = self.b1(x)
        f2 = self.b2(self.pool(f1) if self.pool_early else f1)
        f3 = self.b3(self.pool(f2))
        emb = torch.flatten(nn.functional.adaptive_avg_pool2d(f3, 1), 1)
        return self.fc(self.dropout(emb)), emb, [f1, f2, f3]
