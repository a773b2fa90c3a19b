#!/usr/bin/env bash
# Issue 11's GPU check in one script, sized for < 8 minutes on one H100/H200: the cifar10-short
# quality protocol (benchmarks/quality.py) on the shared CIFAR-10 JPEG copy carried in
# carry/cifar10-jpeg.zip. If the --fast path fails at once, the same protocol reruns without CUDA
# graphs in the time left; if time runs out, the tables of the cycles finished so far are printed.
#   OUT=DIR bash benchmarks/gpu_quality.sh            (on the device; DIR comes back)
#   DEV=cpu TINY=1 PY=.venv/bin/python bash benchmarks/gpu_quality.sh   (a dry run of the script on CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_quality_out}; mkdir -p "$OUT"
PY=${PY:-python3}; DEV=${DEV:-cuda}; LIMIT=${LIMIT:-480}
export PYTHONPATH=src TAVAAL_CACHE=${TAVAAL_CACHE:-/tmp/tavaal-cache}
T0=$SECONDS
DATA=${DATA:-/tmp/cifar10}
[ -d $DATA/train ] || { mkdir -p $DATA && $PY -m zipfile -e carry/cifar10-jpeg.zip $DATA; }
[ -d $DATA/train ] || DATA=$(dirname "$(find /tmp/cifar10 -maxdepth 3 -type d -name train | head -1)")
echo "data: $DATA (unpacked in $((SECONDS - T0)) s)"
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || true
EXTRA=()
if [ "${TINY:-0}" = 1 ]; then  # checks the script, not the protocol
  EXTRA=(--set initial=40 --set budget=20 --set epochs=1 --set lr_milestones=1 --set trials=1 --set cycles=2 --set vae_batch_size=64)
fi
run() { local left=$((LIMIT - (SECONDS - T0))); echo "=== $* (limit ${left}s)"
  timeout "$left" "$PY" benchmarks/quality.py cifar10-short --data "$DATA" --device "$DEV" --quiet "${EXTRA[@]}" "$@" 2>&1 \
    | grep --line-buffered -v "^W1\|cpp_extension\|^USDT\|gpuGetDeviceCount" | tee -a "$OUT/quality.log"
  return "${PIPESTATUS[0]}"; }
run --out "$OUT/cifar10-short"; rc=$?
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $((SECONDS - T0)) -lt 120 ]; then
  echo "--fast failed (rc $rc); rerunning without CUDA graphs" | tee -a "$OUT/quality.log"
  rm -rf "$OUT/cifar10-short"; run --out "$OUT/cifar10-short" --set cuda_graphs=false; rc=$?
fi
if [ $rc -eq 124 ]; then
  echo "time limit reached: the cycles finished so far" | tee -a "$OUT/quality.log"
  "$PY" benchmarks/quality.py cifar10-short --results "$OUT/cifar10-short" 2>&1 | tee -a "$OUT/quality.log"
fi
echo "total $((SECONDS - T0)) s, rc $rc" | tee -a "$OUT/quality.log"
