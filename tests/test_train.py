import numpy as np
import torch

from tavaal.models import Ranker, build_task_learner
from tavaal.train import evaluate, ranker_schedule, train_task_learner

from conftest import tiny_config


def _setup(ds, cfg):
    torch.manual_seed(0)
    model = build_task_learner(cfg.model, ds.input_shape, ds.num_classes)
    return model, Ranker(model.feature_dims)


def test_ranker_frozen_after_0_8_n_and_no_ranker_gradient_reaches_t(digits):
    cfg = tiny_config(epochs=5)
    assert ranker_schedule(cfg) == (4, 5)  # epochs 1..4 (1-based) update R, epoch 5 does not
    model, ranker = _setup(digits, cfg)
    snaps, grads_into_ranker = {}, []

    def hook(epoch, m, r):
        snaps[epoch] = [p.detach().clone() for p in r.parameters()]
        if epoch == 4:  # from now on no gradient may flow through the Ranker
            for p in r.parameters():
                p.register_hook(lambda g: grads_into_ranker.append(1))

    log = train_task_learner(model, ranker, digits, np.arange(64), cfg, torch.device("cpu"), "ranking", hook)
    assert log.ranker_last_epoch == 3
    assert any(not torch.equal(a, b) for a, b in zip(snaps[0], snaps[4]))  # R did learn before
    assert all(torch.equal(a, p) for a, p in zip(snaps[4], ranker.parameters()))  # ... and not after
    assert grads_into_ranker == []
    assert all(p.grad is None for p in ranker.parameters())


def test_official_detach_keeps_training_ranker_but_not_through_features(digits):
    cfg = tiny_config(epochs=5, ranker_stop="detach", ranker_detach_fraction=0.6)
    assert ranker_schedule(cfg) == (5, 3)
    model, ranker = _setup(digits, cfg)
    snaps, current, seen = {}, [0], {}
    forward = ranker.forward

    def spy(feats):
        seen.setdefault(current[0], set()).update(f.requires_grad for f in feats)
        return forward(feats)

    ranker.forward = spy

    def hook(epoch, m, r):
        current[0] = epoch
        snaps[epoch] = [p.detach().clone() for p in r.parameters()]

    log = train_task_learner(model, ranker, digits, np.arange(64), cfg, torch.device("cpu"), "ranking", hook)
    assert log.ranker_last_epoch == 4
    assert seen[2] == {True} and seen[3] == {False} and seen[4] == {False}
    assert any(not torch.equal(a, p) for a, p in zip(snaps[3], ranker.parameters()))


def test_training_learns_and_evaluates(digits):
    cfg = tiny_config(epochs=8)
    model, _ = _setup(digits, cfg)
    train_task_learner(model, None, digits, np.arange(300), cfg, torch.device("cpu"))
    assert evaluate(model, digits, cfg, torch.device("cpu")) > 0.6


def test_optimizer_kwargs_for_cuda_graphs():
    from tavaal.config import RunConfig
    from tavaal.train import optimizer_kwargs

    cuda, cpu = torch.device("cuda"), torch.device("cpu")
    assert optimizer_kwargs(RunConfig(), cpu, adam=True) == {}
    assert optimizer_kwargs(RunConfig(), cuda, adam=False) == {"foreach": True}
    graphs = RunConfig(cuda_graphs=True, fused=True)
    assert optimizer_kwargs(graphs, cuda, adam=True) == {"fused": True, "capturable": True}
    assert optimizer_kwargs(graphs, cuda, adam=False) == {"fused": True}
