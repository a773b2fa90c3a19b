"""Task learner (+ Ranker) training, the task part of Algorithm 1, and batched inference."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from tavaal.data.base import ArrayDataset
from tavaal.losses import margin_loss, ranking_loss, task_losses, total_loss
from tavaal.runtime import Runtime
from tavaal.settings import FRACTION, NONNEGATIVE, POSITIVE, Settings, setting

logger = logging.getLogger("tavaal")
EpochHook = Callable[[int, nn.Module, nn.Module | None], None]


@dataclass
class Training(Settings):
    """The task learner T and the Ranker R, trained by Algorithm 1. ``lr`` is zeta1; ``eta`` scales
    the ranking loss in T's objective."""

    section: ClassVar[str] = "training"
    hash_defaults: ClassVar[bool] = True

    model: str = "smallcnn"  # a registered name, or module.path:factory for your own network
    feature_layers: str = ""  # with a factory: comma-separated layers whose outputs feed the Ranker
    embedding_layer: str = ""  # with a factory: the layer whose pooled output feeds Core-set
    epochs: int = setting(40, check=POSITIVE, most=100_000)
    batch_size: int = setting(32, check=POSITIVE, most=2**20)
    optimizer: str = setting("sgd", choices=("sgd", "adam"))
    lr: float = setting(0.05, check=POSITIVE)
    momentum: float = setting(0.9, check=(lambda v: 0 <= v < 1, "in [0, 1)"))
    weight_decay: float = setting(5e-4, check=NONNEGATIVE)
    lr_milestones: tuple[int, ...] = setting(
        (30,),
        check=(lambda v: all(0 < m <= 100_000 for m in v), "a list of positive epochs, each at most 100,000"),
    )
    lr_gamma: float = setting(0.1, check=(lambda v: 0 < v <= 1, "in (0, 1]"))
    eta: float = setting(1.0, check=NONNEGATIVE)
    # "freeze": paper, R frozen after 0.8N; "detach": official code
    ranker_stop: str = setting("freeze", choices=("freeze", "detach"))
    ranker_freeze_fraction: float = setting(0.8, check=FRACTION)
    ranker_detach_fraction: float = setting(0.6, check=FRACTION)  # authors: detached after 120 of 200
    margin: float = setting(1.0, check=NONNEGATIVE)  # xi of the original learning-loss margin loss
    # Which methods' T trains L_T + eta L_R (eq. 2): "own" only those that select with a Ranker;
    # "all" every method, each with its own R (the authors' code: main.py / train_test.py test
    # ``method == 'lloss' or 'TA-VAAL'``, always true); an R no method reads is simply unused.
    ranker_for: str = setting("own", choices=("own", "all"), later=True)

    def __post_init__(self) -> None:
        self.lr_milestones = tuple(self.lr_milestones)
        super().__post_init__()


@dataclass
class TrainLog:
    seconds: float
    final_loss: float
    ranker_last_epoch: int  # last epoch (0-based) in which the Ranker was updated; -1 if never


def make_optimizer(params: list[nn.Parameter], tr: Training, rt: Runtime) -> torch.optim.Optimizer:
    """SGD with momentum (CIFAR, Caltech) or Adam (the toy problem), at learning rate zeta1."""
    if tr.optimizer == "adam":
        return torch.optim.Adam(
            params, lr=tr.lr, weight_decay=tr.weight_decay, **rt.optimizer_kwargs(adam=True)
        )
    return torch.optim.SGD(
        params,
        lr=tr.lr,
        momentum=tr.momentum,
        weight_decay=tr.weight_decay,
        **rt.optimizer_kwargs(adam=False),
    )


def ranker_schedule(tr: Training) -> tuple[int, int]:
    """(first epoch with the Ranker frozen, first epoch with its inputs detached), 0-based.

    Paper (``freeze``, Algorithm 1): theta_R is updated for n <= 0.8N (1-based), then frozen, while
    theta_T keeps descending L_T + eta L_R through the frozen R. Authors (``detach``): R keeps
    training, but its inputs are detached for epochs > 0.6N (0-based ``epoch > 120`` of 200, so
    from 0-based epoch 121).
    """
    if tr.ranker_stop == "freeze":
        return int(tr.ranker_freeze_fraction * tr.epochs), tr.epochs
    return tr.epochs, int(tr.ranker_detach_fraction * tr.epochs) + 1


