"""The paper-vs-authors fixes: recipes, tie-breaking, collapse diagnostics, VAE inputs and order,
initialisation, MC dropout on a wrapped model, crop padding."""

import logging

import numpy as np
import pytest
import torch
import yaml
from torch import nn

from conftest import cpu_runtime, one_cycle, tiny_config
from tavaal.analysis.diagnostics import score_diagnostics
from tavaal.config import RECIPES, make_config
from tavaal.data import with_crop_pad
from tavaal.errors import TavaalError
from tavaal.models import TappedModel, build_discriminator, build_vae
from tavaal.runner import run_experiment
from tavaal.strategies import SelectionContext, Strategy, get_strategy
from tavaal.strategies.adversarial import VAEDiscriminator
from tavaal.strategies.base import top_k

CPU = torch.device("cpu")


def test_authors_recipe_sets_every_listed_field_and_an_explicit_field_wins():
    cfg = make_config("cifar10", {"recipe": "authors"})
    for field, value in RECIPES["authors"].items():
        assert cfg.get(field) == value, field
    assert (
        cfg.adversarial.schedule,
        cfg.adversarial.latent_dim,
        cfg.adversarial.disc_layers,
        cfg.training.weight_decay,
    ) == ("official", 32, 3, 5e-4)
    paper = make_config("cifar10")
    assert (
        paper.adversarial.schedule,
        paper.adversarial.latent_dim,
        paper.adversarial.disc_layers,
        paper.training.weight_decay,
    ) == ("paper", 64, 5, 5e-3)
    mixed = make_config("cifar10", {"recipe": "authors", "latent_dim": 64})
    assert mixed.adversarial.latent_dim == 64 and mixed.adversarial.schedule == "official"


def test_unknown_recipe_lists_the_valid_ones():
    with pytest.raises(TavaalError, match="valid recipes are: authors, paper"):
        make_config("digits", {"recipe": "official"})


def test_config_yaml_records_the_recipe_and_the_fields_that_override_it(tmp_path, digits):
    cfg = tiny_config(recipe="authors", latent_dim=8, cycles=1)
    run_experiment(cfg, ["random"], tmp_path, ds=digits)
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert saved["config"]["recipe"] == "authors" and saved["config"]["latent_dim"] == 8
    assert saved["recipe_overrides"] == {"latent_dim": {"recipe": 32, "used": 8}}


def test_ties_are_broken_at_random_with_the_seed_never_by_position():
    flat = np.zeros(100)
    a, tied = top_k(flat, 10, seed=1)
    assert tied == 90 and len(set(a)) == 10
    assert sorted(a) != list(range(10))  # not the lowest positions
    assert np.array_equal(a, top_k(flat, 10, seed=1)[0])  # deterministic
    assert not np.array_equal(np.sort(a), np.sort(top_k(flat, 10, seed=2)[0]))
    # Distinct priorities: the highest, whatever the seed; partial ties only inside the tied block.
    prio = np.array([5.0, 1.0, 3.0, 3.0, 3.0, 0.0])
    for seed in range(5):
        order, tied = top_k(prio, 3, seed)
        assert order[0] == 0 and set(order[1:]) <= {2, 3, 4} and tied == 1


class _Constant(Strategy):
    name = "constant-test"
    score_name = "const"

    def score(self, ctx):
        s = np.full(len(ctx.candidates), 0.4997)
        return s, s


def test_constant_scores_are_recorded_and_warned_about(digits, caplog):
    cfg = tiny_config()
    with caplog.at_level(logging.WARNING, logger="tavaal"):
        rec, _ = one_cycle(cfg, _Constant(), digits)
    assert rec["degenerate"] and rec["n_distinct_scores"] == 1 and rec["score_spread"] == 0.0
    assert rec["tied_at_cut"] == len(rec["candidates"]) - cfg.protocol.budget
    assert "effectively random" in caplog.text
    assert sorted(rec["selected"]) != sorted(rec["candidates"])[: cfg.protocol.budget]


def test_score_diagnostics_by_hand():
    d = score_diagnostics(np.array([0.1, 0.5, 0.5, 0.9]), 1)
    assert d["n_distinct_scores"] == 3 and d["score_spread"] == pytest.approx(0.8) and not d["degenerate"]
    assert d["score_std"] == pytest.approx(np.std([0.1, 0.5, 0.5, 0.9]))
    assert score_diagnostics(np.array([0.5, 0.5 + 1e-7]), 0)["degenerate"]


