// gradcheck: project the output on a random tensor c, then compare backward() with
// (L(x + eps e_j) - L(x - eps e_j)) / (2 eps) element by element.
#include "autograd/gradcheck.h"

#include <cmath>

#include "autograd/ops.h"
#include "tensor/random.h"

namespace nanorlhf::autograd {

namespace {

// Storage index of the j-th element (row-major order) of a strided tensor.
int64_t storage_index(const Tensor &t, int64_t j) {
  int64_t off = t.offset();
  for (int64_t d = t.dim() - 1; d >= 0; --d) {
    off += (j % t.shape()[d]) * t.strides()[d];
    j /= t.shape()[d];
  }
  return off;
}

}  // namespace

GradcheckResult gradcheck(const std::function<Tensor(const std::vector<Tensor> &)> &fn, const std::vector<Tensor> &inputs,
                          GradcheckOptions opts) {
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && inputs[i].requires_grad())
      NR_CHECK(inputs[i].dtype() == kFloat64 && inputs[i].device().is_cpu(),
               "gradcheck: input {} must be float64 on the CPU, got {} on {}", i, dtype_name(inputs[i].dtype()),
               inputs[i].device().str());
  Tensor c;
  {
    RngStateGuard keep;
    manual_seed(opts.seed);
    Tensor y = fn(inputs).detach();
    c = randn(y.shape(), {kFloat64});
  }
  auto loss = [&]() {
    Tensor y = fn(inputs);
    NR_CHECK(y.shape() == c.shape(), "gradcheck: fn changed its output shape between calls");
    return (y * c).sum();
  };
  for (auto t : inputs) if (t.defined()) t.zero_grad();
  loss().backward();

  GradcheckResult res;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Tensor &x = inputs[i];
    if (!x.defined() || !x.requires_grad()) continue;
    Tensor g = x.grad();
    std::vector<double> ga = g.defined() ? g.to_vector<double>() : std::vector<double>(x.numel(), 0.0);
    double *base = static_cast<double *>(x.storage()->data());
    int64_t n = x.numel(), step = std::max<int64_t>(1, n / std::max<int64_t>(opts.max_elements, 1));
    for (int64_t j = 0; j < n; j += step) {
      int64_t s = storage_index(x, j);
      double orig = base[s], lp, lm;
      {
        NoGradGuard ng;
        base[s] = orig + opts.eps;
        lp = loss().item();
        base[s] = orig - opts.eps;
        lm = loss().item();
        base[s] = orig;
      }
      double num = (lp - lm) / (2 * opts.eps), ana = ga[j], err = std::abs(num - ana);
      res.max_abs_error = std::max(res.max_abs_error, err);
      if (err > opts.atol + opts.rtol * std::abs(num) && res.ok) {
        res.ok = false;
        res.message = fmt::format("input {} element {}: analytic {:.8g} vs numeric {:.8g} (|diff| {:.3g})", i, j, ana,
                                  num, err);
      }
    }
  }
  for (auto t : inputs) if (t.defined()) t.zero_grad();
  return res;
}

}  // namespace nanorlhf::autograd
