"""Core-set (Sener and Savarese 2018): k-center greedy on the task learner's embeddings (or the
user's own, ``coreset_embedding="user"``).

Distances are computed in chunks on the run's device; memory stays O((labeled + candidates) x
chunk) and no N x N matrix is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from tavaal.settings import POSITIVE, Settings, setting
from tavaal.strategies.base import Selection, SelectionContext, Strategy, register
from tavaal.strategies.embedding import embedding_rows


def min_distances(points: torch.Tensor, centers: torch.Tensor, chunk: int = 4096) -> torch.Tensor:
    """For every point, the Euclidean distance to its nearest center, in chunks of centers."""
    best = torch.full((points.shape[0],), float("inf"), device=points.device, dtype=points.dtype)
    for start in range(0, centers.shape[0], chunk):
        d = torch.cdist(points, centers[start : start + chunk], compute_mode="donot_use_mm_for_euclid_dist")
        best = torch.minimum(best, d.min(dim=1).values)
    return best


def k_center_greedy(
    points: torch.Tensor, centers: torch.Tensor, budget: int, chunk: int = 4096
) -> tuple[list[int], torch.Tensor]:
    """Pick ``budget`` points one by one, each the farthest from all centers chosen so far.

    Returns the chosen row numbers and the initial distance of every point to the labeled set.
    """
    dist = (
        min_distances(points, centers, chunk)
        if centers.shape[0]
        else torch.full((points.shape[0],), float("inf"), device=points.device)
    )
    initial = dist.clone()
    chosen = []
    for _ in range(budget):
        i = torch.argmax(dist)  # stays on the device: no host synchronisation per pick
        chosen.append(i)
        dist = torch.minimum(dist, torch.cdist(points, points[i].unsqueeze(0)).squeeze(1))
        dist[i] = -1.0  # never chosen twice
    chosen = torch.stack(chosen).tolist() if chosen else []
    return chosen, initial


@dataclass
class CoreSetParams(Settings):
    section: ClassVar[str] = "coreset"
    hash_defaults: ClassVar[bool] = True

    # distances computed this many centers at a time (memory, not results)
    coreset_chunk: int = setting(4096, check=POSITIVE, most=2**20)
    # "task": the task learner's features (the paper's); "user": ActiveLearner(embeddings=...)
    coreset_embedding: str = setting("task", choices=("task", "user"), later=True)


@register
class CoreSet(Strategy):
    name = "coreset"
    score_name = "distance_to_labeled"
    score_order = "not the order"
    settings = (CoreSetParams,)

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        p = self.params[CoreSetParams]
        emb_c, emb_l = (
            embedding_rows(ctx, i, p.coreset_embedding, None, "coreset_embedding")
            for i in (ctx.candidates, ctx.labeled)
        )
        chosen, initial = k_center_greedy(emb_c.float(), emb_l.float(), budget, p.coreset_chunk)
        return Selection(np.asarray(ctx.candidates)[chosen], initial.cpu().numpy(), self.score_name)
