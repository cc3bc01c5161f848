// Tests of the CPU fused nn kernels (kernels/cpu/nn_kernels.h): forward against naive references in
// double, backward against the analytic formula and against central finite differences in double,
// and property tests (softmax rows sum to 1, layer_norm output has mean 0 and variance 1, ...).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "tolerance.h"
#include "kernels/cpu/nn_kernels.h"

using namespace nanorlhf::kernels::cpu;

namespace {

// Tolerances (the policy, |got - ref| <= atol + rtol * |ref|, is tests/tolerance.h's):
// float kernels against double references: atol 1e-6, rtol 1e-5 (a few float ulps after exp/log);
// double kernels: atol 1e-12, rtol 1e-10 (row sums of a few thousand terms).
// Finite differences (central, h = 1e-6, in double) carry O(h^2) truncation and O(eps/h) rounding
// error, so gradients are compared to them with atol 1e-7, rtol 1e-6.
using nr_test::allclose;
using nr_test::isclose;
using nr_test::Tol;
template <class T> constexpr Tol default_tol() {
  return std::is_same_v<T, float> ? Tol{1e-6, 1e-5} : Tol{1e-12, 1e-10};
}
constexpr Tol kFdTol{1e-7, 1e-6};

std::mt19937_64 &rng() {
  static std::mt19937_64 g(4321);
  return g;
}
template <class T> std::vector<T> rand_vec(int64_t n, double lo, double hi) {
  std::uniform_real_distribution<double> d(lo, hi);
  std::vector<T> v(n);
  for (auto &x : v) x = T(d(rng()));
  return v;
}
template <class T> std::vector<double> to_double(const std::vector<T> &v) { return {v.begin(), v.end()}; }

// Central differences of a scalar function f at x, one coordinate at a time (all coordinates:
// the inputs here are small).
std::vector<double> finite_diff(const std::function<double(const std::vector<double> &)> &f, std::vector<double> x) {
  const double h = 1e-6;
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double x0 = x[i];
    x[i] = x0 + h;
    const double fp = f(x);
    x[i] = x0 - h;
    const double fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}
double dot(const std::vector<double> &a, const std::vector<double> &b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += a[i] * b[i];
  return s;
}

const std::pair<int64_t, int64_t> kRowShapes[] = {{1, 1}, {1, 7}, {3, 1}, {5, 33}, {64, 1000}, {300, 257}, {2, 50257}};

// --- softmax --------------------------------------------------------------------------------

std::vector<double> ref_softmax(const std::vector<double> &x, int64_t rows, int64_t cols) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < cols; ++j) m = std::max(m, x[r * cols + j]);
    for (int64_t j = 0; j < cols; ++j) s += std::exp(x[r * cols + j] - m);
    for (int64_t j = 0; j < cols; ++j) y[r * cols + j] = std::exp(x[r * cols + j] - m) / s;
  }
  return y;
}

