import numpy as np
import torch

from conftest import cpu_runtime, tiny_config
from tavaal.inference import evaluate
from tavaal.models import Ranker, build_task_learner
from tavaal.train import ranker_schedule, train_task_learner


def _setup(ds, cfg):
    torch.manual_seed(0)
    model = build_task_learner(cfg.training.model, ds.input_shape, ds.num_classes)
    return model, Ranker(model.feature_dims)


def test_after_0_8_n_ranker_is_frozen_but_its_loss_still_trains_t(digits):
    """Algorithm 1, n > 0.8N: theta_R stays, theta_T still descends L_T + eta L_R."""
    cfg = tiny_config(epochs=5)
    assert ranker_schedule(cfg.training) == (4, 5)  # epochs 1..4 (1-based) update R, epoch 5 does not
    model, ranker = _setup(digits, cfg)
    snaps, current, grad_into_t = {}, [0], {}
    forward = ranker.forward

    def spy(feats):  # the gradient L_R sends back into T's features, per epoch
        for f in feats:
            if f.requires_grad:
                f.register_hook(
                    lambda g, e=current[0]: grad_into_t.setdefault(e, []).append(float(g.abs().sum()))
                )
        return forward(feats)

    ranker.forward = spy

    def hook(epoch, m, r):
        current[0] = epoch
        snaps[epoch] = [p.detach().clone() for p in r.parameters()]

    log = train_task_learner(
        model, ranker, digits, np.arange(64), cfg.training, cpu_runtime(cfg), "ranking", hook
    )
    assert log.ranker_last_epoch == 3
    assert any(not torch.equal(a, b) for a, b in zip(snaps[0], snaps[4]))  # R did learn before
    assert all(torch.equal(a, p) for a, p in zip(snaps[4], ranker.parameters()))  # ... and not after
    assert all(p.grad is None for p in ranker.parameters())
    assert grad_into_t.get(4) and max(grad_into_t[4]) > 0  # ... but L_R still reaches T in epoch 5
    assert all(p.requires_grad for p in ranker.parameters())  # restored for whoever uses R next


def test_official_detach_keeps_training_ranker_but_not_through_features(digits):
    # The authors detach for ``epoch > 120`` (0-based) of 200: here epoch > int(0.5 * 6) = 3.
    cfg = tiny_config(epochs=6, ranker_stop="detach", ranker_detach_fraction=0.5)
    assert ranker_schedule(cfg.training) == (6, 4)
    assert ranker_schedule(tiny_config(epochs=200, ranker_stop="detach").training) == (200, 121)
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

    log = train_task_learner(
        model, ranker, digits, np.arange(64), cfg.training, cpu_runtime(cfg), "ranking", hook
    )
    assert log.ranker_last_epoch == 5
    assert seen[3] == {True} and seen[4] == {False} and seen[5] == {False}
    assert any(not torch.equal(a, p) for a, p in zip(snaps[4], ranker.parameters()))


def test_training_learns_and_evaluates(digits):
    cfg = tiny_config(epochs=8)
    model, _ = _setup(digits, cfg)
    train_task_learner(model, None, digits, np.arange(300), cfg.training, cpu_runtime(cfg))
    assert evaluate(model, digits, cpu_runtime(cfg)) > 0.6


def test_runtime_optimizer_kwargs_for_cuda_graphs():
    from tavaal.config import RunConfig
    from tavaal.runtime import Runtime

    assert RunConfig().runtime.optimizer_kwargs(adam=True) == {}
    assert Runtime(device="cuda").optimizer_kwargs(adam=False) == {"foreach": True}
    graphs = RunConfig.from_flat({"cuda_graphs": True, "fused": True, "device": "cuda"}).runtime
    assert graphs.optimizer_kwargs(adam=True) == {"fused": True, "capturable": True}
    assert graphs.optimizer_kwargs(adam=False) == {"fused": True}


def test_runtime_stepper_runs_eagerly_with_the_loops_generator_on_cpu():
    from tavaal.runtime import Runtime

    gen = torch.Generator().manual_seed(0)
    stepper = Runtime("cpu").stepper(gen)
    seen = []
    assert stepper("mode", lambda g, x: seen.append(g) or x + 1, 1) == 2
    assert seen == [gen] and stepper.captures == 0 and stepper.graph is None
    x = torch.ones(2, 3, 4, 4)
    assert Runtime("cpu", channels_last=True).to_input(x).is_contiguous(memory_format=torch.channels_last)
