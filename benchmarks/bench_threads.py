"""CPU threads: wall time of real commands at 1 and at every core's intra-op threads, on a quiet
machine and beside one competing busy process (a laptop with other work running), in one run.

Commands: TA-VAAL on the embedded presets (moons, digits) and one `tavaal query` with the cifar10
preset's model (ResNet-18) on an image folder. Each runs in its own process with `--threads N`
(OMP_NUM_THREADS unset), so nothing but the thread count and the load differs.

    python benchmarks/bench_threads.py --pool /tmp/qpool/pool --labels /tmp/qpool/labels.csv
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time


def commands(pool: str, labels: str) -> dict[str, list[str]]:
    run = ["run", "--method", "tavaal", "--trials", "1"]
    c = {
        "moons, tavaal, 3 cycles": [*run, "--dataset", "moons", "--cycles", "3"],
        "digits, tavaal, 2 cycles x 10 epochs": [*run, "--dataset", "digits", "--cycles", "2", "--epochs=10"],
    }
    if pool:
        c["query, cifar10 preset's ResNet-18, 2 epochs"] = [
            "query", "--pool", pool, "--labels", labels, "--method", "tavaal", "--budget", "20", "--preset",
            "cifar10", "--epochs", "2", "--lr-milestones", "1", "--vae-kind", "mlp", "--vae-batch-size", "32",
        ]  # fmt: skip
    return c


def timed(args: list[str], threads: int, out: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
    dest = ["--out", os.path.join(out, "next.csv") if args[0] == "query" else out]
    t0 = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "tavaal", *args, "--threads", str(threads), "--quiet", *dest],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--pool", default="", help="an image folder for the ResNet-18 query (optional)")
    p.add_argument("--labels", default="")
    a = p.parse_args()
    cores = os.cpu_count() or 1
    rows = []
    for name, args in commands(a.pool, a.labels).items():
        for load in ("quiet", "one busy process"):
            busy = None
            if load != "quiet":
                busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
            try:
                for threads in sorted({1, cores}):
                    with tempfile.TemporaryDirectory() as out:
                        rows.append((name, load, threads, timed(args, threads, out)))
                    print(f"  {name}, {load}, {threads} threads: {rows[-1][3]:.1f} s", flush=True)
            finally:
                if busy is not None:
                    busy.kill()
                    busy.wait()
    print(f"\n{cores} cores; wall seconds per command\n")
    print("| command | load | threads | wall (s) |")
    print("|---|---|---:|---:|")
    for name, load, threads, s in rows:
        print(f"| {name} | {load} | {threads} | {s:.1f} |")


if __name__ == "__main__":
    main()
