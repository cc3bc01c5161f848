// Tests of the CPU elementwise, copy, cast, random and reduction kernels (kernels/cpu/elementwise.h)
// against naive scalar references computed here in double, plus property tests of the Philox streams.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "tolerance.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/philox.h"

using namespace nanorlhf::kernels;
using namespace nanorlhf::kernels::cpu;

namespace {

// Tolerances (the policy, |got - ref| <= atol + rtol * |ref|, is tests/tolerance.h's):
// float kernels are checked against double references with atol 1e-6, rtol 1e-5 (a few ulps of
// float after a transcendental); double kernels with atol 1e-12, rtol 1e-12.
using nr_test::allclose;
using nr_test::isclose;
using nr_test::Tol;
template <class T> constexpr Tol default_tol() {
  return std::is_same_v<T, float> ? Tol{1e-6, 1e-5} : Tol{1e-12, 1e-12};
}

std::mt19937_64 &rng() {
  static std::mt19937_64 g(1234);
  return g;
}
template <class T> std::vector<T> rand_vec(int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto &x : v) x = T(d(rng()));
  return v;
}
int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}
// Offset of the element with linear (row-major) index `lin` of `shape` under `strides`.
int64_t offset_of(int64_t lin, const std::vector<int64_t> &shape, const std::vector<int64_t> &strides) {
  int64_t off = 0;
  for (int d = int(shape.size()) - 1; d >= 0; --d) { off += (lin % shape[d]) * strides[d]; lin /= shape[d]; }
  return off;
}

// --- unary ----------------------------------------------------------------------------------

struct UnaryCase {
  const char *name;
  UnaryOp op;
  double lo, hi;          // input domain
  double alpha, beta;
  std::function<double(double)> ref;
};

double ref_gelu(double x) { return 0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))); }
double ref_sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

std::vector<UnaryCase> unary_cases() {
  return {
      {"neg", UnaryOp::neg, -5, 5, 0, 0, [](double x) { return -x; }},
      {"exp", UnaryOp::exp, -10, 10, 0, 0, [](double x) { return std::exp(x); }},
      {"log", UnaryOp::log, 1e-3, 100, 0, 0, [](double x) { return std::log(x); }},
      {"sqrt", UnaryOp::sqrt, 0, 100, 0, 0, [](double x) { return std::sqrt(x); }},
      {"rsqrt", UnaryOp::rsqrt, 1e-2, 100, 0, 0, [](double x) { return 1 / std::sqrt(x); }},
      {"tanh", UnaryOp::tanh, -6, 6, 0, 0, [](double x) { return std::tanh(x); }},
      {"sigmoid", UnaryOp::sigmoid, -30, 30, 0, 0, ref_sigmoid},
      {"relu", UnaryOp::relu, -5, 5, 0, 0, [](double x) { return x > 0 ? x : 0; }},
      {"gelu", UnaryOp::gelu, -6, 6, 0, 0, ref_gelu},
      {"silu", UnaryOp::silu, -20, 20, 0, 0, [](double x) { return x * ref_sigmoid(x); }},
      {"abs", UnaryOp::abs, -5, 5, 0, 0, [](double x) { return std::abs(x); }},
      {"sign", UnaryOp::sign, -5, 5, 0, 0, [](double x) { return double((x > 0) - (x < 0)); }},
      {"gelu_grad", UnaryOp::gelu_grad, -6, 6, 0, 0,
       [](double x) {
         const double k = std::sqrt(2 / M_PI), t = std::tanh(k * (x + 0.044715 * x * x * x));
         return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * k * (1 + 3 * 0.044715 * x * x);
       }},
      {"silu_grad", UnaryOp::silu_grad, -20, 20, 0, 0,
       [](double x) { double s = ref_sigmoid(x); return s + x * s * (1 - s); }},
      {"relu_grad", UnaryOp::relu_grad, -5, 5, 0, 0, [](double x) { return x > 0 ? 1.0 : 0.0; }},
      {"pow_2.5", UnaryOp::pow_scalar, 0, 4, 2.5, 0, [](double x) { return std::pow(x, 2.5); }},
      {"pow_2", UnaryOp::pow_scalar, -4, 4, 2, 0, [](double x) { return x * x; }},
      {"pow_0.5", UnaryOp::pow_scalar, 0, 4, 0.5, 0, [](double x) { return std::sqrt(x); }},
      {"pow_-1", UnaryOp::pow_scalar, 0.1, 4, -1, 0, [](double x) { return 1 / x; }},
      {"add_scalar", UnaryOp::add_scalar, -5, 5, 0.75, 0, [](double x) { return x + 0.75; }},
      {"mul_scalar", UnaryOp::mul_scalar, -5, 5, -1.5, 0, [](double x) { return x * -1.5; }},
      {"rsub_scalar", UnaryOp::rsub_scalar, -5, 5, 2.0, 0, [](double x) { return 2.0 - x; }},
      {"rdiv_scalar", UnaryOp::rdiv_scalar, 0.1, 5, 3.0, 0, [](double x) { return 3.0 / x; }},
      {"clamp", UnaryOp::clamp, -5, 5, -1.0, 2.0, [](double x) { return x < -1 ? -1 : (x > 2 ? 2 : x); }},
      {"log1p", UnaryOp::log1p, -0.9, 10, 0, 0, [](double x) { return std::log1p(x); }},
      {"square", UnaryOp::square, -5, 5, 0, 0, [](double x) { return x * x; }},
      {"reciprocal", UnaryOp::reciprocal, 0.1, 5, 0, 0, [](double x) { return 1 / x; }},
  };
}

