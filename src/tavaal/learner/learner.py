"""``ActiveLearner``: one labeling session over a pool, and the engine under ``tavaal run``,
``compare``, ``query`` and ``toy``.

A round is: ``label`` what the oracle (a person, or the dataset's labels in a simulation) says,
``fit`` a fresh task learner (+ Ranker, + what the method trains for selection) on the labeled set,
``query`` the next picks from a random subset of the unlabeled pool (section 3.3). Every round is
seeded from (seed, trial, cycle) alone, so a session saved and loaded elsewhere gives the same next
query.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from tavaal.config import RunConfig, learner_config, learner_fields
from tavaal.data import with_crop_pad
from tavaal.data.base import IGNORE, ArrayDataset
from tavaal.device import setup_device
from tavaal.errors import TavaalError, first_line
from tavaal.inference import evaluate, infer
from tavaal.learner.intake import PoolData, SampleId, as_tensor, from_torch_dataset, read_pool
from tavaal.learner.result import QueryResult
from tavaal.learner.storage import read_learner, reading, save_learner
from tavaal.learner.targets import ClassNames, checked_masks
from tavaal.memory import check_fits, training_bytes
from tavaal.models import Ranker, TappedModel, TaskLearner, build_task_learner
from tavaal.models.user import ModelSource, ModelSpec
from tavaal.pool import Pool
from tavaal.runtime import Runtime
from tavaal.strategies import SelectionContext, Strategy, check_budget, get_strategy
from tavaal.strategies.base import random_picks
from tavaal.train import TrainLog, train_task_learner

logger = logging.getLogger("tavaal")
COLD_START = ("random", "error", "train")


def derive_seed(*parts: int) -> int:
    """A 31-bit seed from (seed, trial, cycle, ...); cycles are independent of one another."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def draw_candidates(unlabeled: np.ndarray, n_candidates: int, seed: int) -> np.ndarray:
    """The subset method (section 3.3): a random subset of the unlabeled pool, sorted."""
    n_sub = min(len(unlabeled), n_candidates)
    return np.sort(random_picks(unlabeled, n_sub, seed))


