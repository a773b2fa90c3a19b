"""One active-learning cycle, phase by phase, against the authors' measured figures.

Prints, for the fast path (device-resident uint8 data, on-device augmentation, optional bf16 +
channels_last) and the plain PyTorch path (DataLoader + PIL transforms + fp32 eager), measured
in this one run:
  - task learner + Ranker training throughput (images/s);
  - ms per VAE + discriminator iteration (official schedule, r cached once);
  - seconds of selection per method over the subset;
  - the extrapolated time of a 10-cycle trial (200 epochs, EV = 100), and ratios to the
    authors' code as measured on an H200 (4,000 images/s, 51 ms per VAE + D iteration, 2.3 h a
    trial; benchmarks/README.md).

Examples:
  python benchmarks/bench_cycle.py --device cpu --preset digits
  python benchmarks/bench_cycle.py --device cpu --preset cifar10 --data cifar10/ --subset 5000
  python benchmarks/bench_cycle.py --device cuda --preset cifar10 --data cifar10/ \
      --precision bf16 --channels-last
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
import torch
import torch.nn.functional as F

from tavaal.config import make_config
from tavaal.data import load_data
from tavaal.data.base import ArrayDataset
from tavaal.device import setup_device
from tavaal.learner import ActiveLearner
from tavaal.losses import ranking_loss, total_loss
from tavaal.models import Ranker, build_task_learner
from tavaal.strategies import SelectionContext, get_strategy
from tavaal.strategies.adversarial import AdversarialStrategy, VAEDiscriminator
from tavaal.train import train_task_learner

OFFICIAL = {"images_per_s": 4000.0, "vae_ms": 51.0, "trial_h": 2.3}


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def subset(ds: ArrayDataset, n: int, n_test: int = 0) -> ArrayDataset:
    """``n`` training and ``n_test`` test images drawn with a fixed seed (0: all of them)."""

    def pick(x: torch.Tensor, y: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        if not k or k >= x.shape[0]:
            return x, y
        keep = torch.from_numpy(np.random.default_rng(0).choice(x.shape[0], k, replace=False))
        return x[keep], y[keep]

    (xs, ys), (xt, yt) = pick(ds.x_train, ds.y_train, n), pick(ds.x_test, ds.y_test, n_test)
    return dataclasses.replace(ds, x_train=xs, y_train=ys, x_test=xt, y_test=yt)


def add_data_args(p: argparse.ArgumentParser) -> None:
    """The options every benchmark shares: device, preset, data folder, subset, labeled size."""
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="digits")
    p.add_argument("--data", default="", help="image folder root with train/ and test/ (cifar10 preset)")
    p.add_argument("--subset", type=int, default=0, help="use N training images (0: all)")
    p.add_argument("--labeled", type=int, default=0, help="labeled set size (default: the preset's initial)")


def data_overrides(data: str) -> dict:
    """Config fields that point a preset at an image folder root holding train/ and test/."""
    return (
        {"dataset": "imagefolder", "train_dir": f"{data}/train", "test_dir": f"{data}/test"} if data else {}
    )


def split(ds: ArrayDataset, cfg, n_l: int) -> tuple[np.ndarray, np.ndarray]:
    """A fixed-seed labeled set of ``n_l`` and the candidate subset (subset_factor x budget) after it."""
    perm = np.random.default_rng(0).permutation(ds.n_train)
    return perm[:n_l], np.sort(
        perm[n_l : n_l + min(cfg.protocol.candidates_for(cfg.protocol.budget), ds.n_train - n_l)]
    )


def build_learner(cfg, ds: ArrayDataset, dev: torch.device):
    """A seeded task learner and its Ranker, built and placed as ``ActiveLearner.fit`` builds them."""
    torch.manual_seed(0)
    learner = ActiveLearner("tavaal", pool=ds, config=cfg, cold_start="train")
    model = learner.placed(learner.build_model(), cfg.runtime)
    return model, Ranker(model.feature_dims).to(dev)


def vae_trainer(cfg, ds, model, ranker, labeled, cand, dev, iters: int):
    """A TA-VAAL VAE + D trainer (official schedule: r computed once) over a candidate slice big
    enough for about ``iters`` iterations per epoch, and the conditions to pass to train_epoch."""
    strat = get_strategy("tavaal", cfg)
    ctx = SelectionContext(
        model, ranker, ds, labeled, cand, cfg.runtime, seed=0, batch_size=cfg.training.batch_size
    )
    cond = strat._conditions(*strat._ranks(ctx))
    tr = VAEDiscriminator(ctx, strat.p, True)
    b = tr.p.vae_batch_size  # 0 in the config: the task learner's batch size
    n_u = max(b, iters * b - len(labeled))
    tr.unlabeled = tr.unlabeled[:n_u]
    return tr, (cond[0], cond[1][:n_u], cond[2], cond[3][:n_u])


def fast_throughput(cfg, ds, labeled, dev, epochs: int):
    """Images/s of train_task_learner (T + Ranker, eq. 2), after one warm-up epoch."""
    model, ranker = build_learner(cfg, ds, dev)
    warm = make_config(cfg.preset, {**cfg.to_dict(), "epochs": 1, "lr_milestones": ()})
    train_task_learner(model, ranker, ds, labeled, warm.training, warm.runtime, "ranking")
    sync(dev)
    run = make_config(cfg.preset, {**cfg.to_dict(), "epochs": epochs, "lr_milestones": ()})
    t0 = time.perf_counter()
    train_task_learner(model, ranker, ds, labeled, run.training, run.runtime, "ranking")
    sync(dev)
    return epochs * len(labeled) / (time.perf_counter() - t0), model, ranker


class PILDataset(torch.utils.data.Dataset):
    """The authors' data path: one PIL image and torchvision transform per sample per epoch."""

    def __init__(self, ds: ArrayDataset, idx: np.ndarray):
        from torchvision import transforms as T

        self.x, self.y, self.idx = ds.x_train.cpu().numpy(), ds.y_train.cpu().numpy(), idx
        self.gray = ds.x_train.shape[1] == 1
        aug = [T.RandomCrop(ds.x_train.shape[-1], padding=ds.augment.pad)] if ds.augment.pad else []
        aug += [T.RandomHorizontalFlip()] if ds.augment.flip else []
        self.t = T.Compose(aug + [T.ToTensor(), T.Normalize(ds.mean, ds.std)])

    def __len__(self):
        return len(self.idx)

    def __getitem__(self, i):
        from PIL import Image

        img = self.x[self.idx[i]]
        img = Image.fromarray(img[0] if self.gray else img.transpose(1, 2, 0))
        return self.t(img), int(self.y[self.idx[i]])


