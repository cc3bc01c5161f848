#!/usr/bin/env python3
"""OpenBLAS anchor for bench_gemm: square float32 C = A @ B through numpy, best of --reps per size.

numpy hands float32 matmul to cblas_sgemm of the BLAS it is linked with (Debian's python3-numpy:
OpenBLAS through libblas.so.3 once libopenblas is installed). Each size runs once untimed, then --reps
timed runs; the best gives GFLOP/s = 2 n^3 / seconds / 1e9. Output: one JSON line per size, e.g.
  {"anchor": "openblas_sgemm", "n": 1024, "gflops": 210.3, "threads": "2", "coretype": "SkylakeX"}
threads and coretype echo OPENBLAS_NUM_THREADS and OPENBLAS_CORETYPE (null when unset): OpenBLAS reads
them when it loads, so set them in the environment, not here. On AVX-512 machines OpenBLAS 0.3.21
picks slow kernels unless OPENBLAS_CORETYPE=SkylakeX.
"""
import argparse
import json
import os
import time

import numpy as np


def sizes(text):
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma-separated list of sizes: {text!r}")
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"sizes must be positive: {text!r}")
    return values


def best_seconds(a, b, reps):
    out = np.empty((a.shape[0], b.shape[1]), dtype=np.float32)
    np.matmul(a, b, out=out)  # warm-up: thread pool start, page faults on out
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return best


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=sizes, default=sizes("256,512,1024,2048"), help="comma-separated n")
    parser.add_argument("--reps", type=int, default=5, help="timed runs per size (best is reported)")
    args = parser.parse_args()
    if args.reps < 1:
        parser.error("--reps must be at least 1")
    rng = np.random.default_rng(0)
    for n in args.sizes:
        a = rng.standard_normal((n, n), dtype=np.float32)
        b = rng.standard_normal((n, n), dtype=np.float32)
        seconds = best_seconds(a, b, args.reps)
        print(json.dumps({"anchor": "openblas_sgemm", "n": n, "gflops": round(2.0 * n**3 / seconds / 1e9, 1),
                          "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
                          "coretype": os.environ.get("OPENBLAS_CORETYPE")}), flush=True)


if __name__ == "__main__":
    main()
