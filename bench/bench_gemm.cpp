// CPU GEMM benchmark: every rung and ISA flavour side by side with OpenBLAS cblas_sgemm, at 1 and 2
// threads, on square sizes and the small transformer's skinny shapes. Counter GFLOPS is GFLOP/s.
// Run OpenBLAS with OPENBLAS_CORETYPE=SkylakeX on AVX-512 machines (0.3.21 misdetects them).
#include <benchmark/benchmark.h>
#include <omp.h>

#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "kernels/cpu/gemm.h"

#ifdef NANORLHF_HAVE_CBLAS
#include <cblas.h>
extern "C" void openblas_set_num_threads(int num_threads);
#endif

namespace cpu = nanorlhf::kernels::cpu;

namespace {

using gemm_fn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t,
                         const float *, int64_t, float, float *, int64_t);

struct shape {
  int64_t M, N, K;
  bool ta, tb;
  std::string name;
};

struct operands {
  std::vector<float> A, B, C;
  explicit operands(const shape &s) : A(s.M * s.K), B(s.K * s.N), C(s.M * s.N) {
    std::mt19937 rng(42);
    std::uniform_real_distribution<float> u(-1.0f, 1.0f);
    for (auto &v : A) v = u(rng);
    for (auto &v : B) v = u(rng);
  }
};

// Dense storage: A is [M,K] or, transposed, [K,M]; B is [K,N] or [N,K].
int64_t lda_of(const shape &s) { return s.ta ? s.M : s.K; }
int64_t ldb_of(const shape &s) { return s.tb ? s.K : s.N; }

void finish(benchmark::State &state, const shape &s) {
  // 2*M*N*K flops per call; divided by 1e9 so the rate reads in GFLOP/s.
  state.counters["GFLOPS"] = benchmark::Counter(2.0 * s.M * s.N * s.K * state.iterations() / 1e9,
                                                benchmark::Counter::kIsRate);
  // Let the worker threads of this run (OpenMP spin-waits, OpenBLAS's busy server threads) go idle
  // so they do not steal a core from the next benchmark on this 2-core machine.
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
}

void run_ours(benchmark::State &state, gemm_fn fn, shape s, int threads) {
  operands op(s);
  omp_set_num_threads(threads);
  for (auto _ : state) {
    fn(s.ta, s.tb, s.M, s.N, s.K, 1.0f, op.A.data(), lda_of(s), op.B.data(), ldb_of(s), 0.0f, op.C.data(), s.N);
    benchmark::DoNotOptimize(op.C.data());
    benchmark::ClobberMemory();
  }
  finish(state, s);
}

#ifdef NANORLHF_HAVE_CBLAS
void run_openblas(benchmark::State &state, shape s, int threads) {
  operands op(s);
  openblas_set_num_threads(threads);
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, s.ta ? CblasTrans : CblasNoTrans, s.tb ? CblasTrans : CblasNoTrans, (int)s.M,
                (int)s.N, (int)s.K, 1.0f, op.A.data(), (int)lda_of(s), op.B.data(), (int)ldb_of(s), 0.0f,
                op.C.data(), (int)s.N);
    benchmark::DoNotOptimize(op.C.data());
    benchmark::ClobberMemory();
  }
  finish(state, s);
}
#endif

bool cpu_has(const std::string &f) {
  if (f == "avx512") return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (f == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return true;
}

void register_all() {
  std::vector<shape> shapes;
  for (int64_t n : {256, 512, 1024, 2048}) shapes.push_back({n, n, n, false, false, std::to_string(n)});
  // Small transformer (T=2048, C=128): qkv, attn-proj, fc, fc-proj forward; dX (NT) and dW (TN) backward.
  const shape skinny[] = {
      {2048, 384, 128, false, false, ""}, {2048, 128, 128, false, false, ""}, {2048, 512, 128, false, false, ""},
      {2048, 128, 512, false, false, ""}, {2048, 128, 384, false, true, ""},  {128, 384, 2048, true, false, ""},
      {512, 128, 2048, true, false, ""},
  };
  for (shape s : skinny) {
    s.name = std::to_string(s.M) + "x" + std::to_string(s.N) + "x" + std::to_string(s.K) + "_" +
             (s.ta ? "T" : "N") + (s.tb ? "T" : "N");
    shapes.push_back(s);
  }
  struct rung {
    std::string name;
    gemm_fn fn;
    double max_flops;  // skip slow rungs above this many flops (keeps the run short)
    bool threaded;
  };
  const rung rungs[] = {
      {"naive", cpu::gemm_naive, 2.0 * 512 * 512 * 512, false},
      {"blocked", cpu::gemm_blocked, 2.0 * 1024 * 1024 * 1024, true},
      {"packed_portable", cpu::gemm_packed_portable, 2.0 * 1024 * 1024 * 1024, true},
      {"packed_avx2", cpu::gemm_packed_avx2, 1e30, true},
      {"packed_avx512", cpu::gemm_packed_avx512, 1e30, true},
      {"gemm", cpu::gemm, 1e30, true},
  };
  for (const shape &s : shapes) {
    const double flops = 2.0 * s.M * s.N * s.K;
    for (int threads : {1, 2}) {
      for (const rung &v : rungs) {
        if (flops > v.max_flops || (!v.threaded && threads > 1) || !cpu_has(v.name.substr(v.name.find('_') + 1)))
          continue;
        benchmark::RegisterBenchmark(("gemm/" + v.name + "/" + s.name + "/threads:" + std::to_string(threads)).c_str(),
                                     run_ours, v.fn, s, threads)
            ->UseRealTime()
            ->Unit(benchmark::kMicrosecond);
      }
#ifdef NANORLHF_HAVE_CBLAS
      benchmark::RegisterBenchmark(("gemm/openblas/" + s.name + "/threads:" + std::to_string(threads)).c_str(),
                                   run_openblas, s, threads)
          ->UseRealTime()
          ->Unit(benchmark::kMicrosecond);
#endif
    }
  }
}

}  // namespace

int main(int argc, char **argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::AddCustomContext("gemm_packed_isa", cpu::gemm_packed_isa());
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