template <class T> void check_softmax() {
  for (auto [rows, cols] : kRowShapes) {
    const std::string shp = std::to_string(rows) + "x" + std::to_string(cols);
    auto x = rand_vec<T>(rows * cols, -8, 8);
    auto ref = ref_softmax(to_double(x), rows, cols);
    std::vector<T> y(x.size()), ly(x.size());
    softmax_forward<T>(x.data(), y.data(), rows, cols);
    EXPECT_TRUE(allclose(y, ref, default_tol<T>())) << "softmax " + shp;
    log_softmax_forward<T>(x.data(), ly.data(), rows, cols);
    std::vector<double> lref(ref.size());
    for (size_t i = 0; i < ref.size(); ++i) lref[i] = std::log(ref[i]);
    EXPECT_TRUE(allclose(ly, lref, default_tol<T>())) << "log_softmax = log(softmax) " + shp;
    for (int64_t r = 0; r < rows; ++r) {  // property: every row sums to 1
      double s = 0;
      for (int64_t j = 0; j < cols; ++j) s += y[r * cols + j];
      const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-12;
      ASSERT_NEAR(s, 1.0, tol) << shp << " row " << r;
    }
    // backward against the closed forms evaluated in double
    auto dy = rand_vec<T>(rows * cols, -1, 1);
    std::vector<T> dx(x.size());
    softmax_backward<T>(y.data(), dy.data(), dx.data(), rows, cols);
    std::vector<double> dref(x.size()), ldref(x.size());
    for (int64_t r = 0; r < rows; ++r) {
      double d = 0, s = 0;
      for (int64_t j = 0; j < cols; ++j) { d += double(dy[r * cols + j]) * double(y[r * cols + j]); s += dy[r * cols + j]; }
      for (int64_t j = 0; j < cols; ++j) {
        const int64_t i = r * cols + j;
        dref[i] = double(y[i]) * (double(dy[i]) - d);
        ldref[i] = double(dy[i]) - std::exp(double(ly[i])) * s;
      }
    }
    EXPECT_TRUE(allclose(dx, dref, default_tol<T>())) << "softmax_backward " + shp;
    log_softmax_backward<T>(ly.data(), dy.data(), dx.data(), rows, cols);
    EXPECT_TRUE(allclose(dx, ldref, default_tol<T>())) << "log_softmax_backward " + shp;
  }
}
TEST(Softmax, ForwardBackwardFloat) { check_softmax<float>(); }
TEST(Softmax, ForwardBackwardDouble) { check_softmax<double>(); }

TEST(Softmax, StableForHugeLogits) {
  std::vector<float> x = {1000.f, 1000.f, -1000.f, -1e30f}, y(4), ly(4);
  softmax_forward<float>(x.data(), y.data(), 1, 4);
  EXPECT_FLOAT_EQ(y[0], 0.5f);
  EXPECT_FLOAT_EQ(y[1], 0.5f);
  EXPECT_EQ(y[2], 0.f);
  log_softmax_forward<float>(x.data(), ly.data(), 1, 4);
  EXPECT_NEAR(ly[0], -std::log(2.0), 1e-6);
  EXPECT_TRUE(std::isfinite(ly[2]));
}

// Backward as the derivative of the forward: d/dx sum(c * f(x)) by finite differences.
TEST(Softmax, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 3, cols = 6;
  auto x = rand_vec<double>(rows * cols, -3, 3), c = rand_vec<double>(rows * cols, -1, 1);
  for (bool log_form : {false, true}) {
    auto f = [&](const std::vector<double> &xx) {
      std::vector<double> y(xx.size());
      if (log_form) log_softmax_forward<double>(xx.data(), y.data(), rows, cols);
      else softmax_forward<double>(xx.data(), y.data(), rows, cols);
      return dot(c, y);
    };
    std::vector<double> y(x.size()), dx(x.size());
    if (log_form) {
      log_softmax_forward<double>(x.data(), y.data(), rows, cols);
      log_softmax_backward<double>(y.data(), c.data(), dx.data(), rows, cols);
    } else {
      softmax_forward<double>(x.data(), y.data(), rows, cols);
      softmax_backward<double>(y.data(), c.data(), dx.data(), rows, cols);
    }
    EXPECT_TRUE(allclose(dx, finite_diff(f, x), kFdTol)) << (log_form ? "log_softmax fd" : "softmax fd");
  }
}

// --- layer norm -----------------------------------------------------------------------------

