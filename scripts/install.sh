#!/usr/bin/env bash
# Create .venv and install tavaal with its test extra. PyTorch comes from PIP_INDEX_URL/extra
# indexes as configured on the machine; pass TORCH_SPEC to pin another build.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
.venv/bin/python -m pip install -q ${TORCH_SPEC:-"torch>=2.1" "torchvision>=0.16"}
.venv/bin/python -m pip install -q -e ".[test]"
