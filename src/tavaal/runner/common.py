"""The common learner: one plain task learner trained on a method's labeled set, so that methods
are judged by their picks apart from how each trains T (``selection_accuracy``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from tavaal.errors import TavaalError
from tavaal.inference import evaluate_metrics
from tavaal.learner import ActiveLearner, derive_seed
from tavaal.train import train_task_learner


def common_learner_metrics(learner: ActiveLearner, labeled: np.ndarray, cycle: int) -> dict[str, Any]:
    """Train the *common* learner on ``labeled`` (samples ``learner`` has labels for) and return its
    test metrics: the preset's plain T (no Ranker, no head dropout), seeded from (seed, trial,
    cycle) exactly as a method's fit, so that every method given the same labeled set gets the same
    figure. The learner's own fitted networks are left as they are. The set is sorted first: the
    figure depends on which samples are labeled, not on the order they were labeled in."""
    labeled = np.asarray(labeled, dtype=np.int64)
    unknown = np.setdiff1d(labeled, learner.pool.labeled)
    if unknown.size:
        raise TavaalError(
            f"the common learner: {unknown.size} of the samples are not labeled, e.g. {unknown[:5].tolist()}"
        )
    seed = derive_seed(learner.seed, learner.trial, cycle)
    torch.manual_seed(seed)
    rt = learner.cfg.runtime
    model = learner.placed(learner.build_model(head_dropout=0.0), rt)
    train_task_learner(
        model,
        None,
        learner.ds,
        np.sort(labeled),
        learner.cfg.training,
        rt,
        None,
        seed=seed,
        desc="common learner",
    )
    return evaluate_metrics(model, learner.ds, rt)
