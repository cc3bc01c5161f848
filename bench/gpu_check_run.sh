#!/usr/bin/env bash
# `make gpu-check`, the half that runs on the GPU machine (copied into gpu/ by gpu_check_prepare.sh):
#   device tool: run, carry ["gpu"], command `bash gpu/gpu_check_run.sh`
# Runs, each step under its own `timeout` (about 5 minutes in all on an H100):
#   nvidia-smi -L; every CUDA test executable (gtest JSON); compute-sanitizer memcheck on one small
#   gtest filter per kernel family, with the allocator cache off so every overrun is visible; the
#   kernel benchmarks (JSON); then $OUT/summary.md: test counts, memcheck result, each kernel's
#   GB/s or TFLOP/s and its fraction of the device peak.
# Files written to $OUT (the device tool brings back at most 8): summary.md, log.txt, tests.json,
# bench.json, memcheck.txt, nvidia-smi.txt.
set -uo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
OUT="${OUT:-$PWD/gpu-check-out}"
mkdir -p "$OUT"
WORK="$(mktemp -d "${TMPDIR:-/tmp}/gpu-check.XXXXXX")"
mkdir -p "$WORK/tests" "$WORK/bench"
LOG="$OUT/log.txt"
: >"$LOG"
T0=$(date +%s)
log() { echo "[gpu-check +$(($(date +%s) - T0))s] $*" | tee -a "$LOG"; }

# Libraries: ours beside the binaries; the CUDA toolkit's; pip's cuBLAS as a last resort.
LIBS="$HERE"
for d in /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib; do [ -d "$d" ] && LIBS="$LIBS:$d"; done
for d in $(python3 -c 'import nvidia, os; p = nvidia.__path__[0]; print(" ".join(os.path.join(p, s, "lib") for s in ("cublas", "cuda_runtime")))' 2>/dev/null); do
  [ -d "$d" ] && LIBS="$LIBS:$d"
done
export LD_LIBRARY_PATH="$LIBS${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
first_exe="$(ls "$HERE"/test_cuda_* 2>/dev/null | head -n 1)"
if [ -n "$first_exe" ] && ldd "$first_exe" 2>&1 | grep -q -E 'not found|version .* not found'; then
  log "using the carried libstdc++/libgcc_s (gpu/fallback)"
  export LD_LIBRARY_PATH="$HERE/fallback:$LD_LIBRARY_PATH"
fi

log "manifest: $(tr '\n' ' ' <"$HERE/MANIFEST.txt" 2>/dev/null)"
timeout 20 nvidia-smi -L >"$OUT/nvidia-smi.txt" 2>&1 || echo "nvidia-smi failed (rc $?)" >>"$OUT/nvidia-smi.txt"
timeout 20 nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm,clocks.max.mem --format=csv \
  >>"$OUT/nvidia-smi.txt" 2>&1 || true
cat "$OUT/nvidia-smi.txt" | tee -a "$LOG"

# 1. tests: each executable, JSON results, 120 s each
: >"$WORK/test_rc.txt"
for exe in "$HERE"/test_cuda_*; do
  [ -x "$exe" ] || continue
  name="$(basename "$exe")"
  log "test $name"
  timeout 120 "$exe" --gtest_output="json:$WORK/tests/$name.json" >>"$LOG" 2>&1
  rc=$?
  echo "$name $rc" >>"$WORK/test_rc.txt"
  log "test $name exit $rc"
done

# 2. memcheck: a small filter per family, 60 s each, 150 s in all
MEMCHECK="$OUT/memcheck.txt"
: >"$MEMCHECK"
SAN="$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)"
if [ -z "$SAN" ]; then
  echo "compute-sanitizer not found: memcheck skipped" | tee -a "$MEMCHECK" "$LOG"
