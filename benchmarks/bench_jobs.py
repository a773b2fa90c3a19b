"""Throughput as the device sees it: the cifar10 preset's cycle-1 job (fit T + R, with TA-VAAL's VAE
and D inside the epochs, then the query) run by N concurrent processes on one device, for N = 1, 2,
4, 8, in one run. Prints per-job and aggregate task-learner images/s, jobs per hour, the ratio to
N = 1, and the aggregate's model FLOPs utilisation (MFU) where the device's peak is known.

Each worker sets up first (torch, the device, the data, the job's labeled set), then all N start
together (a barrier) so that the measured span is the concurrent work alone. "Images" are the task
learner's training images (labeled x epochs); the VAE + D work and the query are inside the time
but not counted as images, so the MFU is a lower bound. Training FLOPs per image = 3 x the forward
FLOPs counted by ``torch.utils.flop_counter`` on the task learner.

    python benchmarks/bench_jobs.py --data /tmp/cifar10 --device cuda --fast            # H100/H200
    python benchmarks/bench_jobs.py --tiny                                               # CPU check
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import time
from typing import Any

# Dense peak FLOP/s by device name: bf16 tensor cores (with --fast) and TF32 otherwise (NVIDIA's
# SXM datasheets; the H200 has the H100's compute).
PEAKS = {"H100": {"bf16": 989e12, "fp32": 494e12}, "H200": {"bf16": 989e12, "fp32": 494e12}}


PAPER = {"methods": 6, "trials": 5, "cycles": 10}  # Figure 3a, CIFAR-10


def paper_images(a: argparse.Namespace) -> float:
    """Task-learner training images of the whole figure: every job trains labeled x epochs per cycle."""
    per_job = sum(a.labeled + a.budget * c for c in range(PAPER["cycles"])) * a.epochs
    return PAPER["methods"] * PAPER["trials"] * per_job


def overrides(a: argparse.Namespace) -> dict[str, Any]:
    o: dict[str, Any] = {"device": a.device, "epochs": a.epochs, "initial": a.labeled, "budget": a.budget}
    if a.epochs < 200:
        o["lr_milestones"] = [max(1, int(0.8 * a.epochs))]
    if a.tiny:
        o.update(dataset="digits", model="smallcnn", initial=a.labeled, budget=a.budget, batch_size=32)
    else:
        o.update(dataset="imagefolder", train_dir=f"{a.data}/train", test_dir=f"{a.data}/test")
    if a.fast:
        from tavaal.config import FAST

        o.update(FAST["cuda" if a.device.startswith("cuda") else "cpu"])
    for kv in a.set:
        k, _, v = kv.partition("=")
        o[k] = v
    return o


def worker(i: int, a: argparse.Namespace, threads: int, barrier: Any, results: Any) -> None:
    import torch

    from tavaal.config import make_config
    from tavaal.data import load_data
    from tavaal.device import setup_device
    from tavaal.oracle import oracle_labels
    from tavaal.runner.cycle import initial_labeled, make_learner

    torch.set_num_threads(threads)
    cfg = make_config("cifar10", overrides(a))
    dev = setup_device(cfg)
    ds = load_data(cfg.data, quiet=True).to(dev)
    learner = make_learner(cfg, a.method, ds, trial=i)
    first = initial_labeled(ds.n_train, cfg.protocol.initial, cfg.protocol.seed, i)
    learner.label(first.tolist(), oracle_labels(ds, first))
    barrier.wait()
    t0 = time.time()
    learner.fit(budget=cfg.protocol.budget)
    learner.query(cfg.protocol.budget)
    if dev.type == "cuda":
        torch.cuda.synchronize()
    results.put((i, t0, time.time(), cfg.protocol.initial * cfg.training.epochs))


def flops_per_image(a: argparse.Namespace) -> tuple[float, str | None]:
    """Training FLOPs per image (3 x forward) of the preset's task learner, and the peak's key."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from tavaal.config import make_config
    from tavaal.data import load_data
    from tavaal.models import build_task_learner

    cpu = {"device": "cpu", "cuda_graphs": False, "fused": False, "precision": "fp32", "channels_last": False}
    cfg = make_config("cifar10", {**overrides(a), **cpu})
    ds = load_data(cfg.data, quiet=True)
    model = build_task_learner(cfg.training.model, ds.input_shape, ds.num_classes).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(1, *ds.input_shape))
    return 3.0 * counter.get_total_flops(), ("bf16" if a.fast and a.device.startswith("cuda") else "fp32")


