"""What ``ActiveLearner.query`` answers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from tavaal.learner.intake import SampleId


@dataclass
class QueryResult:
    """The picks, first pick first, named by the user's ids, with the score of every candidate the
    method scored (``candidate_ids``/``candidate_scores``: the random subset of section 3.3).

    ``scores`` are the method's recorded scores of the picks (None where the method has none, as
    random sampling); ``cold_start`` says the picks were random because too few labels were given.
    """

    ids: list[SampleId]
    indices: np.ndarray
    scores: list[float | None]
    ranks: list[int]
    candidate_ids: list[SampleId]
    candidate_indices: np.ndarray
    candidate_scores: np.ndarray | None
    score_name: str | None = None
    score_order: str | None = None  # "higher first", "lower first" or "not the order" (Strategy)
    tied_at_cut: int = 0
    info: dict[str, Any] = field(default_factory=dict)
    cold_start: bool = False
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self) -> list[tuple[int, SampleId, float | None]]:
        """(rank, id, score) per pick."""
        return list(zip(self.ranks, self.ids, self.scores))