def plain_throughput(cfg, ds, labeled, dev, epochs: int) -> float:
    """The plain path: DataLoader (no workers, as the authors' code) + PIL transforms + fp32 eager."""
    torch.manual_seed(0)
    model = build_task_learner(cfg.training.model, ds.input_shape, ds.num_classes).to(dev)
    ranker = Ranker(model.feature_dims).to(dev)
    opt = torch.optim.SGD(
        list(model.parameters()) + list(ranker.parameters()),
        lr=cfg.training.lr,
        momentum=0.9,
        weight_decay=cfg.training.weight_decay,
    )
    loader = torch.utils.data.DataLoader(
        PILDataset(ds, labeled), batch_size=cfg.training.batch_size, shuffle=True
    )

    def epoch():
        model.train()
        for x, y in loader:
            x, y = x.to(dev), y.to(dev)
            logits, _, feats = model(x)
            per = F.cross_entropy(logits, y, reduction="none")
            loss = total_loss(per.mean(), ranking_loss(ranker(feats), per), cfg.training.eta)
            opt.zero_grad()
            loss.backward()
            opt.step()

    epoch()
    sync(dev)
    t0 = time.perf_counter()
    for _ in range(epochs):
        epoch()
    sync(dev)
    return epochs * len(labeled) / (time.perf_counter() - t0)