template <class T> void check_layer_norm() {
  const double eps = 1e-5;
  for (auto [rows, cols] : kRowShapes) {
    const std::string shp = std::to_string(rows) + "x" + std::to_string(cols);
    auto x = rand_vec<T>(rows * cols, -3, 5);
    auto w = rand_vec<T>(cols, 0.5, 1.5), b = rand_vec<T>(cols, -1, 1);
    for (int variant = 0; variant < 4; ++variant) {  // weight/bias present or null
      const T *pw = variant & 1 ? w.data() : nullptr, *pb = variant & 2 ? b.data() : nullptr;
      std::vector<T> y(x.size()), mean(rows), rstd(rows);
      layer_norm_forward<T>(x.data(), pw, pb, y.data(), mean.data(), rstd.data(), rows, cols, eps);
      std::vector<double> yref(x.size()), mref(rows), rref(rows);
      for (int64_t r = 0; r < rows; ++r) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < cols; ++j) mu += x[r * cols + j];
        mu /= cols;
        for (int64_t j = 0; j < cols; ++j) var += (x[r * cols + j] - mu) * (x[r * cols + j] - mu);
        var /= cols;
        mref[r] = mu;
        rref[r] = 1 / std::sqrt(var + eps);
        for (int64_t j = 0; j < cols; ++j)
          yref[r * cols + j] = (x[r * cols + j] - mu) * rref[r] * (pw ? double(w[j]) : 1.0) + (pb ? double(b[j]) : 0.0);
      }
      const std::string what = shp + " variant " + std::to_string(variant);
      EXPECT_TRUE(allclose(mean, mref, default_tol<T>())) << "layer_norm mean " + what;
      // rstd of a 1-column row is 1/sqrt(eps) ~ 316: relative tolerance carries it
      EXPECT_TRUE(allclose(rstd, rref, default_tol<T>())) << "layer_norm rstd " + what;
      EXPECT_TRUE(allclose(y, yref, Tol{default_tol<T>().atol * 10, default_tol<T>().rtol})) << "layer_norm y " + what;

      // backward vs the closed form in double, computed from the kernel's saved mean/rstd
      auto dy = rand_vec<T>(rows * cols, -1, 1);
      std::vector<T> dx(x.size()), dw(cols), db(cols);
      layer_norm_backward<T>(dy.data(), x.data(), pw, mean.data(), rstd.data(), dx.data(), dw.data(), db.data(), rows, cols);
      std::vector<double> dxr(x.size()), dwr(cols, 0.0), dbr(cols, 0.0);
      for (int64_t r = 0; r < rows; ++r) {
        double sg = 0, sgx = 0;
        const double m = mean[r], rs = rstd[r];
        for (int64_t j = 0; j < cols; ++j) {
          const double xh = (x[r * cols + j] - m) * rs, g = dy[r * cols + j] * (pw ? double(w[j]) : 1.0);
          sg += g; sgx += g * xh;
          dwr[j] += dy[r * cols + j] * xh;
          dbr[j] += dy[r * cols + j];
        }
        for (int64_t j = 0; j < cols; ++j) {
          const double xh = (x[r * cols + j] - m) * rs, g = dy[r * cols + j] * (pw ? double(w[j]) : 1.0);
          dxr[r * cols + j] = rs * (g - sg / cols - xh * sgx / cols);
        }
      }
      // dx of a row is a difference of O(1) terms times rstd: atol scales with rstd (<= 316 here)
      const Tol t = default_tol<T>();
      EXPECT_TRUE(allclose(dx, dxr, Tol{t.atol * 400, t.rtol * 10})) << "layer_norm dx " + what;
      EXPECT_TRUE(allclose(dw, dwr, Tol{t.atol * rows, t.rtol * 10})) << "layer_norm dweight " + what;
      EXPECT_TRUE(allclose(db, dbr, Tol{t.atol * rows, t.rtol * 10})) << "layer_norm dbias " + what;
    }
  }
}
TEST(LayerNorm, ForwardBackwardFloat) { check_layer_norm<float>(); }
TEST(LayerNorm, ForwardBackwardDouble) { check_layer_norm<double>(); }

// Property: with unit weight and no bias every output row has mean 0 and (biased) variance 1
// (up to eps / var), even when the row mean is large compared with its spread.
TEST(LayerNorm, UnitWeightGivesMeanZeroVarianceOne) {
  const int64_t rows = 50, cols = 777;
  auto x = rand_vec<float>(rows * cols, 100, 104);  // |mean| >> std: a one-pass variance would suffer
  std::vector<float> y(x.size()), mean(rows), rstd(rows);
  layer_norm_forward<float>(x.data(), nullptr, nullptr, y.data(), mean.data(), rstd.data(), rows, cols, 1e-8);
  for (int64_t r = 0; r < rows; ++r) {
    double m = 0, v = 0;
    for (int64_t j = 0; j < cols; ++j) m += y[r * cols + j];
    m /= cols;
    for (int64_t j = 0; j < cols; ++j) v += (y[r * cols + j] - m) * (y[r * cols + j] - m);
    v /= cols;
    EXPECT_NEAR(m, 0.0, 1e-5) << r;
    EXPECT_NEAR(v, 1.0, 1e-4) << r;
  }
}

