// Fused nn ops and shape ops: forward against naive references, backward by float64 gradcheck.
#include <cmath>
#include <limits>

#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

TEST(Softmax, ForwardRowsSumToOneAndMatchReference) {
  manual_seed(20);
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = randn({3, 4, 5}, {dt}) * 3.0;
    for (int64_t dim : {0, 1, 2, -1}) {
      Tensor y = softmax(x, dim), ly = log_softmax(x, dim);
      Tensor s = sum(y, {dim});
      EXPECT_TRUE(allclose(s, std::vector<double>(s.numel(), 1.0), {.atol = 1e-5, .rtol = 1e-5}));
      EXPECT_TRUE(allclose(ly, log(y).to_vector<double>(), {.atol = 1e-5, .rtol = 1e-4}));
      Tensor ref = exp(x - logsumexp(x, {dim}, true));
      EXPECT_TRUE(allclose(y, ref.to_vector<double>(), {.atol = 1e-6, .rtol = 1e-5})) << "dim " << dim;
    }
  }
  // Large logits stay finite (the max is subtracted).
  Tensor big = tensor({1000, 1001, 1002});
  auto v = softmax(big, 0).to_vector<double>();
  EXPECT_NEAR(v[2], 1 / (1 + std::exp(-1) + std::exp(-2)), 1e-6);
}

TEST(Softmax, Gradcheck) {
  manual_seed(21);
  Tensor x = rand64({3, 4, 5}, -2, 2);
  for (int64_t dim : {0, 1, 2}) {
    auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return softmax(in[0], dim); }, {x});
    EXPECT_TRUE(r.ok) << "softmax dim " << dim << ": " << r.message;
    auto r2 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return log_softmax(in[0], dim); }, {x});
    EXPECT_TRUE(r2.ok) << "log_softmax dim " << dim << ": " << r2.message;
  }
}

TEST(LayerNorm, ForwardAgainstReferenceAndGradcheck) {
  manual_seed(22);
  Tensor x = rand64({2, 3, 8}, -2, 2), w = rand64({8}, 0.5, 1.5), b = rand64({8});
  Tensor y = layer_norm(x, w, b, 1e-5);
  Arr ax = Arr::of(x), aw = Arr::of(w), ab = Arr::of(b);
  std::vector<double> ref(ax.v.size());
  for (int64_t r = 0; r < 6; ++r) {
    double m = 0, v = 0;
    for (int c = 0; c < 8; ++c) m += ax.v[r * 8 + c] / 8;
    for (int c = 0; c < 8; ++c) v += (ax.v[r * 8 + c] - m) * (ax.v[r * 8 + c] - m) / 8;
    for (int c = 0; c < 8; ++c) ref[r * 8 + c] = (ax.v[r * 8 + c] - m) / std::sqrt(v + 1e-5) * aw.v[c] + ab.v[c];
  }
  EXPECT_TRUE(allclose(y, ref, {.atol = 1e-10, .rtol = 1e-10}));
  auto r = autograd::gradcheck([](const std::vector<Tensor> &in) { return layer_norm(in[0], in[1], in[2]); }, {x, w, b});
  EXPECT_TRUE(r.ok) << r.message;
  auto r2 = autograd::gradcheck([](const std::vector<Tensor> &in) { return layer_norm(in[0], Tensor(), Tensor()); }, {x});
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(CrossEntropy, ForwardIgnoreIndexReductionsAndGradcheck) {
  manual_seed(23);
  Tensor logits = rand64({5, 7}, -2, 2);
  Tensor target = from_vector<int64_t>({3, -100, 0, 6, 2}, {5}, {kInt64});
  Arr al = Arr::of(logits);
  std::vector<double> per(5, 0.0);
  double total = 0;
  for (int r = 0; r < 5; ++r) {
    int64_t t = target.to_vector<int64_t>()[r];
    if (t == -100) continue;
    double m = -1e300, s = 0;
    for (int c = 0; c < 7; ++c) m = std::max(m, al.v[r * 7 + c]);
    for (int c = 0; c < 7; ++c) s += std::exp(al.v[r * 7 + c] - m);
    per[r] = m + std::log(s) - al.v[r * 7 + t];
    total += per[r];
  }
  EXPECT_TRUE(allclose(cross_entropy(logits, target, -100, "none"), per, {.atol = 1e-12, .rtol = 1e-10}));
  EXPECT_NEAR(cross_entropy(logits, target, -100, "sum").item(), total, 1e-10);
  EXPECT_NEAR(cross_entropy(logits, target).item(), total / 4, 1e-10);  // mean over the 4 counted targets
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return cross_entropy(in[0], target); }, {logits});
  EXPECT_TRUE(r.ok) << r.message;
  // [B, T, V] logits with [B, T] targets.
  Tensor l3 = rand64({2, 3, 4});
  Tensor t3 = from_vector<int64_t>({0, 1, 2, 3, -100, 1}, {2, 3}, {kInt64});
  auto r3 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return cross_entropy(in[0], t3, -100, "none"); }, {l3});
  EXPECT_TRUE(r3.ok) << r3.message;
}

