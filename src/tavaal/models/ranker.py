"""The Ranker (loss prediction module, section 3.1).

Each tapped feature map: global average pooling, FC(128), ReLU; the results are concatenated and
fed to Linear(1). Vector features skip the pooling.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Ranker(nn.Module):
    """Predicts one loss score per sample from the task learner's features."""

    def __init__(self, feature_dims: list[int], hidden: int = 128):
        super().__init__()
        self.fcs = nn.ModuleList(nn.Linear(d, hidden) for d in feature_dims)
        self.out = nn.Linear(hidden * len(feature_dims), 1)

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        parts = []
        for f, fc in zip(features, self.fcs):
            if f.dim() > 2:
                f = torch.flatten(F.adaptive_avg_pool2d(f, 1), 1)
            parts.append(F.relu(fc(f)))
        return self.out(torch.cat(parts, dim=1)).squeeze(1)
