#!/usr/bin/env bash
# Install (if needed) and run TA-VAAL against random sampling on the embedded digits dataset.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install.sh
.venv/bin/tavaal compare --preset digits --methods random,tavaal --trials 1 --out runs/demo "$@"
.venv/bin/tavaal summary runs/demo