template <class T> void check_unary_all() {
  for (const auto &c : unary_cases()) {
    for (int64_t n : {1, 7, 1000, 100003}) {  // 100003 crosses the parallel threshold
      auto x = rand_vec<T>(n, c.lo, c.hi);
      std::vector<T> y(n);
      unary<T>(c.op, x.data(), y.data(), n, c.alpha, c.beta);
      std::vector<double> ref(n);
      for (int64_t i = 0; i < n; ++i) ref[i] = c.ref(double(x[i]));
      EXPECT_TRUE(allclose(y, ref, default_tol<T>())) << std::string(c.name) + " n=" + std::to_string(n);
    }
  }
}

TEST(Unary, EveryOpFloat) { check_unary_all<float>(); }
TEST(Unary, EveryOpDouble) { check_unary_all<double>(); }

TEST(Unary, InPlaceAliasing) {
  auto x = rand_vec<float>(513, -3, 3);
  auto ref = x;
  unary<float>(UnaryOp::mul_scalar, x.data(), x.data(), 513, 2.0);
  for (size_t i = 0; i < x.size(); ++i) EXPECT_EQ(x[i], ref[i] * 2.0f);
}

TEST(Unary, SpecialValues) {
  const double inf = std::numeric_limits<double>::infinity(), nan = std::nan("");
  std::vector<double> x = {-inf, -800, 0, 800, inf};
  std::vector<double> y(x.size());
  unary<double>(UnaryOp::sigmoid, x.data(), y.data(), 5);
  EXPECT_EQ(y[0], 0); EXPECT_EQ(y[1], 0); EXPECT_EQ(y[2], 0.5); EXPECT_EQ(y[3], 1); EXPECT_EQ(y[4], 1);
  std::vector<double> z = {nan, -0.0, 0.0};
  unary<double>(UnaryOp::relu, z.data(), y.data(), 3);
  EXPECT_TRUE(std::isnan(y[0]));
  unary<double>(UnaryOp::sign, z.data(), y.data(), 3);
  EXPECT_TRUE(std::isnan(y[0])); EXPECT_EQ(y[1], 0); EXPECT_EQ(y[2], 0);
}

// Property: every *_grad code is the derivative of its forward code (central differences in double).
TEST(Unary, GradCodesMatchFiniteDifferences) {
  const std::pair<UnaryOp, UnaryOp> pairs[] = {{UnaryOp::gelu, UnaryOp::gelu_grad}, {UnaryOp::silu, UnaryOp::silu_grad}};
  auto x = rand_vec<double>(2001, -6, 6);
  const double h = 1e-5;
  for (auto [f, g] : pairs) {
    std::vector<double> xp(x), xm(x), fp(x.size()), fm(x.size()), dg(x.size());
    for (auto &v : xp) v += h;
    for (auto &v : xm) v -= h;
    unary<double>(f, xp.data(), fp.data(), int64_t(x.size()));
    unary<double>(f, xm.data(), fm.data(), int64_t(x.size()));
    unary<double>(g, x.data(), dg.data(), int64_t(x.size()));
    std::vector<double> fd(x.size());
    for (size_t i = 0; i < x.size(); ++i) fd[i] = (fp[i] - fm[i]) / (2 * h);
    EXPECT_TRUE(allclose(dg, fd, Tol{1e-8, 1e-6})) << "grad code vs finite difference";
  }
}

// --- binary / compare / where with broadcasting ---------------------------------------------

// A random broadcast case: an output shape, and for each input either contiguous strides with
// some dims broadcast (stride 0), or a transposed (non-contiguous) layout of a full-size buffer.
struct BcastCase {
  std::vector<int64_t> shape;
  std::vector<int64_t> sa, sb;
  int64_t na, nb;  // buffer sizes
};

std::vector<int64_t> random_layout(const std::vector<int64_t> &shape, int64_t &buf, bool allow_bcast) {
  const int nd = int(shape.size());
  std::vector<int64_t> st(nd);
  std::uniform_int_distribution<int> coin(0, 3);
  // a permutation of the dims gives the memory order (identity = contiguous)
  std::vector<int> perm(nd);
  for (int d = 0; d < nd; ++d) perm[d] = d;
  if (coin(rng()) == 0) std::shuffle(perm.begin(), perm.end(), rng());
  int64_t s = 1;
  for (int i = nd - 1; i >= 0; --i) {
    int d = perm[i];
    if (allow_bcast && coin(rng()) == 0) { st[d] = 0; continue; }
    st[d] = s;
    s *= shape[d];
  }
  buf = s;
  return st;
}