TEST(Embedding, IndexSelectGatherForwardAndGradcheck) {
  manual_seed(24);
  Tensor w = rand64({6, 3});
  Tensor idx = from_vector<int64_t>({5, 0, 5, 2}, {2, 2}, {kInt64});
  Tensor e = embedding(w, idx);
  EXPECT_EQ(e.shape(), (Shape{2, 2, 3}));
  Arr aw = Arr::of(w);
  std::vector<double> ref;
  for (int64_t i : {5, 0, 5, 2}) for (int c = 0; c < 3; ++c) ref.push_back(aw.v[i * 3 + c]);
  EXPECT_TRUE(allclose(e, ref, {.atol = 0, .rtol = 0}));
  // Repeated index 5: its gradient rows add up (scatter-add).
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return embedding(in[0], idx); }, {w});
  EXPECT_TRUE(r.ok) << r.message;

  Tensor x = rand64({3, 4});
  Tensor cols = from_vector<int64_t>({3, 1, 1}, {3}, {kInt64});
  Tensor s1 = index_select(x, 1, cols);
  EXPECT_EQ(s1.shape(), (Shape{3, 3}));
  Arr ax = Arr::of(x);
  EXPECT_NEAR(s1.to_vector<double>()[0], ax.v[3], 0);
  auto r2 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return index_select(in[0], 1, cols); }, {x});
  EXPECT_TRUE(r2.ok) << r2.message;
  auto r2b = autograd::gradcheck([&](const std::vector<Tensor> &in) { return index_select(in[0], 0, cols.narrow(0, 1, 2)); }, {x});
  EXPECT_TRUE(r2b.ok) << r2b.message;

  Tensor gi = from_vector<int64_t>({0, 3, 2, 2, 1, 0}, {3, 2}, {kInt64});
  Tensor g = gather(x, 1, gi);
  EXPECT_TRUE(allclose(g, {ax.v[0], ax.v[3], ax.v[6], ax.v[6], ax.v[9], ax.v[8]}, {.atol = 0, .rtol = 0}));
  auto r3 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return gather(in[0], 1, gi); }, {x});
  EXPECT_TRUE(r3.ok) << r3.message;
  // gather along dim 0 (not the last dim).
  Tensor gi0 = from_vector<int64_t>({2, 0, 1, 0}, {1, 4}, {kInt64});
  Tensor g0 = gather(x, 0, gi0);
  EXPECT_TRUE(allclose(g0, {ax.v[8], ax.v[1], ax.v[6], ax.v[3]}, {.atol = 0, .rtol = 0}));
  auto r4 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return gather(in[0], 0, gi0); }, {x});
  EXPECT_TRUE(r4.ok) << r4.message;
}

