// Google Benchmark of the memory-bound CUDA kernels, every version side by side: elementwise add and
// gelu, row logsumexp, softmax, layer_norm forward (+ backward), cross_entropy forward+backward, AdamW,
// and the causal attention forward (FLOP-bound: reported in TFLOP/s).
// Timing: CUDA events around one launch (UseManualTime); L2 is flushed before every repetition by
// writing a 256 MiB buffer, so every byte comes from HBM. Bytes counted are the compulsory traffic of
// one call (every input read once, every output written once), so GBps compares directly with the
// device's peak bandwidth: counters GBps, and frac_peak = GBps / peak, with the peak computed from the
// memory clock and bus width (2 transfers per clock; an H100 SXM reads ~3.35 TB/s). Attention reports
// TFLOPs and frac_peak against the FP32 CUDA-core peak (SMs x 128 lanes x 2 x SM clock).
// Without a device (or built without the CUDA backend) it says so and exits 0.
#include <benchmark/benchmark.h>

#include <cstdio>

#if defined(NANORLHF_WITH_CUDA)
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace kc = nanorlhf::kernels::cuda;
namespace kv = nanorlhf::kernels::cuda::versions;
using nanorlhf::kernels::BinaryOp;
using nanorlhf::kernels::ReduceOp;
using nanorlhf::kernels::UnaryOp;

namespace {

void check(cudaError_t e, const char *what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string(what) + ": " + cudaGetErrorString(e));
}

struct Device {
  double peak_bytes_per_s = 0, peak_fp32_flops = 0;
  void *flush = nullptr;
  size_t flush_bytes = size_t(256) << 20;
  cudaEvent_t start{}, stop{};
  std::string name;

  void init() {
    int dev = 0, mem_khz = 0, bus_bits = 0, sm_khz = 0, sms = 0;
    check(cudaGetDevice(&dev), "cudaGetDevice");
    cudaDeviceProp prop{};
    check(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
    name = prop.name;
    check(cudaDeviceGetAttribute(&mem_khz, cudaDevAttrMemoryClockRate, dev), "memory clock");
    check(cudaDeviceGetAttribute(&bus_bits, cudaDevAttrGlobalMemoryBusWidth, dev), "bus width");
    check(cudaDeviceGetAttribute(&sm_khz, cudaDevAttrClockRate, dev), "SM clock");
    check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev), "SM count");
    peak_bytes_per_s = 2.0 * mem_khz * 1e3 * (bus_bits / 8.0);
    peak_fp32_flops = (double)sms * 128 * 2 * sm_khz * 1e3;
    flush = kc::device_malloc(flush_bytes, dev);
    check(cudaEventCreate(&start), "cudaEventCreate");
    check(cudaEventCreate(&stop), "cudaEventCreate");
    benchmark::AddCustomContext("cuda_device", name);
    benchmark::AddCustomContext("peak_GBps", std::to_string(peak_bytes_per_s / 1e9));
    benchmark::AddCustomContext("peak_fp32_TFLOPs", std::to_string(peak_fp32_flops / 1e12));
  }
};

Device &device() {
  static Device d;
  return d;
}

// A float (or other) array on the device, filled with uniform noise in [lo, hi).
template <class T = float>
struct Buf {
  T *p = nullptr;
  size_t n = 0;
  explicit Buf(size_t count) : p(static_cast<T *>(kc::device_malloc(count * sizeof(T), 0))), n(count) {}
  Buf(size_t count, float lo, float hi, uint64_t seed) : Buf(count) {
    static_assert(std::is_same_v<T, float>);
    kc::uniform(p, (int64_t)n, seed, 0, lo, hi);
  }
  Buf(const Buf &) = delete;
  ~Buf() {
    try {
      kc::device_free(p, 0);
    } catch (...) {
    }
  }
};