std::vector<BcastCase> bcast_cases() {
  std::vector<BcastCase> cases;
  std::uniform_int_distribution<int> ndim_d(0, 5), dim_d(1, 6);
  // fixed cases: scalar (0-d), single element, long contiguous (parallel), row + column broadcast
  cases.push_back({{}, {}, {}, 1, 1});
  cases.push_back({{1}, {1}, {0}, 1, 1});
  cases.push_back({{70001}, {1}, {1}, 70001, 70001});
  cases.push_back({{300, 257}, {257, 1}, {0, 1}, 300 * 257, 257});
  cases.push_back({{257, 300}, {1, 0}, {300, 1}, 257, 257 * 300});
  cases.push_back({{3, 1, 5}, {5, 5, 1}, {0, 0, 0}, 15, 1});
  for (int t = 0; t < 60; ++t) {
    BcastCase c;
    int nd = ndim_d(rng());
    for (int d = 0; d < nd; ++d) c.shape.push_back(dim_d(rng()));
    if (t % 10 == 0 && nd > 0) c.shape[0] = 1031;  // some big ones to run the threaded path
    c.sa = random_layout(c.shape, c.na, true);
    c.sb = random_layout(c.shape, c.nb, true);
    cases.push_back(c);
  }
  return cases;
}

template <class T> void check_binary_all() {
  const std::pair<BinaryOp, std::function<double(double, double)>> ops[] = {
      {BinaryOp::add, [](double a, double b) { return a + b; }},
      {BinaryOp::sub, [](double a, double b) { return a - b; }},
      {BinaryOp::mul, [](double a, double b) { return a * b; }},
      {BinaryOp::div, [](double a, double b) { return a / b; }},
      {BinaryOp::pow, [](double a, double b) { return std::pow(a, b); }},
      {BinaryOp::maximum, [](double a, double b) { return std::max(a, b); }},
      {BinaryOp::minimum, [](double a, double b) { return std::min(a, b); }},
  };
  for (const auto &c : bcast_cases()) {
    auto a = rand_vec<T>(c.na, 0.5, 3), b = rand_vec<T>(c.nb, 0.5, 3);  // positive: pow and div stay finite
    const int64_t n = numel(c.shape);
    for (const auto &[op, f] : ops) {
      std::vector<T> out(n);
      binary<T>(op, int(c.shape.size()), c.shape.data(), a.data(), c.sa.data(), b.data(), c.sb.data(), out.data());
      std::vector<double> ref(n);
      for (int64_t i = 0; i < n; ++i)
        ref[i] = f(double(a[offset_of(i, c.shape, c.sa)]), double(b[offset_of(i, c.shape, c.sb)]));
      EXPECT_TRUE(allclose(out, ref, default_tol<T>())) << "binary op " + std::to_string(int(op)) + " ndim " + std::to_string(c.shape.size());
    }
  }
}

TEST(Binary, BroadcastStridesFloat) { check_binary_all<float>(); }
TEST(Binary, BroadcastStridesDouble) { check_binary_all<double>(); }

TEST(Binary, MaximumMinimumPropagateNaN) {
  const int64_t shape[1] = {2}, st[1] = {1};
  double a[2] = {std::nan(""), 1.0}, b[2] = {1.0, std::nan("")}, out[2];
  binary<double>(BinaryOp::maximum, 1, shape, a, st, b, st, out);
  EXPECT_TRUE(std::isnan(out[0]) && std::isnan(out[1]));
  binary<double>(BinaryOp::minimum, 1, shape, a, st, b, st, out);
  EXPECT_TRUE(std::isnan(out[0]) && std::isnan(out[1]));
}

template <class T> void check_compare_where() {
  const std::pair<CompareOp, std::function<bool(double, double)>> ops[] = {
      {CompareOp::eq, [](double a, double b) { return a == b; }}, {CompareOp::ne, [](double a, double b) { return a != b; }},
      {CompareOp::lt, [](double a, double b) { return a < b; }},  {CompareOp::le, [](double a, double b) { return a <= b; }},
      {CompareOp::gt, [](double a, double b) { return a > b; }},  {CompareOp::ge, [](double a, double b) { return a >= b; }},
  };
  std::uniform_int_distribution<int> small(0, 3);
  for (const auto &c : bcast_cases()) {
    // small integers so that ties (eq, le, ge) actually occur
    std::vector<T> a(c.na), b(c.nb);
    for (auto &v : a) v = T(small(rng()));
    for (auto &v : b) v = T(small(rng()));
    const int64_t n = numel(c.shape);
    const int nd = int(c.shape.size());
    for (const auto &[op, f] : ops) {
      std::vector<uint8_t> out(n, 7);
      compare<T>(op, nd, c.shape.data(), a.data(), c.sa.data(), b.data(), c.sb.data(), out.data());
      for (int64_t i = 0; i < n; ++i) {
        bool ref = f(double(a[offset_of(i, c.shape, c.sa)]), double(b[offset_of(i, c.shape, c.sb)]));
        ASSERT_EQ(out[i], uint8_t(ref)) << "compare op " << int(op) << " element " << i;
      }
    }
    // where: the condition gets its own random layout
    int64_t nc;
    auto sc = random_layout(c.shape, nc, true);
    std::vector<uint8_t> cond(nc);
    for (auto &v : cond) v = uint8_t(small(rng()) & 1);
    std::vector<T> out(n);
    where<T>(nd, c.shape.data(), cond.data(), sc.data(), a.data(), c.sa.data(), b.data(), c.sb.data(), out.data());
    for (int64_t i = 0; i < n; ++i) {
      T ref = cond[offset_of(i, c.shape, sc)] ? a[offset_of(i, c.shape, c.sa)] : b[offset_of(i, c.shape, c.sb)];
      ASSERT_EQ(out[i], ref) << "where element " << i;
    }
  }
}