def train_task_learner(
    model: nn.Module,
    ranker: nn.Module | None,
    ds: ArrayDataset,
    labeled: np.ndarray,
    tr: Training,
    rt: Runtime,
    ranker_loss: str | None = None,
    epoch_hook: EpochHook | None = None,
    seed: int = 0,
    progress: bool = False,
    desc: str = "train",
) -> TrainLog:
    """Train T (and R with ``ranker_loss`` "ranking" (equation 1) or "margin") on the labeled set.

    ``epoch_hook(epoch, model, ranker)`` runs at the start of every epoch; TA-VAAL's paper schedule
    uses it to train the VAE and discriminator inside the same epoch loop (Algorithm 1).
    """
    t0 = time.perf_counter()
    device = rt.device
    gen = torch.Generator(device=device).manual_seed(seed)
    idx_all = torch.as_tensor(np.asarray(labeled), dtype=torch.long, device=device)
    params = list(model.parameters()) + (list(ranker.parameters()) if ranker is not None else [])
    opt = make_optimizer(params, tr, rt)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, milestones=list(tr.lr_milestones), gamma=tr.lr_gamma)
    freeze_at, detach_at = ranker_schedule(tr)
    fwd = rt.compiled(model)
    rank_fn = ranking_loss if ranker_loss == "ranking" else (lambda p, t: margin_loss(p, t, tr.margin))

    def step(
        generator: torch.Generator | None, bi: torch.Tensor, use_ranker: bool, detach: bool
    ) -> torch.Tensor:
        """One SGD step on the labeled batch ``bi``: on L_T, or with a Ranker on
        L_total = L_T + eta * L_R (equation 2)."""
        x, y = ds.batch_xy(bi, train=True, generator=generator)
        x = rt.to_input(x)
        opt.zero_grad(set_to_none=True)
        with rt.autocast():
            logits, _, feats = fwd(x)
        per_sample = task_losses(logits.float(), y)
        loss = per_sample.mean()
        if use_ranker:
            if detach:
                feats = [f.detach() for f in feats]
            with rt.autocast():
                pred = ranker(feats)
            loss = total_loss(loss, rank_fn(pred.float(), per_sample), tr.eta)
        loss.backward()
        opt.step()
        return loss.detach()

    stepper = rt.stepper(gen)
    n, bs = idx_all.numel(), tr.batch_size
    last_ranker_epoch, epoch_loss = -1, torch.zeros((), device=device)
    bar = tqdm(range(tr.epochs), desc=desc, disable=not progress, leave=False)
    ends: list[float] = []
    for epoch in bar:
        if epoch_hook is not None:
            epoch_hook(epoch, model, ranker)
        model.train()
        use_ranker = ranker is not None and ranker_loss is not None
        update_ranker = use_ranker and epoch < freeze_at
        detach = epoch >= detach_at
        if ranker is not None:
            # Algorithm 1's else-branch: theta_R frozen (no gradient, so no optimizer update, not
            # even momentum or weight decay), while L_R still reaches theta_T through R.
            ranker.train(update_ranker)
            ranker.requires_grad_(update_ranker)
        perm = idx_all[torch.randperm(n, generator=gen, device=device)]
        epoch_loss = torch.zeros((), device=device)
        mode = (use_ranker, update_ranker, detach, tuple(g["lr"] for g in opt.param_groups))
        for start in range(0, n, bs):
            bi = perm[start : start + bs]
            loss = stepper(mode, lambda g, b, u=use_ranker, d=detach: step(g, b, u, d), bi)
            epoch_loss += loss * bi.numel()
        if update_ranker:
            last_ranker_epoch = epoch
        sched.step()
        ends.append(time.perf_counter())
        if epoch == STEADY_AFTER and tr.epochs > STEADY_AFTER + 1:
            # The first epochs carry one-time costs (allocation, kernel choice, caches): the rest is
            # projected from the fastest of the epochs after the first.
            steady = min(b - a for a, b in zip(ends, ends[1:]))
            warn_if_long(ends[-1] - t0, steady, tr.epochs - len(ends), desc)
        if progress:
            bar.set_postfix(loss=f"{float(epoch_loss) / n:.3f}")
    if ranker is not None:
        ranker.requires_grad_(True)
    return TrainLog(time.perf_counter() - t0, float(epoch_loss) / max(n, 1), last_ranker_epoch)


LONG_FIT_SECONDS = 120.0
STEADY_AFTER = 2  # the estimate is made after this epoch (0-based): three epochs measured
_warned = False
# Who is asking decides the words of the advice: the command line's main() sets "cli".
ADVICE = {
    "python": "for a faster answer use preset='quick', fewer epochs (epochs=N), or device='cuda'",
    "cli": "for a faster answer use --preset quick, fewer --epochs, or --device cuda",
}
advice_for = "python"


def warn_if_long(elapsed: float, steady: float, remaining: int, desc: str) -> None:
    """Once per process: when the epochs so far and the steady epoch time say the fit will take
    over two minutes, say how long and how to make it faster, in the caller's terms (a person may
    be waiting for a query)."""
    global _warned
    total = elapsed + steady * remaining
    if _warned or total < LONG_FIT_SECONDS:
        return
    _warned = True
    logger.warning(
        "%s: this fit will take about %.0f min (%.1f s per epoch, %d epochs left, the selection "
        "networks included); %s",
        desc,
        total / 60,
        steady,
        remaining,
        ADVICE[advice_for],
    )
