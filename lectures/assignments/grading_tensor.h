// Checks the graders of the tensor assignments share (04_gae_ppo, 05_dpo, 07_grpo): values against
// the expected numbers, and "no gradient reached this tensor" (a frozen model's log-probs).
#pragma once
#include <cmath>
#include <vector>

#include <gtest/gtest.h>

#include "nanorlhf/nanorlhf.h"

namespace nr_grade {

using nanorlhf::Tensor;

// Every element within tol * (1 + |want|); says which element is off and by how much.
inline ::testing::AssertionResult close(const Tensor &got, const std::vector<double> &want, double tol) {
  if (!got.defined()) return ::testing::AssertionFailure() << "the tensor is undefined";
  std::vector<double> g = got.to_vector<double>();
  if (g.size() != want.size()) return ::testing::AssertionFailure() << "got " << g.size() << " values, expected " << want.size();
  for (size_t i = 0; i < g.size(); ++i)
    if (!(std::abs(g[i] - want[i]) <= tol * (1 + std::abs(want[i]))))
      return ::testing::AssertionFailure() << "element " << i << ": got " << g[i] << ", expected " << want[i];
  return ::testing::AssertionSuccess();
}

// True when t has no gradient or only zeros.
inline bool no_gradient(const Tensor &t) {
  if (!t.grad().defined()) return true;
  for (double g : t.grad().to_vector<double>())
    if (g != 0) return false;
  return true;
}

}  // namespace nr_grade
