#!/usr/bin/env bash
# The device evidence in one script, sized for < 8 minutes on one H100/H200 (LIMIT seconds, 450 by
# default), with the shared CIFAR-10 JPEG copy carried in as carry/cifar10-jpeg.zip:
#   1. benchmarks/bench_jobs.py: the cifar10 preset's cycle-1 TA-VAAL job at N = 1, 2, 4, 8
#      concurrent processes (BENCH_EPOCHS epochs, 20 by default, to fit), aggregate images/s, MFU,
#      the best N, and the paper figure's projected wall time;
#   2. the paper's protocol at its full 200 epochs: `tavaal compare --preset cifar10` (1k initial +
#      1k per cycle, up to 5 cycles) for random, vaal, lloss2 and tavaal, TRIALS seeds (3), --fast,
#      --jobs at the best N; jobs advance round robin, so when the time limit stops it every
#      method and seed is within one cycle of the others;
#   3. `tavaal summary` of the finished cycles: paired differences to random with 95% CIs, AUBC.
# Everything lands in $OUT: evidence.log, bench_jobs.json, cifar10/ (records), summary.md.
#   OUT=DIR bash benchmarks/gpu_evidence.sh                                   (on the device)
#   TINY=1 DEV=cpu PY=.venv/bin/python bash benchmarks/gpu_evidence.sh         (a dry run on CPU)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-/tmp/gpu_evidence_out}; mkdir -p "$OUT"
PY=${PY:-python3}; DEV=${DEV:-cuda}; LIMIT=${LIMIT:-450}; TRIALS=${TRIALS:-3}
export PYTHONPATH=src TAVAAL_CACHE=${TAVAAL_CACHE:-/tmp/tavaal-cache}
T0=$SECONDS
log() { echo "$*" | tee -a "$OUT/evidence.log"; }
quiet() { grep --line-buffered -v "^W1\|cpp_extension\|^USDT\|gpuGetDeviceCount"; }
DATA=${DATA:-/tmp/cifar10}
[ -d "$DATA/train" ] || { mkdir -p "$DATA" && $PY -m zipfile -e carry/cifar10-jpeg.zip "$DATA"; }
[ -d "$DATA/train" ] || DATA=$(dirname "$(find "$DATA" -maxdepth 3 -type d -name train | head -1)")
log "data: $DATA (unpacked in $((SECONDS - T0)) s)"
nvidia-smi --query-gpu=name,memory.total --format=csv 2>/dev/null | tee -a "$OUT/evidence.log" || true
FAST=(--fast)
BENCH=(--epochs "${BENCH_EPOCHS:-20}" --concurrency "${CONCURRENCY:-1,2,4,8}")
RUN=(--epochs 200 --cycles 5 --trials "$TRIALS")
if [ "${TINY:-0}" = 1 ]; then  # checks the script, not the protocol
  BENCH=(--epochs 1 --labeled 40 --budget 20 --concurrency 1,2)
  RUN=(--epochs 1 --lr-milestones 1 --cycles 2 --trials 2 --initial 40 --budget 20 --vae-batch-size 64)
fi

log "=== 1. throughput at N concurrent jobs ($((SECONDS - T0)) s)"
timeout -s INT -k 20 $((LIMIT / 3)) "$PY" benchmarks/bench_jobs.py --data "$DATA" --device "$DEV" \
  "${FAST[@]}" "${BENCH[@]}" --json "$OUT/bench_jobs.json" 2>&1 | quiet | tee -a "$OUT/evidence.log"
BEST=$("$PY" -c "import json; print(json.load(open('$OUT/bench_jobs.json'))['best'])" 2>/dev/null || echo 4)
log "jobs per device: $BEST"

LEFT=$((LIMIT - (SECONDS - T0) - 20))
log "=== 2. the cifar10 protocol, --jobs $BEST, ${LEFT} s left"
timeout -s INT -k 30 "$LEFT" "$PY" -m tavaal compare --preset cifar10 --dataset imagefolder \
  --train-dir "$DATA/train" --test-dir "$DATA/test" --methods random,vaal,lloss2,tavaal "${RUN[@]}" \
  --jobs "$BEST" --device "$DEV" "${FAST[@]}" --out "$OUT/cifar10" --quiet 2>&1 | quiet | tail -n 30 \
  | tee -a "$OUT/evidence.log"
rc=${PIPESTATUS[0]}
[ "$rc" = 124 ] || [ "$rc" = 130 ] && log "time limit reached: the tables below hold the cycles finished so far"

log "=== 3. summary ($((SECONDS - T0)) s)"
"$PY" -m tavaal summary "$OUT/cifar10" 2>&1 | tee "$OUT/summary.md" | tee -a "$OUT/evidence.log"
log "cycles finished per job:"
"$PY" - "$OUT/cifar10" <<'EOF' 2>&1 | tee -a "$OUT/evidence.log"
import collections, json, pathlib, sys
recs = [json.loads(x) for x in (pathlib.Path(sys.argv[1]) / "results.jsonl").read_text().splitlines() if x]
done = collections.Counter((r["method"], r["trial"]) for r in recs)
print(dict(sorted(done.items())))
EOF
log "total $((SECONDS - T0)) s, compare rc $rc"
