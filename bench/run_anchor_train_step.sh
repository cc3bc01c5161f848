#!/usr/bin/env bash
# GPT training step side by side: PyTorch eager (anchors/torch_gpt_step.py, --threads 1 and 2) and our
# bench_train_step, on the anchor's configuration (V=256 T=64 d=128 L=4 h=4 B=32); prints ours/torch
# against the faster torch figure. Usage: bench/run_anchor_train_step.sh [BUILD_DIR] (default build)
set -uo pipefail
B=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ANCHOR=${NANORLHF_ANCHORS:-$HERE/anchors}/torch_gpt_step.py   # bench/anchors/ (bench/README.md)
PY=/usr/bin/python3   # Debian's interpreter: python3-torch lives there, not in another python3 on the PATH
# OpenBLAS 0.3.21 misdetects AVX-512 Xeons and falls back to SSE3 kernels; it reads this at load time.
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi

BENCH="$B/bench_train_step"
[ -x "$BENCH" ] || { echo "error: $BENCH not found; build it: cmake --build $B --target bench_train_step"; exit 1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
torch_best=""
if [ ! -x "$PY" ] || ! "$PY" -c 'import torch' 2>/dev/null; then
  echo "PyTorch anchor skipped: $PY cannot import torch (make bench-deps)"
elif [ ! -f "$ANCHOR" ]; then
  echo "PyTorch anchor skipped: $ANCHOR not found (set NANORLHF_ANCHORS to the anchors folder)"
else
  for t in 1 2; do
    line=$("$PY" "$ANCHOR" --threads "$t" --steps 10) || { echo "torch --threads $t failed"; continue; }
    echo "torch --threads $t: $line"
    ms=$(echo "$line" | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["ms"])')
    if [ -z "$torch_best" ] || "$PY" -c "import sys; sys.exit(0 if $ms < $torch_best else 1)"; then torch_best=$ms; fi
  done
fi

# Ours: the anchor's configuration only, 50 steps, with 1 and 2 OpenMP threads (as torch's --threads);
# ms_min is the best step, as the anchor reports. OMP_NUM_THREADS set by the caller picks one.
ours_best=""
for t in ${OMP_NUM_THREADS:-1 2}; do
  out=$(OMP_NUM_THREADS=$t "$BENCH" --benchmark_filter='BM_TrainStep/V:256/T:64/d:128/L:4/h:4/B:32' --benchmark_format=json 2>/dev/null) ||
    { echo "error: $BENCH failed"; exit 1; }
  read -r ms_min ms_mean held0 held1 rss <<<"$(echo "$out" | "$PY" -c 'import json,sys; b=json.load(sys.stdin)["benchmarks"][0]; print(round(b["ms_min"],2), round(b["real_time"],2), round(b["held_first_MB"],2), round(b["held_last_MB"],2), round(b["peak_rss_MB"],1))')"
  echo "nanorlhf OMP_NUM_THREADS=$t: best step ${ms_min} ms, mean ${ms_mean} ms over 50 steps; CPU bytes held after each step ${held0} -> ${held1} MB; peak RSS ${rss} MB"
  if [ -z "$ours_best" ] || "$PY" -c "import sys; sys.exit(0 if $ms_min < $ours_best else 1)"; then ours_best=$ms_min; fi
done
if [ -n "$torch_best" ]; then
  "$PY" -c "print(f'ours/torch = {$ours_best / $torch_best:.2f} (our best step {$ours_best} ms vs the faster torch {$torch_best} ms; target <= 0.50)')"
fi
