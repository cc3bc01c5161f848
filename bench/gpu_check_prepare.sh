#!/usr/bin/env bash
# `make gpu-check`, the half that runs here (no GPU needed): configures a CUDA build in build-gpu/,
# builds the CUDA tests and benchmarks, and gathers them into gpu/ (git-ignored) with the shared
# libraries a bare CUDA machine lacks, rpath $ORIGIN, and gpu/gpu_check_run.sh. Then, with the
# device tool: run with carry ["gpu"] and command `bash gpu/gpu_check_run.sh` (see bench/README.md).
# Environment: JOBS (default 2), NANORLHF_GPU_BUILD (default <repo>/build-gpu).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BUILD="${NANORLHF_GPU_BUILD:-$ROOT/build-gpu}"
DEST="$ROOT/gpu"
JOBS="${JOBS:-2}"
LIMIT=$((64 * 1024 * 1024))   # the device tool carries at most 64 MiB in all

say() { echo "[gpu-check prepare] $*"; }

# 1. configure: CUDA on, benchmarks on, rpath $ORIGIN (DT_RPATH, which also serves the libraries'
#    own dependencies), and --as-needed so that executables that never call cuBLAS do not need it.
say "configuring $BUILD"
cmake -S "$ROOT" -B "$BUILD" \
  -DNANORLHF_CUDA=ON -DNANORLHF_TESTS=ON -DNANORLHF_BENCH=ON -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_BUILD_RPATH='$ORIGIN' -DCMAKE_INSTALL_RPATH='$ORIGIN' \
  -DCMAKE_EXE_LINKER_FLAGS='-Wl,--disable-new-dtags -Wl,--as-needed' >"$BUILD.configure.log" 2>&1 ||
  { cat "$BUILD.configure.log"; exit 1; }

# 2. the targets: every test_cuda_* source, bench_kernels_cuda, bench_gemm_cuda where it exists
targets=()
while IFS= read -r src; do targets+=("$(basename "$src" .cpp)"); done < <(find "$ROOT/tests" -name 'test_cuda_*.cpp' | sort)
for b in bench_kernels_cuda bench_gemm_cuda; do
  if [ -e "$ROOT/bench/$b.cpp" ] || [ -e "$ROOT/bench/$b.cu" ]; then targets+=("$b"); fi
done
[ ${#targets[@]} -gt 0 ] || { say "no CUDA test or benchmark sources found"; exit 1; }

built=(); failed=()
for t in "${targets[@]}"; do   # one at a time: a target that does not build yet does not stop the others
  say "building $t"
  if cmake --build "$BUILD" --target "$t" -j"$JOBS" >"$BUILD/$t.build.log" 2>&1; then
    built+=("$t")
  else
    failed+=("$t"); say "WARNING: $t did not build (log: $BUILD/$t.build.log):"; tail -n 15 "$BUILD/$t.build.log" || true
  fi
done
[ ${#built[@]} -gt 0 ] || { say "nothing built"; exit 1; }

# 3. gather into gpu/: executables (stripped), their non-system shared libraries, the run script
rm -rf "$DEST"
mkdir -p "$DEST/fallback"
for t in "${built[@]}"; do
  cp "$BUILD/$t" "$DEST/"
  strip --strip-unneeded "$DEST/$t" 2>/dev/null || true
done
# Libraries to carry beside the binaries: what a bare CUDA machine has no package for here.
# libstdc++/libgcc_s go to gpu/fallback/, used only where the machine's own are missing or too old.
declare -A seen=()
for t in "${built[@]}"; do
  while read -r lib path; do
    [ -n "$path" ] && [ -f "$path" ] || continue
    [ -z "${seen[$lib]:-}" ] || continue
    seen[$lib]=1
    case "$lib" in
      libbenchmark*|libfmt*|libgomp*|libgtest*|libgmock*|libcudart.so*)
        cp -L "$path" "$DEST/$lib"; strip --strip-unneeded "$DEST/$lib" 2>/dev/null || true ;;
      libstdc++*|libgcc_s*)
        cp -L "$path" "$DEST/fallback/$lib" ;;
    esac
  done < <(ldd "$BUILD/$t" | awk '/=>/ {print $1, $3}')
done
cp "$ROOT/bench/gpu_check_run.sh" "$DEST/gpu_check_run.sh"
chmod +x "$DEST/gpu_check_run.sh"
{
  echo "prepared: $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "commit: $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$ROOT" diff --quiet 2>/dev/null || echo ' (dirty tree)')"
  echo "built: ${built[*]}"
  [ ${#failed[@]} -eq 0 ] || echo "did not build: ${failed[*]}"
} >"$DEST/MANIFEST.txt"

# 4. size check
size=$(du -sb "$DEST" | cut -f1)
say "gpu/ holds $((size / 1024 / 1024)) MiB:"
ls -la "$DEST" "$DEST/fallback"
if [ "$size" -gt "$LIMIT" ]; then
  say "ERROR: gpu/ is over the device tool's 64 MiB carry limit"; exit 1
fi
[ ${#failed[@]} -eq 0 ] || say "WARNING: not built: ${failed[*]}"
say "ready: device tool run with carry [\"gpu\"] and command: bash gpu/gpu_check_run.sh"