def measure(a: argparse.Namespace, n: int) -> dict[str, Any]:
    ctx = mp.get_context("spawn")
    barrier, results = ctx.Barrier(n), ctx.Queue()
    threads = max(1, (os.cpu_count() or 1) // n) if a.device == "cpu" else 1
    procs = [ctx.Process(target=worker, args=(i, a, threads, barrier, results)) for i in range(n)]
    for p in procs:
        p.start()
    out = [results.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    span = max(t1 for _, _, t1, _ in out) - min(t0 for _, t0, _, _ in out)
    per_job = [img / (t1 - t0) for _, t0, t1, img in out]
    return {
        "n": n,
        "span_s": span,
        "per_job_img_s": sum(per_job) / n,
        "aggregate_img_s": sum(img for *_, img in out) / span,
        "jobs_per_hour": n / span * 3600,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--data", default="", help="image folder root with train/ and test/")
    p.add_argument("--device", default="cpu")
    p.add_argument("--method", default="tavaal")
    p.add_argument("--epochs", type=int, default=200, help="task epochs of the job (the preset: 200)")
    p.add_argument("--labeled", type=int, default=1000, help="labels in cycle 1 (the paper: 1,000)")
    p.add_argument("--budget", type=int, default=1000)
    p.add_argument("--concurrency", default="1,2,4,8")
    p.add_argument("--fast", action="store_true", help="the --fast settings of the device")
    p.add_argument("--tiny", action="store_true", help="digits, a small CNN: checks the script on a CPU")
    p.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE")
    p.add_argument("--json", default="", help="also write the rows to this file")
    a = p.parse_args()
    if not a.tiny and not a.data:
        p.error("give --data (CIFAR-10 as train/ and test/ class folders) or --tiny")
    import torch

    name = torch.cuda.get_device_name() if a.device.startswith("cuda") else f"CPU ({os.cpu_count()} cores)"
    flops, kind = flops_per_image(a)
    peak = next((v[kind] for k, v in PEAKS.items() if k in name), None)
    print(f"device: {name}; job: {a.method}, {a.labeled} labels x {a.epochs} epochs + query of {a.budget}")
    peak_text = f"{peak / 1e12:.0f} TFLOP/s {kind}" if peak else "unknown"
    print(f"training FLOPs per image {flops / 1e9:.2f} G; peak: {peak_text}")
    rows = []
    for n in [int(x) for x in a.concurrency.split(",") if x]:
        rows.append(measure(a, n))
        print(f"  measured N={n}: {rows[-1]['span_s']:.1f} s", flush=True)
    base = rows[0]["aggregate_img_s"]
    print("\n| N | span (s) | per-job img/s | aggregate img/s | jobs/hour | vs N=1 | MFU |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        r["ratio"] = r["aggregate_img_s"] / base
        r["mfu"] = r["aggregate_img_s"] * flops / peak if peak else None
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        print(
            f"| {r['n']} | {r['span_s']:.1f} | {r['per_job_img_s']:.4g} | {r['aggregate_img_s']:.4g} | "
            f"{r['jobs_per_hour']:.1f} | x{r['ratio']:.2f} | {mfu} |"
        )
    best = max(rows, key=lambda r: r["aggregate_img_s"])
    print(f"\nbest N = {best['n']} (x{best['ratio']:.2f} the aggregate of N=1)")
    hours = paper_images(a) / best["aggregate_img_s"] / 3600
    print(
        f"projected paper figure ({PAPER['methods']} methods x {PAPER['trials']} trials x {PAPER['cycles']} "
        f"cycles, {a.epochs} epochs, {a.labeled} + {a.budget} per cycle) at N = {best['n']}: {hours:.2f} h "
        f"(every job at this {a.method} cycle-1 rate; for tavaal an upper bound, since its VAE + D share "
        "per task image falls as the labeled set grows)"
    )
    if a.json:
        with open(a.json, "w") as f:
            json.dump(
                {"device": name, "flops_per_image": flops, "peak": peak, "rows": rows, "best": best["n"]}, f
            )


if __name__ == "__main__":
    main()