@pytest.mark.parametrize("method", ["vaal", "tavaal"])
def test_adversarial_records_carry_final_vae_and_d_losses(method, moons):
    cfg = tiny_config("moons")
    rec, _ = one_cycle(cfg, get_strategy(method, cfg), moons)
    assert np.isfinite(rec["vae_loss"]) and rec["disc_loss"] > 0
    assert rec["n_distinct_scores"] > 1 and rec["score_spread"] > 0


def _trainer(ds, **kw):
    cfg = tiny_config("digits", **kw)
    labeled, cand = np.arange(20), np.arange(20, 120)
    ctx = SelectionContext(None, None, ds, labeled, cand, cpu_runtime(cfg), seed=3)
    return VAEDiscriminator(ctx, get_strategy("vaal", cfg).p, conditioned=False)


@pytest.mark.parametrize("vae_augment", [False, True])
def test_vae_sees_unaugmented_images_unless_asked(digits, vae_augment, monkeypatch):
    trainer = _trainer(digits, vae_augment=vae_augment)
    seen = []
    batch = type(digits).batch

    def spy(self, idx, train, generator=None, split="train"):
        seen.append(train)
        return batch(self, idx, train, generator, split)

    monkeypatch.setattr(type(digits), "batch", spy)
    trainer.train_epoch(None, None, None, None)
    assert seen and set(seen) == {vae_augment}


def test_fixed_order_visits_each_sample_once_per_pass_in_one_order(digits):
    trainer = _trainer(digits)
    first = trainer._stream("u", 100, 100)
    second = trainer._stream("u", 100, 100)
    assert sorted(first.tolist()) == list(range(100)) and torch.equal(first, second)
    assert first.tolist() != list(range(100))  # a random order, not index order
    part = trainer._stream("l", 20, 30)  # the labeled stream wraps around where it stopped
    assert torch.equal(part[20:], part[:10]) and sorted(part[:20].tolist()) == list(range(20))
    shuffled = _trainer(digits, vae_order="shuffle")
    assert not torch.equal(shuffled._stream("u", 100, 100), shuffled._stream("u", 100, 100))


def test_kaiming_init_as_the_authors_and_pytorch_default_on_request():
    torch.manual_seed(0)
    vae = build_vae((2,), 64, 1, init="kaiming")
    first = vae.enc[0]
    assert torch.all(first.bias == 0)
    assert first.weight.std().item() == pytest.approx((2 / first.in_features) ** 0.5, rel=0.35)
    assert not torch.all(vae.fc_mu.bias == 0)  # the authors' init loop never reaches the mu head
    torch.manual_seed(0)
    assert not torch.all(build_vae((2,), 64, 1, init="default").enc[0].bias == 0)
    disc = build_discriminator(64, 1, 3)
    assert sum(isinstance(m, nn.Linear) for m in disc.modules()) == 3
    assert all(torch.all(m.bias == 0) for m in disc.modules() if isinstance(m, nn.Linear))


def _wrapped(dropout: float) -> TappedModel:
    layers = [nn.Flatten(), nn.Linear(64, 32), nn.ReLU()]
    if dropout:
        layers.append(nn.Dropout(dropout))
    net = nn.Sequential(*layers, nn.Linear(32, 10))
    return TappedModel(net, ["2"], torch.zeros(2, 1, 8, 8))


def test_mc_dropout_refuses_a_model_without_dropout_and_uses_a_wrapped_models_own(digits):
    cfg = tiny_config()
    cand = np.arange(100, 200)
    strategy = get_strategy("mcdropout", cfg)
    with pytest.raises(TavaalError, match="needs dropout layers"):
        strategy.select(
            SelectionContext(_wrapped(0.0), None, digits, np.arange(20), cand, cpu_runtime(cfg)), 10
        )
    sel = strategy.select(
        SelectionContext(_wrapped(0.5), None, digits, np.arange(20), cand, cpu_runtime(cfg)), 10
    )
    assert np.ptp(sel.scores) > 0  # BALD is not 0 everywhere


def test_crop_pad_replaces_the_padding_of_32x32_crops_only(digits, moons):
    import dataclasses

    cifar_like = dataclasses.replace(
        digits,
        x_train=torch.zeros(4, 3, 32, 32, dtype=torch.uint8),
        augment=dataclasses.replace(digits.augment, pad=2),
    )
    assert with_crop_pad(cifar_like, 4).augment.pad == 4 and with_crop_pad(cifar_like, -1) is cifar_like
    assert with_crop_pad(digits, 4) is digits  # 8x8: the recipe's 4 pixels would be half the image
    assert with_crop_pad(moons, 4) is moons  # vectors have no crop