TEST(Compare, AllOpsAndWhereFloat) { check_compare_where<float>(); }
TEST(Compare, AllOpsAndWhereDouble) { check_compare_where<double>(); }

// --- copy_strided, cast, fill, arange -------------------------------------------------------

template <class T> void check_copy_strided() {
  std::uniform_int_distribution<int> ndim_d(0, 5), dim_d(1, 7), val(0, 120);
  for (int t = 0; t < 80; ++t) {
    std::vector<int64_t> shape;
    int nd = ndim_d(rng());
    for (int d = 0; d < nd; ++d) shape.push_back(dim_d(rng()));
    if (t % 20 == 0 && nd > 0) shape[nd - 1] = 40000;  // threaded path
    int64_t buf;
    std::vector<int64_t> st = random_layout(shape, buf, true);
    // every third case: a slice with a step of 2 or 3 in the innermost dim
    if (t % 3 == 1 && nd > 0 && st[nd - 1] != 0) {
      int64_t step = 2 + t % 2;
      for (auto &s : st) s *= step;
      buf = buf * step;
    }
    std::vector<T> src(buf);
    for (auto &v : src) v = T(val(rng()));
    const int64_t n = numel(shape);
    std::vector<T> dst(n);
    copy_strided<T>(nd, shape.data(), src.data(), st.data(), dst.data());
    for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dst[i], src[offset_of(i, shape, st)]) << "case " << t << " element " << i;
  }
  // a negative stride (a flipped view): the pointer is at the last element of the dim
  std::vector<T> src = {T(1), T(2), T(3), T(4), T(5), T(6)};
  const int64_t shape[2] = {2, 3}, st[2] = {3, -1};
  std::vector<T> dst(6);
  copy_strided<T>(2, shape, src.data() + 2, st, dst.data());
  EXPECT_EQ(dst, (std::vector<T>{T(3), T(2), T(1), T(6), T(5), T(4)}));
}

TEST(CopyStrided, Float) { check_copy_strided<float>(); }
TEST(CopyStrided, Double) { check_copy_strided<double>(); }
TEST(CopyStrided, Int32) { check_copy_strided<int32_t>(); }
TEST(CopyStrided, Int64) { check_copy_strided<int64_t>(); }
TEST(CopyStrided, Uint8) { check_copy_strided<uint8_t>(); }

template <class S, class D> void check_cast_pair() {
  // integers 0..200 are exact in every type; the float -> int cases also truncate toward zero
  const int64_t n = 70001;
  std::vector<S> src(n);
  for (int64_t i = 0; i < n; ++i) src[i] = S(i % 201);
  std::vector<D> dst(n);
  cast<S, D>(src.data(), dst.data(), n);
  for (int64_t i = 0; i < n; ++i) ASSERT_EQ(dst[i], D(i % 201)) << i;
  if constexpr (std::is_floating_point_v<S> && std::is_integral_v<D> && std::is_signed_v<D>) {
    S s[3] = {S(2.7), S(-2.7), S(-0.5)};
    D d[3];
    cast<S, D>(s, d, 3);
    EXPECT_EQ(d[0], D(2)); EXPECT_EQ(d[1], D(-2)); EXPECT_EQ(d[2], D(0));
  }
}
template <class S> void check_cast_from() {
  check_cast_pair<S, float>();
  check_cast_pair<S, double>();
  check_cast_pair<S, int32_t>();
  check_cast_pair<S, int64_t>();
  check_cast_pair<S, uint8_t>();
}
TEST(Cast, AllPairs) {
  check_cast_from<float>();
  check_cast_from<double>();
  check_cast_from<int32_t>();
  check_cast_from<int64_t>();
  check_cast_from<uint8_t>();
}
TEST(Cast, FloatToDoubleIsExactAndBackRounds) {
  float f = 0.1f;
  double d;
  cast<float, double>(&f, &d, 1);
  EXPECT_EQ(d, double(0.1f));
  double e = 0.1;
  cast<double, float>(&e, &f, 1);
  EXPECT_EQ(f, 0.1f);
}

