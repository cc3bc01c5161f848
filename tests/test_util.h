// Shared test helpers of the Tensor layers: the tolerance policy's Tensor forms (the policy itself is
// tests/tolerance.h), error-message checks, random inputs, and a naive host reference array with
// NumPy broadcasting for checking ops element by element.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "nanorlhf/nanorlhf.h"
#include "tensor/native.h"
#include "tolerance.h"

namespace nr_test {

using nanorlhf::Shape;
using nanorlhf::Tensor;

// f() throws, and the message contains `part` (a file:line, a key, both shapes): bad input must
// say what is wrong. EXPECT_TRUE(throws_with([&] { run(c); }, "data.jsonl:2"));
inline ::testing::AssertionResult throws_with(const std::function<void()> &f, const std::string &part) {
  try {
    f();
  } catch (const std::exception &e) {
    if (std::string(e.what()).find(part) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "the error \"" << e.what() << "\" does not say \"" << part << "\"";
  }
  return ::testing::AssertionFailure() << "no error; expected one that says \"" << part << "\"";
}

// The tolerance policy is tests/tolerance.h's (Tol, isclose, allclose, max_abs_diff on plain arrays);
// these are its Tensor forms. EXPECT_TRUE(allclose(y, ref, {.atol = 1e-7, .rtol = 1e-6})).
inline ::testing::AssertionResult allclose(const Tensor &got, const std::vector<double> &ref, Tol tol = {}) {
  return allclose(got.to_vector<double>(), ref, tol);
}
inline double max_abs_diff(const Tensor &a, const Tensor &b) {
  return max_abs_diff(a.to_vector<double>(), b.to_vector<double>());
}

// A naive host array: values in row-major order.
struct Arr {
  Shape shape;
  std::vector<double> v;
  static Arr of(const Tensor &t) { return {t.shape(), t.to_vector<double>()}; }
  int64_t numel() const { return (int64_t)v.size(); }
};

// Index of output element `j` of shape `out` read from an array of shape `in` under broadcasting.
inline int64_t bcast_index(int64_t j, const Shape &out, const Shape &in) {
  int64_t idx = 0, mul = 1;
  for (int64_t d = (int64_t)out.size() - 1, k = (int64_t)in.size() - 1; d >= 0; --d, --k) {
    int64_t c = j % out[d];
    j /= out[d];
    if (k >= 0) {
      if (in[k] != 1) idx += c * mul;
      mul *= in[k];
    }
  }
  return idx;
}

inline Arr ref_binary(const Arr &a, const Arr &b, const std::function<double(double, double)> &f) {
  Shape out = nanorlhf::native::broadcast_shapes(a.shape, b.shape, "reference");
  Arr r{out, std::vector<double>(nanorlhf::shape_numel(out))};
  for (int64_t j = 0; j < r.numel(); ++j) r.v[j] = f(a.v[bcast_index(j, out, a.shape)], b.v[bcast_index(j, out, b.shape)]);
  return r;
}

// A random float64 tensor that requires grad, with values in [lo, hi).
inline Tensor rand64(const Shape &s, double lo = -1, double hi = 1, bool grad = true) {
  Tensor t = nanorlhf::rand(s, {nanorlhf::kFloat64}) * (hi - lo) + lo;
  t = t.detach();
  if (grad) t.requires_grad_(true);
  return t;
}

}  // namespace nr_test
