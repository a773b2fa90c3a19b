"""One active-learning cycle, as data flows: fresh T (+R), train, evaluate, draw a
random subset of 10 x budget, let the strategy pick ``budget`` indices, label them."""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from tavaal import __version__
from tavaal.config import RunConfig
from tavaal.data.base import ArrayDataset
from tavaal.errors import TavaalError
from tavaal.models import Ranker, TaskLearner, build_task_learner
from tavaal.models.user import build_user_model, is_factory_path
from tavaal.pool import Pool
from tavaal.runtime import Runtime
from tavaal.strategies import Selection, SelectionContext, Strategy
from tavaal.train import TrainLog, evaluate, infer, train_task_learner

logger = logging.getLogger("tavaal")


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from (seed, trial, cycle, ...); cycles are independent of one another."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def initial_labeled(n: int, size: int, seed: int, trial: int) -> np.ndarray:
    """The trial's initial labeled set: identical for every method of the trial."""
    rng = np.random.default_rng(derive_seed(seed, trial, 1_000_003))
    return rng.choice(n, size=size, replace=False).astype(np.int64)


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


def build_model(cfg: RunConfig, ds: ArrayDataset, dropout: float) -> TaskLearner:
    """A fresh task learner: a registered one by name, or the user's factory (``mod:fn``) wrapped
    with its ``--feature-layers`` tapped."""
    if is_factory_path(cfg.training.model):
        layers = [s.strip() for s in cfg.training.feature_layers.split(",") if s.strip()]
        # The factory's network is built on the CPU (moved to the run's device after), so is its probe.
        example = ds.batch(torch.arange(min(2, ds.n_train), device=ds.x_train.device), train=False).cpu()
        return build_user_model(
            cfg.training.model, layers, cfg.training.embedding_layer, example, ds.num_classes
        )
    return build_task_learner(cfg.training.model, ds.input_shape, ds.num_classes, dropout)


def check_model(cfg: RunConfig, ds: ArrayDataset) -> None:
    """The model must accept the dataset's inputs (a user's factory is checked when built)."""
    if is_factory_path(cfg.training.model):
        build_model(cfg, ds, 0.0)  # import errors, unknown layers, wrong output: before any work
        return
    if cfg.training.model == "mlp" and ds.is_image:
        raise TavaalError(f"--model mlp takes vectors but {ds.name} holds images; use smallcnn or resnet18")
    if cfg.training.model != "mlp" and not ds.is_image:
        raise TavaalError(
            f"--model {cfg.training.model} takes images but {ds.name} holds vectors; use --model mlp"
        )


def build_and_train(
    cfg: RunConfig,
    strategy: Strategy,
    ds: ArrayDataset,
    labeled: np.ndarray,
    candidates: np.ndarray,
    device: torch.device,
    seed: int,
    progress: bool = False,
    desc: str = "train",
    selects: bool = True,
) -> tuple[SelectionContext, TrainLog]:
    """A fresh task learner (+ Ranker when the strategy needs one), trained on ``labeled`` with the
    strategy's epoch hook; returns the selection context that holds them, and the training log.

    Without a selection to follow (``selects=False``) the hook is left out: it trains only what
    selection uses (the VAE and D), never T or R.
    """
    torch.manual_seed(seed)
    rt = Runtime.from_config(cfg, device)
    model = build_model(cfg, ds, strategy.head_dropout).to(device)
    ranker = Ranker(model.feature_dims).to(device) if strategy.ranker_loss else None
    if rt.channels_last and ds.is_image:
        model = model.to(memory_format=torch.channels_last)
    ctx = SelectionContext(model, ranker, ds, labeled, candidates, rt, seed=seed, progress=progress)
    if selects:
        ctx.phase = strategy.make_phase(ctx)
    log = train_task_learner(
        model,
        ranker,
        ds,
        labeled,
        cfg.training,
        rt,
        strategy.ranker_loss,
        strategy.training_hook(ctx) if selects else None,
        seed=seed,
        progress=progress,
        desc=desc,
    )
    return ctx, log


def score_diagnostics(scores: np.ndarray | None, tied_at_cut: int) -> dict[str, Any]:
    """What shows a degenerate selection: how many distinct scores, their spread (max - min) and
    std, how many candidates tied with the last pick were left out (those picks were random), and
    ``degenerate``: the scores are (nearly) constant, their spread below 1e-4 of their magnitude."""
    if scores is None or len(scores) == 0:
        return {
            "n_distinct_scores": None,
            "score_spread": None,
            "score_std": None,
            "tied_at_cut": tied_at_cut,
            "degenerate": False,
        }
    s = np.asarray(scores, dtype=np.float64)
    spread = float(s.max() - s.min())
    distinct = int(np.unique(s).size)
    return {
        "n_distinct_scores": distinct,
        "score_spread": spread,
        "score_std": float(s.std()),
        "tied_at_cut": tied_at_cut,
        "degenerate": bool(distinct <= 1 or spread <= 1e-4 * max(float(np.abs(s).max()), 1e-12)),
    }


