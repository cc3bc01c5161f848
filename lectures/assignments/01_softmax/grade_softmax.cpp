// Grader of assignment 01_softmax: the four CPU softmax kernels against a plain long-double
// reference written here, finite differences, and the properties the lecture states (rows sum to
// one, shift invariance, stability for large inputs). One GoogleTest suite per part.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "grading.h"
#include "kernels/cpu/nn_kernels.h"

NR_GRADE_ASSIGNMENT("01_softmax");

namespace {

namespace cpu = nanorlhf::kernels::cpu;
using Vec = std::vector<double>;

constexpr double kInf = std::numeric_limits<double>::infinity();

Vec random_vec(size_t n, double lo, double hi, unsigned seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<double> d(lo, hi);
  Vec v(n);
  for (auto &x : v) x = d(g);
  return v;
}

// The reference: textbook formulas in long double, one row at a time.
Vec ref_softmax(const Vec &x, int64_t rows, int64_t cols, bool log) {
  Vec y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    long double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < cols; ++j) m = std::max<long double>(m, x[r * cols + j]);
    for (int64_t j = 0; j < cols; ++j) s += std::exp((long double)x[r * cols + j] - m);
    for (int64_t j = 0; j < cols; ++j) {
      long double z = (long double)x[r * cols + j] - m;
      y[r * cols + j] = (double)(log ? z - std::log(s) : std::exp(z) / s);
    }
  }
  return y;
}
Vec ref_backward(const Vec &y, const Vec &dy, int64_t rows, int64_t cols, bool log) {
  Vec dx(y.size());
  for (int64_t r = 0; r < rows; ++r) {
    long double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += log ? (long double)dy[r * cols + j] : (long double)dy[r * cols + j] * y[r * cols + j];
    for (int64_t j = 0; j < cols; ++j) {
      const int64_t i = r * cols + j;
      dx[i] = (double)(log ? dy[i] - std::exp((long double)y[i]) * s : y[i] * (dy[i] - s));
    }
  }
  return dx;
}

// The student's kernels on T, with inputs and outputs converted from/to double.
template <class T>
Vec run_forward(const Vec &x, int64_t rows, int64_t cols, bool log) {
  std::vector<T> xt(x.begin(), x.end()), yt(x.size(), T(NAN));
  (log ? cpu::log_softmax_forward<T> : cpu::softmax_forward<T>)(xt.data(), yt.data(), rows, cols);
  return Vec(yt.begin(), yt.end());
}
template <class T>
Vec run_backward(const Vec &y, const Vec &dy, int64_t rows, int64_t cols, bool log) {
  std::vector<T> yt(y.begin(), y.end()), dyt(dy.begin(), dy.end()), dxt(y.size(), T(NAN));
  (log ? cpu::log_softmax_backward<T> : cpu::softmax_backward<T>)(yt.data(), dyt.data(), dxt.data(), rows, cols);
  return Vec(dxt.begin(), dxt.end());
}

// |got - want| <= atol + rtol |want|, element by element (both -inf, or both NaN, also match).
::testing::AssertionResult close(const Vec &got, const Vec &want, double rtol, double atol) {
  if (got.size() != want.size()) return ::testing::AssertionFailure() << "size " << got.size() << " vs " << want.size();
  for (size_t i = 0; i < got.size(); ++i) {
    if (got[i] == want[i] || (std::isnan(got[i]) && std::isnan(want[i]))) continue;
    if (!(std::abs(got[i] - want[i]) <= atol + rtol * std::abs(want[i])))
      return ::testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", expected " << want[i];
  }
  return ::testing::AssertionSuccess();
}

struct Shape2 { int64_t rows, cols; };
// Odd sizes, a single element, a long row and a batch big enough for a parallel loop.
const Shape2 kShapes[] = {{1, 1}, {1, 7}, {3, 5}, {5, 33}, {17, 1000}, {2, 50257}, {64, 1024}};

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_SoftmaxForward, 25, "softmax forward");