template <class T> void check_fill() {
  for (int64_t n : {1, 5, 100003}) {
    std::vector<T> v(n + 2, T(9));
    fill<T>(v.data() + 1, n, T(3));
    EXPECT_EQ(v[0], T(9));
    EXPECT_EQ(v[n + 1], T(9));
    for (int64_t i = 1; i <= n; ++i) ASSERT_EQ(v[i], T(3));
  }
}
TEST(Fill, AllTypes) {
  check_fill<float>(); check_fill<double>(); check_fill<int32_t>(); check_fill<int64_t>(); check_fill<uint8_t>();
}

TEST(Arange, AllTypes) {
  {
    std::vector<float> v(100003);
    arange<float>(v.data(), int64_t(v.size()), -1.0, 0.1);
    for (size_t i = 0; i < v.size(); ++i) ASSERT_EQ(v[i], float(-1.0 + double(i) * 0.1)) << i;
  }
  {
    std::vector<double> v(11);
    arange<double>(v.data(), 11, 0.0, 0.1);
    for (int i = 0; i < 11; ++i) EXPECT_EQ(v[i], double(i) * 0.1);
  }
  {
    std::vector<int32_t> v(7);
    arange<int32_t>(v.data(), 7, 3, -2);
    EXPECT_EQ(v, (std::vector<int32_t>{3, 1, -1, -3, -5, -7, -9}));
  }
  {
    std::vector<int64_t> v(5);
    arange<int64_t>(v.data(), 5, 0, 1);
    EXPECT_EQ(v, (std::vector<int64_t>{0, 1, 2, 3, 4}));
  }
}

// --- Philox random fills --------------------------------------------------------------------

TEST(Random, UniformMatchesPhiloxElementwiseAndScales) {
  for (int64_t n : {1, 3, 4, 5, 100001}) {
    std::vector<float> f(n);
    std::vector<double> d(n);
    uniform<float>(f.data(), n, 42, 7, -2.0, 3.0);
    uniform<double>(d.data(), n, 42, 7, -2.0, 3.0);
    for (int64_t i = 0; i < n; ++i) {
      const double u = philox_uniform(42, 7, uint64_t(i));
      ASSERT_EQ(d[i], -2.0 + 5.0 * u) << i;
      ASSERT_EQ(f[i], float(-2.0 + 5.0 * u)) << i;
    }
  }
}

TEST(Random, UniformInUnitIntervalWithMeanHalf) {
  const int64_t n = 100000;
  std::vector<double> u(n);
  uniform<double>(u.data(), n, 2024, 0, 0.0, 1.0);
  double mean = 0, var = 0;
  for (double x : u) {
    ASSERT_GE(x, 0.0);
    ASSERT_LT(x, 1.0);
    mean += x;
  }
  mean /= n;
  for (double x : u) var += (x - mean) * (x - mean);
  var /= n;
  // std error of the mean is sqrt(1/12/n) ~ 9e-4: 5 sigma
  EXPECT_NEAR(mean, 0.5, 5e-3);
  EXPECT_NEAR(var, 1.0 / 12, 2e-3);
}

TEST(Random, NormalMomentsAndMatchesPhilox) {
  const int64_t n = 100000;
  std::vector<double> z(n);
  normal<double>(z.data(), n, 99, 3, 0.0, 1.0);
  double mean = 0, var = 0;
  for (int64_t i = 0; i < n; ++i) {
    ASSERT_EQ(z[i], double(philox_normal(99, 3, uint64_t(i))));
    mean += z[i];
  }
  mean /= n;
  for (double x : z) var += (x - mean) * (x - mean);
  const double sd = std::sqrt(var / n);
  EXPECT_NEAR(mean, 0.0, 0.02);  // std error 3.2e-3
  EXPECT_NEAR(sd, 1.0, 0.02);
  std::vector<float> f(1001);
  normal<float>(f.data(), 1001, 99, 3, 2.0, 0.5);
  for (int64_t i = 0; i < 1001; ++i) ASSERT_EQ(f[i], float(2.0 + 0.5 * double(philox_normal(99, 3, uint64_t(i)))));
}

TEST(Random, SameSeedAndOffsetSameStreamOtherwiseDifferent) {
  const int64_t n = 4099;
  std::vector<float> a(n), b(n), c(n), d(n);
  uniform<float>(a.data(), n, 5, 10, 0, 1);
  uniform<float>(b.data(), n, 5, 10, 0, 1);
  uniform<float>(c.data(), n, 6, 10, 0, 1);
  uniform<float>(d.data(), n, 5, 11, 0, 1);
  EXPECT_EQ(a, b);
  int same_c = 0, same_d = 0;
  for (int64_t i = 0; i < n; ++i) { same_c += a[i] == c[i]; same_d += a[i] == d[i]; }
  EXPECT_LT(same_c, 5);
  EXPECT_LT(same_d, 5);
  std::vector<float> z1(n), z2(n);
  normal<float>(z1.data(), n, 5, 10, 0, 1);
  normal<float>(z2.data(), n, 5, 10, 0, 1);
  EXPECT_EQ(z1, z2);
}

