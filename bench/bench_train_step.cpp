// One AdamW training step of the GPT (forward, cross-entropy, backward, optimizer step), at the
// configuration of bench/anchors/torch_gpt_step.py and at a larger one; memory must stay flat.
// Counters: ms (mean) and ms_min (best step, as the anchor reports), tokens_per_s (mean), peak RSS,
// and the CPU bytes held by live tensors after each step (first, last, max over the steps).
#include <benchmark/benchmark.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>

#include "nn/gpt.h"
#include "nn/optim.h"

using namespace nanorlhf;

namespace {

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
