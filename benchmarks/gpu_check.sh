#!/usr/bin/env bash
# The whole GPU check in one script (sized for < 8 minutes on one H100/H200):
#   1. unpack the shared CIFAR-10 JPEG copy carried in carry/cifar10-jpeg.zip;
#   2. check_graphs.py: the CUDA-graph path trains the same weights as the eager path;
#   3. bench_cycle.py: the fp32 fast path beside the plain DataLoader path (same run), then --fast
#      (bf16 + channels_last + CUDA graphs + fused) with cuDNN's autotuner on and off;
#   4. profile_step.py: kernel time of a training step and a VAE + D iteration, by group (bf16 eager);
#   5. bench_trial.py: every cycle of a --fast TA-VAAL trial (official schedule) at two short
#      epoch scales, projected to 200 epochs and EV = 100.
# FULL=1 adds the bf16 eager bench, accuracy after one cycle (fp32 vs --fast) and one real TA-VAAL
# cycle (these were measured on 2026-11-26; see benchmarks/README.md).
# TINY=1 DEV=cpu PY=.venv/bin/python runs the same steps with tiny sizes (checks the script on CPU).
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
  B="--subset 2000 --labeled 200 --epochs 1 --vae-iters 2 --methods random,coreset,tavaal"
  P="--subset 2000 --labeled 200 --epochs 1 --vae-iters 2"
  T="--subset 2000 --test-subset 500 --scales 1,2 --vae-scales 1,2 --set initial=100 --set budget=20 --set cycles=2"
  R="--epochs 1 --initial 200 --budget 20 --mc-samples 2"; V="--vae-epochs 1"
else
  B="--epochs 20 --vae-iters 200"; P="--epochs 2 --vae-iters 20"; T="--scales 10,20 --vae-scales 5,10"; R=""; V=""
fi
# step LIMIT_S TITLE CMD...
SLOW=1; [ "${TINY:-0}" = 1 ] && SLOW=4  # a CPU dry run is slower than the GPU, even with tiny sizes
step() { local lim=$(($1 * SLOW)); shift; echo; echo "=== $1" | tee -a "$OUT/log.txt"; shift; local t0=$SECONDS
  timeout "$lim" "$@" 2>&1 | grep --line-buffered -v "^W1\|^\s*$\|cpp_extension\|^USDT\|gpuGetDeviceCount" | tee -a "$OUT/log.txt" | tail -25
  echo "(step took $((SECONDS - t0)) s)" | tee -a "$OUT/log.txt"; }
# bf16 on a CPU runs at a few images/s: the CPU dry run (TINY=1 DEV=cpu) checks the steps in fp32.
FAST=""; [ "$DEV" = cuda ] && FAST="--precision bf16 --channels-last --cuda-graphs --fused"
TFAST=""; [ "$DEV" = cuda ] && TFAST="--fast"
BENCH="$PY benchmarks/bench_cycle.py --device $DEV --preset cifar10 --data $DATA $B"
[ "$DEV" = cuda ] && step 120 "CUDA graphs vs eager, same seed (fp32)" $PY benchmarks/check_graphs.py --data $DATA
step 240 "bench fp32 (+ plain path)" $BENCH --json $OUT/fp32.json
step 120 "bench --fast (cuDNN autotuner on)" $BENCH $FAST --skip-plain --json $OUT/fast.json
step 120 "bench --fast, cuDNN autotuner off" $BENCH $FAST --skip-plain --no-cudnn-benchmark --json $OUT/fast_nobench.json
PROF=""; [ "$DEV" = cuda ] && PROF="--precision bf16 --channels-last"
step 90 "profile: training step and VAE + D iteration (eager)" $PY benchmarks/profile_step.py --device $DEV \
  --preset cifar10 --data $DATA $P $PROF --json $OUT/profile.json
step 330 "trial, every cycle, TA-VAAL official schedule, --fast" $PY benchmarks/bench_trial.py --device $DEV \
  --preset cifar10 --data $DATA $T $TFAST --json $OUT/trial.json
if [ "${FULL:-0}" = 1 ]; then
  RUN="$PY -m tavaal run --preset cifar10 --dataset imagefolder --train-dir $DATA/train --test-dir $DATA/test --device $DEV --trials 1 --cycles 1 --quiet $R"
  step 120 "bench bf16+channels_last (eager)" $BENCH ${FAST/--cuda-graphs --fused/} --skip-plain --json $OUT/bf16.json
  step 240 "accuracy, 1 cycle random, fp32" $RUN --method random --out $OUT/acc_fp32
  step 240 "accuracy, 1 cycle random, --fast" $RUN --method random $FAST --out $OUT/acc_fast
  step 240 "TA-VAAL official schedule, 1 cycle, --fast" $RUN --method tavaal --schedule official $V $FAST --out $OUT/tavaal_fast
fi
echo; echo "=== done"
