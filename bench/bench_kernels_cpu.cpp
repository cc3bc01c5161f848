// Google Benchmark of the memory-bound CPU kernels: softmax, layer_norm fwd+bwd, cross_entropy
// fwd+bwd, elementwise add/gelu and AdamW, reported as bytes_per_second.
// Bytes counted are the compulsory traffic of one call: every input array read once and every output
// array written once (re-reads of a row that stays in cache are not counted), so GB/s compares
// directly with the machine's copy bandwidth. Wall time (UseRealTime): the kernels run OpenMP threads.
#include <benchmark/benchmark.h>

#include <cstdint>
#include <vector>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/nn_kernels.h"

using namespace nanorlhf::kernels;
using namespace nanorlhf::kernels::cpu;

namespace {

std::vector<float> filled(int64_t n, uint64_t seed, double lo, double hi) {
  std::vector<float> v(n);
  uniform<float>(v.data(), n, seed, 0, lo, hi);
  return v;
}

// softmax_forward: reads x [rows, cols], writes y.
void bm_softmax(benchmark::State &st) {
  const int64_t rows = st.range(0), cols = st.range(1), n = rows * cols;
  auto x = filled(n, 1, -5, 5);
  std::vector<float> y(n);
  for (auto _ : st) {
    softmax_forward<float>(x.data(), y.data(), rows, cols);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * 2 * n * int64_t(sizeof(float)));
}

// layer_norm forward (reads x, weight, bias; writes y, mean, rstd) then backward (reads dy, x,
// weight, mean, rstd; writes dx, dweight, dbias).
void bm_layer_norm(benchmark::State &st) {
  const int64_t rows = st.range(0), cols = st.range(1), n = rows * cols;
  auto x = filled(n, 2, -2, 2), dy = filled(n, 3, -1, 1), w = filled(cols, 4, 0.5, 1.5), b = filled(cols, 5, -1, 1);
  std::vector<float> y(n), dx(n), mean(rows), rstd(rows), dw(cols), db(cols);
  for (auto _ : st) {
    layer_norm_forward<float>(x.data(), w.data(), b.data(), y.data(), mean.data(), rstd.data(), rows, cols, 1e-5);
    layer_norm_backward<float>(dy.data(), x.data(), w.data(), mean.data(), rstd.data(), dx.data(), dw.data(),
                               db.data(), rows, cols);
    benchmark::DoNotOptimize(dx.data());
    benchmark::ClobberMemory();
  }
  const int64_t fwd = 2 * n + 2 * cols + 2 * rows, bwd = 3 * n + cols + 2 * rows + 2 * cols;
  st.SetBytesProcessed(st.iterations() * (fwd + bwd) * int64_t(sizeof(float)));
}

// cross_entropy forward (reads logits; writes loss, lse) then backward (reads logits, lse, dloss;
// writes dlogits).
void bm_cross_entropy(benchmark::State &st) {
  const int64_t rows = st.range(0), vocab = st.range(1), n = rows * vocab;
  auto z = filled(n, 6, -5, 5);
  std::vector<int64_t> t(rows);
  for (int64_t r = 0; r < rows; ++r) t[r] = (r * 7919) % vocab;
  std::vector<float> loss(rows), lse(rows), dloss(rows, 1.0f / float(rows)), dz(n);
  for (auto _ : st) {
    cross_entropy_forward<float>(z.data(), t.data(), loss.data(), lse.data(), rows, vocab, -100);
    cross_entropy_backward<float>(z.data(), t.data(), lse.data(), dloss.data(), dz.data(), rows, vocab, -100);
    benchmark::DoNotOptimize(dz.data());
    benchmark::ClobberMemory();
  }
  const int64_t bytes = 3 * n * int64_t(sizeof(float)) + rows * int64_t(2 * sizeof(int64_t) + 4 * sizeof(float));
  st.SetBytesProcessed(st.iterations() * bytes);
}

// binary add of two contiguous arrays: reads a, b; writes out.
void bm_add(benchmark::State &st) {
  const int64_t n = st.range(0);
  auto a = filled(n, 7, -1, 1), b = filled(n, 8, -1, 1);
  std::vector<float> out(n);
  const int64_t shape[1] = {n}, stride[1] = {1};
  for (auto _ : st) {
    binary<float>(BinaryOp::add, 1, shape, a.data(), stride, b.data(), stride, out.data());
    benchmark::DoNotOptimize(out.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * 3 * n * int64_t(sizeof(float)));
}

// unary gelu (tanh form): reads x, writes y.
void bm_gelu(benchmark::State &st) {
  const int64_t n = st.range(0);
  auto x = filled(n, 9, -4, 4);
  std::vector<float> y(n);
  for (auto _ : st) {
    unary<float>(UnaryOp::gelu, x.data(), y.data(), n);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * 2 * n * int64_t(sizeof(float)));
}

// one AdamW step: reads p, g, m, v; writes p, m, v.
void bm_adamw(benchmark::State &st) {
  const int64_t n = st.range(0);
  auto p = filled(n, 10, -1, 1), g = filled(n, 11, -1, 1);
  std::vector<float> m(n, 0.f), v(n, 0.f);
  int64_t step = 0;
  for (auto _ : st) {
    adamw_step(p.data(), g.data(), m.data(), v.data(), n, 1e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, ++step);
    benchmark::DoNotOptimize(p.data());
    benchmark::ClobberMemory();
  }
  st.SetBytesProcessed(st.iterations() * 7 * n * int64_t(sizeof(float)));
}

}  // namespace

BENCHMARK(bm_softmax)->Name("softmax")->ArgNames({"rows", "cols"})
    ->ArgsProduct({{2048, 8192}, {256, 1024, 4096}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_layer_norm)->Name("layer_norm_fwd_bwd")->ArgNames({"rows", "cols"})
    ->ArgsProduct({{2048, 8192}, {256, 768, 1024}})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_cross_entropy)->Name("cross_entropy_fwd_bwd")->ArgNames({"rows", "vocab"})
    ->Args({8192, 256})->Args({8192, 4096})->Args({2048, 50257})->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_add)->Name("add")->ArgNames({"n"})->Arg(1 << 20)->Arg(1 << 22)->Arg(1 << 24)
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_gelu)->Name("gelu")->ArgNames({"n"})->Arg(1 << 20)->Arg(1 << 22)->Arg(1 << 24)
    ->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(bm_adamw)->Name("adamw")->ArgNames({"n"})->Arg(1 << 20)->Arg(10000000)
    ->UseRealTime()->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