// Backward as the derivative of the forward, in double, for x, weight and bias together.
TEST(LayerNorm, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 4, cols = 9;
  const double eps = 1e-5;
  auto x = rand_vec<double>(rows * cols, -2, 2), w = rand_vec<double>(cols, 0.5, 1.5), b = rand_vec<double>(cols, -1, 1);
  auto c = rand_vec<double>(rows * cols, -1, 1);
  auto loss = [&](const std::vector<double> &xx, const std::vector<double> &ww, const std::vector<double> &bb) {
    std::vector<double> y(xx.size()), m(rows), rs(rows);
    layer_norm_forward<double>(xx.data(), ww.data(), bb.data(), y.data(), m.data(), rs.data(), rows, cols, eps);
    return dot(c, y);
  };
  std::vector<double> y(x.size()), m(rows), rs(rows), dx(x.size()), dw(cols), db(cols);
  layer_norm_forward<double>(x.data(), w.data(), b.data(), y.data(), m.data(), rs.data(), rows, cols, eps);
  layer_norm_backward<double>(c.data(), x.data(), w.data(), m.data(), rs.data(), dx.data(), dw.data(), db.data(), rows, cols);
  EXPECT_TRUE(allclose(dx, finite_diff([&](const std::vector<double> &v) { return loss(v, w, b); }, x), kFdTol)) << "dx fd";
  EXPECT_TRUE(allclose(dw, finite_diff([&](const std::vector<double> &v) { return loss(x, v, b); }, w), kFdTol)) << "dweight fd";
  EXPECT_TRUE(allclose(db, finite_diff([&](const std::vector<double> &v) { return loss(x, w, v); }, b), kFdTol)) << "dbias fd";
}

#ifdef _OPENMP
// dweight/dbias are reduced over rows in a fixed chunk order: bit-identical for any thread count.
TEST(LayerNorm, BackwardDeterministicAcrossThreadCounts) {
  const int64_t rows = 2048, cols = 96;
  auto x = rand_vec<float>(rows * cols, -2, 2), dy = rand_vec<float>(rows * cols, -1, 1), w = rand_vec<float>(cols, 0.5, 1.5);
  std::vector<float> y(x.size()), m(rows), rs(rows);
  layer_norm_forward<float>(x.data(), w.data(), nullptr, y.data(), m.data(), rs.data(), rows, cols, 1e-5);
  std::vector<std::vector<float>> dws;
  const int saved = omp_get_max_threads();
  for (int threads : {1, 2, 3, 5}) {
    omp_set_num_threads(threads);
    std::vector<float> dx(x.size()), dw(cols), db(cols);
    layer_norm_backward<float>(dy.data(), x.data(), w.data(), m.data(), rs.data(), dx.data(), dw.data(), db.data(), rows, cols);
    dw.insert(dw.end(), db.begin(), db.end());
    dws.push_back(dw);
  }
  omp_set_num_threads(saved);
  for (size_t i = 1; i < dws.size(); ++i) EXPECT_EQ(dws[i], dws[0]);
}
#endif

// --- cross entropy --------------------------------------------------------------------------

