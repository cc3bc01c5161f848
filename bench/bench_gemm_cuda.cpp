// Google Benchmark of the CUDA GEMM ladder (kernels/cuda/gemm/): every rung beside cuBLAS on squares
// 1024..8192 and the small transformer's shapes. FP32 rungs 1-8 against cublasSgemm (row-major
// NN for squares), BF16 rungs 9-11 against cublasGemmEx (BF16 in, FP32 accumulate and out) in the
// nn.Linear layout x @ W^T (trans_b; both operands K-major). Transformer shapes use the layouts of
// training: forward x @ W^T (trans_b), input gradient dY @ W, weight gradient dY^T @ X (trans_a).
// Timing: CUDA events around one call, L2 flushed (a 128 MiB memset) before each, the mean over
// repetitions filling ~60 ms after a warm-up (at least 3); reported as manual time, one "iteration".
// Counters: TFLOPS (2MNK / time); frac_cublas (cuBLAS time / this time, same shape, dtype and layout,
// measured in this run: cuBLAS is registered first and its time cached; if filtered out it is measured
// on the fly); frac_peak (against the dense peak of an H100 SXM: FP32 67, BF16 989 TFLOP/s, or the
// H100 PCIe's 51 / 756 when the device name says PCIe; the label names the device and the peak used).
// Rungs 1-2 are skipped above 2048 to keep the run short (~1-2 minutes on an H100).
#include <benchmark/benchmark.h>

#include <cstdio>

#if defined(NANORLHF_WITH_CUDA)
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/gemm/gemm_ladder.h"

namespace kc = nanorlhf::kernels::cuda;

namespace {

void check(cudaError_t e, const char *what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

struct Case {
  const char *tag;  // "square" or the transformer matmul it stands for
  int64_t M, N, K;
  bool ta, tb;
};

struct Peak {
  std::string device;
  double fp32, bf16;  // TFLOP/s
  std::string assumed;
};

Peak g_peak;

// Device buffers sized for the largest case, filled once; an L2-sized flush buffer.
struct Buffers {
  float *a = nullptr, *b = nullptr, *c = nullptr;
  uint16_t *ha = nullptr, *hb = nullptr;
  void *flush = nullptr;
  size_t flush_bytes = size_t(128) << 20;
} g_buf;

void alloc_buffers(int64_t max_elems) {
  check(cudaMalloc(&g_buf.a, max_elems * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&g_buf.b, max_elems * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&g_buf.c, max_elems * sizeof(float)), "cudaMalloc");
  check(cudaMalloc(&g_buf.ha, max_elems * sizeof(uint16_t)), "cudaMalloc");
  check(cudaMalloc(&g_buf.hb, max_elems * sizeof(uint16_t)), "cudaMalloc");
  check(cudaMalloc(&g_buf.flush, g_buf.flush_bytes), "cudaMalloc");
  kc::uniform(g_buf.a, max_elems, 1, 0, -1, 1);
  kc::uniform(g_buf.b, max_elems, 2, 0, -1, 1);
  kc::fill(g_buf.c, max_elems, 0.f);
  // bf16 values in [-1, 1): sign, exponent 0x70..0x7E, random mantissa
  std::vector<uint16_t> h(max_elems);
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (auto &x : h) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    const uint32_t r = uint32_t(s >> 33);
    x = uint16_t(((r & 1u) << 15) | ((0x70u + (r >> 1) % 15u) << 7) | ((r >> 5) & 0x7Fu));
  }
  check(cudaMemcpy(g_buf.ha, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaMemcpy(g_buf.hb, h.data(), h.size() * 2, cudaMemcpyHostToDevice), "cudaMemcpy");
  check(cudaDeviceSynchronize(), "init");
}

Peak detect_peak() {
  cudaDeviceProp p{};
  check(cudaGetDeviceProperties(&p, 0), "cudaGetDeviceProperties");
  Peak k{p.name, 67.0, 989.0, "H100 SXM dense peak (FP32 67, BF16 989 TFLOP/s)"};
  const std::string n = p.name;
  if (n.find("PCIe") != std::string::npos && n.find("H100") != std::string::npos)
    k = {p.name, 51.0, 756.0, "H100 PCIe dense peak (FP32 51, BF16 756 TFLOP/s)"};
  else if (n.find("H100") == std::string::npos && n.find("H200") == std::string::npos)
    k.assumed += " [not this device's]";
  return k;
}

// rung 0 = cuBLAS
void run_once(bool bf16, int rung, const Case &c) {
  const int64_t lda = c.ta ? c.M : c.K, ldb = c.tb ? c.K : c.N, ldc = c.N;
  if (bf16) {
    if (rung == 0)
      kc::bf16_gemm_cublas(c.ta, c.tb, c.M, c.N, c.K, 1.f, g_buf.ha, lda, g_buf.hb, ldb, 0.f, g_buf.c, ldc);
    else
      kc::bf16_gemm_rung(rung, c.ta, c.tb, c.M, c.N, c.K, 1.f, g_buf.ha, lda, g_buf.hb, ldb, 0.f, g_buf.c, ldc);
  } else {
    if (rung == 0)
      kc::sgemm_cublas(c.ta, c.tb, c.M, c.N, c.K, 1.f, g_buf.a, lda, g_buf.b, ldb, 0.f, g_buf.c, ldc);
    else
      kc::sgemm_rung(rung, c.ta, c.tb, c.M, c.N, c.K, 1.f, g_buf.a, lda, g_buf.b, ldb, 0.f, g_buf.c, ldc);
  }
}

// Mean seconds per call: one warm-up, then repetitions (>= 3) until ~60 ms of GPU time, each after an
// L2 flush and timed alone with events.
double time_call(bool bf16, int rung, const Case &c) {
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  run_once(bf16, rung, c);
  check(cudaDeviceSynchronize(), "warm-up");
  double total = 0;
  int reps = 0;
  while (reps < 3 || (total < 0.06 && reps < 200)) {
    check(cudaMemsetAsync(g_buf.flush, reps & 0xFF, g_buf.flush_bytes), "flush");
    check(cudaEventRecord(e0), "cudaEventRecord");
    run_once(bf16, rung, c);
    check(cudaEventRecord(e1), "cudaEventRecord");
    check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    total += ms * 1e-3;
    ++reps;
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  return total / reps;
}

std::string key(bool bf16, const Case &c) {
  return std::string(bf16 ? "bf16 " : "fp32 ") + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
         std::to_string(c.K) + (c.ta ? "T" : "N") + (c.tb ? "T" : "N");
}

std::map<std::string, double> g_cublas_seconds;

void bench(benchmark::State &st, bool bf16, int rung, Case c) {
  try {
    if (rung == 11 && !kc::gemm_hopper_available()) {
      st.SkipWithError("rung 11 needs a compute capability 9.0 GPU");
      return;
    }
    double t = 0;
    for (auto _ : st) {
      t = time_call(bf16, rung, c);
      st.SetIterationTime(t);
    }
    const std::string k = key(bf16, c);
    if (rung == 0) g_cublas_seconds[k] = t;
    if (!g_cublas_seconds.count(k)) g_cublas_seconds[k] = time_call(bf16, 0, c);
    const double tflops = 2.0 * double(c.M) * double(c.N) * double(c.K) / t * 1e-12;
    st.counters["TFLOPS"] = tflops;
    st.counters["frac_cublas"] = g_cublas_seconds[k] / t;
    st.counters["frac_peak"] = tflops / (bf16 ? g_peak.bf16 : g_peak.fp32);
    st.SetLabel(g_peak.device + "; frac_peak vs " + g_peak.assumed);
  } catch (const std::exception &e) {
    st.SkipWithError(e.what());
  }
}

}  // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (kc::device_count() == 0) {
    std::printf("bench_gemm_cuda: no CUDA device, nothing to measure\n");
    return 0;
  }
  g_peak = detect_peak();
  std::vector<Case> cases;
  for (int64_t n : {1024, 2048, 4096, 8192}) cases.push_back({"square", n, n, n, false, false});
  // the small transformer: 2048 tokens, d_model 128, qkv 384, MLP 512
  const std::vector<Case> transformer = {
      {"qkv_fwd", 2048, 384, 128, false, true},  {"mlp_up_fwd", 2048, 512, 128, false, true},
      {"mlp_down_fwd", 2048, 128, 512, false, true}, {"mlp_down_dx", 2048, 512, 128, false, false},
      {"qkv_dw", 384, 128, 2048, true, false},
  };
  cases.insert(cases.end(), transformer.begin(), transformer.end());

