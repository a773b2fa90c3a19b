#!/usr/bin/env bash
# The whole GPU check in one script (sized for < 8 minutes on one H100/H200):
#   1. unpack the shared CIFAR-10 JPEG copy carried in carry/cifar10-jpeg.zip;
#   2. check_graphs.py: the CUDA-graph path trains the same weights as the eager path;
#   3. bench_cycle.py: fp32 fast path (+ the plain DataLoader path in the same run), then bf16 +
#      channels_last + CUDA graphs, with and without fused optimizers, then bf16 eager;
#   4. accuracy after one cycle (1,000 random labels, the cifar10 preset's 200 epochs), fp32 vs bf16;
#   5. one full TA-VAAL cycle with --schedule official (EV = 100), timed by phase.
# QUICK=1 skips the eager bf16 bench and the accuracy runs. TINY=1 runs the same steps with tiny sizes (for checking the script on CPU).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_check_out}
mkdir -p "$OUT"
DEV=${DEV:-cuda}
PY=${PY:-python3}
export PYTHONPATH=src TAVAAL_CACHE=${TAVAAL_CACHE:-/tmp/tavaal-cache}
DATA=/tmp/cifar10
[ -d $DATA/train ] || { mkdir -p $DATA && $PY -m zipfile -e carry/cifar10-jpeg.zip $DATA; }
[ -d $DATA/train ] || DATA=$(dirname "$(find /tmp/cifar10 -maxdepth 3 -type d -name train | head -1)")
echo "data: $DATA"; nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null || true
if [ "${TINY:-0}" = 1 ]; then
  B="--subset 2000 --labeled 200 --epochs 1 --vae-iters 2 --methods random,coreset,tavaal"; R="--epochs 1 --initial 200 --budget 20 --mc-samples 2"; V="--vae-epochs 1"
else
  B="--epochs 20 --vae-iters 200"; R=""; V=""
fi
step() { echo; echo "=== $1" | tee -a "$OUT/log.txt"; shift; local t0=$SECONDS; timeout 240 "$@" 2>&1 | grep --line-buffered -v "^W1\|^\s*$\|cpp_extension" | tee -a "$OUT/log.txt" | tail -25; echo "(step took $((SECONDS - t0)) s)"; }
# bf16 on a CPU runs at a few images/s: the CPU dry run (TINY=1 DEV=cpu) checks the steps in fp32.
G=""; F=""; [ "$DEV" = cuda ] && G="--cuda-graphs" && F="--amp bf16 --channels-last"
RUN="$PY -m tavaal run --preset cifar10 --dataset imagefolder --train-dir $DATA/train --test-dir $DATA/test --device $DEV --trials 1 --cycles 1 --quiet $R"
[ "$DEV" = cuda ] && step "CUDA graphs vs eager, same seed (fp32)" $PY benchmarks/check_graphs.py --data $DATA
step "bench fp32 (+ plain path)" $PY benchmarks/bench_cycle.py --device $DEV --preset cifar10 --data $DATA $B --json $OUT/fp32.json
step "bench bf16+channels_last+graphs" $PY benchmarks/bench_cycle.py --device $DEV --preset cifar10 --data $DATA $B $F $G --skip-plain --json $OUT/bf16g.json
step "bench bf16+channels_last+graphs+fused" $PY benchmarks/bench_cycle.py --device $DEV --preset cifar10 --data $DATA $B $F $G --fused --skip-plain --json $OUT/bf16gf.json
if [ "${QUICK:-0}" != 1 ]; then
step "bench bf16+channels_last (eager)" $PY benchmarks/bench_cycle.py --device $DEV --preset cifar10 --data $DATA $B $F --skip-plain --json $OUT/bf16.json
step "accuracy, 1 cycle random, fp32" $RUN --method random --out $OUT/acc_fp32
step "accuracy, 1 cycle random, bf16+channels_last+graphs" $RUN --method random $F $G --out $OUT/acc_bf16g
fi
step "TA-VAAL official schedule, 1 cycle, bf16+channels_last+graphs+fused" $RUN --method tavaal --schedule official $V $F $G --fused --out $OUT/tavaal_bf16gf
echo; echo "=== done"
