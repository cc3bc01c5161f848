#!/usr/bin/env bash
# nanorlhf against PyTorch eager at GPT-2's shape (124M), side by side in one run, each measurement in
# a process of its own (bench_gpt2 and anchors/torch_gpt2.py, the same computation): one DPO step
# (2 pairs of 256 tokens, AdamW), greedy generation of 64 tokens for 8 prompts with the KV cache,
# and the scaling table: a pretraining step (4 x 256 tokens, AdamW) at ~1M, ~10M and 124M
# parameters. Prints the JSON lines and a markdown table of time, peak RSS and the ratios.
# Usage: bench/run_gpt2_bench.sh [BUILD_DIR] (default build; needs bench_gpt2 built and python3-torch)
set -uo pipefail
B=${1:-build}
HERE=$(cd "$(dirname "$0")" && pwd)
ANCHOR=${NANORLHF_ANCHORS:-$HERE/anchors}/torch_gpt2.py
PY=/usr/bin/python3   # Debian's interpreter: python3-torch lives there
if grep -q avx512f /proc/cpuinfo; then export OPENBLAS_CORETYPE=SkylakeX; fi  # see bench/README.md
BENCH="$B/bench_gpt2"
[ -x "$BENCH" ] || { echo "error: $BENCH not found; build it: cmake --build $B --target bench_gpt2"; exit 1; }
"$PY" -c 'import torch' 2>/dev/null || { echo "error: $PY cannot import torch (make bench-deps)"; exit 1; }

echo "machine: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores; load average: $(cut -d' ' -f1-3 /proc/loadavg)"
SMALL="--vocab 512 --ctx 256 --d_model 128 --n_layer 4 --n_head 4"    # 0.89M parameters
MEDIUM="--vocab 2048 --ctx 256 --d_model 384 --n_layer 5 --n_head 6"  # 9.7M
RESULTS=$(mktemp)
trap 'rm -f "$RESULTS"' EXIT
run() {  # label, mode, flags
  local label=$1 mode=$2; shift 2
  for impl in nanorlhf torch; do
    if [ "$impl" = nanorlhf ]; then line=$("$BENCH" "$mode" "$@"); else line=$("$PY" "$ANCHOR" "$mode" "$@"); fi ||
      { echo "$impl $mode $label failed"; continue; }
    echo "$line"
    echo "$label $line" >>"$RESULTS"
  done
}
run "dpo_124M" dpo
run "generate_124M" generate
run "train_1M" train $SMALL
run "train_10M" train $MEDIUM
run "train_124M" train
"$PY" - "$RESULTS" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    label, js = line.split(" ", 1)
    r = json.loads(js)
    rows.setdefault(label, {})[r["impl"]] = r
print("\n| measurement | params | nanorlhf | PyTorch eager | time ratio | nanorlhf peak RSS | PyTorch peak RSS | memory ratio |")
print("|---|---|---|---|---|---|---|---|")
for label, r in rows.items():
    if len(r) < 2:
        continue
    o, t = r["nanorlhf"], r["torch"]
    speed = "tokens/s" if o["mode"] == "generate" else "ms"
    fo, ft = (o["tokens_per_s"], t["tokens_per_s"]) if speed == "tokens/s" else (o["ms"], t["ms"])
    ratio = fo / ft
    print(f"| {label} | {o['params'] / 1e6:.2f}M | {fo:.1f} {speed} | {ft:.1f} {speed} | {ratio:.2f}x | "
          f"{o['peak_rss_MB']:.0f} MB | {t['peak_rss_MB']:.0f} MB | {o['peak_rss_MB'] / t['peak_rss_MB']:.2f}x |")
EOF