// Times `launch` with CUDA events after an L2 flush, once per iteration; sets the counters.
void run_timed(benchmark::State &state, double bytes, double flops, const std::function<void()> &launch) {
  Device &d = device();
  try {
    launch();  // warm-up (and first-launch costs)
    check(cudaDeviceSynchronize(), "warm-up");
    double total = 0;
    for (auto _ : state) {
      check(cudaMemsetAsync(d.flush, state.iterations() & 0xff, d.flush_bytes, 0), "L2 flush");
      check(cudaEventRecord(d.start, 0), "cudaEventRecord");
      launch();
      check(cudaEventRecord(d.stop, 0), "cudaEventRecord");
      check(cudaEventSynchronize(d.stop), "cudaEventSynchronize");
      float ms = 0;
      check(cudaEventElapsedTime(&ms, d.start, d.stop), "cudaEventElapsedTime");
      state.SetIterationTime(ms * 1e-3);
      total += ms * 1e-3;
    }
    const double iters = (double)state.iterations();
    if (bytes > 0) {
      state.SetBytesProcessed((int64_t)(bytes * iters));
      const double bps = bytes * iters / total;
      state.counters["GBps"] = bps / 1e9;
      state.counters["frac_peak"] = bps / d.peak_bytes_per_s;
    }
    if (flops > 0) {
      const double fps = flops * iters / total;
      state.counters["TFLOPs"] = fps / 1e12;
      state.counters["frac_peak"] = fps / d.peak_fp32_flops;
    }
  } catch (const std::exception &e) {
    state.SkipWithError(e.what());
  }
}

using Body = std::function<void(benchmark::State &)>;

void add(const std::string &name, Body body) {
  benchmark::RegisterBenchmark(name.c_str(), [body](benchmark::State &st) {
    body(st);
    kc::empty_cache();  // the next benchmark starts from a clean cache
  })
      ->UseManualTime()
      ->Unit(benchmark::kMicrosecond);
}