template <class T> void check_cross_entropy() {
  const int64_t ignore = -100;
  const std::pair<int64_t, int64_t> shapes[] = {{1, 1}, {1, 5}, {7, 13}, {64, 1000}, {3, 50257}};
  for (auto [rows, vocab] : shapes) {
    const std::string shp = std::to_string(rows) + "x" + std::to_string(vocab);
    auto z = rand_vec<T>(rows * vocab, -6, 6);
    std::vector<int64_t> t(rows);
    std::uniform_int_distribution<int64_t> pick(0, vocab - 1);
    for (int64_t r = 0; r < rows; ++r) t[r] = (r % 3 == 2) ? ignore : pick(rng());
    std::vector<T> loss(rows), lse(rows);
    cross_entropy_forward<T>(z.data(), t.data(), loss.data(), lse.data(), rows, vocab, ignore);
    std::vector<double> lref(rows), lseref(rows);
    auto dloss = rand_vec<T>(rows, 0.1, 2);
    std::vector<double> dref(rows * vocab);
    for (int64_t r = 0; r < rows; ++r) {
      double m = -INFINITY, s = 0;
      for (int64_t j = 0; j < vocab; ++j) m = std::max(m, double(z[r * vocab + j]));
      for (int64_t j = 0; j < vocab; ++j) s += std::exp(z[r * vocab + j] - m);
      lseref[r] = m + std::log(s);
      lref[r] = t[r] == ignore ? 0.0 : lseref[r] - z[r * vocab + t[r]];
      for (int64_t j = 0; j < vocab; ++j)
        dref[r * vocab + j] = t[r] == ignore ? 0.0 : dloss[r] * (std::exp(z[r * vocab + j] - lseref[r]) - (j == t[r]));
    }
    EXPECT_TRUE(allclose(lse, lseref, default_tol<T>())) << "cross_entropy lse " + shp;
    EXPECT_TRUE(allclose(loss, lref, Tol{default_tol<T>().atol * 10, default_tol<T>().rtol})) << "cross_entropy loss " + shp;
    std::vector<T> dz(rows * vocab, T(123));
    cross_entropy_backward<T>(z.data(), t.data(), lse.data(), dloss.data(), dz.data(), rows, vocab, ignore);
    EXPECT_TRUE(allclose(dz, dref, default_tol<T>())) << "cross_entropy dlogits " + shp;
  }
}
TEST(CrossEntropy, ForwardBackwardFloat) { check_cross_entropy<float>(); }
TEST(CrossEntropy, ForwardBackwardDouble) { check_cross_entropy<double>(); }

// Backward = finite difference of the forward in double: d/dz sum_r dloss[r] * loss[r].
TEST(CrossEntropy, BackwardMatchesFiniteDifferences) {
  const int64_t rows = 5, vocab = 7, ignore = -1;
  auto z = rand_vec<double>(rows * vocab, -3, 3), dloss = rand_vec<double>(rows, 0.5, 2);
  std::vector<int64_t> t = {3, ignore, 0, 6, 3};
  auto f = [&](const std::vector<double> &zz) {
    std::vector<double> loss(rows), lse(rows);
    cross_entropy_forward<double>(zz.data(), t.data(), loss.data(), lse.data(), rows, vocab, ignore);
    return dot(dloss, loss);
  };
  std::vector<double> loss(rows), lse(rows), dz(rows * vocab);
  cross_entropy_forward<double>(z.data(), t.data(), loss.data(), lse.data(), rows, vocab, ignore);
  cross_entropy_backward<double>(z.data(), t.data(), lse.data(), dloss.data(), dz.data(), rows, vocab, ignore);
  EXPECT_TRUE(allclose(dz, finite_diff(f, z), kFdTol)) << "cross_entropy fd";
  for (int64_t j = 0; j < vocab; ++j) EXPECT_EQ(dz[1 * vocab + j], 0.0);  // the ignored row
}

TEST(CrossEntropy, StableForHugeLogits) {
  std::vector<float> z = {1000.f, 0.f, -1000.f};
  std::vector<int64_t> t = {1};
  float loss, lse;
  cross_entropy_forward<float>(z.data(), t.data(), &loss, &lse, 1, 3, -100);
  EXPECT_FLOAT_EQ(lse, 1000.f);
  EXPECT_FLOAT_EQ(loss, 1000.f);
}

// --- embedding, gather and their scatter-add backwards --------------------------------------