// The offset counts Philox blocks of 4 uniforms: the stream at offset k/4 is the tail of the stream
// at offset 0 from element k, for k a multiple of 4.
TEST(Random, OffsetSkipsWholeBlocks) {
  const int64_t n = 1000;
  std::vector<float> s0(n);
  uniform<float>(s0.data(), n, 77, 0, 0, 1);
  for (int64_t k : {4, 8, 400}) {
    std::vector<float> sk(n - k);
    uniform<float>(sk.data(), n - k, 77, uint64_t(k / 4), 0, 1);
    for (int64_t i = 0; i < n - k; ++i) ASSERT_EQ(sk[i], s0[k + i]) << "k=" << k << " i=" << i;
  }
}

// --- reductions -----------------------------------------------------------------------------

template <class T> void check_reduce() {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 7}, {5, 1}, {3, 1001}, {129, 257}, {2048, 33}, {2, 100003}};
  for (auto [rows, cols] : shapes) {
    auto x = rand_vec<T>(rows * cols, -10, 10);
    std::vector<T> out(rows);
    std::vector<double> rs(rows), rmax(rows), rmin(rows), rlse(rows), rabs(rows);
    for (int64_t r = 0; r < rows; ++r) {
      long double s = 0, sabs = 0;  // long double: the reference's own rounding stays negligible
      double mx = -INFINITY, mn = INFINITY;
      for (int64_t j = 0; j < cols; ++j) {
        double v = x[r * cols + j];
        s += v; sabs += std::abs(v); mx = std::max(mx, v); mn = std::min(mn, v);
      }
      double e = 0;
      for (int64_t j = 0; j < cols; ++j) e += std::exp(double(x[r * cols + j]) - mx);
      rs[r] = double(s); rabs[r] = double(sabs); rmax[r] = mx; rmin[r] = mn; rlse[r] = mx + std::log(e);
    }
    const std::string shp = std::to_string(rows) + "x" + std::to_string(cols);
    // Sums of mixed-sign values can cancel, so the error is measured against sum |x| (the scale
    // of the rounding errors of any summation order), not against |sum x|.
    const double eps = std::numeric_limits<double>::epsilon();
    reduce_rows<T>(ReduceOp::sum, x.data(), rows, cols, out.data());
    for (int64_t r = 0; r < rows; ++r)
      ASSERT_TRUE(isclose(double(out[r]), rs[r], Tol{4 * eps * rabs[r], default_tol<T>().rtol})) << "sum " << shp << " row " << r;
    reduce_rows<T>(ReduceOp::max, x.data(), rows, cols, out.data());
    EXPECT_TRUE(allclose(out, rmax, Tol{0, 0})) << "max " + shp;
    reduce_rows<T>(ReduceOp::min, x.data(), rows, cols, out.data());
    EXPECT_TRUE(allclose(out, rmin, Tol{0, 0})) << "min " + shp;
    reduce_rows<T>(ReduceOp::logsumexp, x.data(), rows, cols, out.data());
    EXPECT_TRUE(allclose(out, rlse, default_tol<T>())) << "logsumexp " + shp;
  }
}

TEST(Reduce, AllOpsFloat) { check_reduce<float>(); }
TEST(Reduce, AllOpsDouble) { check_reduce<double>(); }

// Float sums accumulate in double: 1e6 copies of 0.1f sum to 1e6 * 0.1f to within double rounding,
// where a float accumulator is off by ~1%.
TEST(Reduce, FloatSumAccumulatesInDouble) {
  const int64_t n = 1000000;
  std::vector<float> x(n, 0.1f);
  float s;
  reduce_rows<float>(ReduceOp::sum, x.data(), 1, n, &s);
  EXPECT_EQ(s, float(double(0.1f) * n));
}

TEST(Reduce, LogSumExpIsStable) {
  std::vector<float> x = {1000.f, 1000.f, -1000.f, 88.f, 89.f, 90.f};
  float out[2];
  reduce_rows<float>(ReduceOp::logsumexp, x.data(), 2, 3, out);
  EXPECT_NEAR(out[0], 1000.0 + std::log(2.0), 1e-3);
  EXPECT_NEAR(out[1], 90.0 + std::log(1 + std::exp(-1.0) + std::exp(-2.0)), 1e-4);
  const float ninf = -std::numeric_limits<float>::infinity();
  std::vector<float> y = {ninf, ninf};
  reduce_rows<float>(ReduceOp::logsumexp, y.data(), 1, 2, out);
  EXPECT_EQ(out[0], ninf);
}

TEST(Reduce, MaxPropagatesNaN) {
  std::vector<double> x = {1, std::nan(""), 3};
  double out;
  reduce_rows<double>(ReduceOp::max, x.data(), 1, 3, &out);
  EXPECT_TRUE(std::isnan(out));
  reduce_rows<double>(ReduceOp::min, x.data(), 1, 3, &out);
  EXPECT_TRUE(std::isnan(out));
}

