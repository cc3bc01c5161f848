// gradcheck: analytic gradients against central finite differences in float64, for tests and
// for students checking their own ops.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "tensor/tensor.h"

namespace nanorlhf::autograd {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-5;
  double rtol = 1e-4;
  int64_t max_elements = 256;  // per input: larger inputs are checked at evenly spread elements
  uint64_t seed = 7;
};

struct GradcheckResult {
  bool ok = true;
  double max_abs_error = 0;
  std::string message;  // which input and element failed, with both values
  explicit operator bool() const { return ok; }
};

// Checks d/dx sum(c * fn(inputs)) for a fixed random c (so every output element matters).
// Inputs that require grad must be float64 on the CPU.
GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor> &)> &fn, const std::vector<Tensor> &inputs,
                          GradcheckOptions opts = {});

}  // namespace nanorlhf::autograd
