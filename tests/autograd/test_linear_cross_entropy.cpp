// linear_cross_entropy: the chunked LM head + cross-entropy equals the unfused one (log-softmax of
// the full logits, gathered), for every chunk size, with ignored targets; its gradients pass
// gradcheck in float64; a backward never holds more than one chunk's logits.
#include <cmath>
#include <cstdio>
#include <functional>

#include "autograd/gradcheck.h"
#include "tensor/storage.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

// The naive reference: every logit, log-softmax by hand, the target's entry.
std::vector<double> naive_nll(const Tensor &h, const Tensor &w, const std::vector<int64_t> &t, int64_t ignore) {
  const auto H = h.to_vector<double>(), W = w.to_vector<double>();
  const int64_t n = h.size(0), d = h.size(1), V = w.size(0);
  std::vector<double> out((size_t)n, 0.0);
  for (int64_t i = 0; i < n; ++i) {
    if (t[(size_t)i] == ignore) continue;
    std::vector<double> z((size_t)V);
    double mx = -INFINITY;
    for (int64_t v = 0; v < V; ++v) {
      double s = 0;
      for (int64_t k = 0; k < d; ++k) s += H[size_t(i * d + k)] * W[size_t(v * d + k)];
      z[(size_t)v] = s, mx = std::max(mx, s);
    }
    double se = 0;
    for (double x : z) se += std::exp(x - mx);
    out[(size_t)i] = mx + std::log(se) - z[(size_t)t[(size_t)i]];
  }
  return out;
}

TEST(LinearCrossEntropy, EqualsTheFullLogitsLossForEveryChunkSize) {
  manual_seed(11);
  const int64_t n = 7, d = 5, V = 13;
  Tensor h = randn({n, d}), w = randn({V, d});
  const std::vector<int64_t> t = {3, -100, 0, 12, 7, -100, 5};
  const std::vector<double> ref = naive_nll(h, w, t, -100);
  Tensor tt = from_vector<int64_t>(t, {n});
  const auto unfused = cross_entropy(h.matmul(w.t()), tt, -100, "none").to_vector<double>();
  for (int64_t chunk : {1, 2, 3, 7, 100}) {
    const auto got = linear_cross_entropy(h, w, tt, chunk).to_vector<double>();
    ASSERT_EQ(got.size(), ref.size());
    for (size_t i = 0; i < ref.size(); ++i) {
      EXPECT_NEAR(got[i], ref[i], 1e-5) << "chunk " << chunk << " row " << i;
      EXPECT_NEAR(got[i], unfused[i], 1e-6) << "chunk " << chunk << " row " << i;
    }
  }
  // [B, T, d] hidden states with [B, T] targets keep their shape.
  Tensor h3 = h.narrow(0, 0, 6).reshape({2, 3, d});
  Tensor t3 = from_vector<int64_t>({3, 1, 0, 12, 7, 2}, {2, 3});
  EXPECT_EQ(linear_cross_entropy(h3, w, t3, 4).shape(), (Shape{2, 3}));
}

TEST(LinearCrossEntropy, GradcheckInFloat64) {
  manual_seed(12);
  Tensor h = rand64({6, 4}), w = rand64({9, 4});
  Tensor t = from_vector<int64_t>({8, 0, -100, 4, 4, 1}, {6});
  for (int64_t chunk : {1, 4, 6}) {
    auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return linear_cross_entropy(in[0], in[1], t, chunk); },
                                 {h, w});
    EXPECT_TRUE(r) << "chunk " << chunk << ": " << r.message;
  }
}

TEST(LinearCrossEntropy, GradientsEqualTheUnfusedOnesInFloat32) {
  manual_seed(13);
  Tensor h = randn({10, 8}), w = randn({21, 8});
  h.requires_grad_(true), w.requires_grad_(true);
  Tensor t = from_vector<int64_t>({0, 1, 2, 3, 20, 19, -100, 7, 7, 7}, {10});
  Tensor g = randn({10});
  (linear_cross_entropy(h, w, t, 3) * g).sum().backward();
  Tensor h2 = h.detach().clone(), w2 = w.detach().clone();
  h2.requires_grad_(true), w2.requires_grad_(true);
  (cross_entropy(h2.matmul(w2.t()), t, -100, "none") * g).sum().backward();
  EXPECT_TRUE(allclose(h.grad(), h2.grad().to_vector<double>(), {.atol = 1e-5, .rtol = 1e-5}));
  EXPECT_TRUE(allclose(w.grad(), w2.grad().to_vector<double>(), {.atol = 1e-5, .rtol = 1e-5}));
}

// The point of it: forward and backward of 512 rows over a vocabulary of 2000 in chunks of 32 hold
// a few chunks of logits at a time; the unfused loss holds all 512 x 2000 (4 MB) and its gradient.
TEST(LinearCrossEntropy, PeakMemoryGrowsWithTheChunkNotWithTheRows) {
  manual_seed(14);
  const int64_t n = 512, d = 16, V = 2000, chunk = 32;
  Tensor h = randn({n, d}), w = randn({V, d});
  h.requires_grad_(true), w.requires_grad_(true);
  std::vector<int64_t> tv((size_t)n);
  for (int64_t i = 0; i < n; ++i) tv[(size_t)i] = (i * 37) % V;
  Tensor t = from_vector<int64_t>(tv, {n});
  auto peak_of = [&](const std::function<Tensor()> &loss) {
    h.zero_grad(), w.zero_grad();
    const size_t base = cpu_bytes_allocated();
    reset_cpu_peak();
    loss().sum().backward();
    return double(cpu_bytes_peak() - base);
  };
  const double logits_bytes = double(n * V) * 4;
  const double fused = peak_of([&] { return linear_cross_entropy(h, w, t, chunk); });
  const double unfused = peak_of([&] { return cross_entropy(h.matmul(w.t()), t, -100, "none"); });
  EXPECT_GE(unfused, logits_bytes);
  // chunk logits + their gradient, dW and its partial sum, dh: ~0.6 MB here.
  EXPECT_LT(fused, 4.0 * double(chunk * V) * 4 + 3.0 * double(V * d) * 4 + 2.0 * double(n * d) * 4)
      << "fused " << fused << " bytes, unfused " << unfused;
  EXPECT_LT(fused, 0.25 * unfused);
  std::printf("peak of forward + backward: fused %.0f KB, unfused %.0f KB\n", fused / 1024, unfused / 1024);
}

TEST(LinearCrossEntropy, ShapeErrorsNameBothShapes) {
  Tensor h = randn({4, 5}), w = randn({9, 6}), t = from_vector<int64_t>({1, 2, 3, 4}, {4});
  EXPECT_TRUE(throws_with([&] { linear_cross_entropy(h, w, t); }, "hidden [4, 5] and weight [9, 6]"));
  EXPECT_TRUE(throws_with([&] { linear_cross_entropy(h, randn({9, 5}), from_vector<int64_t>({1}, {1})); },
                          "needs targets of shape [4], got [1]"));
}

}  // namespace