template <class T> void check_indexing() {
  const int64_t num = 11, dim = 150, n = 400;  // dim > one column block; indices repeat
  auto weight = rand_vec<T>(num * dim, -1, 1);
  std::vector<int64_t> idx(n);
  std::uniform_int_distribution<int64_t> pick(0, num - 1);
  for (auto &i : idx) i = pick(rng());
  std::vector<T> out(n * dim);
  index_select_rows<T>(weight.data(), idx.data(), out.data(), n, dim);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) ASSERT_EQ(out[i * dim + j], weight[idx[i] * dim + j]);
  auto dout = rand_vec<T>(n * dim, -1, 1);
  std::vector<T> dw(num * dim, T(0.5));  // accumulates into what is there
  std::vector<double> dwref(num * dim, 0.5);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) dwref[idx[i] * dim + j] += dout[i * dim + j];
  index_add_rows<T>(dout.data(), idx.data(), dw.data(), n, dim);
  EXPECT_TRUE(allclose(dw, dwref, Tol{default_tol<T>().atol * 100, default_tol<T>().rtol})) << "index_add_rows";

  const int64_t rows = 37, cols = 19, k = 25;  // k > cols: repeated indices within a row
  auto x = rand_vec<T>(rows * cols, -1, 1);
  std::vector<int64_t> gidx(rows * k);
  std::uniform_int_distribution<int64_t> pc(0, cols - 1);
  for (auto &i : gidx) i = pc(rng());
  std::vector<T> g(rows * k);
  gather_rows<T>(x.data(), gidx.data(), g.data(), rows, cols, k);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) ASSERT_EQ(g[r * k + j], x[r * cols + gidx[r * k + j]]);
  auto gout = rand_vec<T>(rows * k, -1, 1);
  std::vector<T> dx(rows * cols, T(-1));
  std::vector<double> dxref(rows * cols, -1.0);
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) dxref[r * cols + gidx[r * k + j]] += gout[r * k + j];
  scatter_add_rows<T>(gout.data(), gidx.data(), dx.data(), rows, cols, k);
  EXPECT_TRUE(allclose(dx, dxref, default_tol<T>())) << "scatter_add_rows";
}
TEST(Indexing, SelectAddGatherScatterFloat) { check_indexing<float>(); }
TEST(Indexing, SelectAddGatherScatterDouble) { check_indexing<double>(); }

TEST(Indexing, IndexAddLargeIsSerialExact) {
  // Many rows hitting few targets, large enough to run threaded: must equal the serial float sum.
  const int64_t num = 3, dim = 256, n = 2000;
  auto dout = rand_vec<float>(n * dim, -1, 1);
  std::vector<int64_t> idx(n);
  for (int64_t i = 0; i < n; ++i) idx[i] = (i * 7) % num;
  std::vector<float> dw(num * dim, 0.f), serial(num * dim, 0.f);
  for (int64_t i = 0; i < n; ++i)
    for (int64_t j = 0; j < dim; ++j) serial[idx[i] * dim + j] += dout[i * dim + j];
  index_add_rows<float>(dout.data(), idx.data(), dw.data(), n, dim);
  EXPECT_EQ(dw, serial);
}

// --- AdamW ----------------------------------------------------------------------------------

// Two steps by hand (lr 0.1, beta1 0.9, beta2 0.999, eps 1e-8, weight decay 0.01, p0 = 1):
// step 1, g = 0.5:  m = 0.05, v = 0.00025, mhat = 0.05/0.1 = 0.5, vhat = 0.00025/0.001 = 0.25,
//   p = 1 - 0.1 * (0.5/(0.5 + 1e-8) + 0.01 * 1) = 0.899000002
// step 2, g = -1:   m = 0.045 - 0.1 = -0.055, v = 0.00024975 + 0.001 = 0.00124975,
//   mhat = -0.055/0.19 = -0.28947368, vhat = 0.00124975/0.001999 = 0.62518759, sqrt = 0.79068805,
//   p = 0.899000002 - 0.1 * (-0.28947368/0.79068806 + 0.00899000002) = 0.93471135
TEST(AdamW, TwoStepsByHand) {
  // float holds 1 - 0.999f as 0.00099998713 (relative error 1.3e-5), so m and v are checked to a
  // relative 1e-4, p (an O(1) number) to 1e-6.
  float p = 1.f, m = 0.f, v = 0.f;
  float g = 0.5f;
  adamw_step(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 1);
  EXPECT_NEAR(m, 0.05, 0.05 * 1e-4);
  EXPECT_NEAR(v, 0.00025, 0.00025 * 1e-4);
  EXPECT_NEAR(p, 0.899000002, 1e-6);
  g = -1.f;
  adamw_step(&p, &g, &m, &v, 1, 0.1f, 0.9f, 0.999f, 1e-8f, 0.01f, 2);
  EXPECT_NEAR(m, -0.055, 0.055 * 1e-4);
  EXPECT_NEAR(v, 0.00124975, 0.00124975 * 1e-4);
  EXPECT_NEAR(p, 0.93471135, 1e-6);
}