def warn_if_degenerate(record: dict[str, Any]) -> None:
    """Log a warning when the scores could not order the candidates, so the picks were random."""
    where = f"{record['method']} trial {record['trial']} cycle {record['cycle']}"
    if record["degenerate"]:
        logger.warning(
            "%s: the %s scores are (nearly) constant (%d distinct, spread %.3g): the selection was "
            "effectively random",
            where,
            record["score_name"],
            record["n_distinct_scores"],
            record["score_spread"],
        )
    elif record["tied_at_cut"]:
        logger.info(
            "%s: %d candidates tied with the last pick; the tie was broken at random",
            where,
            record["tied_at_cut"] + 1,
        )


def draw_candidates(unlabeled: np.ndarray, cfg: RunConfig, seed: int) -> np.ndarray:
    """The subset method (section 3.3): a random subset of the unlabeled pool, sorted."""
    n_sub = min(len(unlabeled), cfg.protocol.n_candidates)
    return np.sort(np.random.default_rng(seed).choice(unlabeled, size=n_sub, replace=False))


def run_cycle(
    cfg: RunConfig,
    strategy: Strategy,
    ds: ArrayDataset,
    pool: Pool,
    trial: int,
    cycle: int,
    device: torch.device,
    progress: bool = False,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Run one cycle in place on ``pool``; return its record and the trained networks.

    The last cycle (``cycle == cfg.protocol.cycles - 1``) trains and evaluates only, unless
    ``cfg.protocol.selects_last_cycle``: its selection would serve the analyses alone.
    """
    seed = derive_seed(cfg.protocol.seed, trial, cycle)
    candidates = draw_candidates(pool.unlabeled, cfg, seed)
    labeled = pool.labeled
    selects = cycle < cfg.protocol.cycles - 1 or cfg.protocol.selects_last_cycle

    ctx, log = build_and_train(
        cfg,
        strategy,
        ds,
        labeled,
        candidates,
        device,
        seed,
        progress,
        desc=f"{strategy.name} t{trial} c{cycle}",
        selects=selects,
    )
    model, ranker = ctx.model, ctx.ranker
    t0 = time.perf_counter()
    accuracy = evaluate(model, ds, ctx.runtime)
    eval_seconds = time.perf_counter() - t0

    t0 = time.perf_counter()
    if selects:
        selection = strategy.select(ctx, cfg.protocol.budget)
    else:
        selection, candidates = Selection(np.zeros(0, dtype=np.int64)), np.zeros(0, dtype=np.int64)
    if device.type == "cuda":
        torch.cuda.synchronize()
    select_seconds = time.perf_counter() - t0
    pool.label(selection.indices)

    y = ds.y_train.cpu().numpy()
    record: dict[str, Any] = {
        "dataset": ds.name,
        "preset": cfg.preset,
        "method": strategy.name,
        "trial": trial,
        "cycle": cycle,
        "n_labeled": int(len(labeled)),
        "accuracy": accuracy,
        "train_seconds": round(log.seconds, 4),
        "eval_seconds": round(eval_seconds, 4),
        "select_seconds": round(select_seconds, 4),
        "selected": [int(i) for i in selection.indices],
        "selected_class_counts": np.bincount(y[selection.indices], minlength=ds.num_classes).tolist(),
        "labeled_class_counts": np.bincount(y[labeled], minlength=ds.num_classes).tolist(),
        "candidates": [int(i) for i in candidates],
        "score_name": selection.score_name,
        "scores": None if selection.scores is None else [float(s) for s in selection.scores],
        **score_diagnostics(selection.scores, selection.tied_at_cut),
        **selection.info,
        "seed": seed,
        "config_hash": cfg.experiment_hash(),
        "version": __version__,
        "device": str(device),
    }
    if selects:
        warn_if_degenerate(record)
    if cfg.protocol.analysis and selects:
        out = infer(model, ds, candidates, ctx.runtime)
        losses = F.cross_entropy(
            out["logits"],
            ds.y_train[torch.as_tensor(candidates, device=ds.y_train.device)].to(device),
            reduction="none",
        )
        record["candidate_losses"] = [float(v) for v in losses.cpu()]
        record["candidate_classes"] = [int(v) for v in y[candidates]]
    nets = {"model": model, "ranker": ranker}
    if ctx.phase is not None:
        nets["adversarial"] = ctx.phase
    return record, nets
