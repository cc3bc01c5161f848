// Batched sampling throughput of the small GPT (vocab 512, ctx 128, d 128, 4 layers, 4 heads):
// B = 32 prompts of 16 tokens, 48 new tokens, with the KV cache and with full recompute per step.
// Counter tokens_per_s = generated (unmasked) response tokens per second.
#include <benchmark/benchmark.h>

#include "nn/generation.h"

using namespace nanorlhf;

namespace {

void BM_Generate(benchmark::State &state) {
  const bool use_cache = state.range(0) != 0;
  manual_seed(0);
  nn::GPT model({.vocab = 512, .ctx = 128, .d_model = 128, .n_layer = 4, .n_head = 4});
  std::vector<std::vector<int64_t>> prompts(32);
  Tensor r = randint(2, 512, {32, 16});
  auto v = r.to_vector<int64_t>();
  for (int b = 0; b < 32; ++b) prompts[b].assign(v.begin() + b * 16, v.begin() + (b + 1) * 16);
  nn::GenerationConfig cfg{.max_new_tokens = 48, .temperature = 1.0, .use_cache = use_cache, .seed = 1};
  double tokens = 0;
  for (auto _ : state) {
    auto out = nn::generate(model, prompts, cfg, /*eos_id=*/1, /*pad_id=*/0);
    tokens += out.response_mask.sum().item();
    benchmark::DoNotOptimize(out.sequences);
  }
  state.counters["tokens_per_s"] = benchmark::Counter(tokens, benchmark::Counter::kIsRate);
  state.SetLabel(use_cache ? "kv_cache" : "recompute");
}

BENCHMARK(BM_Generate)->ArgName("use_cache")->Arg(1)->Arg(0)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
