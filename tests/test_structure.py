"""The structure's promises: a strategy owns its settings (a new method is one module and its
registration), settings are checked when built, the learner owns its state, no import cycles."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np
import pytest

from tavaal import ActiveLearner, TavaalError
from tavaal.config import FIELDS, SECTIONS, make_config, refresh_sections
from tavaal.errors import BudgetError
from tavaal.settings import POSITIVE, Settings, setting
from tavaal.strategies import STRATEGIES, Selection, SelectionContext, Strategy, get_strategy

SRC = Path(__file__).resolve().parents[1] / "src" / "tavaal"


@dataclass
class FarthestParams(Settings):
    section: ClassVar[str] = "farthest"

    farthest_power: float = setting(1.0, check=POSITIVE)


class Farthest(Strategy):
    """A method as a user would add it: the candidates farthest from the pool's mean input."""

    name = "farthest-test"
    score_name = "distance"
    settings = (FarthestParams,)

    def choose(self, ctx: SelectionContext, budget: int) -> Selection:  # the base checked the budget
        x = ctx.dataset.x_train.float().flatten(1)
        d = ((x[ctx.candidates] - x.mean(0)) ** 2).sum(1).pow(self.params[FarthestParams].farthest_power)
        order = np.argsort(-d.numpy(), kind="stable")[:budget]
        return Selection(np.asarray(ctx.candidates)[order], d.numpy(), self.score_name)


@pytest.fixture
def farthest():
    before = make_config("digits").experiment_hash()
    STRATEGIES.register(Farthest.name)(Farthest)
    try:
        yield before
    finally:
        STRATEGIES.unregister(Farthest.name)
        refresh_sections()


def test_a_new_method_brings_its_settings_section(farthest, rng):
    cfg = make_config("moons", {"farthest_power": 2.0})
    assert FIELDS["farthest_power"] == ("farthest", "float") and "farthest" in SECTIONS
    assert (
        cfg.farthest.farthest_power == 2.0
        and get_strategy("farthest-test", cfg).params[FarthestParams].farthest_power == 2
    )
    # adding a method leaves the identity of existing results folders alone
    assert make_config("digits").experiment_hash() == farthest
    assert make_config("digits", {"farthest_power": 2.0}).experiment_hash() != farthest
    with pytest.raises(TavaalError, match=r"farthest_power \(--farthest-power\) must be positive, got -1"):
        make_config("moons", {"farthest_power": -1})
    x = rng.normal(size=(60, 2)).astype(np.float32)
    learner = ActiveLearner("farthest-test", "mlp", x, farthest_power=3.0, epochs=1)
    learner.label(range(10), [i % 2 for i in range(10)])
    q = learner.query(5)
    assert len(set(q.ids)) == 5 and not set(q.ids) & set(range(10))
    ctx = SelectionContext(None, None, None, np.arange(3), np.arange(3, 7), None)  # type: ignore[arg-type]
    with pytest.raises(BudgetError, match="budget 5 is larger than the 4 unlabeled candidates"):
        get_strategy("farthest-test", cfg).select(ctx, 5)  # checked once, by the base class


@dataclass
class NearestParams(Settings):
    section: ClassVar[str] = "nearest"

    nearest_power: float = setting(1.0, check=POSITIVE)


class Nearest(Farthest):
    name = "nearest-test"
    settings = (NearestParams,)


def test_a_method_swapped_for_another_rebuilds_the_config_sections(farthest):
    make_config("moons")  # sections built with farthest-test registered
    STRATEGIES.unregister(Farthest.name)
    STRATEGIES.register(Nearest.name)(Nearest)  # as many methods as before: the count alone would miss it
    try:
        assert make_config("moons", {"nearest_power": 2.0}).nearest.nearest_power == 2.0
        assert "farthest_power" not in FIELDS and FIELDS["nearest_power"] == ("nearest", "float")
    finally:
        STRATEGIES.unregister(Nearest.name)
        STRATEGIES.register(Farthest.name)(Farthest)


def test_strategy_settings_are_checked_when_built():
    mc = type(get_strategy("mcdropout", make_config("digits")))
    tavaal = type(get_strategy("tavaal", make_config("digits")))
    with pytest.raises(
        TavaalError, match=r"mc_score \(--mc-score\) must be one of bald, entropy, varratio, got 'bold'"
    ):
        mc(mc_score="bold")
    with pytest.raises(
        TavaalError, match=r"schedule \(--schedule\) must be one of paper, official, got 'papr'"
    ):
        tavaal(schedule="papr")
    with pytest.raises(TavaalError, match="tavaal has no setting 'latent'; its settings are: .*latent_dim"):
        tavaal(latent="64")
    with pytest.raises(TavaalError, match="random has no setting 'k'; its settings are: none"):
        type(get_strategy("random", make_config("digits")))(k=3)
    assert tavaal(latent_dim=8).p.latent_dim == 8