def vae_ms(cfg, ds, model, ranker, labeled, cand, dev, iters: int) -> float:
    """ms per VAE + D iteration at the preset's batch, official schedule (r computed once)."""
    tr, cond = vae_trainer(cfg, ds, model, ranker, labeled, cand, dev, iters)  # whole epochs are timed
    tr.train_epoch(*cond)  # warm-up
    sync(dev)
    before = tr.iterations
    t0 = time.perf_counter()
    tr.train_epoch(*cond)
    sync(dev)
    return 1000 * (time.perf_counter() - t0) / (tr.iterations - before)


def selection_seconds(cfg, ds, model, ranker, labeled, cand, dev, methods) -> dict[str, float]:
    out = {}
    for m in methods:
        strat = get_strategy(m, cfg)
        ctx = SelectionContext(
            model,
            ranker if strat.ranker_loss else None,
            ds,
            labeled,
            cand,
            cfg.runtime,
            seed=0,
            batch_size=cfg.training.batch_size,
        )
        if isinstance(strat, AdversarialStrategy):
            # scoring only: a phase with no training epochs (training is the VAE phase above)
            ctx.selector = VAEDiscriminator(ctx, strat.p, strat.conditioned)
            ctx.selector.fitted = True
        model.dropout.p = strat.head_dropout  # MC dropout scores through the head's dropout
        sync(dev)
        t0 = time.perf_counter()
        strat.select(ctx, min(cfg.protocol.budget, len(cand)))
        sync(dev)
        out[m] = time.perf_counter() - t0
        model.dropout.p = 0.0
    return out