def whole_positive(n: Any, what: str, at_least: int = 1) -> int:
    """``n`` as an int of at least ``at_least`` (1: positive): 2.7, -5, True or "3" are errors, not
    silently rounded or replaced."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < at_least:
        valid = "a positive whole number" if at_least == 1 else f"a whole number, {at_least} or more"
        raise TavaalError(f"{what} must be {valid}, got {n!r}")
    return int(n)


@dataclass
class Round:
    """Where a learner stands in its label -> fit -> query loop."""

    cycle: int = 0
    ctx: SelectionContext | None = None  # the fitted networks and this round's candidates
    fitted_on: int = -1  # the number of labels the fitted networks saw
    open: bool = False  # fitted since the last labels: the next labels start a new round
    selects: bool = False  # the fit prepared a selection (candidates, selector)


class ActiveLearner:
    """Pool-based active learning with any registered method, on your data and (optionally) your model.

    ``method``: a registered name (``tavaal.strategies.STRATEGIES``) or a ``Strategy`` instance.
    ``model``: a registered name, ``"module.path:factory"``, a callable returning an ``nn.Module``
    (called for a fresh network every round) or an ``nn.Module`` (deep-copied every round); the
    last three with ``feature_layers`` (and optionally ``embedding_layer``). Default: the preset's.
    ``pool``: a numpy array or tensor (vectors, or images as uint8 or float), a torch ``Dataset`` of
    ``(x, y)`` (its ``y`` is not read: labels come from ``label``), or an image folder (ids: the
    paths relative to it). ``ids`` name the samples (strings, paths or ints; default 0..N-1).
    ``classes``: the class names, fixed; default: the labels given so far, sorted.
    ``preset`` and ``**overrides``: hyper-parameters by name (``tavaal presets``, config fields).
    ``config``: a whole ``RunConfig`` instead of ``preset``; ``device``, ``seed``, ``fast`` and
    ``**overrides`` given with it override its fields (``preset`` with it is an error).
    ``fast``: the fastest settings measured for the device (bf16, channels-last, CUDA graphs and
    fused optimizers on CUDA; channels-last on CPU), those not given explicitly.
    ``embeddings``: optional features of every pool sample (N, dim), e.g. from a pretrained model,
    for TypiClust with ``typiclust_embedding="user"``.
    ``cold_start``: what ``query`` does with too few labels for the method (none, or a single
    class): ``"random"`` picks at random with a warning (default), ``"error"`` raises, ``"train"``
    trains on what there is (the simulated protocol, whose random initial set may hold one class).
    """

    def __init__(
        self,
        method: str | Strategy = "tavaal",
        model: ModelSource | None = None,
        pool: Any = None,
        *,
        ids: Sequence[Any] | None = None,
        classes: Sequence[Any] | None = None,
        feature_layers: Sequence[str] = (),
        embedding_layer: str = "",
        preset: str | None = None,
        device: str | None = None,
        seed: int | None = None,
        fast: bool = False,
        trial: int = 0,
        cold_start: str = "random",
        progress: bool = False,
        config: RunConfig | None = None,
        embeddings: Any = None,
        **overrides: Any,
    ):
        if pool is None:
            raise TavaalError(
                "ActiveLearner needs a pool: an array, a tensor, a torch Dataset or an image folder"
            )
        if cold_start not in COLD_START:
            raise TavaalError(f"cold_start must be one of {', '.join(COLD_START)}, got {cold_start!r}")
        fields = learner_fields(
            overrides,
            config,
            seed=seed,
            device=device,
            model=model if isinstance(model, str) else None,
            feature_layers=feature_layers,
            embedding_layer=embedding_layer,
            fast=fast,
        )
        if isinstance(pool, PoolData):
            data = pool
        else:  # the fields given win over the config's, as they do below
            size = fields.get("image_size", config.data.image_size if config else 0)
            skip = fields.get("skip_unreadable", config.data.skip_unreadable if config else False)
            data = read_pool(pool, ids, int(size), not progress, bool(skip))
        vectors_or_images = "images" if data.x.dim() == 4 else "vectors"
        kind = data.name if isinstance(pool, ArrayDataset) else vectors_or_images
        config = learner_config(config, preset, fields, kind)
        tr = config.training
        if model is None or isinstance(model, str):
            self.spec = ModelSpec.from_config(tr.model, tr.feature_layers, tr.embedding_layer)
        else:
            self.spec = ModelSpec(model, list(feature_layers), embedding_layer)
            config = config.replace(model=self.spec.label)
        self.cfg = config
        self.strategy = method if isinstance(method, Strategy) else get_strategy(method, config)
        self.method = self.strategy.name
        self.seed = int(config.protocol.seed)
        self.trial = whole_positive(trial, "trial", at_least=0)
        self.cold_start, self.progress = cold_start, progress
        self.device = setup_device(config)  # resolved once, for everything this learner runs
        self._data = data
        fixed = classes is not None or data.classes is not None
        self._classes = ClassNames(classes if classes is not None else data.classes or [], fixed)
        self.segmentation = data.task == "segmentation"
        self.pool = Pool(len(data.ids), ids=data.ids)  # the labels; the dataset's targets follow it
        self.ds = self._dataset()
        self.spec.check_input(self.ds.is_image, self.ds.name, self.ds.is_segmentation)
        self._check_model()
        self.embeddings = self._embeddings(embeddings)
        self.uid = uuid.uuid4().hex
        self.round = Round()
        self.last_fit: TrainLog | None = None

    # ----------------------------------------------------------------- data and labels
    @property
    def ids(self) -> list[SampleId]:
        """The pool's sample ids, in pool order."""
        return self.pool.ids

    def _embeddings(self, e: Any) -> torch.Tensor | None:
        """The user's own features of every pool sample, one row each (TypiClust can cluster them)."""
        if e is None:
            return None
        t = as_tensor(e, "embeddings")
        if t.dim() != 2 or t.shape[0] != len(self.ids):
            raise TavaalError(
                f"embeddings must be one row per pool sample, ({len(self.ids)}, dim); got {tuple(t.shape)}"
            )
        return t.float().to(self.device)

    def _dataset(self) -> ArrayDataset:
        d = self._data
        x_test = d.x_test if d.x_test is not None else d.x[:0]
        y_test = d.y_test if d.y_test is not None else torch.zeros(0, dtype=torch.long)
        if self.segmentation:  # masks, every pixel ignored until labeled
            y = torch.full((d.x.shape[0], *d.x.shape[2:]), IGNORE, dtype=torch.uint8, device=d.x.device)
        else:
            y = torch.full((d.x.shape[0],), -1, dtype=torch.long)
        ds = ArrayDataset(
            d.name, d.x, y, x_test, y_test, [str(c) for c in self.classes], d.mean, d.std, d.augment, d.task
        )
        return with_crop_pad(ds, self.cfg.data.crop_pad).to(self.device)

    @property
    def classes(self) -> list[Any]:
        """The class names, in target order: fixed, or the labels given so far, sorted."""
        return self._classes.names

    @property
    def classes_fixed(self) -> bool:
        return self._classes.fixed

    def label(self, ids: Sequence[Any], labels: Sequence[Any]) -> None:
        """Record the labels of ``ids`` (a label already given again is fine; a different one is an
        error). Labels are class names, or class indices when ``classes`` are fixed."""
        ids, labels = list(ids), list(labels)
        if len(ids) != len(labels):
            raise TavaalError(f"label() got {len(ids)} ids but {len(labels)} labels; give one label per id")
        idx = self.indices_of(ids)
        if self.segmentation:
            fresh = [k for k, n in enumerate(idx) if not self.pool.is_labeled(int(n))]
            shape = tuple(self.ds.y_train.shape[1:])
            masks = checked_masks(
                [ids[k] for k in fresh], [labels[k] for k in fresh], shape, len(self.classes)
            )
            self._add_labels([int(idx[k]) for k in fresh], masks, renumbered=False)
            return
        new, values = [], []
        for i, n, lab in zip(ids, idx, labels):
            value = self._classes.value(lab, f"id {i!r}")
            if self.pool.is_labeled(n):
                given = self.pool.value(n)
                if given != value:
                    raise TavaalError(
                        f"id {i!r} is labeled {given!r} already; refusing to relabel it {value!r}"
                    )
                continue
            new.append(int(n))
            values.append(value)
        if not new:
            return
        renumbered = self._classes.add(values)
        if not self.classes_fixed:
            self.ds.classes = [str(c) for c in self.classes]
        self._add_labels(new, values, renumbered)

    def _add_labels(self, new: list[int], values: list[Any], renumbered: bool) -> None:
        """Put the labels in the pool and derive the training targets from it: of the new labels,
        or of every label when a class sorted in before others renumbered them."""
        if not new:
            return
        self.pool.label(new, values)
        pos = self.pool.labeled if renumbered else np.asarray(new, dtype=np.int64)
        given = [self.pool.value(n) for n in pos]
        target = torch.stack(given) if self.segmentation else self._classes.targets(given)
        self.ds.y_train[torch.as_tensor(pos, device=self.device)] = target.to(self.device)
        self._close_round()

    def _close_round(self) -> None:
        """New labels after a fit start the next round (its seed comes from the next cycle)."""
        if self.round.open:
            self.round.cycle += 1
            self.round.open = False

    @property
    def cycle(self) -> int:
        """The round: the next fit is seeded from (seed, trial, cycle). It advances when labels come
        in after a fit."""
        return self.round.cycle

    def set_cycle(self, cycle: int) -> None:
        """Start the next fit at round ``cycle``: a resumed experiment continues at its next cycle,
        and each query over a growing labels file draws its own candidate subset."""
        self.round.cycle, self.round.open = whole_positive(cycle, "cycle", at_least=0), False

    def indices_of(self, ids: Sequence[Any]) -> np.ndarray:
        """Pool positions of ``ids``; unknown or repeated ids are an error."""
        return self.pool.indices_of(ids)

    @property
    def labeled_ids(self) -> list[SampleId]:
        return [self.ids[i] for i in self.pool.labeled]

    @property
    def labels(self) -> dict[SampleId, Any]:
        """Every label given, by id, in the order given (masks, for segmentation)."""
        return self.pool.labels

    def _cold_reason(self) -> str | None:
        if not self.pool.n_labeled:
            return "no sample is labeled yet"
        if self.segmentation:
            return None
        present = set(self.pool.values)
        if len(present) < 2 and self.cold_start != "train":
            return f"the labels hold a single class ({next(iter(present))!r})"
        return None

    # ----------------------------------------------------------------- training and selection
    @property
    def model(self) -> TaskLearner:
        """The task learner of the last ``fit``."""
        if self.round.ctx is None:
            raise TavaalError("the learner is not fitted yet: call fit() (or query()) first")
        return self.round.ctx.model

    @property
    def stale(self) -> bool:
        """True when labels came in since the last fit (or it never ran)."""
        return self.round.ctx is None or self.round.fitted_on != self.pool.n_labeled

    @property
    def ranker_loss(self) -> str | None:
        """The loss R trains with (None: no Ranker): the method's own, or, with ``ranker_for="all"``
        (the authors' code), the ranking loss of equation 1 for a method that has none."""
        own = self.strategy.ranker_loss
        if own is None and self.cfg.training.ranker_for == "all":
            return "ranking"
        return own

    def _check_model(self) -> None:
        """At construction, not at the first query: a user's network runs once on two samples of
        the pool (its layers, input shape and output are checked); a built-in one, and the
        method's selector, are counted on the meta device and refused when training
        them would not fit the device (``tavaal.memory``)."""
        tr, shape = self.cfg.training, tuple(self.ds.input_shape)
        classes = max(2, len(self.classes))
        if self.spec.registered:
            need = training_bytes(
                lambda: build_task_learner(tr.model, shape, classes),
                [(tr.batch_size, *shape)],
                adam=tr.optimizer == "adam",
            )
            fix = "lower the batch size (--batch-size) or the image size (--image-size)"
            check_fits(f"training {tr.model} on batches of {tr.batch_size}", need, self.device, fix)
        else:
            example = self.ds.batch(
                torch.arange(min(2, self.ds.n_train), device=self.ds.x_train.device), False
            )
            net = self.spec.build(shape, classes, 0.0, example.cpu(), check_classes=bool(self.classes))
            if isinstance(net, TaskLearner) and not isinstance(net, TappedModel):
                try:
                    with torch.no_grad():
                        net.eval()(example.cpu())
                except (RuntimeError, ValueError, TypeError, IndexError) as e:
                    raise TavaalError(
                        f"model {self.spec.label!r} fails on this pool's samples (shape {shape}): "
                        f"{type(e).__name__}: {first_line(e, 200)}"
                    ) from None
        self.strategy.check_dataset(self.ds, tr.batch_size, self.device)

    def build_model(self, head_dropout: float | None = None) -> TaskLearner:
        """A fresh task learner for this pool (user networks are probed on the CPU, where built);
        ``head_dropout`` defaults to the method's (MC dropout's)."""
        example = None
        if not self.spec.registered:
            n = min(2, self.ds.n_train)
            example = self.ds.batch(torch.arange(n, device=self.ds.x_train.device), train=False).cpu()
        dropout = self.strategy.head_dropout if head_dropout is None else head_dropout
        model = self.spec.build(self.ds.input_shape, self.ds.num_classes, dropout, example)
        if head_dropout is None:
            self.strategy.check_model(model)
        return model

    def placed(self, model: TaskLearner, rt: Runtime) -> TaskLearner:
        """``model`` on the learner's device, channels_last where the runtime asks for images."""
        model = model.to(self.device)
        if rt.channels_last and self.ds.is_image:
            model = model.to(memory_format=torch.channels_last)
        return model

    def fit(self, budget: int | None = None, select: bool = True) -> TrainLog:
        """Train a fresh task learner (+ Ranker, + the method's selector) on the labels.

        ``budget``: the query size to prepare for (it sizes the candidate subset; default the
        preset's). ``select=False`` trains T (+ R) only, for an evaluation without a query after it.
        """
        reason = self._cold_reason()
        if reason:
            raise TavaalError(
                f"cannot fit: {reason}; label samples of at least two classes first "
                "(or use cold_start='train' to train on them anyway)"
            )
        cfg = self.cfg
        seed = derive_seed(self.seed, self.trial, self.cycle)
        budget = cfg.protocol.budget if budget is None else whole_positive(budget, "fit(budget): budget")
        n_cand = cfg.protocol.candidates_for(budget)
        candidates = draw_candidates(self.pool.unlabeled, n_cand, seed) if select else np.zeros(0, np.int64)
        torch.manual_seed(seed)
        ranker_loss = self.ranker_loss
        ctx = self._round_context(self.pool.labeled, candidates, seed, select, ranker=ranker_loss is not None)
        self.last_fit = train_task_learner(
            ctx.model,
            ctx.ranker,
            self.ds,
            ctx.labeled,
            cfg.training,
            ctx.runtime,
            ranker_loss,
            self.strategy.training_hook(ctx) if select else None,
            seed=seed,
            progress=self.progress,
            desc=f"{self.method}, {self.pool.n_labeled} labels",
        )
        self.round.ctx, self.round.fitted_on, self.round.open = ctx, self.pool.n_labeled, True
        self.round.selects = select
        return self.last_fit

    def _round_context(
        self, labeled: np.ndarray, candidates: np.ndarray, seed: int, select: bool, ranker: bool
    ) -> SelectionContext:
        """Fresh networks for one round (T, R when ``ranker``, and with ``select`` the method's
        selector), on the device, in the context a strategy reads: what ``fit`` trains and what
        ``load_state_dict`` loads saved weights into."""
        rt = self.cfg.runtime
        model = self.build_model()
        net_r = Ranker(model.feature_dims).to(self.device) if ranker else None
        ctx = SelectionContext(
            self.placed(model, rt),
            net_r,
            self.ds,
            labeled,
            candidates,
            rt,
            seed=seed,
            progress=self.progress,
            embeddings=self.embeddings,
            batch_size=self.cfg.training.batch_size,
        )
        if select:
            self.strategy.selector(ctx)
        return ctx

    def query(self, n: int | None = None) -> QueryResult:
        """The ``n`` unlabeled samples the method picks next (default: the preset's budget), fitting
        first when labels came in since the last fit. Nothing is labeled by it."""
        n = self.cfg.protocol.budget if n is None else whole_positive(n, "query(n): n")
        unlabeled = self.pool.unlabeled
        reason = self._cold_reason()
        if reason is not None:
            if self.cold_start == "error":
                raise TavaalError(
                    f"cannot query with {self.method}: {reason}; label samples of two classes or more"
                )
            return self._random_start(n, unlabeled, reason)
        check_budget(n, min(len(unlabeled), self.cfg.protocol.candidates_for(n)))
        if self.stale or not self.round.selects or n > len(self.round.ctx.candidates):
            self.fit(budget=n)  # new labels, a fit without selection, or a larger query's subset
        ctx = self.round.ctx
        t0 = time.perf_counter()
        sel = self.strategy.select(ctx, n)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - t0
        score_of = dict(zip(ctx.candidates.tolist(), sel.scores.tolist())) if sel.scores is not None else {}
        return QueryResult(
            ids=[self.ids[i] for i in sel.indices],
            indices=np.asarray(sel.indices, dtype=np.int64),
            scores=[score_of.get(int(i)) for i in sel.indices],
            ranks=list(range(1, len(sel.indices) + 1)),
            candidate_ids=[self.ids[i] for i in ctx.candidates],
            candidate_indices=np.asarray(ctx.candidates, dtype=np.int64),
            candidate_scores=sel.scores,
            score_name=sel.score_name,
            score_order=self.strategy.score_order if sel.scores is not None else None,
            tied_at_cut=sel.tied_at_cut,
            info=sel.info,
            seconds=seconds,
        )

    def _random_start(self, n: int, unlabeled: np.ndarray, reason: str) -> QueryResult:
        check_budget(n, len(unlabeled))
        logger.warning(
            "%s cannot rank the pool yet: %s; picking %d samples at random", self.method, reason, n
        )
        seed = derive_seed(self.seed, self.trial, self.cycle)
        picks = random_picks(unlabeled, n, seed).astype(np.int64)
        return QueryResult(
            ids=[self.ids[i] for i in picks],
            indices=picks,
            scores=[None] * n,
            ranks=list(range(1, n + 1)),
            candidate_ids=[self.ids[i] for i in unlabeled],
            candidate_indices=unlabeled,
            candidate_scores=None,
            score_name="random (cold start)",
            cold_start=True,
        )

    def evaluate(self, x: Any = None, y: Sequence[Any] | None = None) -> float:
        """Top-1 accuracy of the fitted task learner on ``x``, ``y`` (arrays, tensors, or a torch
        ``Dataset`` of ``(x, y)`` as ``x``), or on the pool dataset's own test split."""
        model = self.model
        ds = self.ds
        if x is not None:
            if isinstance(x, (np.ndarray, torch.Tensor)):
                xt = as_tensor(x, "x")
            else:
                xt, ys = from_torch_dataset(x, "x")
                y = ys if y is None else y
            if y is None or len(y) != xt.shape[0]:
                raise TavaalError(f"evaluate() needs one label per sample of x ({xt.shape[0]})")
            if (
                tuple(xt.shape[1:]) != ds.input_shape
                or xt.is_floating_point() != ds.x_train.is_floating_point()
            ):
                raise TavaalError(
                    f"x has rows of shape {tuple(xt.shape[1:])} ({xt.dtype}) but the pool's are "
                    f"{ds.input_shape} ({ds.x_train.dtype})"
                )
            y = y.tolist() if isinstance(y, (np.ndarray, torch.Tensor)) else list(y)
            yt = torch.tensor(
                [self._classes.index(v, f"evaluate() label {v!r}") for v in y], dtype=torch.long
            )
            if (yt < 0).any():
                bad = [v for v, k in zip(y, yt.tolist()) if k < 0][:5]
                raise TavaalError(f"evaluate(): labels {bad} are not among the classes {self.classes}")
            ds = dataclasses.replace(ds, x_test=xt.to(self.device), y_test=yt.to(self.device))
        elif ds.x_test.shape[0] == 0:
            raise TavaalError("the pool has no test split: pass evaluate(x, y)")
        return evaluate(model, ds, self.round.ctx.runtime)

    def predict(self, ids: Sequence[Any]) -> list[Any]:
        """The fitted task learner's class for each of ``ids`` (a pre-annotation for labelers)."""
        if self.segmentation:
            raise TavaalError("predict() gives one class per sample; it is not defined for segmentation")
        idx = self.indices_of(ids)
        logits = infer(self.model, self.ds, idx, self.round.ctx.runtime)["logits"]
        return [self.classes[k] for k in logits.argmax(1).tolist()]

    def networks(self) -> dict[str, nn.Module | Any]:
        """The fitted networks by role: ``model``, ``ranker`` and the method's ``selector`` (VAAL's
        and TA-VAAL's VAE + D) as present."""
        if self.round.ctx is None:
            return {}
        nets: dict[str, Any] = {"model": self.round.ctx.model}
        if self.round.ctx.ranker is not None:
            nets["ranker"] = self.round.ctx.ranker
        if self.round.ctx.selector is not None:
            nets["selector"] = self.round.ctx.selector
        return nets

    # ----------------------------------------------------------------- state and persistence
    @property
    def pool_data(self) -> PoolData:
        """The decoded pool as given (samples, ids, normalisation, test split), never relabeled."""
        return self._data

    def state_dict(self) -> dict[str, Any]:
        """The session's state: round, labels in the order given, classes, and the fitted round (its
        seed, labeled count, candidates, and the weights of every network under ``networks``)."""
        fit = None
        if self.round.ctx is not None:
            ctx = self.round.ctx
            fit = {
                "seed": ctx.seed,
                "n_labeled": len(ctx.labeled),
                "candidates": [int(i) for i in ctx.candidates],
                "selects": self.round.selects,
                "round_open": self.round.open,
                "networks": {k: v.state_dict() for k, v in self.networks().items()},
            }
        return {
            "uid": self.uid,
            "trial": self.trial,
            "cycle": self.round.cycle,
            "cold_start": self.cold_start,
            "classes": list(self.classes),
            "classes_fixed": self.classes_fixed,
            "labels": [[int(n), v] for n, v in zip(self.pool.labeled, self.pool.values)],
            "fit": fit,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what ``state_dict`` gave into this learner (same pool, method and model): the
        labels, the round, and the fitted networks in the context they were trained in."""
        if self.pool.n_labeled:
            raise TavaalError("load_state_dict needs a learner with no labels yet (a fresh one)")
        self.uid = state["uid"]
        if not self.classes_fixed:
            self._classes = ClassNames(state["classes"], fixed=False)
        labels = state["labels"]
        self.label([self.ids[n] for n, _ in labels], [v for _, v in labels])
        self.set_cycle(state["cycle"])
        fit = state.get("fit")
        if fit is None:
            return
        nets = fit["networks"]
        ctx = self._round_context(
            self.pool.labeled[: fit["n_labeled"]],
            np.asarray(fit["candidates"], dtype=np.int64),
            fit["seed"],
            fit["selects"],
            ranker="ranker" in nets,
        )
        try:
            ctx.model.load_state_dict(nets["model"])
            if ctx.ranker is not None:
                ctx.ranker.load_state_dict(nets["ranker"])
        except RuntimeError as e:
            first = first_line(e)
            raise TavaalError(
                f"the saved task learner does not fit the model given ({first}); pass the same network"
            ) from None
        selector = nets.get("selector", nets.get("adversarial"))  # "adversarial": format_version 1
        if ctx.selector is not None and selector is not None:
            ctx.selector.load_state_dict(selector)
        self.round.ctx, self.round.fitted_on = ctx, fit["n_labeled"]
        self.round.selects, self.round.open = fit["selects"], fit["round_open"]

    def save(self, path: Any) -> None:
        """Everything the session needs, in folder ``path``: networks (VAE and D too), pool, labels,
        classes, seeds. ``ActiveLearner.load(path)`` (with ``model=`` the same network when it was
        built from a Python model) gives the same next query, in another process too."""
        if self.segmentation:
            raise TavaalError(
                "save() holds class labels; a segmentation learner cannot be saved in this version"
            )
        save_learner(self, path)

    @classmethod
    def load(
        cls,
        path: Any,
        model: ModelSource | None = None,
        method: Strategy | None = None,
        device: str | None = None,
    ) -> ActiveLearner:
        """The learner saved in ``path``. A learner built from a Python model or a ``Strategy``
        instance needs it again (``model=``, ``method=``); ``device`` moves it."""
        saved = read_learner(path, model is not None, device)
        with reading(saved.root):
            learner = cls(
                method or saved.meta["method"],
                model,
                saved.data,
                classes=saved.meta["classes"] if saved.meta["classes_fixed"] else None,
                feature_layers=saved.meta["feature_layers"],
                embedding_layer=saved.meta["embedding_layer"],
                trial=saved.meta["trial"],
                cold_start=saved.meta["cold_start"],
                config=saved.cfg,
                embeddings=saved.embeddings,
            )
            learner.load_state_dict(saved.state(learner.device))
        return learner

    def __repr__(self) -> str:
        return (
            f"ActiveLearner(method={self.method!r}, model={self.spec.label!r}, pool={len(self.ids)}, "
            f"labeled={self.pool.n_labeled}, classes={len(self.classes)}, cycle={self.cycle})"
        )
