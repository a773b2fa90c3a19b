#!/usr/bin/env bash
# Install (if needed) and run TA-VAAL against random sampling on the embedded digits dataset.
# About a minute on 2 cores once installed: 61 s on a quiet machine, 65 s beside a busy process
# (the small CNN runs on one thread; benchmarks/README.md, "CPU threads").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/tavaal compare --preset digits --methods random,tavaal --trials 1 --out runs/demo "$@"
.venv/bin/tavaal summary runs/demo
