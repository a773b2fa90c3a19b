"""Core-set (Sener and Savarese 2018): k-center greedy on the task learner's embeddings.

Distances are computed in chunks on the run's device; memory stays O((labeled + candidates) x
chunk) and no N x N matrix is built.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from tavaal.inference import infer
from tavaal.settings import POSITIVE, Settings, setting
from tavaal.strategies.base import Selection, SelectionContext, Strategy, check_budget, register


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


@register
class CoreSet(Strategy):
    name = "coreset"
    score_name = "distance_to_labeled"
    score_order = "not the order"
    settings = (CoreSetParams,)

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        check_budget(budget, len(ctx.candidates))
        emb_c = infer(ctx.model, ctx.dataset, ctx.candidates, ctx.runtime)["embedding"]
        emb_l = infer(ctx.model, ctx.dataset, ctx.labeled, ctx.runtime)["embedding"]
        chosen, initial = k_center_greedy(emb_c, emb_l, budget, self.params[CoreSetParams].coreset_chunk)
        return Selection(np.asarray(ctx.candidates)[chosen], initial.cpu().numpy(), self.score_name)
