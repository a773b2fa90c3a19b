"""fp32 against bf16 on one device, every part measured in this one run.

Kernels: the matmul rate (2048 x 2048, GFLOP/s) in fp32 and bf16, the device's measured peak.
Parts (images/s, after a warm-up): T + Ranker training (eq. 2), the VAE + D iteration (eq. 3-6,
TA-VAAL, r computed once), inference (logits and Ranker output of the pool), each in four runtimes:
fp32, fp32 + channels_last, bf16, bf16 + channels_last. End to end (``--end-to-end``, through the
command line, fp32 against ``--fast``): the README demo, a ``quick`` query of 20 from 1,000 images
with 50 labels, and one cycle of the cifar10 preset for random and TA-VAAL (cut to ``--e2e-epochs``
epochs and ``--e2e-labels`` labels and candidates; the 10,000 test images evaluated).

Examples:
  python benchmarks/bench_precision.py --data .cache/cifar10                 # CPU, 2 threads
  python benchmarks/bench_precision.py --data .cache/cifar10 --end-to-end --json out.json
  python benchmarks/bench_precision.py --data carry/cifar10 --device cuda --preset cifar10
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench_cycle import data_overrides, fast_throughput, subset, sync, vae_ms
from tavaal.config import make_config
from tavaal.data import load_data
from tavaal.device import setup_device
from tavaal.inference import infer
from tavaal.runtime import cpu_has_bf16

RUNTIMES = {
    "fp32": {"precision": "fp32", "channels_last": False},
    "fp32+cl": {"precision": "fp32", "channels_last": True},
    "bf16": {"precision": "bf16", "channels_last": False},
    "bf16+cl": {"precision": "bf16", "channels_last": True},
}


def cpu_name() -> str:
    """The CPU's model name (/proc/cpuinfo), for the table's machine column."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "cpu"


def matmul_gflops(dev: torch.device, dtype: torch.dtype, n: int = 2048, seconds: float = 2.0) -> float:
    a = torch.randn(n, n, device=dev).to(dtype)
    b = torch.randn(n, n, device=dev).to(dtype)
    for _ in range(3):
        a @ b
    sync(dev)
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    sync(dev)
    return 2 * n**3 * reps / (time.perf_counter() - t0) / 1e9


def inference_rate(cfg, ds, model, ranker, idx: np.ndarray, dev: torch.device) -> float:
    infer(model, ds, idx[: min(len(idx), 256)], cfg.runtime, ranker=ranker)  # warm-up
    sync(dev)
    t0 = time.perf_counter()
    infer(model, ds, idx, cfg.runtime, ranker=ranker)
    sync(dev)
    return len(idx) / (time.perf_counter() - t0)


def parts(a: argparse.Namespace, ds, dev: torch.device) -> dict[str, dict[str, float]]:
    """Images/s of training, VAE + D and inference in each runtime."""
    perm = np.random.default_rng(0).permutation(ds.n_train)
    labeled, cand = perm[: a.labeled], np.sort(perm[a.labeled : a.labeled + a.candidates])
    out: dict[str, dict[str, float]] = {}
    for name, rt in RUNTIMES.items():
        over = {"device": a.device, "lr_milestones": (), "threads": a.threads, **rt, **data_overrides(a.data)}
        cfg = make_config(a.preset, over)
        torch.manual_seed(0)
        train, model, ranker = fast_throughput(cfg, ds, labeled, dev, a.epochs)
        ms = vae_ms(cfg, ds, model, ranker, labeled, cand, dev, a.vae_iters)
        vae_batch = cfg.adversarial.vae_batch_size or cfg.training.batch_size
        rate = inference_rate(cfg, ds, model, ranker, cand, dev)
        out[name] = {"train": train, "vae_d": 1000 * vae_batch / ms, "vae_ms": ms, "inference": rate}
        print(
            f"  {name:8s} train {train:8.1f} img/s   VAE + D {out[name]['vae_d']:8.1f} img/s "
            f"({ms:.1f} ms/iter)   inference {rate:8.1f} img/s",
            flush=True,
        )
    return out


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def folder_pool(src: Path, root: Path, n: int, n_labels: int) -> Path:
    """``n`` training JPEGs of the CIFAR-10 folder copied flat into ``root``, with a labels file."""
    files = sorted(src.glob("train/*/*.jpg"))
    pick = np.random.default_rng(0).choice(len(files), n, replace=False)
    pool = root / "pool"
    pool.mkdir(parents=True)
    rows = ["path,label"]
    for k, i in enumerate(pick):
        f = files[i]
        shutil.copy(f, pool / f"{f.parent.name}_{f.name}")
        if k < n_labels:
            rows.append(f"{f.parent.name}_{f.name},{f.parent.name}")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return pool


