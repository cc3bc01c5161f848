// One AdamW training step of the GPT (forward, cross-entropy, backward, optimizer step), at the
// configuration of bench/anchors/torch_gpt_step.py and at a larger one; memory must stay flat.
// Counters: ms (mean) and ms_min (best step, as the anchor reports), tokens_per_s (mean), peak RSS,
// the CPU bytes held by live tensors after each step (first, last, max over the steps), and the
// step's model FLOPs with their utilisation against our GEMM's speed measured in the same run.
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "nn/gpt.h"
#include "nn/optim.h"

using namespace nanorlhf;

namespace {

// The model FLOPs of one training step (forward + backward = 3 x forward; the matmuls and the
// attention's two batched products, counted in full as the kernel computes them; softmax, norms and
// AdamW left out): per token 2 x (12 d^2 L + d V) for the weights, per layer 2 x 2 B T^2 d for QK^T and AV.
double step_flops(int64_t V, int64_t T, int64_t d, int64_t L, int64_t B) {
  const double tokens = double(B * T);
  const double weights = 2.0 * tokens * (12.0 * double(d * d) * double(L) + double(d * V));
  const double attention = 4.0 * double(B) * double(T * T) * double(d) * double(L);
  return 3.0 * (weights + attention);
}

// Our GEMM's speed on this machine, now: the best of 5 square 1024 products (the figure the step's
// model FLOPs utilisation is held against; bench_gemm reports the same shape).
double gemm_gflops() {
  static const double g = [] {
    const int64_t n = 1024;
    std::vector<float> a((size_t)(n * n), 1.f), b((size_t)(n * n), 0.5f), c((size_t)(n * n));
    double best = 1e30;
    for (int r = 0; r < 6; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      kernels::cpu::gemm(false, false, n, n, n, 1.f, a.data(), n, b.data(), n, 0.f, c.data(), n);
      const double t = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (r > 0) best = std::min(best, t);
    }
    return 2.0 * double(n * n * n) / best / 1e9;
  }();
  return g;
}

// args: vocab, ctx, d_model, n_layer, n_head, batch
void BM_TrainStep(benchmark::State &state) {
  const int64_t V = state.range(0), T = state.range(1), d = state.range(2), L = state.range(3), H = state.range(4),
                B = state.range(5);
  manual_seed(0);
  // untied head, dropout 0: the anchor's model
  nn::GPT model({.vocab = V, .ctx = T, .d_model = d, .n_layer = L, .n_head = H, .dropout = 0.0, .tie_weights = false});
  model.train();
  optim::AdamW opt(model.parameters(), {.lr = 3e-4});
  Tensor x = randint(0, V, {B, T}), y = randint(0, V, {B, T});
  auto step = [&] {
    Tensor loss = cross_entropy(model.forward(x).reshape({B * T, V}), y.reshape({B * T}));
    opt.zero_grad();
    loss.backward();
    opt.step();
    return loss;
  };
  step();  // warm-up: allocates the optimizer state, as the anchor's first step
  size_t held_first = 0, held_last = 0, held_max = 0;
  double best = 1e30;
  int64_t n = 0;
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor loss = step();
    benchmark::DoNotOptimize(loss);
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    loss = Tensor();
    held_last = cpu_bytes_allocated();
    if (n++ == 0) held_first = held_last;
    held_max = std::max(held_max, held_last);
  }
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  state.counters["ms_min"] = best * 1e3;
  state.counters["tokens_per_s"] = benchmark::Counter(double(B * T) * double(n), benchmark::Counter::kIsRate);
  state.counters["tokens_per_s_best"] = double(B * T) / best;
  state.counters["peak_rss_MB"] = double(ru.ru_maxrss) / 1024.0;  // ru_maxrss is in KiB on Linux
  state.counters["held_first_MB"] = double(held_first) / (1 << 20);
  state.counters["held_last_MB"] = double(held_last) / (1 << 20);
  state.counters["held_max_MB"] = double(held_max) / (1 << 20);
  state.counters["params_M"] = double(model.num_parameters()) / 1e6;
  // Model FLOPs utilisation of the best step against our GEMM's speed measured in this run.
  const double flops = step_flops(V, T, d, L, B);
  state.counters["step_GFLOP"] = flops / 1e9;
  state.counters["gemm_GFLOPs"] = gemm_gflops();
  state.counters["mfu_vs_gemm"] = flops / best / 1e9 / gemm_gflops();
  state.SetLabel(fmt::format("V={} T={} d={} L={} h={} B={}", V, T, d, L, H, B));
}

BENCHMARK(BM_TrainStep)
    ->ArgNames({"V", "T", "d", "L", "h", "B"})
    ->Args({256, 64, 128, 4, 4, 32})   // the anchor's configuration
    ->Args({256, 128, 256, 6, 8, 16})
    ->Iterations(50)
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
