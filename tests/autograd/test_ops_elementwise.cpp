// Every elementwise op: forward against a naive scalar reference (contiguous, transposed and
// broadcast inputs, float32 and float64) and backward by float64 gradcheck. One table drives it.
#include <cmath>

#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;

namespace {

struct UnaryCase {
  const char *name;
  std::function<Tensor(const Tensor &)> op;
  std::function<double(double)> ref;
  double lo, hi;  // input domain, away from kinks and poles
};

double gelu_ref(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", [](const Tensor &x) { return neg(x); }, [](double x) { return -x; }, -2, 2},
      {"exp", [](const Tensor &x) { return exp(x); }, [](double x) { return std::exp(x); }, -2, 2},
      {"log", [](const Tensor &x) { return log(x); }, [](double x) { return std::log(x); }, 0.2, 3},
      {"sqrt", [](const Tensor &x) { return sqrt(x); }, [](double x) { return std::sqrt(x); }, 0.2, 3},
      {"rsqrt", [](const Tensor &x) { return rsqrt(x); }, [](double x) { return 1 / std::sqrt(x); }, 0.2, 3},
      {"tanh", [](const Tensor &x) { return tanh(x); }, [](double x) { return std::tanh(x); }, -2, 2},
      {"sigmoid", [](const Tensor &x) { return sigmoid(x); }, [](double x) { return 1 / (1 + std::exp(-x)); }, -3, 3},
      {"relu", [](const Tensor &x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, 0.05, 2},
      {"relu_neg", [](const Tensor &x) { return relu(x); }, [](double x) { return x > 0 ? x : 0; }, -2, -0.05},
      {"gelu", [](const Tensor &x) { return gelu(x); }, gelu_ref, -3, 3},
      {"silu", [](const Tensor &x) { return silu(x); }, [](double x) { return x / (1 + std::exp(-x)); }, -3, 3},
      {"abs", [](const Tensor &x) { return abs(x); }, [](double x) { return std::abs(x); }, 0.1, 2},
      {"square", [](const Tensor &x) { return square(x); }, [](double x) { return x * x; }, -2, 2},
      {"log_sigmoid", [](const Tensor &x) { return log_sigmoid(x); }, [](double x) { return -std::log1p(std::exp(-x)); }, -5, 5},
      {"pow_scalar", [](const Tensor &x) { return pow(x, 2.5); }, [](double x) { return std::pow(x, 2.5); }, 0.2, 2},
      {"clamp", [](const Tensor &x) { return clamp(x, -0.5, 0.5); }, [](double x) { return std::clamp(x, -0.5, 0.5); }, -2, 2},
      {"add_scalar", [](const Tensor &x) { return x + 3.0; }, [](double x) { return x + 3; }, -2, 2},
      {"mul_scalar", [](const Tensor &x) { return x * -1.5; }, [](double x) { return -1.5 * x; }, -2, 2},
      {"rsub_scalar", [](const Tensor &x) { return 2.0 - x; }, [](double x) { return 2 - x; }, -2, 2},
      {"rdiv_scalar", [](const Tensor &x) { return 2.0 / x; }, [](double x) { return 2 / x; }, 0.5, 2},
  };
}

class UnaryOps : public ::testing::TestWithParam<UnaryCase> {};

TEST_P(UnaryOps, ForwardMatchesReference) {
  const auto &c = GetParam();
  manual_seed(1);
  for (DType dt : {kFloat32, kFloat64}) {
    for (Shape s : {Shape{}, Shape{1}, Shape{7}, Shape{3, 5}, Shape{2, 3, 4}}) {
      Tensor x = (rand(s, {dt}) * (c.hi - c.lo) + c.lo);
      Arr ax = Arr::of(x);
      std::vector<double> ref(ax.v.size());
      for (size_t i = 0; i < ref.size(); ++i) ref[i] = c.ref(ax.v[i]);
      double tol = dt == kFloat32 ? 1e-5 : 1e-12;
      EXPECT_TRUE(allclose(c.op(x), ref, {.atol = tol, .rtol = tol})) << c.name << " " << dtype_name(dt) << " " << shape_str(s);
    }
  }
  // A transposed (non-contiguous) input.
  Tensor x = (rand({4, 6}, {kFloat64}) * (c.hi - c.lo) + c.lo).t();
  ASSERT_FALSE(x.is_contiguous());
  Arr ax = Arr::of(x);
  std::vector<double> ref(ax.v.size());
  for (size_t i = 0; i < ref.size(); ++i) ref[i] = c.ref(ax.v[i]);
  EXPECT_TRUE(allclose(c.op(x), ref, {.atol = 1e-12, .rtol = 1e-12})) << c.name << " transposed";
}

TEST_P(UnaryOps, Gradcheck) {
  const auto &c = GetParam();
  manual_seed(2);
  Tensor x = rand64({3, 4}, c.lo, c.hi);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return c.op(in[0]); }, {x});
  EXPECT_TRUE(r.ok) << c.name << ": " << r.message;
  Tensor xt = rand64({4, 3}, c.lo, c.hi);
  auto r2 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return c.op(in[0].t()); }, {xt});
  EXPECT_TRUE(r2.ok) << c.name << " through a transpose: " << r2.message;
}

INSTANTIATE_TEST_SUITE_P(All, UnaryOps, ::testing::ValuesIn(unary_cases()),
                         [](const auto &info) { return std::string(info.param.name); });

struct BinaryCase {
  const char *name;
  std::function<Tensor(const Tensor &, const Tensor &)> op;
  std::function<double(double, double)> ref;
  double lo, hi;
};

