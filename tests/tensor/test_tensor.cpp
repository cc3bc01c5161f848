// Tensor basics: creation, views without copies, contiguity, RNG reproducibility, and clear errors.
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

// Expect `stmt` to throw nanorlhf::Error whose message contains every fragment.
#define EXPECT_ERROR(stmt, ...)                                                        \
  do {                                                                                 \
    try {                                                                              \
      stmt;                                                                            \
      ADD_FAILURE() << "expected an error from " #stmt;                                \
    } catch (const nanorlhf::Error &e) {                                               \
      for (const char *frag : {__VA_ARGS__})                                           \
        EXPECT_NE(std::string(e.what()).find(frag), std::string::npos)                 \
            << "message '" << e.what() << "' lacks '" << frag << "'";                  \
    }                                                                                  \
  } while (0)

TEST(Creation, Factories) {
  EXPECT_TRUE(allclose(zeros({2, 2}), {0, 0, 0, 0}));
  EXPECT_TRUE(allclose(ones({3}), {1, 1, 1}));
  EXPECT_TRUE(allclose(full({2}, 7.5), {7.5, 7.5}));
  EXPECT_TRUE(allclose(arange(5), {0, 1, 2, 3, 4}));
  EXPECT_TRUE(allclose(arange(1, 2, 0.25), {1, 1.25, 1.5, 1.75}));
  EXPECT_EQ(arange(3, {.dtype = kInt64}).to_vector<int64_t>(), (std::vector<int64_t>{0, 1, 2}));
  EXPECT_EQ(tensor({1, 2}).dtype(), kFloat32);
  EXPECT_EQ(scalar_tensor(3).shape(), Shape{});
  EXPECT_DOUBLE_EQ(scalar_tensor(3).item(), 3);
  Tensor r = randint(2, 5, {1000});
  auto v = r.to_vector<int64_t>();
  EXPECT_EQ(*std::min_element(v.begin(), v.end()), 2);
  EXPECT_EQ(*std::max_element(v.begin(), v.end()), 4);
}

TEST(Random, SeededStreamsAreReproducible) {
  manual_seed(42);
  Tensor a = randn({100}), b = rand({50});
  manual_seed(42);
  EXPECT_EQ(randn({100}).to_vector<float>(), a.to_vector<float>());
  EXPECT_EQ(rand({50}).to_vector<float>(), b.to_vector<float>());
  manual_seed(43);
  EXPECT_NE(randn({100}).to_vector<float>(), a.to_vector<float>());
  // Moments of a big draw.
  manual_seed(1);
  Tensor n = randn({200000}, {kFloat64});
  EXPECT_NEAR(n.mean().item(), 0, 0.01);
  EXPECT_NEAR(var(n).item(), 1, 0.02);
  // The guard restores the stream.
  manual_seed(5);
  Tensor first;
  {
    RngStateGuard g;
    first = rand({3});
  }
  EXPECT_EQ(rand({3}).to_vector<float>(), first.to_vector<float>());
}

