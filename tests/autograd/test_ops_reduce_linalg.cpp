// Reductions and matmul: forward against naive loops, backward by float64 gradcheck.
#include <cmath>

#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

// Naive reduction of a [A, B, C] array over a set of dims (keepdim=false), fold f with init.
std::vector<double> ref_reduce3(const Arr &x, std::vector<int> red, double init,
                                const std::function<double(double, double)> &f) {
  int64_t A = x.shape[0], B = x.shape[1], C = x.shape[2];
  bool r[3] = {false, false, false};
  for (int d : red) r[d] = true;
  int64_t oa = r[0] ? 1 : A, ob = r[1] ? 1 : B, oc = r[2] ? 1 : C;
  std::vector<double> out(oa * ob * oc, init);
  for (int64_t a = 0; a < A; ++a)
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < C; ++c) {
        int64_t o = ((r[0] ? 0 : a) * ob + (r[1] ? 0 : b)) * oc + (r[2] ? 0 : c);
        out[o] = f(out[o], x.v[(a * B + b) * C + c]);
      }
  return out;
}

TEST(Reduce, SumMeanMaxMinAgainstLoops) {
  manual_seed(10);
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = randn({3, 4, 5}, {dt});
    Arr ax = Arr::of(x);
    double tol = dt == kFloat32 ? 1e-5 : 1e-12;
    for (std::vector<int> dims : {std::vector<int>{0}, {1}, {2}, {0, 2}, {0, 1, 2}}) {
      Shape sd(dims.begin(), dims.end());
      auto s = ref_reduce3(ax, dims, 0, [](double a, double b) { return a + b; });
      EXPECT_TRUE(allclose(sum(x, sd), s, {.atol = tol, .rtol = tol}));
      int64_t n = 1;
      for (int d : dims) n *= x.shape()[d];
      std::vector<double> m = s;
      for (auto &v : m) v /= n;
      EXPECT_TRUE(allclose(mean(x, sd), m, {.atol = tol, .rtol = tol}));
      EXPECT_TRUE(allclose(amax(x, sd), ref_reduce3(ax, dims, -1e300, [](double a, double b) { return std::max(a, b); }), {.atol = tol, .rtol = tol}));
      EXPECT_TRUE(allclose(amin(x, sd), ref_reduce3(ax, dims, 1e300, [](double a, double b) { return std::min(a, b); }), {.atol = tol, .rtol = tol}));
      auto e = ref_reduce3(ax, dims, 0, [](double a, double b) { return a + std::exp(b); });
      for (auto &v : e) v = std::log(v);
      EXPECT_TRUE(allclose(logsumexp(x, sd), e, {.atol = tol, .rtol = tol}));
    }
    // keepdim keeps the reduced dims as 1
    EXPECT_EQ(sum(x, {1}, true).shape(), (Shape{3, 1, 5}));
    EXPECT_EQ(x.sum().shape(), Shape{});
  }
}

TEST(Reduce, ArgmaxAndVar) {
  Tensor x = from_vector<float>({1, 5, 3, 9, 2, 9}, {2, 3});
  EXPECT_EQ(argmax(x, 1).to_vector<int64_t>(), (std::vector<int64_t>{1, 0}));  // first max wins
  EXPECT_EQ(argmax(x, 0).to_vector<int64_t>(), (std::vector<int64_t>{1, 0, 1}));
  // var([1,5,3]): mean 3, squared deviations sum to 8; var([9,2,9]): mean 20/3, they sum to 98/3
  EXPECT_TRUE(allclose(var(x, {1}), {8.0 / 2, 98.0 / 3 / 2}, {.rtol = 1e-6}));
  EXPECT_TRUE(allclose(var(x, {1}, 0), {8.0 / 3, 98.0 / 3 / 3}, {.rtol = 1e-6}));
}

TEST(Reduce, Gradcheck) {
  manual_seed(11);
  Tensor x = rand64({3, 4, 5});
  auto check = [&](const char *name, std::function<Tensor(const Tensor &)> f) {
    auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return f(in[0]); }, {x});
    EXPECT_TRUE(r.ok) << name << ": " << r.message;
  };
  check("sum all", [](const Tensor &t) { return t.sum(); });
  check("sum 1", [](const Tensor &t) { return sum(t, {1}); });
  check("sum 0,2 keepdim", [](const Tensor &t) { return sum(t, {0, 2}, true); });
  check("mean -1", [](const Tensor &t) { return mean(t, {-1}); });
  check("amax 2", [](const Tensor &t) { return amax(t, {2}); });  // random values: no ties
  check("amin 0", [](const Tensor &t) { return amin(t, {0}); });
  check("logsumexp 1", [](const Tensor &t) { return logsumexp(t, {1}); });
  check("var 2", [](const Tensor &t) { return var(t, {2}); });
  check("var all biased", [](const Tensor &t) { return var(t, {}, 0); });
}