def test_moons_are_standardised_when_batched(moons):
    x = moons.batch(torch.arange(moons.n_train), train=False)
    assert torch.allclose(x.mean(0), torch.zeros(2), atol=1e-5)
    assert torch.allclose(x.std(0), torch.ones(2), atol=1e-2)


@pytest.mark.parametrize("method", ["lloss2", "tavaal"])
def test_scores_stay_fp32_under_bf16_autocast(method, moons):
    # bf16 has an 8-bit mantissa: Ranker and D outputs computed in it tie by the dozen.
    cfg = tiny_config("moons", precision="bf16", budget=20)
    rec, _ = one_cycle(cfg, get_strategy(method, cfg), moons)
    assert rec["n_distinct_scores"] == len(rec["candidates"]) == 200


def test_keep_models_saves_every_network_of_the_cycle_including_vae_and_d(tmp_path, moons):
    cfg = tiny_config("moons", cycles=2)
    run_experiment(cfg, ["tavaal"], tmp_path, ds=moons, keep_models=True)
    saved = torch.load(tmp_path / "jobs" / "tavaal-trial0" / "models" / "cycle0.pt", weights_only=True)
    assert set(saved) == {"model", "ranker", "selector"}
    assert {"vae", "disc"} <= set(saved["selector"]) and saved["selector"]["disc"]
    assert saved["selector"]["fitted"] is True
    last = torch.load(tmp_path / "jobs" / "tavaal-trial0" / "models" / "cycle1.pt", weights_only=True)
    assert "selector" not in last  # the last cycle selects nothing, so it trains no VAE


@pytest.mark.parametrize("schedule", ["paper", "official"])
def test_the_adversarial_phase_is_fitted_by_its_schedule(schedule, moons):
    cfg = tiny_config("moons", schedule=schedule, epochs=3, vae_epochs=2)
    _, nets = one_cycle(cfg, get_strategy("tavaal", cfg), moons)
    phase = nets["selector"]
    per_epoch = int(
        np.ceil(
            (cfg.protocol.initial + cfg.protocol.candidates_for(cfg.protocol.budget))
            / cfg.training.batch_size
        )
    )
    assert phase.fitted and phase.iterations == (3 if schedule == "paper" else 2) * per_epoch


class _AddressRecorder:
    """Stands in for a CUDA graph on the CPU: it runs the step and records the addresses of the r
    buffers the step reads. A captured graph reads fixed addresses, so under graphs the paper
    schedule must copy each epoch's new r into buffers the phase owns, never rebind them."""

    def __init__(self, phase):
        self.phase, self.addresses, self.values = phase, [], []

    def __call__(self, mode, fn, *inputs):
        self.addresses.append(tuple(t.data_ptr() for t in self.phase._cond))
        self.values.append(self.phase._cond[0].clone())
        return fn(*inputs)  # the stepper passes the graph-safe generator (None) itself


def test_under_graphs_r_lives_in_buffers_the_phase_owns(digits):
    """The CPU part of the graph-vs-eager check for the VAE + D path of the paper schedule (where
    its steps interleave with T's): every epoch's r reaches the step through the same buffers."""
    cfg = tiny_config("digits", vae_batch_size=16)
    labeled, cand = np.arange(20), np.arange(20, 60)
    ctx = SelectionContext(None, None, digits, labeled, cand, cpu_runtime(cfg), seed=3, batch_size=16)
    phase = VAEDiscriminator(ctx, get_strategy("tavaal", cfg).p, conditioned=True)
    phase.stepper.graph = rec = _AddressRecorder(phase)
    for epoch in range(3):
        r_l, r_u = torch.full((20,), 0.1 * (epoch + 1)), torch.full((40,), 0.2 * (epoch + 1))
        phase.train_epoch(r_l, r_u, r_l, r_u)
    assert len(set(rec.addresses)) == 1 and len(rec.addresses) == 3 * 4  # 60 samples / 16 per epoch
    firsts = [v[0].item() for v in rec.values[::4]]
    assert firsts == pytest.approx([0.1, 0.2, 0.3])  # the new r of each epoch, in the same buffer
