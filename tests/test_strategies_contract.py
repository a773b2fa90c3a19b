"""The template test every registered strategy must pass, on moons and digits: it runs over the
registry itself, so a newly registered method cannot escape it."""

import numpy as np
import pytest

from conftest import cpu_runtime, one_cycle, tiny_config
from tavaal.errors import BudgetError
from tavaal.pool import Pool
from tavaal.runner.cycle import initial_labeled
from tavaal.strategies import STRATEGIES, get_strategy

EXPECTED = {"random", "entropy", "mcdropout", "coreset", "lloss", "lloss2", "vaal", "vaal-lloss", "tavaal"}


def test_every_method_of_the_paper_is_registered():
    assert EXPECTED <= set(STRATEGIES)


def _cycle(method, ds, preset, **kw):
    cfg = tiny_config(preset, **kw)
    pool = Pool(ds.n_train, initial_labeled(ds.n_train, cfg.protocol.initial, cfg.protocol.seed, 0))
    before = pool.labeled.copy()
    rec, _ = one_cycle(cfg, get_strategy(method, cfg), ds)
    return cfg, before, rec


@pytest.mark.parametrize("preset", ["moons", "digits"])
@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_select_contract(method, preset, moons, digits):
    ds = moons if preset == "moons" else digits
    cfg, before, rec = _cycle(method, ds, preset)
    sel = np.asarray(rec["selected"])
    cand = np.asarray(rec["candidates"])
    assert len(sel) == cfg.protocol.budget and len(np.unique(sel)) == cfg.protocol.budget
    assert set(sel) <= set(cand) and not set(sel) & set(before)
    assert len(cand) == cfg.protocol.candidates_for(cfg.protocol.budget)
    if rec["scores"] is not None:
        assert len(rec["scores"]) == len(cand) and np.all(np.isfinite(rec["scores"]))
    _, _, again = _cycle(method, ds, preset)
    assert again["selected"] == rec["selected"] and again["accuracy"] == rec["accuracy"]


@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_budget_larger_than_candidates_is_refused(method, moons):
    cfg = tiny_config("moons")
    from tavaal.models import Ranker, build_task_learner
    from tavaal.strategies import SelectionContext

    model = build_task_learner("mlp", (2,), 2, 0.3)
    ctx = SelectionContext(
        model, Ranker(model.feature_dims), moons, np.arange(20), np.arange(20, 30), cpu_runtime(cfg)
    )
    with pytest.raises(BudgetError, match="larger than the 10 unlabeled candidates"):
        get_strategy(method, cfg).select(ctx, 11)


def test_one_registry_style_for_methods_datasets_and_models():
    from tavaal.data import DATASETS
    from tavaal.errors import TavaalError
    from tavaal.models import MODELS
    from tavaal.registry import Registry

    for registry, kind in ((STRATEGIES, "method"), (DATASETS, "dataset"), (MODELS, "model")):
        assert isinstance(registry, Registry) and registry.kind == kind and len(registry) >= 4
        with pytest.raises(TavaalError, match=f"unknown {kind} 'nope'; valid {kind}s are: "):
            registry.get("nope")
    with pytest.raises(ValueError, match="registered twice"):
        STRATEGIES.register("random")(object)


@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_traits_are_declared_on_the_class(method):
    cls = STRATEGIES.get(method)
    assert cls.ranker_loss in (None, "ranking", "margin")
    assert cls.adversarial == (cls.score_name == "d_labeled_prob")
    assert (method in {"lloss", "lloss2", "tavaal", "vaal-lloss"}) == (cls.ranker_loss is not None)


USER = {"model": "user_nets:make_net", "feature_layers": "1,3", "embedding_layer": "6"}


@pytest.mark.parametrize("method", sorted(STRATEGIES))
def test_select_contract_with_a_users_own_model(method, digits):
    """The same contract with a network the package does not ship, tapped by layer names."""
    cfg, before, rec = _cycle(method, digits, "digits", **USER)
    sel = np.asarray(rec["selected"])
    assert len(sel) == cfg.protocol.budget and len(np.unique(sel)) == cfg.protocol.budget
    assert set(sel) <= set(rec["candidates"]) and not set(sel) & set(before)
    _, _, again = _cycle(method, digits, "digits", **USER)
    assert again["selected"] == rec["selected"]