// Naive batched matmul reference on [.., M, K] x [.., K, N] with broadcast batch dims.
Arr ref_matmul(const Arr &a, const Arr &b) {
  Shape ab(a.shape.begin(), a.shape.end() - 2), bb(b.shape.begin(), b.shape.end() - 2);
  Shape batch = native::broadcast_shapes(ab, bb, "ref");
  int64_t M = a.shape[a.shape.size() - 2], K = a.shape.back(), N = b.shape.back();
  Shape out = batch;
  out.push_back(M);
  out.push_back(N);
  Arr r{out, std::vector<double>(shape_numel(out))};
  for (int64_t i = 0; i < shape_numel(batch); ++i) {
    int64_t ia = bcast_index(i, batch, ab), ib = bcast_index(i, batch, bb);
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) {
        double s = 0;
        for (int64_t k = 0; k < K; ++k) s += a.v[ia * M * K + m * K + k] * b.v[ib * K * N + k * N + n];
        r.v[(i * M + m) * N + n] = s;
      }
  }
  return r;
}

TEST(Matmul, ForwardBatchedBroadcastAndTransposedViews) {
  manual_seed(12);
  struct Case { Shape a, b; };
  for (auto c : {Case{{3, 4}, {4, 5}}, Case{{1, 1}, {1, 1}}, Case{{17, 33}, {33, 65}}, Case{{2, 3, 4}, {2, 4, 5}},
                 Case{{2, 3, 4}, {4, 5}}, Case{{3, 1, 3, 4}, {2, 4, 6}}, Case{{64, 128}, {128, 96}}}) {
    for (DType dt : {kFloat32, kFloat64}) {
      Tensor a = randn(c.a, {dt}), b = randn(c.b, {dt});
      Arr r = ref_matmul(Arr::of(a), Arr::of(b));
      Tensor y = matmul(a, b);
      EXPECT_EQ(y.shape(), r.shape);
      double tol = dt == kFloat32 ? 1e-4 : 1e-10;
      EXPECT_TRUE(allclose(y, r.v, {.atol = tol, .rtol = tol})) << shape_str(c.a) << " @ " << shape_str(c.b);
    }
  }
  // Transposed operands are read through views (no copies needed for correctness either way).
  Tensor a = randn({5, 3}), b = randn({6, 5});
  Tensor y = matmul(a.t(), b.t());
  Arr r = ref_matmul(Arr::of(a.t().contiguous()), Arr::of(b.t().contiguous()));
  EXPECT_TRUE(allclose(y, r.v, {.atol = 1e-4, .rtol = 1e-4}));
  // 1-D operands as in PyTorch.
  Tensor v = tensor({1, 2, 3}), m = from_vector<float>({1, 0, 0, 1, 1, 1}, {3, 2});
  EXPECT_TRUE(allclose(matmul(v, m), {4, 5}));
  EXPECT_EQ(matmul(v, m).shape(), (Shape{2}));
}

TEST(Matmul, Gradcheck) {
  manual_seed(13);
  struct Case { Shape a, b; bool ta, tb; };
  for (auto c : {Case{{3, 4}, {4, 5}, false, false}, Case{{4, 3}, {4, 5}, true, false}, Case{{3, 4}, {5, 4}, false, true},
                 Case{{2, 3, 4}, {4, 5}, false, false}, Case{{2, 1, 3, 4}, {3, 4, 2}, false, false}}) {
    Tensor a = rand64(c.a), b = rand64(c.b);
    auto r = autograd::gradcheck(
        [&](const std::vector<Tensor> &in) {
          return matmul(c.ta ? in[0].transpose(-1, -2) : in[0], c.tb ? in[1].transpose(-1, -2) : in[1]);
        },
        {a, b});
    EXPECT_TRUE(r.ok) << shape_str(c.a) << " @ " << shape_str(c.b) << ": " << r.message;
  }
}

}  // namespace