void register_all() {
  const int64_t kN = int64_t(1) << 26;  // 64 Mi floats = 256 MiB per array
  const double f = sizeof(float);

  for (int v = 1; v <= kv::kBinaryVersions; ++v)
    add("add/v" + std::to_string(v) + "/n:" + std::to_string(kN), [=](benchmark::State &st) {
      Buf a(kN, -1, 1, 1), b(kN, -1, 1, 2), out(kN);
      run_timed(st, 3 * f * kN, 0, [&] { kv::binary_contiguous(v, BinaryOp::add, a.p, b.p, out.p, kN); });
    });
  for (int v = 1; v <= kv::kUnaryVersions; ++v)
    add("gelu/v" + std::to_string(v) + "/n:" + std::to_string(kN), [=](benchmark::State &st) {
      Buf x(kN, -3, 3, 3), y(kN);
      run_timed(st, 2 * f * kN, 0, [&] { kv::unary(v, UnaryOp::gelu, x.p, y.p, kN); });
    });

  struct RowShape {
    int64_t rows, cols;
  };
  for (RowShape s : {RowShape{16384, 1024}, RowShape{1024, 32768}}) {
    const std::string shape = "/rows:" + std::to_string(s.rows) + "/cols:" + std::to_string(s.cols);
    const int64_t n = s.rows * s.cols;
    for (int v = 1; v <= kv::kReduceVersions; ++v)
      add("logsumexp_rows/v" + std::to_string(v) + shape, [=](benchmark::State &st) {
        Buf x(n, -5, 5, 4), out(s.rows);
        run_timed(st, f * (n + s.rows), 0,
                  [&] { kv::reduce_rows(v, ReduceOp::logsumexp, x.p, s.rows, s.cols, out.p); });
      });
    for (int v = 1; v <= kv::kSoftmaxVersions; ++v)
      add("softmax_fwd/v" + std::to_string(v) + shape, [=](benchmark::State &st) {
        Buf x(n, -5, 5, 5), y(n);
        run_timed(st, 2 * f * n, 0, [&] { kv::softmax_forward(v, x.p, y.p, s.rows, s.cols); });
      });
    add("softmax_bwd" + shape, [=](benchmark::State &st) {
      Buf y(n, 0, 1e-3f, 6), dy(n, -1, 1, 7), dx(n);
      run_timed(st, 3 * f * n, 0, [&] { kc::softmax_backward(y.p, dy.p, dx.p, s.rows, s.cols); });
    });
  }

  {
    const int64_t rows = 32768, cols = 768, n = rows * cols;  // GPT-2 small: B*T = 32 x 1024, C = 768
    const std::string shape = "/rows:" + std::to_string(rows) + "/cols:" + std::to_string(cols);
    for (int v = 1; v <= kv::kLayerNormVersions; ++v)
      add("layer_norm_fwd/v" + std::to_string(v) + shape, [=](benchmark::State &st) {
        Buf x(n, -2, 2, 8), w(cols, 0.5, 1.5, 9), b(cols, -1, 1, 10), y(n), mean(rows), rstd(rows);
        run_timed(st, f * (2 * n + 2 * cols + 2 * rows), 0, [&] {
          kv::layer_norm_forward(v, x.p, w.p, b.p, y.p, mean.p, rstd.p, rows, cols, 1e-5);
        });
      });
    add("layer_norm_bwd" + shape, [=](benchmark::State &st) {
      Buf x(n, -2, 2, 8), w(cols, 0.5, 1.5, 9), b(cols, -1, 1, 10), y(n), mean(rows), rstd(rows), dy(n, -1, 1, 11),
          dx(n), dw(cols), db(cols);
      kc::layer_norm_forward(x.p, w.p, b.p, y.p, mean.p, rstd.p, rows, cols, 1e-5);
      run_timed(st, f * (3 * n + 3 * cols + 2 * rows), 0, [&] {
        kc::layer_norm_backward(dy.p, x.p, w.p, mean.p, rstd.p, dx.p, dw.p, db.p, rows, cols);
      });
    });
  }

  {
    const int64_t rows = 4096, vocab = 50304, n = rows * vocab;  // 4 x 1024 tokens, GPT-2 vocabulary (padded)
    const std::string shape = "/rows:" + std::to_string(rows) + "/vocab:" + std::to_string(vocab);
    for (int v = 1; v <= kv::kCrossEntropyVersions; ++v)
      add("cross_entropy_fwd_bwd/v" + std::to_string(v) + shape, [=](benchmark::State &st) {
        Buf logits(n, -5, 5, 12), loss(rows), lse(rows), dloss(rows, 1, 1, 13), dlogits(n);
        Buf<int64_t> target(rows);
        Buf tf(rows, 0, (float)vocab - 1, 14);
        kc::cast_f32_i64(tf.p, target.p, rows);
        // forward reads logits once; backward reads logits and writes dlogits
        run_timed(st, f * 3 * n, 0, [&] {
          kv::cross_entropy_forward(v, logits.p, target.p, loss.p, lse.p, rows, vocab, -100);
          kc::cross_entropy_backward(logits.p, target.p, lse.p, dloss.p, dlogits.p, rows, vocab, -100);
        });
      });
  }

  {
    const int64_t n = 124439808;  // GPT-2 small's parameter count
    for (int v = 1; v <= kv::kAdamWVersions; ++v)
      add("adamw/v" + std::to_string(v) + "/n:" + std::to_string(n), [=](benchmark::State &st) {
        Buf p(n, -1, 1, 15), g(n, -1, 1, 16), m(n, -0.1f, 0.1f, 17), vv(n, 0, 0.01f, 18);
        int64_t step = 1;
        run_timed(st, f * 7 * n, 0,
                  [&] { kv::adamw_step(v, p.p, g.p, m.p, vv.p, n, 3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, step++); });
      });
  }

  struct Attn {
    int64_t B, H, T, D;
  };
  for (Attn a : {Attn{8, 12, 1024, 64}, Attn{4, 8, 2048, 128}}) {
    const std::string shape = "/B:" + std::to_string(a.B) + "/H:" + std::to_string(a.H) + "/T:" +
                              std::to_string(a.T) + "/D:" + std::to_string(a.D);
    const int64_t n = a.B * a.H * a.T * a.D;
    // causal: q k^T and p v over the lower triangle, 2 FLOPs per multiply-add: ~2 * B H T^2 D
    const double flops = 2.0 * a.B * a.H * (double)a.T * (a.T + 1) * a.D;
    for (int v = 1; v <= kv::kAttentionVersions; ++v)
      add("causal_attention_fwd/v" + std::to_string(v) + shape, [=](benchmark::State &st) {
        Buf q(n, -1, 1, 19), k(n, -1, 1, 20), vb(n, -1, 1, 21), out(n);
        run_timed(st, 0, flops, [&] {
          kv::causal_attention_forward(v, q.p, k.p, vb.p, out.p, a.B, a.H, a.T, a.D, 1.0 / std::sqrt((double)a.D));
        });
      });
  }
}

}  // namespace

int main(int argc, char **argv) {
  benchmark::Initialize(&argc, argv);
  if (kc::device_count() == 0) {
    std::printf("bench_kernels_cuda: no CUDA device; nothing to run\n");
    return 0;
  }
  try {
    device().init();
  } catch (const std::exception &e) {
    std::fprintf(stderr, "bench_kernels_cuda: %s\n", e.what());
    return 1;
  }
  register_all();
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

#else  // built without the CUDA backend

int main() {
  std::printf("bench_kernels_cuda: built without the CUDA backend (NANORLHF_WITH_CUDA); nothing to run\n");
  return 0;
}

#endif