TEST(Part1_SoftmaxForward, MatchesTheReferenceInFloat) {
  unsigned seed = 1;
  for (auto [rows, cols] : kShapes) {
    Vec x = random_vec(rows * cols, -8, 8, seed++);
    EXPECT_TRUE(close(run_forward<float>(x, rows, cols, false), ref_softmax(x, rows, cols, false), 1e-4, 1e-8))
        << "shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part1_SoftmaxForward, MatchesTheReferenceInDouble) {
  unsigned seed = 11;
  for (auto [rows, cols] : kShapes) {
    Vec x = random_vec(rows * cols, -8, 8, seed++);
    EXPECT_TRUE(close(run_forward<double>(x, rows, cols, false), ref_softmax(x, rows, cols, false), 1e-10, 1e-15))
        << "shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part1_SoftmaxForward, RowsArePositiveAndSumToOne) {
  const int64_t rows = 9, cols = 131;
  Vec y = run_forward<float>(random_vec(rows * cols, -20, 20, 3), rows, cols, false);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) {
      EXPECT_GE(y[r * cols + j], 0.0);
      s += y[r * cols + j];
    }
    EXPECT_NEAR(s, 1.0, 1e-5) << "row " << r;
  }
}

TEST(Part1_SoftmaxForward, StableForLargeInputs) {
  // exp(1000) overflows: subtract the row max first. Both rows are [0, 1, -1] shifted by +-999 or 1000.
  Vec x = {1000, 1001, 999, -999, -998, -1000};
  Vec want = ref_softmax({0, 1, -1}, 1, 3, false);
  want.insert(want.end(), want.begin(), want.end());
  EXPECT_TRUE(close(run_forward<float>(x, 2, 3, false), want, 1e-5, 1e-7));
  EXPECT_TRUE(close(run_forward<double>(x, 2, 3, false), want, 1e-12, 1e-15));
}

TEST(Part1_SoftmaxForward, ShiftInvariantAndMinusInfinityGetsZero) {
  Vec x = random_vec(4 * 10, -3, 3, 5), shifted = x;
  for (auto &v : shifted) v += 50;
  EXPECT_TRUE(close(run_forward<double>(shifted, 4, 10, false), run_forward<double>(x, 4, 10, false), 1e-12, 1e-15));
  // A masked logit (-inf, as attention masks write them) gets probability 0.
  EXPECT_TRUE(close(run_forward<float>({0, -kInf, 0}, 1, 3, false), {0.5, 0, 0.5}, 1e-6, 0));
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_LogSoftmaxForward, 25, "log-softmax forward");