std::vector<BinaryCase> binary_cases() {
  return {
      {"add", [](const Tensor &a, const Tensor &b) { return a + b; }, [](double a, double b) { return a + b; }, -2, 2},
      {"sub", [](const Tensor &a, const Tensor &b) { return a - b; }, [](double a, double b) { return a - b; }, -2, 2},
      {"mul", [](const Tensor &a, const Tensor &b) { return a * b; }, [](double a, double b) { return a * b; }, -2, 2},
      {"div", [](const Tensor &a, const Tensor &b) { return a / b; }, [](double a, double b) { return a / b; }, 0.5, 2},
      {"pow", [](const Tensor &a, const Tensor &b) { return pow(a, b); }, [](double a, double b) { return std::pow(a, b); }, 0.5, 2},
      {"maximum", [](const Tensor &a, const Tensor &b) { return maximum(a, b); }, [](double a, double b) { return std::max(a, b); }, -2, 2},
      {"minimum", [](const Tensor &a, const Tensor &b) { return minimum(a, b); }, [](double a, double b) { return std::min(a, b); }, -2, 2},
  };
}

class BinaryOps : public ::testing::TestWithParam<BinaryCase> {};

const std::vector<std::pair<Shape, Shape>> kBroadcastPairs = {
    {{5}, {5}}, {{3, 4}, {3, 4}}, {{3, 4}, {4}}, {{3, 1}, {1, 4}}, {{2, 3, 4}, {3, 1}}, {{}, {2, 3}}, {{1}, {6}},
};

TEST_P(BinaryOps, ForwardMatchesReferenceWithBroadcasting) {
  const auto &c = GetParam();
  manual_seed(3);
  for (DType dt : {kFloat32, kFloat64})
    for (auto [sa, sb] : kBroadcastPairs) {
      Tensor a = rand(sa, {dt}) * (c.hi - c.lo) + c.lo, b = rand(sb, {dt}) * (c.hi - c.lo) + c.lo;
      Arr r = ref_binary(Arr::of(a), Arr::of(b), c.ref);
      Tensor y = c.op(a, b);
      EXPECT_EQ(y.shape(), r.shape);
      double tol = dt == kFloat32 ? 1e-5 : 1e-12;
      EXPECT_TRUE(allclose(y, r.v, {.atol = tol, .rtol = tol})) << c.name << " " << shape_str(sa) << " " << shape_str(sb);
    }
}

TEST_P(BinaryOps, GradcheckWithBroadcasting) {
  const auto &c = GetParam();
  manual_seed(4);
  for (auto [sa, sb] : kBroadcastPairs) {
    Tensor a = rand64(sa, c.lo, c.hi), b = rand64(sb, c.lo, c.hi);
    auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return c.op(in[0], in[1]); }, {a, b});
    EXPECT_TRUE(r.ok) << c.name << " " << shape_str(sa) << " " << shape_str(sb) << ": " << r.message;
  }
}

INSTANTIATE_TEST_SUITE_P(All, BinaryOps, ::testing::ValuesIn(binary_cases()),
                         [](const auto &info) { return std::string(info.param.name); });

TEST(Compare, MasksWhereAndMaskedFill) {
  Tensor a = tensor({1, 2, 3, 4}), b = tensor({4, 2, 1, 4});
  EXPECT_EQ((a < b).dtype(), kBool);
  EXPECT_EQ((a < b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 0, 0}));
  EXPECT_EQ(le(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1, 0, 1}));
  EXPECT_EQ(eq(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 0, 1}));
  EXPECT_EQ(ne(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 0, 1, 0}));
  EXPECT_EQ(gt(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 1, 0}));
  EXPECT_EQ(ge(a, b).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 1, 1}));
  EXPECT_EQ((a >= 3.0).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 0, 1, 1}));
  EXPECT_EQ(logical_not(a >= 3.0).to_vector<uint8_t>(), (std::vector<uint8_t>{1, 1, 0, 0}));
  EXPECT_TRUE(allclose(where(a < b, a, b), {1, 2, 1, 4}));
  EXPECT_TRUE(allclose(masked_fill(a, a > 2.0, -1), {1, 2, -1, -1}));
  // Ids compare too.
  Tensor ids = from_vector<int64_t>({1, 5, 7}, {3}, {kInt64});
  EXPECT_EQ((ids > 4.0).to_vector<uint8_t>(), (std::vector<uint8_t>{0, 1, 1}));
}

TEST(Compare, WhereAndMaskedFillGradcheck) {
  manual_seed(5);
  Tensor a = rand64({3, 4}), b = rand64({4});
  Tensor cond = rand({3, 4}, {kFloat64}) > 0.5;
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return where(cond, in[0], in[1]); }, {a, b});
  EXPECT_TRUE(r.ok) << r.message;
  auto r2 = autograd::gradcheck([&](const std::vector<Tensor> &in) { return masked_fill(in[0], cond, 3.0); }, {a});
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(Operators, ScalarsWorkAsInPyTorch) {
  Tensor x = tensor({1, 2, 4});
  EXPECT_TRUE(allclose(2.0 * x + 1.0, {3, 5, 9}));
  EXPECT_TRUE(allclose(x / 2.0 - 1.0, {-0.5, 0, 1}));
  EXPECT_TRUE(allclose(1.0 / x, {1, 0.5, 0.25}));
  EXPECT_TRUE(allclose(-x, {-1, -2, -4}));
  EXPECT_TRUE(allclose(x.pow(2), {1, 4, 16}));
}

}  // namespace
