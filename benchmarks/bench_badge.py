"""What one BADGE selection costs at the cifar10 preset's size: 10,000 candidates, ResNet-18's
512-d embedding, 10 classes, 1,000 picks. Times the k-means++ seeding on the rank-one factors
(what tavaal runs) and prints the memory it holds against the full gradient embedding it avoids.
The task learner's forward pass over the candidates (shared with every method) is not included.

    python benchmarks/bench_badge.py [--device cuda] [--candidates 10000 --dim 512 --classes 10 --picks 1000]
"""

from __future__ import annotations

import argparse
import time

import torch

from tavaal.strategies.badge import gradient_factors, kmeans_pp


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--candidates", type=int, default=10000)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--picks", type=int, default=1000)
    a = p.parse_args()
    dev = torch.device(a.device)
    g = torch.Generator(device="cpu").manual_seed(0)
    logits = torch.randn(a.candidates, a.classes, generator=g).to(dev)
    emb = torch.relu(torch.randn(a.candidates, a.dim, generator=g)).to(dev)
    if dev.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    f_a, f_h = gradient_factors(logits, emb)
    chosen = kmeans_pp(f_a, f_h, a.picks, torch.Generator(device=dev).manual_seed(0))
    if dev.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - t0
    held = (f_a.numel() + f_h.numel()) * 4
    full = a.candidates * a.classes * a.dim * 4
    name = torch.cuda.get_device_name() if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"device: {name}")
    print(f"{a.candidates} candidates x ({a.classes} classes x {a.dim}-d embedding), {a.picks} picks")
    print(
        f"k-means++ seeding: {seconds:.2f} s ({1000 * seconds / a.picks:.2f} ms per pick), "
        f"{len(set(chosen))} distinct picks"
    )
    print(
        f"memory held: factors {held / 2**20:.1f} MiB; "
        f"the gradient embedding it avoids: {full / 2**20:.1f} MiB"
    )
    if dev.type == "cuda":
        print(f"peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