def test_a_strategy_takes_the_configs_settings_as_built(monkeypatch):
    """Settings are built once, with the config: the strategy holds the config's own objects, and
    the VAE's batch of 0 is resolved beside them, not by building them again."""
    cfg = make_config("digits", {"latent_dim": 16})
    built = []
    real = type(cfg.adversarial).__post_init__
    monkeypatch.setattr(type(cfg.adversarial), "__post_init__", lambda self: built.append(1) or real(self))
    strategy = get_strategy("tavaal", cfg)
    assert strategy.p is cfg.adversarial and built == []
    changed = type(strategy)(cfg.adversarial, latent_dim=8)  # a keyword changes a given section
    assert changed.p.latent_dim == 8 and cfg.adversarial.latent_dim == 16 and built == [1]
    with pytest.raises(TavaalError, match="tavaal reads no settings section TypiClustParams"):
        type(strategy)(cfg.typiclust)


def test_the_vae_batch_of_0_is_the_task_batch_on_every_path(digits):
    """A strategy from the config and one built by hand give the VAE the same batch size."""
    x = digits.x_train[:120].numpy()
    tavaal_cls = type(get_strategy("tavaal", make_config("digits")))
    for method in ("tavaal", tavaal_cls()):
        learner = ActiveLearner(method, "smallcnn", x, epochs=1, batch_size=16, vae_batch_size=0)
        learner.label(range(20), digits.y_train[:20].tolist())
        learner.fit(budget=5)
        assert learner.networks()["selector"].batch == 16


def test_explicit_arguments_override_the_config(digits, monkeypatch):
    monkeypatch.setattr("tavaal.runtime.cpu_has_bf16", lambda: True)
    x = digits.x_train[:60].numpy()
    cfg = make_config("digits", {"epochs": 3})
    learner = ActiveLearner("random", "smallcnn", x, config=cfg, seed=7, epochs=1, device="cpu", fast=True)
    assert learner.cfg.protocol.seed == 7 and learner.cfg.training.epochs == 1
    assert learner.cfg.runtime.precision == "bf16"  # fast on a CPU with bf16 units
    assert cfg.training.epochs == 3  # the caller's config is left as it was
    with pytest.raises(TavaalError, match="give either config= or preset="):
        ActiveLearner("random", "smallcnn", x, config=cfg, preset="digits")
    with pytest.raises(TavaalError, match="must be positive"):
        ActiveLearner("random", "smallcnn", x, config=cfg, epochs=0)


def test_state_dict_round_trip_gives_the_same_next_query(digits):
    x = digits.x_train[:150].numpy()
    kw = dict(epochs=1, batch_size=16, vae_epochs=1, latent_dim=8)
    a = ActiveLearner("tavaal", "smallcnn", x, **kw)
    a.label(range(20), digits.y_train[:20].tolist())
    a.fit(budget=5)
    state = a.state_dict()
    b = ActiveLearner("tavaal", "smallcnn", x, **kw)
    b.load_state_dict(state)
    assert b.cycle == a.cycle and b.labels == a.labels and not b.stale
    assert b.query(5).ids == a.query(5).ids
    with pytest.raises(TavaalError, match="fresh one"):
        b.load_state_dict(state)
    b.set_cycle(4)
    assert b.cycle == 4
    with pytest.raises(TavaalError, match="cycle must be a whole number"):
        b.set_cycle(-1)


def _top_level_imports(path: Path) -> set[str]:
    """Modules of tavaal imported at module level (not inside functions or TYPE_CHECKING)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in tree.body:
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("tavaal"):
            for alias in node.names:  # `from tavaal.x import y` may name the submodule x.y
                sub = f"{node.module}.{alias.name}"
                out.add(sub if _module_path(sub) else node.module)
        elif isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("tavaal")}
    return out


def _module_path(name: str) -> Path | None:
    rel = Path(*name.split(".")[1:])
    for p in (SRC / rel.with_suffix(".py"), SRC / rel / "__init__.py"):
        if p.is_file():
            return p
    return None


def test_no_import_cycles():
    modules = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).with_suffix("")
        parts = [p for p in rel.parts if p != "__init__"]
        modules[".".join(["tavaal", *parts])] = path
    graph = {m: {d for d in _top_level_imports(p) if d in modules and d != m} for m, p in modules.items()}
    # A package's __init__ importing its own submodules is how a package is assembled; a
    # submodule importing its package's __init__ back would close a loop, and is checked.
    state: dict[str, int] = {}

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for d in graph[m]:
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " -> ".join([*stack[stack.index(d) :], d]))
            if d not in state:
                visit(d, [*stack, d])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])


def test_an_image_size_given_with_a_config_decodes_the_pool_at_that_size(tmp_path, monkeypatch):
    """Fields given beside config= win for reading the pool too, not only in the config."""
    from PIL import Image

    monkeypatch.setenv("TAVAAL_CACHE", str(tmp_path / "cache"))
    for i in range(4):
        Image.fromarray(np.full((12, 12, 3), 40 * i, np.uint8)).save(tmp_path / f"i{i}.png")
    cfg = make_config("digits", {"image_size": 0})
    learner = ActiveLearner("random", "smallcnn", tmp_path, config=cfg, image_size=8)
    assert learner.cfg.data.image_size == 8 and tuple(learner.pool_data.x.shape[-2:]) == (8, 8)