TEST(AdamW, MatchesDoubleReferenceOverManySteps) {
  const int64_t n = 100003;  // threaded path, odd size
  auto p = rand_vec<float>(n, -1, 1), m = std::vector<float>(n, 0.f), v = std::vector<float>(n, 0.f);
  std::vector<double> pr = to_double(p), mr(n, 0.0), vr(n, 0.0);
  const double lr = 1e-3, b1 = 0.9, b2 = 0.95, eps = 1e-8, wd = 0.1;
  for (int64_t step = 1; step <= 5; ++step) {
    auto g = rand_vec<float>(n, -1, 1);
    adamw_step(p.data(), g.data(), m.data(), v.data(), n, float(lr), float(b1), float(b2), float(eps), float(wd), step);
    for (int64_t i = 0; i < n; ++i) {
      mr[i] = b1 * mr[i] + (1 - b1) * g[i];
      vr[i] = b2 * vr[i] + (1 - b2) * double(g[i]) * g[i];
      const double mh = mr[i] / (1 - std::pow(b1, step)), vh = vr[i] / (1 - std::pow(b2, step));
      pr[i] -= lr * (mh / (std::sqrt(vh) + eps) + wd * pr[i]);
    }
  }
  EXPECT_TRUE(allclose(m, mr, Tol{1e-6, 1e-5})) << "adamw m";
  EXPECT_TRUE(allclose(v, vr, Tol{1e-7, 1e-5})) << "adamw v";
  EXPECT_TRUE(allclose(p, pr, Tol{1e-6, 1e-5})) << "adamw p";
}

// --- causal attention -----------------------------------------------------------------------

// Reference written differently from the kernel: the full T x T score matrix with -inf above the
// diagonal, then a row softmax, then P V.
template <class T> void check_attention() {
  const int64_t B = 2, H = 3, Tn = 9, D = 5;
  const double scale = 1 / std::sqrt(double(D));
  const int64_t n = B * H * Tn * D;
  auto q = rand_vec<T>(n, -1, 1), k = rand_vec<T>(n, -1, 1), v = rand_vec<T>(n, -1, 1);
  std::vector<T> out(n);
  causal_attention_forward<T>(q.data(), k.data(), v.data(), out.data(), B, H, Tn, D, scale);
  std::vector<double> ref(n);
  for (int64_t bh = 0; bh < B * H; ++bh) {
    const int64_t base = bh * Tn * D;
    std::vector<double> s(Tn * Tn);
    for (int64_t i = 0; i < Tn; ++i)
      for (int64_t j = 0; j < Tn; ++j) {
        double d = 0;
        for (int64_t c = 0; c < D; ++c) d += double(q[base + i * D + c]) * k[base + j * D + c];
        s[i * Tn + j] = j > i ? -INFINITY : d * scale;
      }
    auto p = ref_softmax(s, Tn, Tn);
    for (int64_t i = 0; i < Tn; ++i)
      for (int64_t c = 0; c < D; ++c) {
        double acc = 0;
        for (int64_t j = 0; j < Tn; ++j) acc += p[i * Tn + j] * v[base + j * D + c];
        ref[base + i * D + c] = acc;
      }
  }
  EXPECT_TRUE(allclose(out, ref, default_tol<T>())) << "causal attention";
  // property: the first query sees only the first key, so its output is v[0]
  for (int64_t c = 0; c < D; ++c) EXPECT_EQ(out[c], v[c]);
}
TEST(Attention, CausalMatchesMaskedReferenceFloat) { check_attention<float>(); }
TEST(Attention, CausalMatchesMaskedReferenceDouble) { check_attention<double>(); }

}  // namespace
