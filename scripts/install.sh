#!/usr/bin/env bash
# Create .venv and install tavaal with its test extra. PyTorch comes from PIP_INDEX_URL/extra
# indexes as configured on the machine; pass TORCH_SPEC to pin another build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ -z "${TORCH_SPEC:-}" ] && ! nvidia-smi -L >/dev/null 2>&1 && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  cat >&2 <<'EOF_NOTE'
tavaal install: no NVIDIA GPU found. The default PyTorch wheel is the CUDA build (about 5-6 GB in
.venv); the CPU build is about 0.7 GB. To install the CPU build instead, stop now (Ctrl-C) and run
  TORCH_SPEC="torch torchvision --index-url https://download.pytorch.org/whl/cpu" bash scripts/install.sh
(or any pip arguments that name the torch build you want). Continuing with the default in 5 s...
EOF_NOTE
  if [ -t 0 ]; then sleep 5; fi
fi
.venv/bin/python -m pip install -q ${TORCH_SPEC:-"torch>=2.1" "torchvision>=0.16"}
.venv/bin/python -m pip install -q -e ".[test]"