TEST(ShapeOps, CatStackSplitChunkTriuTril) {
  manual_seed(25);
  Tensor a = rand64({2, 3}), b = rand64({2, 1});
  Tensor c = cat({a, b}, 1);
  EXPECT_EQ(c.shape(), (Shape{2, 4}));
  Arr aa = Arr::of(a), ab = Arr::of(b);
  EXPECT_TRUE(allclose(c, {aa.v[0], aa.v[1], aa.v[2], ab.v[0], aa.v[3], aa.v[4], aa.v[5], ab.v[1]}, {.atol = 0, .rtol = 0}));
  auto r = autograd::gradcheck([](const std::vector<Tensor> &in) { return cat({in[0], in[1]}, 1); }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
  auto r0 = autograd::gradcheck([](const std::vector<Tensor> &in) { return cat({in[0], in[0] * 2.0}, 0); }, {a});
  EXPECT_TRUE(r0.ok) << r0.message;

  Tensor s = stack({a, a * 2.0}, 1);
  EXPECT_EQ(s.shape(), (Shape{2, 2, 3}));
  EXPECT_NEAR(s.to_vector<double>()[3], 2 * aa.v[0], 1e-12);

  Tensor x = rand64({7, 2});
  auto parts = split(x, 3, 0);
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[2].shape(), (Shape{1, 2}));
  auto ch = chunk(x, 2, 0);
  ASSERT_EQ(ch.size(), 2u);
  EXPECT_EQ(ch[0].shape(), (Shape{4, 2}));
  auto r2 = autograd::gradcheck([](const std::vector<Tensor> &in) { auto p = split(in[0], 3, 0); return p[0].sum() * p[2].sum(); }, {x});
  EXPECT_TRUE(r2.ok) << r2.message;

  Tensor m = ones({3, 3});
  EXPECT_TRUE(allclose(triu(m), {1, 1, 1, 0, 1, 1, 0, 0, 1}));
  EXPECT_TRUE(allclose(tril(m, -1), {0, 0, 0, 1, 0, 0, 1, 1, 0}));
  auto r3 = autograd::gradcheck([](const std::vector<Tensor> &in) { return triu(in[0], 1); }, {rand64({3, 4})});
  EXPECT_TRUE(r3.ok) << r3.message;
  auto r4 = autograd::gradcheck([](const std::vector<Tensor> &in) { return tril(in[0], 0); }, {rand64({2, 3, 3})});
  EXPECT_TRUE(r4.ok) << r4.message;
  // -inf off the band becomes 0, not NaN (x * mask would give -inf * 0 = NaN); -inf on it stays.
  const double inf = std::numeric_limits<double>::infinity();
  Tensor ninf = full({2, 2}, -inf, {nanorlhf::kFloat64});
  EXPECT_TRUE(allclose(triu(ninf), {-inf, -inf, 0, -inf}));
  EXPECT_TRUE(allclose(tril(ninf, -1), {0, 0, -inf, 0}));
}

TEST(Dropout, KeepsExpectationAndIsIdentityInEval) {
  manual_seed(26);
  Tensor x = ones({100000});
  Tensor y = dropout(x, 0.3, true);
  auto v = y.to_vector<double>();
  int64_t zeros_n = 0;
  for (double e : v) {
    zeros_n += e == 0;
    EXPECT_TRUE(e == 0 || std::abs(e - 1 / 0.7) < 1e-6);
  }
  EXPECT_NEAR(zeros_n / 1e5, 0.3, 0.01);
  EXPECT_NEAR(y.mean().item(), 1.0, 0.02);
  EXPECT_TRUE(dropout(x, 0.3, false).is_same(x));
  // Same seed, same mask.
  manual_seed(26);
  EXPECT_EQ(dropout(x, 0.3, true).to_vector<float>(), y.to_vector<float>());
}

}  // namespace
