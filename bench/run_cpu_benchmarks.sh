#!/usr/bin/env bash
# Runs the CPU benchmarks side by side with their anchors (OpenBLAS, PyTorch eager). Usage: run_cpu_benchmarks.sh BUILD_DIR
set -uo pipefail
B=${1:-build}
# OpenBLAS 0.3.21 misdetects AVX-512 Xeons and falls back to SSE3 kernels; it reads this at load time.
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi
run() { echo "== $*"; "$@" || echo "(failed: $*)"; }
run "$B/bench_gemm" --benchmark_min_time=0.2
# numpy's float32 matmul on the same OpenBLAS, outside our harness: a check on bench_gemm's own OpenBLAS rows
if /usr/bin/python3 -c 'import numpy' 2>/dev/null; then
  for t in 1 2; do OPENBLAS_NUM_THREADS=$t run /usr/bin/python3 bench/anchors/openblas_sgemm.py --sizes 512,1024,2048; done
else
  echo "== openblas_sgemm anchor skipped: /usr/bin/python3 cannot import numpy (make bench-deps)"
fi
run "$B/bench_kernels_cpu" --benchmark_min_time=0.1
[ -x "$B/bench_generate" ] && run "$B/bench_generate" --benchmark_min_time=0.5
if [ -x bench/run_anchor_train_step.sh ] || [ -f bench/run_anchor_train_step.sh ]; then run bash bench/run_anchor_train_step.sh "$B"; fi