else
  memcheck_deadline=$(($(date +%s) + 150))
  run_memcheck() {  # exe filter
    local exe="$HERE/$1" left=$((memcheck_deadline - $(date +%s)))
    if [ ! -x "$exe" ]; then echo "== $1: not built, skipped" >>"$MEMCHECK"; return; fi
    if [ "$left" -le 5 ]; then echo "== $1 $2: out of time budget, skipped" >>"$MEMCHECK"; return; fi
    [ "$left" -gt 60 ] && left=60
    log "memcheck $1 --gtest_filter=$2"
    echo "== $1 --gtest_filter=$2" >>"$MEMCHECK"
    NANORLHF_CUDA_ALLOC_EXACT=1 timeout "$left" "$SAN" --tool memcheck --error-exitcode 86 \
      "$exe" --gtest_filter="$2" --gtest_brief=1 >"$WORK/memcheck.one" 2>&1
    local rc=$?
    grep -E "ERROR SUMMARY|Invalid|out of bounds|misaligned|FAILED|PASSED|Skipped" "$WORK/memcheck.one" | head -n 40 >>"$MEMCHECK"
    echo "exit $rc" >>"$MEMCHECK"
    log "memcheck $1 exit $rc"
  }
  run_memcheck test_cuda_allocator 'CudaRuntime.*:CudaAllocator.PeakAndReset'
  run_memcheck test_cuda_elementwise 'CudaBinary.Every*:CudaCopyStrided.*:CudaWhere.*:CudaRandom.Dropout*:CudaUnary.Misaligned*'
  run_memcheck test_cuda_reduce 'CudaReduceRows.Empty*:CudaReduceRows.Nan*:CudaArgmax.*'
  run_memcheck test_cuda_nn 'CudaLayerNorm.Backward*:CudaCrossEntropy.*:CudaEmbedding.*:CudaAttention.*:CudaAdamW.Misaligned*'
  run_memcheck test_cuda_gemm "${NANORLHF_GEMM_MEMCHECK_FILTER:-*Small*:*small*:*Odd*:*odd*}"
fi

# 3. benchmarks: JSON out, short min time (Google Benchmark 1.7 takes seconds as a plain number)
for b in bench_kernels_cuda bench_gemm_cuda; do
  exe="$HERE/$b"
  [ -x "$exe" ] || { log "benchmark $b: not built, skipped"; continue; }
  budget=150
  [ "$b" = bench_gemm_cuda ] && budget=90
  log "benchmark $b (timeout ${budget}s)"
  timeout "$budget" "$exe" --benchmark_min_time=0.05 --benchmark_out="$WORK/bench/$b.json" \
    --benchmark_out_format=json >>"$LOG" 2>&1
  log "benchmark $b exit $?"
done

# 4. summary
python3 - "$WORK" "$OUT" <<'PY'
import glob, json, os, sys
work, out = sys.argv[1], sys.argv[2]
lines = ["# make gpu-check summary", ""]
try:
    smi = open(os.path.join(out, "nvidia-smi.txt")).read().strip().splitlines()
    lines += ["Device: " + (smi[0] if smi else "unknown"), ""]
except OSError:
    pass

# tests
rcs = {}
for line in open(os.path.join(work, "test_rc.txt")):
    name, rc = line.split()
    rcs[name] = int(rc)
merged, totals = {}, [0, 0, 0]
rows, failures = [], []
for name in sorted(rcs):
    path = os.path.join(work, "tests", name + ".json")
    p = f = s = 0
    if os.path.exists(path):
        data = json.load(open(path))
        merged[name] = data
        for suite in data.get("testsuites", []):
            for t in suite.get("testsuite", []):
                full = suite["name"] + "." + t["name"]
                if t.get("failures"):
                    f += 1
                    msg = t["failures"][0].get("failure", "").strip().splitlines()
                    failures.append((name, full, " / ".join(msg[:3])[:300]))
                elif t.get("result") == "SKIPPED":
                    s += 1
                else:
                    p += 1
    note = "" if rcs[name] == 0 else ("timed out" if rcs[name] == 124 else f"exit {rcs[name]}")
    if not os.path.exists(path):
        note += " (no JSON: crashed or did not start)"
    rows.append(f"| {name} | {p} | {f} | {s} | {note} |")
    totals[0] += p; totals[1] += f; totals[2] += s