  int64_t max_elems = 0;
  for (const Case &c : cases) max_elems = std::max({max_elems, c.M * c.K, c.K * c.N, c.M * c.N});
  alloc_buffers(max_elems);

  for (bool bf16 : {false, true}) {
    for (Case c : cases) {
      if (bf16 && std::string(c.tag) == "square") c.tb = true;  // nn.Linear layout for BF16 squares
      const std::string shape = std::string(c.tag) + "/" + std::to_string(c.M) + "x" + std::to_string(c.N) + "x" +
                                std::to_string(c.K) + "/" + (c.ta ? "T" : "N") + (c.tb ? "T" : "N");
      const std::string dtype = bf16 ? "bf16" : "fp32";
      std::vector<int> rungs = {0};
      for (int r = bf16 ? kc::kGemmFirstBf16Rung : kc::kGemmFirstRung;
           r <= (bf16 ? kc::kGemmLastRung : kc::kGemmLastFp32Rung); ++r) {
        if (r <= 2 && std::max({c.M, c.N, c.K}) > 2048) continue;  // the naive rungs take seconds there
        rungs.push_back(r);
      }
      for (int r : rungs) {
        const std::string name = dtype + "/" + shape + "/" + (r == 0 ? "cublas" : kc::gemm_rung_name(r));
        benchmark::RegisterBenchmark(name.c_str(), bench, bf16, r, c)
            ->UseManualTime()
            ->Iterations(1)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#else  // built without the CUDA backend

int main() {
  std::printf("bench_gemm_cuda: built without CUDA (NANORLHF_WITH_CUDA), nothing to measure\n");
  return 0;
}

#endif
