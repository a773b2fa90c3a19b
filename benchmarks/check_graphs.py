"""GPU check: the CUDA-graph path trains the same model as the eager path.

Same seed, same data, fp32, no augmentation: trains T + Ranker for a few epochs (crossing the Ranker
freeze and a learning-rate milestone, which recapture the graph) with and without --cuda-graphs and prints the
largest weight difference, the loss, and the accuracy of each; then the same for VAE + D epochs.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tavaal.config import make_config
from tavaal.data import Augment, load_dataset
from tavaal.inference import evaluate
from tavaal.models import Ranker, build_task_learner
from tavaal.strategies import SelectionContext, get_strategy
from tavaal.strategies.adversarial import VAEDiscriminator
from tavaal.train import train_task_learner


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--epochs", type=int, default=5)
    a = p.parse_args()
    dev = torch.device("cuda")
    torch.backends.cudnn.deterministic = True
    base = dict(
        dataset="imagefolder",
        train_dir=f"{a.data}/train",
        test_dir=f"{a.data}/test",
        device="cuda",
        epochs=a.epochs,
        lr_milestones=(a.epochs - 1,),
        vae_epochs=1,
    )
    ds = load_dataset("imagefolder", train_dir=base["train_dir"], test_dir=base["test_dir"]).to(dev)
    # The graphed path draws augmentation from the default CUDA generator (graph-safe), the eager
    # path from the run's own generator; without augmentation the two must train the same weights.
    ds.augment = Augment()
    labeled = np.random.default_rng(0).choice(ds.n_train, 1000, replace=False)
    cand = np.setdiff1d(np.arange(ds.n_train), labeled)[:2000]
    nets = {}
    for graphs in (False, True):
        cfg = make_config("cifar10", {**base, "cuda_graphs": graphs})
        torch.manual_seed(0)
        model = build_task_learner("resnet18", ds.input_shape, 10).to(dev)
        ranker = Ranker(model.feature_dims).to(dev)
        rt = cfg.runtime
        log = train_task_learner(model, ranker, ds, labeled, cfg.training, rt, "ranking", seed=0)
        acc = evaluate(model, ds, rt)
        ctx = SelectionContext(
            model, ranker, ds, labeled, cand, rt, seed=0, batch_size=cfg.training.batch_size
        )
        strat = get_strategy("tavaal", cfg)
        cond = strat._conditions(*strat._ranks(ctx))
        tr = VAEDiscriminator(ctx, strat.p, True)
        tr.train_epoch(*cond)
        d = tr.discriminate(cond[3])
        nets[graphs] = (model, ranker, tr, d)
        print(
            f"cuda_graphs={graphs}: final loss {log.final_loss:.4f}  accuracy {100 * acc:.2f}%  "
            f"ranker last epoch {log.ranker_last_epoch}  mean D {float(d.mean()):.4f}",
            flush=True,
        )
    (m0, r0, t0, d0), (m1, r1, t1, d1) = nets[False], nets[True]
    diff = max(
        float((a - b).abs().max())
        for a, b in zip(m0.state_dict().values(), m1.state_dict().values())
        if a.is_floating_point()
    )
    rdiff = max(float((a - b).detach().abs().max()) for a, b in zip(r0.parameters(), r1.parameters()))
    vdiff = max(float((a - b).detach().abs().max()) for a, b in zip(t0.vae.parameters(), t1.vae.parameters()))
    print(
        f"max |w_eager - w_graph|: task learner {diff:.2e}, ranker {rdiff:.2e}, VAE {vdiff:.2e}; "
        f"max |D_eager - D_graph| {float((d0 - d1).abs().max()):.2e}; graph captures "
        f"{t1.stepper.captures} (VAE)"
    )


if __name__ == "__main__":
    main()