TEST(Part2_LogSoftmaxForward, MatchesTheReferenceInFloat) {
  unsigned seed = 21;
  for (auto [rows, cols] : kShapes) {
    Vec x = random_vec(rows * cols, -8, 8, seed++);
    EXPECT_TRUE(close(run_forward<float>(x, rows, cols, true), ref_softmax(x, rows, cols, true), 1e-5, 1e-5))
        << "shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part2_LogSoftmaxForward, MatchesTheReferenceInDouble) {
  unsigned seed = 31;
  for (auto [rows, cols] : kShapes) {
    Vec x = random_vec(rows * cols, -8, 8, seed++);
    EXPECT_TRUE(close(run_forward<double>(x, rows, cols, true), ref_softmax(x, rows, cols, true), 1e-11, 1e-12))
        << "shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part2_LogSoftmaxForward, ExpOfEachRowSumsToOne) {
  const int64_t rows = 6, cols = 77;
  Vec y = run_forward<double>(random_vec(rows * cols, -10, 10, 7), rows, cols, true);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += std::exp(y[r * cols + j]);
    EXPECT_NEAR(s, 1.0, 1e-12) << "row " << r;
  }
}

TEST(Part2_LogSoftmaxForward, FiniteWhereTheLogOfSoftmaxWouldUnderflow) {
  // softmax(-200) underflows to 0 in float, so log(softmax(x)) would give -inf; the answer is -200.
  EXPECT_TRUE(close(run_forward<float>({0, -200}, 1, 2, true), {0, -200}, 1e-6, 1e-6));
  EXPECT_TRUE(close(run_forward<float>({1000, 0}, 1, 2, true), {0, -1000}, 1e-6, 1e-6));
}

TEST(Part2_LogSoftmaxForward, PreciseAtALargeOffset) {
  // x = [10000, 10000]: y = -log 2 each. Computing x - (m + log s) rounds m + log s at the scale of
  // 10000 (float spacing 0.001); (x - m) - log s is exact to float precision.
  EXPECT_TRUE(close(run_forward<float>({10000, 10000}, 1, 2, true), {-std::log(2.0), -std::log(2.0)}, 1e-6, 1e-6));
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part3_SoftmaxBackward, 25, "softmax backward");

TEST(Part3_SoftmaxBackward, MatchesTheJacobianProduct) {
  unsigned seed = 41;
  for (auto [rows, cols] : kShapes) {
    Vec y = ref_softmax(random_vec(rows * cols, -4, 4, seed++), rows, cols, false);
    Vec dy = random_vec(rows * cols, -1, 1, seed++);
    Vec want = ref_backward(y, dy, rows, cols, false);
    EXPECT_TRUE(close(run_backward<double>(y, dy, rows, cols, false), want, 1e-9, 1e-14))
        << "double, shape [" << rows << ", " << cols << "]";
    EXPECT_TRUE(close(run_backward<float>(y, dy, rows, cols, false), want, 1e-4, 1e-7))
        << "float, shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part3_SoftmaxBackward, MatchesFiniteDifferences) {
  // L = sum_j c_j softmax(x)_j; dL/dx_j by central differences of the reference forward.
  const int64_t cols = 6;
  Vec x = random_vec(cols, -2, 2, 43), c = random_vec(cols, -1, 1, 44);
  auto L = [&](const Vec &xx) {
    Vec y = ref_softmax(xx, 1, cols, false);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += c[j] * y[j];
    return s;
  };
  Vec num(cols);
  for (int64_t j = 0; j < cols; ++j) {
    Vec p = x, m = x;
    p[j] += 1e-6, m[j] -= 1e-6;
    num[j] = (L(p) - L(m)) / 2e-6;
  }
  EXPECT_TRUE(close(run_backward<double>(ref_softmax(x, 1, cols, false), c, 1, cols, false), num, 1e-6, 1e-8));
}

TEST(Part3_SoftmaxBackward, GradientRowsSumToZero) {
  // Softmax rows always sum to one, so moving all logits of a row together changes nothing.
  const int64_t rows = 5, cols = 40;
  Vec y = ref_softmax(random_vec(rows * cols, -3, 3, 45), rows, cols, false);
  Vec dx = run_backward<double>(y, random_vec(rows * cols, -1, 1, 46), rows, cols, false);
  for (int64_t r = 0; r < rows; ++r) {
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += dx[r * cols + j];
    EXPECT_NEAR(s, 0.0, 1e-12) << "row " << r;
  }
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part4_LogSoftmaxBackward, 25, "log-softmax backward");

TEST(Part4_LogSoftmaxBackward, MatchesTheJacobianProduct) {
  unsigned seed = 51;
  for (auto [rows, cols] : kShapes) {
    Vec y = ref_softmax(random_vec(rows * cols, -4, 4, seed++), rows, cols, true);
    Vec dy = random_vec(rows * cols, -1, 1, seed++);
    Vec want = ref_backward(y, dy, rows, cols, true);
    EXPECT_TRUE(close(run_backward<double>(y, dy, rows, cols, true), want, 1e-9, 1e-11))
        << "double, shape [" << rows << ", " << cols << "]";
    EXPECT_TRUE(close(run_backward<float>(y, dy, rows, cols, true), want, 1e-4, 1e-4))
        << "float, shape [" << rows << ", " << cols << "]";
  }
}

TEST(Part4_LogSoftmaxBackward, MatchesFiniteDifferences) {
  const int64_t cols = 6;
  Vec x = random_vec(cols, -2, 2, 53), c = random_vec(cols, -1, 1, 54);
  auto L = [&](const Vec &xx) {
    Vec y = ref_softmax(xx, 1, cols, true);
    double s = 0;
    for (int64_t j = 0; j < cols; ++j) s += c[j] * y[j];
    return s;
  };
  Vec num(cols);
  for (int64_t j = 0; j < cols; ++j) {
    Vec p = x, m = x;
    p[j] += 1e-6, m[j] -= 1e-6;
    num[j] = (L(p) - L(m)) / 2e-6;
  }
  EXPECT_TRUE(close(run_backward<double>(ref_softmax(x, 1, cols, true), c, 1, cols, true), num, 1e-6, 1e-8));
}

TEST(Part4_LogSoftmaxBackward, CrossEntropyGradientIsSoftmaxMinusOneHot) {
  // L = -log softmax(x)_t, so dL/dy = -onehot(t) and dL/dx = softmax(x) - onehot(t).
  Vec x = {0.5, -1, 2, 0}, dy = {0, 0, -1, 0};
  Vec want = ref_softmax(x, 1, 4, false);
  want[2] -= 1;
  EXPECT_TRUE(close(run_backward<float>(ref_softmax(x, 1, 4, true), dy, 1, 4, true), want, 1e-5, 1e-6));
}

}  // namespace
