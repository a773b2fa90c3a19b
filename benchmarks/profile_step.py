"""Where a training step and a VAE + D iteration spend their time, kernel by kernel.

Profiles a few epochs of T + Ranker training and of VAE + D training (eager, so each kernel is
seen; CUDA graphs replay the same kernels without the launch gaps) and prints:
  - the busiest operators by self device time (self CPU time on a CPU);
  - the same time grouped into convolution, batch norm, elementwise/activation, matmul,
    optimizer, data (gather, crop, flip, copies) and other, as shares of the phase.
(On a CPU the per-tensor optimizer's operators count as elementwise; on CUDA the foreach and
fused kernels form the optimizer group.) The groups say where the next speed-up has to come from:
convolution time is cuDNN's, while batch-norm and elementwise time is memory traffic that kernel
fusion (torch.compile) removes.

Examples:
  python benchmarks/profile_step.py --device cuda --preset cifar10 --data cifar10/ \
      --precision bf16 --channels-last
  python benchmarks/profile_step.py --device cpu --preset digits
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict

import numpy as np
import torch
from torch.profiler import ProfilerActivity, profile

from bench_cycle import add_data_args, build_learner, data_overrides, split, subset, vae_trainer
from tavaal.config import make_config
from tavaal.data import load_data
from tavaal.device import setup_device
from tavaal.train import train_task_learner

# First match wins; names are ATen operators (aten::...) and optimizer kernels.
GROUPS = [
    ("optimizer", r"_fused_sgd|_fused_adam|_foreach|optimizer|sgd|adam"),
    ("convolution", r"conv|cudnn_convolution"),
    ("batch norm", r"batch_norm|native_batch_norm"),
    ("matmul", r"addmm|\bmm\b|matmul|linear|bmm"),
    ("data", r"index|gather|pad|flip|where|randint|randperm|copy_|_to_copy|contiguous|cat"),
    (
        "elementwise",
        r"relu|threshold|add|mul|div|sub|exp|log|sigmoid|softmax|nll|cross_entropy|mean|sum|"
        r"neg|clamp|pow|sqrt|fill|zero|abs|max|min|mse|binary_cross",
    ),
]


def group_of(name: str) -> str:
    for group, pattern in GROUPS:
        if re.search(pattern, name.lower()):
            return group
    return "other"


def self_time(evt, device: bool) -> float:
    """Self time in microseconds on the device (or the CPU)."""
    if device:
        return float(getattr(evt, "self_device_time_total", getattr(evt, "self_cuda_time_total", 0.0)))
    return float(evt.self_cpu_time_total)


def report(title: str, prof, device: bool, units: int, unit_name: str, rows: int) -> dict:
    events = [
        e for e in prof.key_averages() if e.key.startswith("aten::") or "fused" in e.key or "foreach" in e.key
    ]
    times = sorted(((self_time(e, device), e.key, e.count) for e in events), reverse=True)
    total = sum(t for t, _, _ in times) or 1.0
    where = "device" if device else "CPU"
    print(
        f"\n== {title}: {total / 1e3 / units:.2f} ms of {where} time per {unit_name} (self time, "
        f"summed over operators; {units} {unit_name}s profiled)"
    )
    print(f"{'operator':<48} {'calls':>7} {'ms/' + unit_name:>10} {'share':>6}")
    for t, key, count in times[:rows]:
        print(f"{key[:48]:<48} {count:>7} {t / 1e3 / units:>10.3f} {100 * t / total:>5.1f}%")
    groups: dict[str, float] = defaultdict(float)
    for t, key, _ in times:
        groups[group_of(key)] += t
    print(
        "by group: "
        + ", ".join(f"{g} {100 * t / total:.1f}%" for g, t in sorted(groups.items(), key=lambda kv: -kv[1]))
    )
    return {
        "ms_per_unit": total / 1e3 / units,
        "groups": {g: t / total for g, t in groups.items()},
        "top": [{"op": k, "calls": c, "ms_per_unit": t / 1e3 / units} for t, k, c in times[:rows]],
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_data_args(p)
    p.add_argument("--epochs", type=int, default=2, help="profiled training epochs")
    p.add_argument("--vae-iters", type=int, default=20, help="profiled VAE + D iterations (about)")
    p.add_argument("--precision", default="fp32", choices=("fp32", "bf16"))
    p.add_argument("--channels-last", action="store_true")
    p.add_argument("--rows", type=int, default=15)
    p.add_argument("--json", default="")
    a = p.parse_args()
    over = {
        "device": a.device,
        "precision": a.precision,
        "channels_last": a.channels_last,
        "lr_milestones": (),
        **data_overrides(a.data),
    }
    cfg = make_config(a.preset, over)
    dev = setup_device(cfg)
    on_device = dev.type == "cuda"
    ds = load_data(cfg.data, quiet=True)
    ds = subset(ds, a.subset).to(dev)
    n_l = a.labeled or cfg.protocol.initial
    labeled, cand = split(ds, cfg, n_l)
    print(
        f"device {torch.cuda.get_device_name(0) if on_device else 'cpu'}  torch {torch.__version__}  preset "
        f"{a.preset}  precision {a.precision}  channels_last {a.channels_last}  labeled {n_l}  "
        f"batch {cfg.training.batch_size}"
    )

    model, ranker = build_learner(cfg, ds, dev)
    run = make_config(a.preset, {**cfg.to_dict(), "epochs": a.epochs})
    rt = cfg.runtime
    warm = make_config(a.preset, {**cfg.to_dict(), "epochs": 1})
    train_task_learner(model, ranker, ds, labeled, warm.training, rt, "ranking")  # warm-up: cuDNN, allocator
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if on_device else [])
    with profile(activities=acts) as prof:
        train_task_learner(model, ranker, ds, labeled, run.training, rt, "ranking")
    steps = a.epochs * int(np.ceil(n_l / cfg.training.batch_size))
    out = {
        "train": report(
            f"T + Ranker training step (batch {cfg.training.batch_size})",
            prof,
            on_device,
            steps,
            "step",
            a.rows,
        )
    }

    tr, cond = vae_trainer(cfg, ds, model, ranker, labeled, cand, dev, a.vae_iters)
    tr.train_epoch(*cond)  # warm-up
    before = tr.iterations
    with profile(activities=acts) as prof:
        tr.train_epoch(*cond)
    out["vae"] = report(
        f"VAE + D iteration (batch {tr.p.vae_batch_size} + {tr.p.vae_batch_size})",
        prof,
        on_device,
        tr.iterations - before,
        "iteration",
        a.rows,
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
