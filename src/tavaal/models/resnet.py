"""ResNet-18 in its CIFAR form (3x3 stem, no max-pool) and its ImageNet form (7x7 stem + max-pool).

Returns logits, the 512-d embedding and the four stage outputs (the Ranker's inputs).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tavaal.models.base import TaskLearner, TaskOutput


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, cout: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNet18(TaskLearner):
    """ResNet-18; ``stem="cifar"`` for 32x32 inputs, ``stem="imagenet"`` for 224x224."""

    def __init__(
        self, num_classes: int = 10, in_channels: int = 3, stem: str = "cifar", dropout: float = 0.0
    ):
        super().__init__()
        if stem == "cifar":
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.ReLU(inplace=True)
            )
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
                nn.BatchNorm2d(64),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
        widths, layers, cin = (64, 128, 256, 512), [], 64
        for i, w in enumerate(widths):
            stride = 1 if i == 0 else 2
            layers.append(nn.Sequential(BasicBlock(cin, w, stride), BasicBlock(w, w, 1)))
            cin = w
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(512, num_classes)
        self.feature_dims = list(widths)
        self.embedding_dim = 512

    def forward(self, x: torch.Tensor) -> TaskOutput:
        f1 = self.layer1(self.stem(x))
        f2 = self.layer2(f1)
        f3 = self.layer3(f2)
        f4 = self.layer4(f3)
        emb = torch.flatten(F.adaptive_avg_pool2d(f4, 1), 1)
        return self.fc(self.dropout(emb)), emb, [f1, f2, f3, f4]
