"""The strategy contract: ``select(context, budget) -> Selection`` and a registry by name.

A strategy declares the training it needs (``ranker_loss``: None, "ranking" for equation 1 or
"margin" for Learning Loss; ``head_dropout`` for MC dropout) and may hook into the training
epochs (TA-VAAL's Algorithm 1). Everything it reads comes in through ``SelectionContext``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from tavaal.data.base import ArrayDataset
from tavaal.errors import BudgetError, TavaalError
from tavaal.registry import Registry
from tavaal.runtime import Runtime
from tavaal.settings import Settings
from tavaal.train import EpochHook


class Sections(Protocol):
    """What ``from_config`` reads: a ``RunConfig`` (which composes the strategies' settings, so it
    sits above this module and is not imported here)."""

    def section(self, name: str) -> Any: ...


@dataclass
class SelectionContext:
    """What a strategy may use in one cycle. ``candidates`` is the random subset of the pool."""

    model: nn.Module
    ranker: nn.Module | None
    dataset: ArrayDataset
    labeled: np.ndarray
    candidates: np.ndarray
    runtime: Runtime
    seed: int = 0
    progress: bool = False
    selector: Any = None  # what the method trains for selection this cycle (VAAL's VAE and D), or None
    embeddings: torch.Tensor | None = None  # the user's own features of every pool sample (TypiClust)
    batch_size: int = 32  # the task learner's batch size (the VAE's too, unless it has its own)


@dataclass
class Selection:
    """Chosen dataset indices, per-candidate scores aligned with ``context.candidates``, and what
    the strategy reports about itself (e.g. the VAE and D's final losses)."""

    indices: np.ndarray
    scores: np.ndarray | None = None
    score_name: str | None = None
    tied_at_cut: int = 0  # candidates tied with the last pick that were left out (picked at random)
    info: dict[str, Any] = field(default_factory=dict)


def top_k(priority: np.ndarray, budget: int, seed: int) -> tuple[np.ndarray, int]:
    """Positions of the ``budget`` highest priorities, ties broken at random with ``seed`` (never by
    position, which would favour low dataset indices); also how many candidates tied with the
    last pick were left out."""
    priority = np.asarray(priority, dtype=np.float64)
    tiebreak = np.random.default_rng(seed).random(len(priority))
    order = np.lexsort((tiebreak, -priority))[:budget]
    if budget == 0 or budget >= len(priority):
        return order, 0
    cut = priority[order[-1]]
    return order, int(np.count_nonzero(priority == cut) - np.count_nonzero(priority[order] == cut))


def check_budget(budget: int, n_candidates: int) -> None:
    if budget <= 0:
        raise BudgetError(f"budget must be positive, got {budget}")
    if budget > n_candidates:
        raise BudgetError(
            f"budget {budget} is larger than the {n_candidates} unlabeled candidates; "
            "lower the budget (--budget) or label fewer samples per cycle"
        )


def random_picks(pool: np.ndarray, n: int, seed: int) -> np.ndarray:
    """``n`` distinct entries of ``pool`` drawn at random with ``seed`` (random sampling, a cold
    start, the candidate subset)."""
    return np.random.default_rng(seed).choice(pool, size=n, replace=False)


class Strategy:
    """Base class: subclasses implement ``score`` (higher priority is chosen first) or ``choose``.

    Hyper-parameters are constructor keywords, declared once in the strategy's ``settings``
    dataclasses (their field names are the config's flat names, e.g. ``TAVAAL(latent_dim=64)``);
    each is checked when built. The config's sections for strategies are these dataclasses, read
    from the registry, so a new method is one module and its registration.
    """

    name: ClassVar[str] = ""
    ranker_loss: ClassVar[str | None] = None  # trait: needs a Ranker, trained with this loss
    adversarial: ClassVar[bool] = False  # trait: scores with a VAE + discriminator (D's output)
    score_name: ClassVar[str | None] = None
    # How the recorded score relates to the picks: "higher first", "lower first", or "not the
    # order" (the picks come from a diversity procedure; the score only describes each candidate).
    score_order: ClassVar[str] = "higher first"
    settings: ClassVar[tuple[type[Settings], ...]] = ()  # the settings sections it reads

    def __init__(self, *sections: Settings, **values: Any):
        """``sections``: settings objects already built (a config's, handed over as they are);
        ``values``: fields by name, for the sections not given or changing a given one."""
        known = {f.name: cls for cls in self.settings for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(values) - set(known))
        if unknown:
            valid = ", ".join(sorted(known)) or "none"
            raise TavaalError(f"{self.name} has no setting {unknown[0]!r}; its settings are: {valid}")
        given = {type(s): s for s in sections}
        foreign = [c.__name__ for c in given if c not in self.settings]
        if foreign:
            raise TavaalError(f"{self.name} reads no settings section {foreign[0]}")
        self.params: dict[type[Settings], Any] = {}
        for cls in self.settings:
            mine = {k: v for k, v in values.items() if known[k] is cls}
            if cls in given:
                self.params[cls] = dataclasses.replace(given[cls], **mine) if mine else given[cls]
            else:
                self.params[cls] = cls(**mine)

    @classmethod
    def from_config(cls, cfg: Sections) -> Strategy:
        """The strategy with the config's own settings sections (built once, when the config was)."""
        return cls(*(cfg.section(section.section) for section in cls.settings))

    def selector(self, ctx: SelectionContext) -> Any:
        """This cycle's selector (``make_selector``), made once per context, here only."""
        if ctx.selector is None:
            ctx.selector = self.make_selector(ctx)
        return ctx.selector

    @property
    def head_dropout(self) -> float:
        """Dropout to put before the built-in task learners' heads (MC dropout's)."""
        return 0.0

    def check_model(self, model: nn.Module) -> None:
        """Refuse, before any training, a task learner the method cannot score with."""

    def check_dataset(self, dataset: Any, batch_size: int, device: torch.device) -> None:
        """Refuse, when the learner is built, data the method cannot work on, or a selector
        that would not fit ``device`` (``tavaal.memory``)."""

    def make_selector(self, ctx: SelectionContext) -> Any:
        """The method's selector: the networks it trains for selection in one cycle (with
        ``state_dict``; saved as the learner's ``selector`` network), built before T trains; None
        for methods that have none."""
        return None

    def training_hook(self, ctx: SelectionContext) -> EpochHook | None:
        """A callback run at the start of every training epoch, or None."""
        return None

    def score(self, ctx: SelectionContext) -> tuple[np.ndarray, np.ndarray]:
        """(scores to record, priority); the ``budget`` highest priorities are selected."""
        raise NotImplementedError

    def select(self, ctx: SelectionContext, budget: int) -> Selection:
        """The ``budget`` picks among ``ctx.candidates``: the budget is checked here, once for every
        method, then ``choose`` picks."""
        check_budget(budget, len(ctx.candidates))
        return self.choose(ctx, budget)

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:
        """Pick ``budget`` candidates (already checked to be possible): by default the ``budget``
        highest priorities of ``score``; methods that pick by a procedure override this."""
        scores, priority = self.score(ctx)
        order, tied = top_k(priority, budget, ctx.seed)
        return Selection(
            np.asarray(ctx.candidates)[order], np.asarray(scores, dtype=np.float64), self.score_name, tied
        )


STRATEGIES: Registry[type[Strategy]] = Registry("method")


def register(cls: type[Strategy]) -> type[Strategy]:
    """Class decorator adding a strategy to the registry under ``cls.name``."""
    return STRATEGIES.register(cls.name)(cls)


def get_strategy(name: str, cfg: Sections) -> Strategy:
    """The registered strategy ``name``, built with its hyper-parameters from ``cfg``."""
    return STRATEGIES.get(name).from_config(cfg)


def seeded(seed: int) -> None:
    """Seed torch's global generators for the code that uses them (initialisation, dropout)."""
    torch.manual_seed(seed)