template <class T> void check_argmax() {
  // small integer values make ties common: the first maximum must win
  std::uniform_int_distribution<int> small(0, 4);
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {7, 3}, {300, 257}, {3, 50001}};
  for (auto [rows, cols] : shapes) {
    std::vector<T> x(rows * cols);
    for (auto &v : x) v = T(small(rng()));
    std::vector<int64_t> out(rows);
    argmax_rows<T>(x.data(), rows, cols, out.data());
    for (int64_t r = 0; r < rows; ++r) {
      int64_t best = 0;
      for (int64_t j = 1; j < cols; ++j)
        if (x[r * cols + j] > x[r * cols + best]) best = j;
      ASSERT_EQ(out[r], best) << "row " << r;
    }
  }
}
TEST(Reduce, ArgmaxFirstMaxWinsFloat) { check_argmax<float>(); }
TEST(Reduce, ArgmaxFirstMaxWinsDouble) { check_argmax<double>(); }

}  // namespace

// Column sums (the leading-dims fast path of sum): against a long-double reference, shapes that
// cover partial column blocks, a single row/column and the parallel threshold.
template <class T> void check_reduce_cols() {
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 7}, {5, 1}, {3, 1001}, {129, 257}, {2048, 384}, {100003, 2}, {0, 5}};
  const double eps = std::numeric_limits<double>::epsilon();
  for (auto [rows, cols] : shapes) {
    auto x = rand_vec<T>(rows * cols, -10, 10);
    std::vector<T> out(cols, T(-1));
    reduce_cols_sum<T>(x.data(), rows, cols, out.data());
    const std::string shp = std::to_string(rows) + "x" + std::to_string(cols);
    for (int64_t c = 0; c < cols; ++c) {
      long double s = 0, sabs = 0;
      for (int64_t r = 0; r < rows; ++r) { s += x[r * cols + c]; sabs += std::abs((long double)x[r * cols + c]); }
      ASSERT_TRUE(isclose(double(out[c]), double(s), Tol{4 * eps * double(sabs), default_tol<T>().rtol}))
          << "col sum " << shp << " col " << c << ": " << out[c] << " vs " << double(s);
    }
    // Deterministic: the same bits on a second call.
    std::vector<T> again(cols);
    reduce_cols_sum<T>(x.data(), rows, cols, again.data());
    ASSERT_EQ(0, std::memcmp(out.data(), again.data(), cols * sizeof(T))) << shp;
  }
}

TEST(Reduce, ColumnSumsFloat) { check_reduce_cols<float>(); }
TEST(Reduce, ColumnSumsDouble) { check_reduce_cols<double>(); }

// --- the vectorisable float exp (kernels/cpu/fast_math.h) -------------------------------------

// Dense sweep of every float step of 2^-10 relative spacing over the useful range, plus the
// neighbours of the overflow/underflow thresholds: |rel err| <= 2e-7 against double exp wherever
// the result is a normal float, within one denormal step below, and the exact limits outside.
TEST(FastExp, MatchesStdExpOverADenseSweep) {
  double worst = 0;
  float worst_x = 0;
  int64_t count = 0;
  auto check = [&](float x) {
    const float got = nanorlhf::kernels::cpu::fast_expf(x);
    const double ref = std::exp(double(x));
    ++count;
    if (ref > double(std::numeric_limits<float>::max())) {
      ASSERT_EQ(got, INFINITY) << "x=" << x;
    } else if (ref >= double(std::numeric_limits<float>::min())) {
      const double rel = std::abs(double(got) - ref) / ref;
      if (rel > worst) { worst = rel; worst_x = x; }
      ASSERT_LE(rel, 2e-7) << "x=" << x << " got " << got << " ref " << ref;
    } else {
      ASSERT_LE(std::abs(double(got) - ref), double(std::numeric_limits<float>::denorm_min())) << "x=" << x;
    }
  };
  // Every float in [-1, 1] would be 2e9 values; step through the bit patterns instead (every 16th
  // float of each sign between 1e-8 and 110), and all floats of [-0.36, 0.36] stepped by 2^-24.
  for (float sign : {1.0f, -1.0f})
    for (uint32_t bits = std::bit_cast<uint32_t>(1e-8f); bits <= std::bit_cast<uint32_t>(110.0f); bits += 16)
      check(sign * std::bit_cast<float>(bits));
  for (float x = -0.36f; x < 0.36f; x += 1.0f / (1 << 24)) check(x);
  for (float x : {0.0f, -0.0f, 88.72283f, 88.72284f, -87.33654f, -87.33655f, -103.9f, -103.98f, -104.0f, -149.0f, 200.0f})
    check(x);
  EXPECT_GT(count, 40000000);
  std::printf("fast_expf: worst relative error %.3g at x = %.9g over %lld values\n", worst, worst_x, (long long)count);
}

