// The tolerance policy of the whole test suite, written once, on plain values and arrays (no Tensor:
// the kernel tests, which link only the kernel libraries, use it too; test_util.h builds the Tensor
// forms on it).
//
//   got matches ref  <=>  |got - ref| <= atol + rtol * |ref|
//
// NaN matches only NaN, and an infinity only the same infinity. Each test states the Tol it needs and
// why (e.g. a few float ulps after a transcendental, or error growing like sqrt(K) in a K-term sum);
// the default, atol 1e-6 and rtol 1e-5, is a few float ulps.
#pragma once
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <vector>

namespace nr_test {

struct Tol {
  double atol = 1e-6, rtol = 1e-5;
};

inline bool within(double got, double ref, Tol tol = {}) {
  if (std::isnan(got) || std::isnan(ref)) return std::isnan(got) && std::isnan(ref);
  if (std::isinf(got) || std::isinf(ref)) return got == ref;
  return std::abs(got - ref) <= tol.atol + tol.rtol * std::abs(ref);
}

// One value: EXPECT_TRUE(isclose(got, ref, {.atol = 1e-7, .rtol = 1e-6})) << "row " << r;
inline ::testing::AssertionResult isclose(double got, double ref, Tol tol = {}) {
  if (within(got, ref, tol)) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", reference " << ref << ": |diff| " << std::abs(got - ref)
                                       << " > atol " << tol.atol << " + rtol " << tol.rtol << " * |reference|";
}

// Element by element; on failure says how many differ, the first, and the worst |diff|.
template <class G, class R>
::testing::AssertionResult allclose(const G *got, const R *ref, size_t n, Tol tol = {}) {
  size_t bad = 0, first = 0;
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const double g = double(got[i]), r = double(ref[i]);
    if (within(g, r, tol)) continue;
    if (bad++ == 0) first = i;
    if (!std::isnan(g - r)) worst = std::max(worst, std::abs(g - r));
  }
  if (bad == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << bad << " of " << n << " elements differ; first at " << first << ": got "
                                       << double(got[first]) << ", reference " << double(ref[first])
                                       << "; worst |diff| " << worst << " (atol " << tol.atol << ", rtol "
                                       << tol.rtol << ")";
}

template <class G, class R>
::testing::AssertionResult allclose(const std::vector<G> &got, const std::vector<R> &ref, Tol tol = {}) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs reference " << ref.size();
  return allclose(got.data(), ref.data(), got.size(), tol);
}

// max |a - b| over all elements; infinite when the sizes differ, NaN when an element is NaN.
template <class A, class B>
double max_abs_diff(const std::vector<A> &a, const std::vector<B> &b) {
  if (a.size() != b.size()) return std::numeric_limits<double>::infinity();
  double m = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double d = std::abs(double(a[i]) - double(b[i]));
    if (std::isnan(d)) return d;
    m = std::max(m, d);
  }
  return m;
}

}  // namespace nr_test