def extrapolate(cfg, n_train: int, img_s: float, ms: float, sel_s: float) -> float:
    """Seconds for a full trial: per cycle, epochs x labeled / throughput + VAE + selection."""
    total = 0.0
    for c in range(cfg.protocol.cycles):
        n_l = min(cfg.protocol.initial + c * cfg.protocol.budget, n_train)
        n_u = min(cfg.protocol.candidates_for(cfg.protocol.budget), n_train - n_l)
        total += cfg.training.epochs * n_l / img_s
        vae_batch = cfg.adversarial.vae_batch_size or cfg.training.batch_size
        total += np.ceil((n_l + n_u) / vae_batch) * cfg.adversarial.vae_epochs * ms / 1000
        total += sel_s
    return total


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_args(p)
    p.add_argument("--epochs", type=int, default=3, help="timed training epochs per path")
    p.add_argument("--vae-iters", type=int, default=40)
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--compile", action="store_true")
    p.add_argument("--cuda-graphs", action="store_true")
    p.add_argument("--fused", action="store_true")
    p.add_argument(
        "--no-cudnn-benchmark",
        dest="cudnn_benchmark",
        action="store_false",
        help="leave cuDNN's autotuner off (PyTorch's default) to measure what it buys",
    )
    p.add_argument("--skip-plain", action="store_true")
    p.add_argument("--methods", default="random,entropy,coreset,lloss2,mcdropout,tavaal")
    p.add_argument("--json", default="", help="also write the figures to this JSON file")
    a = p.parse_args()
    over = {
        "device": a.device,
        "precision": a.precision,
        "channels_last": a.channels_last,
        "compile": a.compile,
        "cuda_graphs": a.cuda_graphs,
        "fused": a.fused,
        "cudnn_benchmark": a.cudnn_benchmark,
        **data_overrides(a.data),
    }
    cfg = make_config(a.preset, over)
    dev = setup_device(cfg)
    figs: dict = {
        "device": torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu",
        "torch": torch.__version__,
        "preset": a.preset,
        "precision": a.precision,
        "channels_last": a.channels_last,
        "cudnn_benchmark": a.cudnn_benchmark,
    }
    t0 = time.perf_counter()
    ds = load_data(cfg.data, quiet=True)
    figs["load_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    load_data(cfg.data, quiet=True)
    figs["load_cached_s"] = time.perf_counter() - t0
    ds = subset(ds, a.subset)
    t0 = time.perf_counter()
    ds = ds.to(dev)
    sync(dev)
    figs["to_device_s"] = time.perf_counter() - t0
    n_l = a.labeled or cfg.protocol.initial
    labeled, cand = split(ds, cfg, n_l)

    ref = a.preset == "cifar10"  # the authors' figures are for CIFAR-10 only

    def vs(text: str) -> str:
        return f"  (official {text})" if ref else ""

    print(
        f"device: {figs['device']}  torch {figs['torch']}  preset {a.preset}  precision {a.precision}  "
        f"channels_last {a.channels_last}  compile {a.compile}  graphs {a.cuda_graphs}  fused {a.fused}  "
        f"cudnn_benchmark {a.cudnn_benchmark}  train set {ds.n_train}  labeled {n_l}  "
        f"candidates {len(cand)}",
        flush=True,
    )
    print(
        f"load: first {figs['load_s']:.2f} s, cached {figs['load_cached_s']:.2f} s, to device "
        f"{figs['to_device_s']:.2f} s",
        flush=True,
    )
    img_s, model, ranker = fast_throughput(cfg, ds, labeled, dev, a.epochs)
    figs["train_images_per_s"] = img_s
    print(
        f"training T+R: {img_s:,.0f} images/s"
        + vs(f"{OFFICIAL['images_per_s']:,.0f}: x{img_s / OFFICIAL['images_per_s']:.2f}"),
        flush=True,
    )
    if not a.skip_plain:
        figs["plain_train_images_per_s"] = plain_throughput(cfg, ds, labeled, dev, a.epochs)
        figs["train_speedup_vs_plain"] = img_s / figs["plain_train_images_per_s"]
        print(
            f"  plain path (DataLoader + PIL + fp32 eager), same run: "
            f"{figs['plain_train_images_per_s']:,.0f} "
            f"images/s -> new path x{figs['train_speedup_vs_plain']:.2f}",
            flush=True,
        )
    figs["vae_ms_per_iter"] = vae_ms(cfg, ds, model, ranker, labeled, cand, dev, a.vae_iters)
    print(
        f"VAE + D iteration (batch {cfg.adversarial.vae_batch_size or cfg.training.batch_size}): "
        f"{figs['vae_ms_per_iter']:.2f} ms"
        + vs(f"{OFFICIAL['vae_ms']:.0f} ms: x{OFFICIAL['vae_ms'] / figs['vae_ms_per_iter']:.2f}"),
        flush=True,
    )
    figs["selection_s"] = selection_seconds(
        cfg, ds, model, ranker, labeled, cand, dev, [m for m in a.methods.split(",") if m]
    )
    for m, s in figs["selection_s"].items():
        print(
            f"selection {m:<10} {s:8.3f} s  ({1e3 * s / max(1, len(cand)):.3f} ms per candidate)", flush=True
        )
    trial = extrapolate(
        cfg, ds.n_train, img_s, figs["vae_ms_per_iter"], figs["selection_s"].get("tavaal", 0.0)
    )
    figs["trial_extrapolated_min"] = trial / 60
    print(
        f"{cfg.protocol.cycles}-cycle trial, extrapolated ({cfg.training.epochs} epochs, "
        f"EV={cfg.adversarial.vae_epochs}): "
        f"{figs['trial_extrapolated_min']:.1f} min"
        + vs(f"{OFFICIAL['trial_h']} h: x{OFFICIAL['trial_h'] * 60 / figs['trial_extrapolated_min']:.2f}")
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figs, f, indent=1)


if __name__ == "__main__":
    main()
