"""Sweep throughput: jobs per hour with 1, 2 and 4 concurrent jobs per device (``--executor ray``),
as ratios to the sequential local executor, measured in this one run; and the projected wall time
of the paper's CIFAR-10 figure (6 methods x 5 trials x 10 cycles, 200 epochs) at the best setting.

The projection uses bench_trial.py's per-cycle model: each method's jobs run sequentially at two
epoch scales give, per cycle, time = fixed + per_epoch x epochs (VAE epochs scale with them in the
paper's schedule); that gives each method's full trial on one device, summed over methods x trials,
and divided by the measured speed-up of the best concurrency.

Examples:
  python benchmarks/bench_sweep.py --device cpu --preset digits --concurrency 1,2
  python benchmarks/bench_sweep.py --device cuda --preset cifar10 --data cifar10/ --subset 10000 \\
      --set initial=500 --set budget=500 --set cycles=3 --concurrency 1,2,4 --fast
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time

import torch

from bench_cycle import data_overrides, subset
from bench_trial import fit, pair
from tavaal.config import FAST, make_config
from tavaal.data import load_data
from tavaal.runner import run_experiment
from tavaal.runner.ray_tasks import RayExecutor

PAPER = {"methods": 6, "trials": 5, "cycles": 10, "epochs": 200}  # Figure 3a, CIFAR-10


def timed(cfg, methods, ds, executor=None) -> tuple[float, list[dict]]:
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        recs = run_experiment(cfg, methods, out, ds=ds, executor=executor)
        return time.perf_counter() - t0, recs


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="digits")
    p.add_argument("--data", default="", help="image folder root with train/ and test/ (cifar10 preset)")
    p.add_argument("--methods", default="random,entropy,coreset,lloss,vaal,tavaal")
    p.add_argument("--trials", type=int, default=2, help="trials per method in each measured sweep")
    p.add_argument("--scales", type=pair, default=(2, 4), help="task epochs of the two sequential runs")
    p.add_argument("--concurrency", default="1,2", help="concurrent jobs per device, e.g. 1,2,4")
    p.add_argument("--fast", action="store_true", help="tavaal's --fast settings for the device")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--subset", type=int, default=0, help="use N training images (0: all)")
    p.add_argument("--test-subset", type=int, default=0)
    p.add_argument("--json", default="")
    a = p.parse_args()
    import ray

    methods = [m for m in a.methods.split(",") if m]
    gpu = a.device.startswith("cuda")
    over: dict = {"device": a.device, "trials": a.trials, "lr_milestones": (), **data_overrides(a.data)}
    if a.fast:
        over.update(FAST["cuda" if gpu else "cpu"])
    for item in a.set:
        k, v = item.split("=", 1)
        kind = type(make_config(a.preset).get(k))
        over[k] = v.lower() in ("1", "true", "yes") if kind is bool else kind(v)
    base = make_config(a.preset, over)
    ds = subset(load_data(base.data, quiet=True), a.subset, a.test_subset)
    cores = os.cpu_count() or 1
    name = torch.cuda.get_device_name(0) if gpu else f"cpu ({cores} cores)"
    print(
        f"device {name}  torch {torch.__version__}  ray {ray.__version__}  preset {a.preset}  "
        f"methods {','.join(methods)}  trials {a.trials}  cycles {base.protocol.cycles}",
        flush=True,
    )

    # Sequential, in-process, at two epoch scales: the per-cycle model of each method.
    e1, e2 = a.scales
    seq = {}
    for e in (e1, e2):
        cfg = make_config(a.preset, {**over, "epochs": e, "vae_epochs": e})
        seq[e] = timed(cfg, methods, ds)
        print(f"sequential, {e} epochs: {seq[e][0]:.1f} s for {len(methods) * a.trials} jobs", flush=True)
    jobs = len(methods) * a.trials
    seq_jph = jobs / seq[e2][0] * 3600

    t0 = time.perf_counter()
    ray.init(num_cpus=cores, num_gpus=1 if gpu else 0, include_dashboard=False, log_to_driver=False)
    startup = time.perf_counter() - t0
    cfg = make_config(a.preset, {**over, "epochs": e2, "vae_epochs": e2})
    rows = []
    for k in (int(v) for v in a.concurrency.split(",")):
        ex = RayExecutor(
            gpus_per_job=1 / k if gpu else 0.0, cpus_per_job=max(1, cores // k) if not gpu else 1
        )
        wall, recs = timed(cfg, methods, ds, ex)
        jph = jobs / wall * 3600
        rows.append({"concurrency": k, "wall_s": wall, "jobs_per_hour": jph, "ratio": jph / seq_jph})
        print(
            f"ray, {k} job(s) per device: {wall:.1f} s, {jph:,.0f} jobs/h, x{jph / seq_jph:.2f} sequential",
            flush=True,
        )
    ray.shutdown()

    print(f"\n{'setting':<22} {'jobs/h':>9} {'ratio':>7}   (ray start-up {startup:.1f} s, not counted)")
    print(f"{'sequential (local)':<22} {seq_jph:>9,.0f} {1.0:>7.2f}")
    for r in rows:
        label = f"ray {r['concurrency']} per device"
        print(f"{label:<22} {r['jobs_per_hour']:>9,.0f} {r['ratio']:>7.2f}")

    # Per method and cycle: time = fixed + per_epoch x epochs, from the two sequential runs.
    def per_cycle(recs, m):
        by = {}
        for r in recs:
            if r["method"] == m:
                by.setdefault(r["cycle"], []).append(
                    r["train_seconds"] + r["select_seconds"] + r["eval_seconds"]
                )
        return [sum(v) / len(v) for _, v in sorted(by.items())]

    full_trial = {}
    for m in methods:
        c1, c2 = per_cycle(seq[e1][1], m), per_cycle(seq[e2][1], m)
        cyc = [fit((e1, e2), (x, y), PAPER["epochs"])[2] for x, y in zip(c1, c2)]
        # the measured cycles stand for the paper's 10: their sum when there are 10 (a protocol with
        # the paper's labeled sizes), else their mean x 10 (smaller sets: an underestimate)
        full_trial[m] = sum(cyc) if len(cyc) == PAPER["cycles"] else sum(cyc) / len(cyc) * PAPER["cycles"]
    seq_h = sum(full_trial.values()) / len(methods) * PAPER["methods"] * PAPER["trials"] / 3600
    best = max(rows, key=lambda r: r["ratio"])
    print(
        f"\nprojected paper figure ({PAPER['methods']} methods x {PAPER['trials']} trials x "
        f"{PAPER['cycles']} cycles, {PAPER['epochs']} epochs) on this device, from this protocol's "
        f"per-cycle costs: sequential {seq_h:.2f} h; at {best['concurrency']} per device "
        f"{seq_h / best['ratio']:.2f} h"
    )
    for m, t in full_trial.items():
        print(f"  {m:<10} {t / 60:8.1f} min per trial")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {
                    "device": name,
                    "sequential_jobs_per_hour": seq_jph,
                    "rows": rows,
                    "trial_min": {m: t / 60 for m, t in full_trial.items()},
                    "projected_sequential_h": seq_h,
                    "projected_best_h": seq_h / best["ratio"],
                },
                f,
                indent=1,
            )


if __name__ == "__main__":
    main()
