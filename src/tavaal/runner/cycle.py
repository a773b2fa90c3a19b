"""The simulated protocol over an ``ActiveLearner``: each cycle fits a fresh T (+R), evaluates it,
queries ``budget`` picks from a random subset of 10 x budget, and labels them from the dataset's
own labels (``tavaal.oracle``). ``run_trial`` is the one cycle loop that ``run``/``compare`` and
``toy`` use; ``run_cycle`` writes the record of a cycle."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from tavaal._version import __version__
from tavaal.analysis.diagnostics import ranker_diagnostics, score_diagnostics, warn_if_degenerate
from tavaal.config import RunConfig
from tavaal.data.base import ArrayDataset
from tavaal.errors import TavaalError
from tavaal.inference import evaluate_metrics, sample_losses
from tavaal.learner import ActiveLearner, derive_seed
from tavaal.oracle import class_counts, oracle_labels, oracle_rows
from tavaal.runner.common import common_learner_metrics
from tavaal.strategies.base import random_picks


def initial_labeled(n: int, size: int, seed: int, trial: int) -> np.ndarray:
    """The trial's initial labeled set: identical for every method of the trial."""
    return random_picks(np.arange(n, dtype=np.int64), size, derive_seed(seed, trial, 1_000_003))


def check_sizes(cfg: RunConfig, n_train: int) -> None:
    """Refuse an initial set or budgets that the pool cannot supply."""
    p = cfg.protocol
    if p.initial > n_train:
        raise TavaalError(f"--initial {p.initial} is larger than the pool of {n_train} training samples")
    selections = p.cycles if p.selects_last_cycle else p.cycles - 1
    need = p.initial + p.budget * selections
    if need > n_train:
        raise TavaalError(
            f"{p.cycles} cycles ({selections} selections) of --budget {p.budget} after --initial "
            f"{p.initial} need {need} samples but the pool holds {n_train}; lower --cycles or --budget"
        )


def make_learner(
    cfg: RunConfig, method: str, ds: ArrayDataset, trial: int, progress: bool = False
) -> ActiveLearner:
    """The learner of one (method, trial) job: the dataset's train split is its pool (ids are the
    positions), its classes fixed, and training goes ahead on a single-class initial set, as the
    protocol's random initial set may be one."""
    return ActiveLearner(method, pool=ds, trial=trial, config=cfg, cold_start="train", progress=progress)


def run_cycle(learner: ActiveLearner, oracle: ArrayDataset, cycle: int) -> dict[str, Any]:
    """One cycle in place on ``learner``: fit, evaluate, query and label from ``oracle``'s labels;
    returns its record. The last cycle (``cycle == cfg.protocol.cycles - 1``) trains and evaluates
    only, unless ``cfg.protocol.selects_last_cycle``: its selection would serve the analyses alone."""
    cfg, trial = learner.cfg, learner.trial
    if learner.cycle != cycle:
        raise TavaalError(f"the learner is at cycle {learner.cycle}, not {cycle}")
    selects = cycle < cfg.protocol.cycles - 1 or cfg.protocol.selects_last_cycle
    labeled = learner.pool.labeled
    log = learner.fit(select=selects)
    t0 = time.perf_counter()
    metrics = evaluate_metrics(learner.model, learner.ds, learner.round.ctx.runtime)
    eval_seconds = time.perf_counter() - t0
    if selects:
        q = learner.query(cfg.protocol.budget)
        picked, candidates, select_seconds = q.indices, q.candidate_indices, q.seconds
        scores, score_name, tied, info = q.candidate_scores, q.score_name, q.tied_at_cut, q.info
        learner.label(q.ids, oracle_labels(oracle, picked))
    else:
        picked = candidates = np.zeros(0, dtype=np.int64)
        scores, score_name, tied, info, select_seconds = None, None, 0, {}, 0.0
    device = learner.device
    record: dict[str, Any] = {
        "dataset": oracle.name,
        "preset": cfg.preset,
        "method": learner.method,
        "trial": trial,
        "cycle": cycle,
        "n_labeled": int(len(labeled)),
        "accuracy": metrics["value"],  # the headline metric, named by "metric"
        "metric": metrics["metric"],
        "train_seconds": round(log.seconds, 4),
        "eval_seconds": round(eval_seconds, 4),
        "select_seconds": round(select_seconds, 4),
        "selected": [int(i) for i in picked],
        "selected_class_counts": class_counts(oracle_rows(oracle, picked), oracle.num_classes),
        "labeled_class_counts": class_counts(oracle_rows(oracle, labeled), oracle.num_classes),
        "candidates": [int(i) for i in candidates],
        "score_name": score_name,
        "scores": None if scores is None else [float(s) for s in scores],
        **score_diagnostics(scores, tied),
        **info,
        "seed": learner.round.ctx.seed,
        "config_hash": cfg.experiment_hash(),
        "version": __version__,
        "device": str(device),
        "precision": cfg.runtime.precision,
    }
    if "per_class_iou" in metrics:
        record["per_class_iou"] = metrics["per_class_iou"]
    if selects:
        warn_if_degenerate(record)
    if cfg.protocol.analysis and selects:
        ctx = learner.round.ctx
        losses = sample_losses(learner.model, oracle.to(device), candidates, ctx.runtime).cpu().numpy()
        record["candidate_losses"] = [float(v) for v in losses]
        if not oracle.is_segmentation:
            record["candidate_classes"] = [int(v) for v in oracle_rows(oracle, candidates)]
        d_scores = np.asarray(scores) if learner.strategy.adversarial and scores is not None else None
        record.update(
            ranker_diagnostics(
                ctx.model, ctx.ranker, ctx.dataset, labeled, candidates, losses, ctx.runtime, d_scores
            )
        )
    if cfg.protocol.selection_eval:
        # After the selection, so the method's own fit, scores and picks are those of a run without it.
        record["selection_accuracy"] = common_learner_metrics(learner, labeled, cycle)["value"]
    return record


def run_trial(
    learner: ActiveLearner, oracle: ArrayDataset, progress: bool = False
) -> Iterator[dict[str, Any]]:
    """The cycle loop: from the learner's cycle to the protocol's last, one record per cycle (the
    learner holds the cycle's networks when its record is yielded). A new learner starts from the
    trial's initial set, shared by every method of the trial."""
    cfg = learner.cfg
    if learner.pool.n_labeled == 0:
        initial = initial_labeled(learner.pool.n, cfg.protocol.initial, cfg.protocol.seed, learner.trial)
        learner.label(initial.tolist(), oracle_labels(oracle, initial))
    for cycle in tqdm(
        range(learner.cycle, cfg.protocol.cycles),
        desc=f"{learner.method} trial {learner.trial} cycles",
        disable=not progress,
        leave=False,
    ):
        initial = learner.pool.labeled.tolist() if cycle == 0 else None
        record = run_cycle(learner, oracle, cycle)
        if initial is not None:
            record["initial"] = initial
        yield record
