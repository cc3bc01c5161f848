// Lecture 08 (engine): write a differentiable function, then check its gradient against finite
// differences in float64 with autograd::gradcheck. Run: ./build/example_gradcheck_your_op
//
// Two ways to make a new differentiable function:
//  (a) compose existing ops: autograd records each one, so no backward needs writing;
//  (b) a new op with its own backward formula, recorded with autograd::record (as every op in
//      autograd/ops_*.cpp is). Here (b) is softplus(x) = log(1 + e^x), d/dx = sigmoid(x); a
//      deliberately wrong backward shows what a failing check looks like.
#include <cstdio>

#include "nanorlhf/nanorlhf.h"

using namespace nanorlhf;

// (a) The Bradley-Terry loss of a linear scorer, from ops: -mean log sigmoid(x_w.w - x_l.w). [B, D] x [D]
Tensor bt_linear(const Tensor &xw, const Tensor &xl, const Tensor &w) {
  return -log_sigmoid(matmul(xw, w) - matmul(xl, w)).mean();
}

// (b) softplus with its own backward. Forward runs with grad mode off (it is one op, not a graph).
Tensor softplus(const Tensor &x, bool buggy) {
  Tensor y;
  {
    NoGradGuard ng;
    y = log(exp(x) + 1.0);
  }
  return autograd::record("softplus", {x}, y, [x, buggy](const Tensor &g) -> std::vector<Tensor> {
    return {buggy ? g * exp(x) : g * sigmoid(x)};  // the right formula is sigmoid(x)
  });
}

void report(const char *what, const autograd::GradcheckResult &r) {
  std::printf("%-44s %s  max |analytic - numeric| = %.2e\n", what, r.ok ? "PASS" : "FAIL", r.max_abs_error);
  if (!r.ok) std::printf("    %s\n", r.message.c_str());
}

int main() {
  manual_seed(0);
  const TensorOptions f64{kFloat64, Device::cpu(), true};  // gradcheck wants float64 leaves
  Tensor xw = randn({5, 4}, f64), xl = randn({5, 4}, f64), w = randn({4}, f64);
  Tensor x = randn({3, 3}, f64);

  std::printf("gradcheck: central differences (eps 1e-6) of sum(c * f(inputs)), c random, vs backward()\n\n");
  report("bradley-terry of a linear scorer (composed)",
         autograd::gradcheck([](const std::vector<Tensor> &in) { return bt_linear(in[0], in[1], in[2]); }, {xw, xl, w}));
  report("softplus, backward = g * sigmoid(x)",
         autograd::gradcheck([](const std::vector<Tensor> &in) { return softplus(in[0], false); }, {x}));
  report("softplus, backward = g * exp(x)  (a bug)",
         autograd::gradcheck([](const std::vector<Tensor> &in) { return softplus(in[0], true); }, {x}));

  // The same gradient by hand: backward() fills .grad() of every leaf that requires grad.
  Tensor loss = bt_linear(xw, xl, w);
  loss.backward();
  std::printf("\nBT loss = %.6f, dL/dw = [", loss.item());
  for (double g : w.grad().to_vector<double>()) std::printf(" %+.4f", g);
  std::printf(" ]\n");
  return 0;
}
