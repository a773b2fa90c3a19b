import numpy as np
import pytest
import torch
from torch import nn

from conftest import cpu_runtime, one_cycle, tiny_config
from tavaal.inference import evaluate, infer
from tavaal.models import Discriminator, build_task_learner
from tavaal.pool import Pool
from tavaal.runner.cycle import initial_labeled
from tavaal.strategies import SelectionContext, get_strategy
from tavaal.strategies.coreset import k_center_greedy, min_distances

CPU = torch.device("cpu")


def test_k_center_greedy_picks_the_known_farthest_points():
    labeled = torch.tensor([[0.0, 0.0]])
    points = torch.tensor([[1.0, 0.0], [10.0, 0.0], [0.0, 5.0], [9.0, 0.0], [0.0, 1.0]])
    chosen, initial = k_center_greedy(points, labeled, 3, chunk=1)
    # 10 is farthest from the origin; then (0, 5) (distance 5 > 1); then (1, 0) or (0, 1) -> first max
    assert chosen == [1, 2, 0]
    assert torch.allclose(initial, torch.tensor([1.0, 10.0, 5.0, 9.0, 1.0]))


def test_chunked_distances_equal_the_full_matrix():
    g = torch.Generator().manual_seed(0)
    points, centers = torch.randn(300, 16, generator=g), torch.randn(257, 16, generator=g)
    full = torch.cdist(points, centers).min(dim=1).values
    for chunk in (1, 7, 64, 1000):
        assert torch.allclose(min_distances(points, centers, chunk), full, atol=1e-5)


class _Spy(nn.Module):
    """Wraps the discriminator to record the r it receives."""

    def __init__(self, d: Discriminator):
        super().__init__()
        self.d, self.seen = d, []

    def forward(self, z, r=None):
        self.seen.append(None if r is None else r.detach().clone())
        return self.d(z, r)


def _tavaal_ctx(ds, preset, **kw):
    cfg = tiny_config(preset, **kw)
    strategy = get_strategy("tavaal", cfg)
    rec, nets = one_cycle(cfg, strategy, ds)
    return cfg, strategy, rec, nets


@pytest.mark.parametrize("disc_r", ["sigmoid", "raw"])
def test_discriminator_receives_sigmoid_normalised_r(moons, disc_r):
    cfg, strategy, rec, nets = _tavaal_ctx(moons, "moons", disc_r=disc_r)
    trainer = nets["selector"]
    spy = _Spy(trainer.disc)
    trainer.disc = spy
    raw = infer(nets["model"], moons, np.asarray(rec["candidates"]), cpu_runtime(cfg), ranker=nets["ranker"])[
        "rank"
    ]
    assert (raw < 0).any() or (raw > 1).any()  # raw outputs are distinguishable from sigmoid ones
    ctx = SelectionContext(
        nets["model"],
        nets["ranker"],
        moons,
        np.asarray(rec["candidates"][:0]),
        np.asarray(rec["candidates"]),
        cpu_runtime(cfg),
        selector=trainer,
    )
    ctx.labeled = np.asarray(range(0))
    strategy.score(ctx)
    got = torch.cat(spy.seen)
    expected = torch.sigmoid(raw) if disc_r == "sigmoid" else raw
    assert torch.allclose(got, expected, atol=1e-6)


def test_selection_is_the_argmin_of_d(moons):
    cfg, _, rec, _ = _tavaal_ctx(moons, "moons")
    scores, cand = np.asarray(rec["scores"]), np.asarray(rec["candidates"])
    assert set(rec["selected"]) == set(cand[np.argsort(scores, kind="stable")[: cfg.protocol.budget]])
    assert np.all((scores > 0) & (scores < 1))


def test_first_epoch_uses_uniform_r_then_the_ranker(moons):
    cfg = tiny_config("moons", epochs=2)
    strategy = get_strategy("tavaal", cfg)
    calls = []
    original = type(strategy)._ranks

    def ranks(self, ctx):
        calls.append(1)
        return original(self, ctx)

    type(strategy)._ranks = ranks
    try:
        one_cycle(cfg, strategy, moons)
    finally:
        type(strategy)._ranks = original
    assert len(calls) == 2  # epoch 2 (not epoch 1) and the final selection


class _CountingModel(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner, self.samples = inner, 0
        self.feature_dims, self.embedding_dim, self.dropout = (
            inner.feature_dims,
            inner.embedding_dim,
            inner.dropout,
        )

    def forward(self, x):
        self.samples += x.shape[0]
        return self.inner(x)


@pytest.mark.parametrize("method", ["tavaal", "vaal-lloss"])
def test_official_schedule_runs_the_frozen_learner_once_per_sample(moons, method):
    cfg = tiny_config("moons", schedule="official", vae_epochs=3)
    pool = Pool(moons.n_train, initial_labeled(moons.n_train, cfg.protocol.initial, cfg.protocol.seed, 0))
    strategy = get_strategy(method, cfg)
    assert (
        strategy.training_hook(
            SelectionContext(None, None, moons, pool.labeled, np.arange(5), cpu_runtime(cfg))
        )
        is None
    )
    from tavaal.models import Ranker

    model = _CountingModel(build_task_learner("mlp", (2,), 2))
    ranker = Ranker(model.feature_dims)
    cand = np.setdiff1d(np.arange(moons.n_train), pool.labeled)[:100]
    ctx = SelectionContext(
        model, ranker, moons, pool.labeled, cand, cpu_runtime(cfg), seed=1, batch_size=cfg.training.batch_size
    )
    sel = strategy.select(ctx, cfg.protocol.budget)
    assert len(sel.indices) == cfg.protocol.budget
    assert ctx.selector.fitted and ctx.selector.iterations == 3 * int(
        np.ceil((20 + 100) / cfg.training.batch_size)
    )
    assert model.samples == 20 + 100  # once per labeled sample and candidate, not per VAE iteration


def test_mc_dropout_active_in_scoring_and_inactive_in_evaluation(digits):
    cfg = tiny_config("digits", dropout=0.5)
    torch.manual_seed(0)
    model = build_task_learner("smallcnn", digits.input_shape, 10, cfg.mcdropout.dropout)
    idx = np.arange(50)
    a = infer(model, digits, idx, cpu_runtime(cfg), train_mode_dropout=True)["logits"]
    b = infer(model, digits, idx, cpu_runtime(cfg), train_mode_dropout=True)["logits"]
    assert not torch.allclose(a, b)
    assert evaluate(model, digits, cpu_runtime(cfg)) == evaluate(model, digits, cpu_runtime(cfg))
    assert not model.dropout.training  # left in eval mode after scoring
    e1 = infer(model, digits, idx, cpu_runtime(cfg))["logits"]
    assert torch.equal(e1, infer(model, digits, idx, cpu_runtime(cfg))["logits"])


def test_mc_dropout_scores(digits):
    for score in ("bald", "entropy", "varratio"):
        c = tiny_config("digits", mc_score=score)
        rec, _ = one_cycle(c, get_strategy("mcdropout", c), digits)
        s = np.asarray(rec["scores"])
        assert rec["score_name"] == score and np.all(s >= -1e-6)
        if score == "varratio":
            assert np.all(s <= 0.9 + 1e-6)