def end_to_end(a: argparse.Namespace) -> dict[str, dict[str, float]]:
    """Wall seconds of three commands, fp32 against --fast, one after the other in this process's
    environment (the decode cache warmed first, so both pay the same)."""
    exe = str(Path(sys.executable).with_name("tavaal"))
    env = {**os.environ, "OMP_NUM_THREADS": str(a.threads or 2)}
    out: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        pool = folder_pool(Path(a.data), t / "q", 1000, 50)
        query = [exe, "query", "--pool", str(pool), "--labels", str(t / "q" / "labels.csv"), "--method"]
        query += ["tavaal", "--budget", "20", "--quiet", "--device", a.device]
        cifar = [
            exe,
            "compare",
            "--preset",
            "cifar10",
            "--dataset",
            "imagefolder",
            "--train-dir",
            f"{a.data}/train",
            "--test-dir",
            f"{a.data}/test",
            "--cycles",
            "1",
            "--final-selection",
            "--epochs",
            str(a.e2e_epochs),
            "--lr-milestones",
            "",
            "--initial",
            str(a.e2e_labels),
            "--budget",
            str(a.e2e_labels),
            "--subset-size",
            str(a.e2e_labels),
            "--trials",
            "1",
            "--device",
            a.device,
            "--quiet",
        ]
        jobs = {
            "demo (digits, random + tavaal)": lambda d, x: [
                exe,
                "compare",
                "--preset",
                "digits",
                "--methods",
                "random,tavaal",
                "--trials",
                "1",
                "--out",
                d,
                "--quiet",
                *x,
            ],
            "quick query (1,000 images, 50 labels, 20 picks)": lambda d, x: [*query, "--out", f"{d}.csv", *x],
            "cifar10 one cycle, random": lambda d, x: [*cifar, "--methods", "random", "--out", d, *x],
            "cifar10 one cycle, tavaal": lambda d, x: [*cifar, "--methods", "tavaal", "--out", d, *x],
        }
        # Decode caches filled before anything is timed (the pool's and CIFAR-10's).
        subprocess.run([*query, "--out", str(t / "warm.csv")], check=True, env=env, capture_output=True)
        every, jobs = jobs, {k: v for k, v in jobs.items() if not a.e2e_only or a.e2e_only in k}
        if any(k.startswith("cifar10") for k in jobs):
            warm = every["cifar10 one cycle, random"](str(t / "warm"), ["--epochs", "1"])
            subprocess.run(warm, check=True, env=env, capture_output=True)
        for name, make in jobs.items():
            fp32 = timed(make(str(t / "a"), ["--precision", "fp32"]), env)
            fast = timed(make(str(t / "b"), ["--fast"]), env)
            for d in ("a", "b"):
                p = t / d
                shutil.rmtree(p, ignore_errors=True)
                (t / f"{d}.csv").unlink(missing_ok=True)
            out[name] = {"fp32_s": fp32, "fast_s": fast, "ratio": fp32 / fast}
            print(f"  {name:48s} fp32 {fp32:7.1f} s   --fast {fast:7.1f} s   x{fp32 / fast:.2f}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--preset", default="cifar10", help="whose task learner and VAE are measured")
    p.add_argument("--data", default=".cache/cifar10", help="the CIFAR-10 folder (train/ and test/)")
    p.add_argument("--subset", type=int, default=4000, help="training images loaded")
    p.add_argument("--labeled", type=int, default=512)
    p.add_argument("--candidates", type=int, default=2048)
    p.add_argument("--epochs", type=int, default=1, help="timed training epochs after the warm-up")
    p.add_argument("--vae-iters", type=int, default=16)
    p.add_argument("--threads", type=int, default=2, help="CPU threads (0: PyTorch's choice)")
    p.add_argument("--end-to-end", action="store_true")
    p.add_argument("--e2e-epochs", type=int, default=2, help="task epochs of the cifar10 cycle")
    p.add_argument("--e2e-labels", type=int, default=500, help="labels and candidates of the cifar10 cycle")
    p.add_argument("--skip-parts", action="store_true", help="only the end-to-end commands")
    p.add_argument("--e2e-only", default="", help="only the end-to-end commands whose name holds this")
    p.add_argument("--json", default="")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    cfg = make_config(a.preset, {"device": a.device, "threads": a.threads, **data_overrides(a.data)})
    dev = setup_device(cfg)
    machine = torch.cuda.get_device_name(dev) if dev.type == "cuda" else cpu_name()
    units = cpu_has_bf16() if dev.type == "cpu" else True
    print(
        f"device {dev} ({machine}), torch {torch.__version__}, threads {torch.get_num_threads()}, "
        f"bf16 units {units}, preset {a.preset}",
        flush=True,
    )
    peak = {k: matmul_gflops(dev, d) for k, d in (("fp32", torch.float32), ("bf16", torch.bfloat16))}
    print(
        f"  matmul 2048: fp32 {peak['fp32']:.0f} GFLOP/s, bf16 {peak['bf16']:.0f} GFLOP/s "
        f"(x{peak['bf16'] / peak['fp32']:.2f})",
        flush=True,
    )
    figs: dict = {"device": str(dev), "machine": machine, "torch": torch.__version__}
    figs.update(threads=torch.get_num_threads(), bf16_units=units, preset=a.preset, matmul_gflops=peak)
    if not a.skip_parts:
        figs["parts"] = parts(a, subset(load_data(cfg.data), a.subset, 1000), dev)
        base = figs["parts"]["fp32"]
        for name, r in figs["parts"].items():
            print(
                f"  {name:8s} vs fp32: train x{r['train'] / base['train']:.2f}, VAE + D "
                f"x{r['vae_d'] / base['vae_d']:.2f}, inference x{r['inference'] / base['inference']:.2f}"
            )
    if a.end_to_end:
        figs["end_to_end"] = end_to_end(a)
    if a.json:
        Path(a.json).write_text(json.dumps(figs, indent=1))


if __name__ == "__main__":
    main()