TEST(Views, ShareStorageWithoutCopies) {
  Tensor x = arange(24).reshape({2, 3, 4});
  EXPECT_TRUE(x.is_contiguous());
  Tensor t = x.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_EQ(t.storage(), x.storage());
  EXPECT_DOUBLE_EQ(t[3][1][1].item(), x[1][1][3].item());
  Tensor p = x.permute({1, 2, 0});
  EXPECT_EQ(p.shape(), (Shape{3, 4, 2}));
  EXPECT_DOUBLE_EQ(p[2][3][1].item(), 23);
  Tensor n = x.narrow(2, 1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(n.storage(), x.storage());
  EXPECT_TRUE(allclose(n.contiguous(), {1, 2, 5, 6, 9, 10, 13, 14, 17, 18, 21, 22}));
  Tensor e = tensor({1, 2, 3}).unsqueeze(0).expand({4, 3});
  EXPECT_EQ(e.strides(), (Shape{0, 1}));
  EXPECT_DOUBLE_EQ(e.sum().item(), 24);
  EXPECT_EQ(x.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(x.unsqueeze(-1).shape(), (Shape{2, 3, 4, 1}));
  EXPECT_EQ(x.unsqueeze(1).squeeze(1).shape(), x.shape());
  EXPECT_EQ(ones({1, 3, 1}).squeeze().shape(), (Shape{3}));
  EXPECT_EQ(x.view({6, -1}).shape(), (Shape{6, 4}));
  EXPECT_EQ(x.flatten().shape(), (Shape{24}));
  EXPECT_EQ(x.flatten(1).shape(), (Shape{2, 12}));
  // Writing through storage shows in every view.
  Tensor y = zeros({2, 2});
  Tensor yt = y.t();
  static_cast<float *>(y.storage()->data())[1] = 5;
  EXPECT_DOUBLE_EQ(yt[1][0].item(), 5);
}

TEST(Views, ReshapeCopiesOnlyWhenNeeded) {
  Tensor x = arange(12).reshape({3, 4});
  EXPECT_EQ(x.reshape({4, 3}).storage(), x.storage());  // a view
  Tensor t = x.t();
  Tensor r = t.reshape({12});                             // needs a copy
  EXPECT_NE(r.storage(), x.storage());
  EXPECT_TRUE(allclose(r, {0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_ERROR(t.view({12}), "view", "reshape");
}

TEST(Views, GradientsFlowThroughViews) {
  manual_seed(3);
  Tensor x = rand64({3, 4});
  auto check = [&](const char *name, std::function<Tensor(const Tensor &)> f) {
    auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return f(in[0]); }, {x});
    EXPECT_TRUE(r.ok) << name << ": " << r.message;
  };
  check("transpose", [](const Tensor &t) { return t.t() * 2.0; });
  check("permute+reshape", [](const Tensor &t) { return t.permute({1, 0}).reshape({2, 6}); });
  check("narrow", [](const Tensor &t) { return t.narrow(1, 1, 2); });
  check("select", [](const Tensor &t) { return t.select(0, 2); });
  check("expand", [](const Tensor &t) { return t.unsqueeze(0).expand({2, 3, 4}); });
  check("squeeze/unsqueeze", [](const Tensor &t) { return t.unsqueeze(1).squeeze(1); });
  check("contiguous", [](const Tensor &t) { return t.t().contiguous(); });

}

TEST(Errors, ClearMessagesNeverCrashes) {
  Tensor a = ones({2, 3}), b = ones({4, 5});
  EXPECT_ERROR(a + b, "[2, 3]", "[4, 5]", "broadcast");
  EXPECT_ERROR(matmul(a, b), "[2, 3]", "[4, 5]");
  EXPECT_ERROR(a.sum({2}), "dim 2", "out of range");
  EXPECT_ERROR(a.transpose(0, 5), "out of range");
  EXPECT_ERROR(a.view({7}), "[7]", "[2, 3]");
  EXPECT_ERROR(a.narrow(1, 2, 5), "out of bounds");
  EXPECT_ERROR(a + ones({2, 3}, {kFloat64}), "dtype mismatch", "float32", "float64");
  EXPECT_ERROR(embedding(ones({4, 2}), from_vector<int64_t>({1, 4}, {2})), "index 4", "[0, 4)");
  EXPECT_ERROR(embedding(ones({4, 2}), from_vector<int64_t>({-1}, {1})), "index -1");
  EXPECT_ERROR(cross_entropy(ones({2, 3}), from_vector<int64_t>({0, 3}, {2})), "target 3", "3 classes");
  EXPECT_ERROR(cross_entropy(ones({2, 3}), from_vector<int64_t>({0}, {1})), "[2, 3]", "[1]");
  EXPECT_ERROR(cross_entropy(ones({2, 3}), ones({2})), "int64");
  EXPECT_ERROR(layer_norm(ones({2, 3}), ones({4}), Tensor()), "[4]", "[2, 3]");
  EXPECT_ERROR(ones({2}).item(), "one-element", "[2]");
  EXPECT_ERROR(ones({2}).backward(), "[2]", "gradient");
  EXPECT_ERROR(zeros({2}, {kInt64}).requires_grad_(), "floating-point");
  EXPECT_ERROR(a.data_ptr<double>(), "float32", "float64");
  EXPECT_ERROR(Tensor().numel(), "undefined");
  EXPECT_ERROR(Device::parse("tpu"), "tpu", "cpu");
  EXPECT_ERROR(ones({1, 2, 1, 2, 1, 2, 1, 2, 1}), "at most 8 dims");
  EXPECT_ERROR(softmax(a, 3), "dim 3");
  EXPECT_ERROR(masked_fill(a, ones({2, 3}), 0), "bool");
  EXPECT_ERROR(cat({a, ones({3, 3})}, 1), "[2, 3]", "[3, 3]");
  EXPECT_ERROR(gather(a, 1, from_vector<int64_t>({0, 9, 1, 1}, {2, 2})), "index 9");
#ifndef NANORLHF_WITH_CUDA
  EXPECT_ERROR(a.cuda(), "no CUDA backend");
#endif
}

}  // namespace

namespace {
// Sum over leading dims (the contiguous column-sum fast path) agrees with the permuted-copy path
// (a non-contiguous input) and with a per-column double loop; keepdim keeps size-1 dims.
TEST(Reductions, LeadingDimsSumMatchesGeneralPath) {
  manual_seed(3);
  for (DType dt : {kFloat32, kFloat64}) {
    Tensor x = randn({4, 6, 5}).to(dt);
    Tensor fast = x.sum({0, 1});
    Tensor slow = x.transpose(0, 2).sum({2, 1});  // same sums through a strided view
    ASSERT_EQ(fast.shape(), Shape{5});
    auto xv = x.to(kFloat64).to_vector<double>();
    std::vector<double> ref(5, 0.0);
    for (int64_t i = 0; i < 24; ++i)
      for (int64_t c = 0; c < 5; ++c) ref[c] += xv[i * 5 + c];
    auto fv = fast.to(kFloat64).to_vector<double>(), sv = slow.to(kFloat64).to_vector<double>();
    EXPECT_TRUE(allclose(fv, ref, {.atol = 1e-5, .rtol = 0})) << "fast path";
    EXPECT_TRUE(allclose(sv, ref, {.atol = 1e-5, .rtol = 0})) << "slow path";
    Tensor k = x.sum({0}, true);
    EXPECT_EQ(k.shape(), (Shape{1, 6, 5}));
    EXPECT_NEAR(k.to(kFloat64).to_vector<double>()[7], xv[7] + xv[37] + xv[67] + xv[97], 1e-5);
  }
}
}  // namespace

namespace {
// Large CPU blocks are recycled by the storage cache: the bytes held by live tensors still go back
// to where they were, and a recycled block holds what the new tensor writes, not the old values.
TEST(Storage, CachedBlocksKeepAccountingAndData) {
  const size_t before = cpu_bytes_allocated();
  {
    Tensor a = full({256, 256}, 1.5);  // 256 KiB: cached when freed
    EXPECT_EQ(cpu_bytes_allocated(), before + 256 * 256 * 4);
  }
  EXPECT_EQ(cpu_bytes_allocated(), before);
  Tensor b = zeros({256, 256});
  EXPECT_EQ(cpu_bytes_allocated(), before + 256 * 256 * 4);
  EXPECT_DOUBLE_EQ(b.sum().item(), 0.0);
  Tensor c = full({256, 256}, 2.0);  // a second block of the same size while b is alive
  EXPECT_NE(b.raw_data(), c.raw_data());
  EXPECT_DOUBLE_EQ(c.sum().item(), 2.0 * 256 * 256);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(c.raw_data()) % 64, 0u);
}
}  // namespace
