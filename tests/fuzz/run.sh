#!/usr/bin/env bash
# Runs every libFuzzer target of a build folder for a fixed time on a scratch copy of its seed
# corpus (tests/fuzz/corpus/<name>/; new entries stay in the scratch copy, the repo is not written).
# Fails on the first finding: a crash, a sanitizer report, a timeout (> 10 s on one input), an
# out-of-memory (> 2 GB) or an exception the target does not expect. The input that did it is kept
# in <build>/fuzz-findings/.
#   bash tests/fuzz/run.sh <build folder> <seconds per target> [target ...]
set -euo pipefail
build=$(cd "$1" && pwd); seconds=$2; shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(jsonl safetensors tokenizer config)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$build/fuzz-findings"
for t in "${targets[@]}"; do
  mkdir -p "$scratch/$t"
  cp -r "$src/corpus/$t/." "$scratch/$t/"
  log="$build/fuzz-findings/fuzz_$t.log"
  echo "fuzz_$t: ${seconds} s on $(ls "$scratch/$t" | wc -l) seeds"
  if ! (cd "$scratch" && "$build/fuzz_$t" "$scratch/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -artifact_prefix="$build/fuzz-findings/fuzz_$t-" -print_final_stats=1) >"$log" 2>&1; then
    tail -n 60 "$log"
    echo "fuzz_$t: FINDING (input kept in $build/fuzz-findings/, full log $log)"
    exit 1
  fi
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  echo "fuzz_$t: ok, $runs executions, corpus $(ls "$scratch/$t" | wc -l) entries"
done