json.dump(merged, open(os.path.join(out, "tests.json"), "w"), indent=1)
lines += [f"## Tests: {totals[0]} passed, {totals[1]} failed, {totals[2]} skipped", "",
          "| executable | passed | failed | skipped | note |", "| --- | --- | --- | --- | --- |"] + rows + [""]
for exe, full, msg in failures:
    lines.append(f"- FAILED {exe} {full}: {msg}")
if failures:
    lines.append("")

# memcheck
lines += ["## compute-sanitizer memcheck (allocator cache off)", ""]
try:
    mc = open(os.path.join(out, "memcheck.txt")).read().splitlines()
    cur = None
    for l in mc:
        if l.startswith("== "):
            cur = l[3:]
        elif l.startswith("ERROR SUMMARY") or "ERROR SUMMARY" in l:
            lines.append(f"- {cur}: {l.split('ERROR SUMMARY')[-1].strip(': ').strip()}")
        elif l.startswith("exit "):
            code = int(l.split()[1])
            verdict = {0: "clean", 86: "ERRORS FOUND", 124: "timed out"}.get(code, f"exit {code}")
            lines.append(f"  - result: {verdict}")
        elif "skipped" in l or "not found" in l:
            lines.append("- " + l)
except OSError:
    lines.append("- no memcheck output")
lines.append("")

# benchmarks
bench_all = {}
lines += ["## Kernel benchmarks", "", "| benchmark | time (us) | GB/s | TFLOP/s | fraction of peak |",
          "| --- | --- | --- | --- | --- |"]
for path in sorted(glob.glob(os.path.join(work, "bench", "*.json"))):
    name = os.path.basename(path)[:-5]
    try:
        data = json.load(open(path))
    except Exception as e:
        lines.append(f"| {name}: unreadable JSON ({e}) | | | | |")
        continue
    bench_all[name] = data
    ctx = data.get("context", {})
    for b in data.get("benchmarks", []):
        if b.get("error_occurred"):
            lines.append(f"| {b['name']} | error: {b.get('error_message', '')[:120]} | | | |")
            continue
        if b.get("run_type") == "aggregate":
            continue
        t = b.get("real_time", 0)
        unit = b.get("time_unit", "us")
        t_us = t * {"ns": 1e-3, "us": 1, "ms": 1e3, "s": 1e6}.get(unit, 1)
        gbps = b.get("GBps") or (b.get("bytes_per_second", 0) / 1e9 if "bytes_per_second" in b else None)
        tf = b.get("TFLOPs") or b.get("TFLOPS") or b.get("tflops")
        frac = b.get("frac_peak")
        fmt = lambda v, d=1: "" if v is None else f"{v:.{d}f}"
        lines.append(f"| {b['name']} | {t_us:.1f} | {fmt(gbps)} | {fmt(tf, 2)} | {fmt(frac, 3)} |")
    if ctx.get("peak_GBps"):
        lines.append(f"| ({name}: peak {float(ctx['peak_GBps']):.0f} GB/s, FP32 {float(ctx.get('peak_fp32_TFLOPs', 0)):.1f} TFLOP/s on {ctx.get('cuda_device', '?')}) | | | | |")
json.dump(bench_all, open(os.path.join(out, "bench.json"), "w"), indent=1)
if not bench_all:
    lines.append("| no benchmark output | | | | |")
lines.append("")
open(os.path.join(out, "summary.md"), "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
# exit status: 1 when a test failed, a test executable crashed or timed out, or memcheck found errors
bad = totals[1] > 0 or any(rc != 0 for rc in rcs.values()) or any("ERRORS FOUND" in l for l in lines)
sys.exit(1 if bad else 0)
PY
status=$?
log "summary written to $OUT/summary.md (status $status)"
rm -rf "$WORK"
exit $status
