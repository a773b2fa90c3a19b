#!/usr/bin/env bash
# Create .venv and install tavaal with its test extra. PyTorch comes from PIP_INDEX_URL/extra
# indexes as configured on the machine; pass TORCH_SPEC to pin another build. On a machine without
# an NVIDIA GPU, PyTorch's CPU build (about 0.7 GB instead of 5-6 GB) is tried first, from
# TAVAAL_TORCH_CPU_INDEX (default PyTorch's own CPU index); where that index cannot be reached the
# default wheel is installed, with one line that says so.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
CPU_INDEX=${TAVAAL_TORCH_CPU_INDEX:-https://download.pytorch.org/whl/cpu}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
if [ -z "${TORCH_SPEC:-}" ] && ! nvidia-smi -L >/dev/null 2>&1 && ! .venv/bin/python -c "import torch" 2>/dev/null; then
  .venv/bin/python -m pip install -q --retries 1 --timeout 20 --index-url "$CPU_INDEX" \
    "torch>=2.1" "torchvision>=0.16" >/dev/null 2>&1 || true
  # What was installed decides the note. A local wheel cache can answer in the index's place with
  # a CPU torch whose torchvision it lacks; pip then pairs it with another build's torchvision,
  # which fails at import ('operator torchvision::nms does not exist'): such a pair is removed.
  if .venv/bin/python -c "import sys, torch, torchvision; sys.exit(torch.version.cuda is not None)" 2>/dev/null; then
    echo "tavaal install: no NVIDIA GPU found: installed PyTorch's CPU build from $CPU_INDEX" >&2
  else
    .venv/bin/python -m pip uninstall -q -y torch torchvision >/dev/null 2>&1 || true
    echo "tavaal install: no NVIDIA GPU found, and PyTorch's CPU build could not be had from $CPU_INDEX: installing the default wheel (a CUDA build of about 5-6 GB where that is the default)" >&2
  fi
fi
.venv/bin/python -m pip install -q ${TORCH_SPEC:-"torch>=2.1" "torchvision>=0.16"}
.venv/bin/python -m pip install -q -e ".[test]"
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
  echo "tavaal install: torch and torchvision do not import together in .venv (builds that do not match);" \
    "rerun with TORCH_SPEC naming a matching pair, e.g. TORCH_SPEC='torch==2.14.1 torchvision==0.29.1'" >&2
  exit 1
fi