// The same sweep through the exp kernel, whose loop may be the AVX-512 build (where the compiler
// fuses multiply-adds, so its values can differ from fast_expf's by an ulp).
TEST(FastExp, ExpKernelMatchesStdExp) {
  std::vector<float> x;
  for (float sign : {1.0f, -1.0f})
    for (uint32_t bits = std::bit_cast<uint32_t>(1e-8f); bits <= std::bit_cast<uint32_t>(87.0f); bits += 16)
      x.push_back(sign * std::bit_cast<float>(bits));
  std::vector<float> y(x.size());
  unary<float>(UnaryOp::exp, x.data(), y.data(), (int64_t)x.size());
  std::vector<double> ref(x.size());
  for (size_t i = 0; i < x.size(); ++i) ref[i] = std::exp(double(x[i]));
  ASSERT_TRUE(allclose(y, ref, {.atol = 0, .rtol = 2e-7}));
  const float special[] = {INFINITY, -INFINITY, NAN, 89.0f, -110.0f, 0.0f};
  float out[6];
  unary<float>(UnaryOp::exp, special, out, 6);
  EXPECT_EQ(out[0], INFINITY);
  EXPECT_EQ(out[1], 0.0f);
  EXPECT_TRUE(std::isnan(out[2]));
  EXPECT_EQ(out[3], INFINITY);
  EXPECT_EQ(out[4], 0.0f);
  EXPECT_EQ(out[5], 1.0f);
}

TEST(FastExp, Limits) {
  using nanorlhf::kernels::cpu::fast_expf;
  EXPECT_EQ(fast_expf(0.0f), 1.0f);
  EXPECT_EQ(fast_expf(-0.0f), 1.0f);
  EXPECT_EQ(fast_expf(INFINITY), INFINITY);
  EXPECT_EQ(fast_expf(-INFINITY), 0.0f);
  EXPECT_EQ(fast_expf(89.0f), INFINITY);
  EXPECT_EQ(fast_expf(std::numeric_limits<float>::max()), INFINITY);
  EXPECT_EQ(fast_expf(-std::numeric_limits<float>::max()), 0.0f);
  EXPECT_EQ(fast_expf(-110.0f), 0.0f);
  EXPECT_GT(fast_expf(-100.0f), 0.0f);  // gradual underflow: a denormal, not 0
  EXPECT_TRUE(std::isnan(fast_expf(NAN)));
  EXPECT_TRUE(std::isnan(fast_expf(-NAN)));
  EXPECT_FLOAT_EQ(fast_expf(1.0f), 2.7182817f);
}

// The vectorised loops (gelu, sigmoid, exp) give the same values whatever the split: each element
// alone through the kernel equals the element computed inside a long run.
TEST(FastExp, KernelsDoNotDependOnLoopSplit) {
  auto x = rand_vec<float>(100003, -30, 30);
  for (UnaryOp op : {UnaryOp::exp, UnaryOp::gelu, UnaryOp::gelu_grad, UnaryOp::sigmoid, UnaryOp::silu}) {
    std::vector<float> y(x.size());
    unary<float>(op, x.data(), y.data(), (int64_t)x.size());
    if (op == UnaryOp::exp) {  // the kernel's loop (AVX-512 with FMA where the CPU has it) is as accurate
      std::vector<double> ref(x.size());
      for (size_t i = 0; i < x.size(); ++i) ref[i] = std::exp(double(x[i]));
      ASSERT_TRUE(allclose(y, ref, {.atol = 0, .rtol = 2e-7}));
    }
    for (size_t i = 0; i < x.size(); i += 997) {
      float yi;
      unary<float>(op, &x[i], &yi, 1);
      ASSERT_EQ(std::bit_cast<uint32_t>(yi), std::bit_cast<uint32_t>(y[i])) << "op " << int(op) << " i " << i;
    }
  }
}

// The fused activation backward g * f'(x) equals the two-step product (f'(x), then a multiply)
// within one rounding, for both dtypes, on both sides of the parallel threshold.
template <class T> void check_unary_grad_mul() {
  for (int64_t n : {int64_t(1), int64_t(37), int64_t(100003)}) {
    auto x = rand_vec<T>(n, -8, 8), g = rand_vec<T>(n, -2, 2);
    for (UnaryOp op : {UnaryOp::gelu_grad, UnaryOp::silu_grad, UnaryOp::relu_grad}) {
      std::vector<T> fused(n), d(n);
      unary_grad_mul<T>(op, g.data(), x.data(), fused.data(), n);
      unary<T>(op, x.data(), d.data(), n);
      std::vector<double> ref(n);
      for (int64_t i = 0; i < n; ++i) ref[i] = double(g[i]) * double(d[i]);
      const double eps4 = 4 * std::numeric_limits<T>::epsilon();
      ASSERT_TRUE(allclose(fused, ref, {.atol = eps4 * 1e-30, .rtol = eps4})) << "op " << int(op) << " n " << n;
    }
  }
}
TEST(Unary, FusedGradTimesDerivativeFloat) { check_unary_grad_mul<float>(); }
TEST(Unary, FusedGradTimesDerivativeDouble) { check_unary_grad_mul<double>(); }
