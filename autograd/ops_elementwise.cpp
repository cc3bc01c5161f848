// Elementwise ops and their backward formulas. Backward is written with the same ops, so it runs
// on every device; it runs with grad mode off, so it records nothing.
#include "autograd/ops.h"
#include "kernels/cpu/elementwise.h"
#include "tensor/native.h"

namespace nanorlhf {

using native::BinaryOp;
using native::CompareOp;
using native::UnaryOp;
using autograd::record;

namespace {
Tensor unary_op(UnaryOp op, const Tensor &x, double a = 0, double b = 0) { return native::unary(op, x, a, b); }
Tensor scalar_like(const Tensor &x, double v) { return full({}, v, {x.dtype(), x.device()}); }
Tensor mask_to(const Tensor &mask, const Tensor &like) { return native::cast(mask, like.dtype()); }

// g * f'(x) for an activation's backward (op = its *_grad code). On the CPU, for contiguous
// same-shape float tensors, one fused pass (kernels::cpu::unary_grad_mul) instead of an f'(x)
// temporary and a product; elsewhere the two ops.
Tensor grad_times_derivative(UnaryOp op, const Tensor &g, const Tensor &x) {
  if (!g.is_cuda() && !x.is_cuda() && g.shape() == x.shape() && g.dtype() == x.dtype() && is_floating(x.dtype()) &&
      g.is_contiguous() && x.is_contiguous()) {
    Tensor out = Tensor::empty(x.shape(), {x.dtype(), x.device()});
    if (x.dtype() == kFloat32)
      kernels::cpu::unary_grad_mul<float>(op, g.data_ptr<float>(), x.data_ptr<float>(), out.data_ptr<float>(), x.numel());
    else
      kernels::cpu::unary_grad_mul<double>(op, g.data_ptr<double>(), x.data_ptr<double>(), out.data_ptr<double>(), x.numel());
    return out;
  }
  return g * unary_op(op, x);
}
}  // namespace

Tensor neg(const Tensor &x) {
  return record("neg", {x}, unary_op(UnaryOp::neg, x), [](const Tensor &g) -> std::vector<Tensor> { return {neg(g)}; });
}
Tensor exp(const Tensor &x) {
  Tensor y = unary_op(UnaryOp::exp, x);
  return record("exp", {x}, y, [y = y.detach()](const Tensor &g) -> std::vector<Tensor> { return {g * y}; });
}
Tensor log(const Tensor &x) {
  return record("log", {x}, unary_op(UnaryOp::log, x), [x](const Tensor &g) -> std::vector<Tensor> { return {g / x}; });
}
Tensor sqrt(const Tensor &x) {
  Tensor y = unary_op(UnaryOp::sqrt, x);
  return record("sqrt", {x}, y, [y = y.detach()](const Tensor &g) -> std::vector<Tensor> { return {g * 0.5 / y}; });
}
Tensor rsqrt(const Tensor &x) {
  Tensor y = unary_op(UnaryOp::rsqrt, x);
  // d/dx x^{-1/2} = -1/2 x^{-3/2} = -1/2 y^3
  return record("rsqrt", {x}, y, [y = y.detach()](const Tensor &g) -> std::vector<Tensor> {
    return {g * y * y * y * -0.5};
  });
}
Tensor tanh(const Tensor &x) {
  Tensor y = unary_op(UnaryOp::tanh, x);
  return record("tanh", {x}, y, [y = y.detach()](const Tensor &g) -> std::vector<Tensor> { return {g * (1.0 - y * y)}; });
}
Tensor sigmoid(const Tensor &x) {
  Tensor y = unary_op(UnaryOp::sigmoid, x);
  return record("sigmoid", {x}, y, [y = y.detach()](const Tensor &g) -> std::vector<Tensor> { return {g * y * (1.0 - y)}; });
}
Tensor relu(const Tensor &x) {
  return record("relu", {x}, unary_op(UnaryOp::relu, x),
                [x](const Tensor &g) -> std::vector<Tensor> { return {g * unary_op(UnaryOp::relu_grad, x)}; });
}
Tensor gelu(const Tensor &x) {
  return record("gelu", {x}, unary_op(UnaryOp::gelu, x),
                [x](const Tensor &g) -> std::vector<Tensor> { return {grad_times_derivative(UnaryOp::gelu_grad, g, x)}; });
}
Tensor silu(const Tensor &x) {
  return record("silu", {x}, unary_op(UnaryOp::silu, x),
                [x](const Tensor &g) -> std::vector<Tensor> { return {grad_times_derivative(UnaryOp::silu_grad, g, x)}; });
}
Tensor abs(const Tensor &x) {
  return record("abs", {x}, unary_op(UnaryOp::abs, x),
                [x](const Tensor &g) -> std::vector<Tensor> { return {g * unary_op(UnaryOp::sign, x)}; });
}
Tensor square(const Tensor &x) {
  return record("square", {x}, unary_op(UnaryOp::square, x),
                [x](const Tensor &g) -> std::vector<Tensor> { return {g * x * 2.0}; });
}
// log sigmoid(x) = min(x, 0) - log1p(exp(-|x|)): no overflow for large |x|.
Tensor log_sigmoid(const Tensor &x) {
  Tensor y = native::binary(BinaryOp::minimum, x, scalar_like(x, 0.0));
  y = native::binary(BinaryOp::sub, y, unary_op(UnaryOp::log1p, unary_op(UnaryOp::exp, unary_op(UnaryOp::neg, unary_op(UnaryOp::abs, x)))));
  // d/dx log sigmoid(x) = 1 - sigmoid(x) = sigmoid(-x)
  return record("log_sigmoid", {x}, y, [x](const Tensor &g) -> std::vector<Tensor> {
    return {g * unary_op(UnaryOp::sigmoid, unary_op(UnaryOp::neg, x))};
  });
}
Tensor pow(const Tensor &x, double p) {
  return record("pow", {x}, unary_op(UnaryOp::pow_scalar, x, p), [x, p](const Tensor &g) -> std::vector<Tensor> {
    return {g * unary_op(UnaryOp::pow_scalar, x, p - 1) * p};
  });
}
Tensor clamp(const Tensor &x, double lo, double hi) {
  NR_CHECK(lo <= hi, "clamp: lower bound {} is above the upper bound {}", lo, hi);
  return record("clamp", {x}, unary_op(UnaryOp::clamp, x, lo, hi), [x, lo, hi](const Tensor &g) -> std::vector<Tensor> {
    Tensor inside = native::cast(native::binary(BinaryOp::mul, mask_to(x >= lo, x), mask_to(x <= hi, x)), x.dtype());
    return {g * inside};
  });
}

Tensor add(const Tensor &a, const Tensor &b) {
  return record("add", {a, b}, native::binary(BinaryOp::add, a, b), [sa = a.shape(), sb = b.shape()](const Tensor &g) -> std::vector<Tensor> {
    return {sum_to_shape(g, sa), sum_to_shape(g, sb)};
  });
}
Tensor sub(const Tensor &a, const Tensor &b) {
  return record("sub", {a, b}, native::binary(BinaryOp::sub, a, b), [sa = a.shape(), sb = b.shape()](const Tensor &g) -> std::vector<Tensor> {
    return {sum_to_shape(g, sa), sum_to_shape(neg(g), sb)};
  });
}
Tensor mul(const Tensor &a, const Tensor &b) {
  return record("mul", {a, b}, native::binary(BinaryOp::mul, a, b), [a, b](const Tensor &g) -> std::vector<Tensor> {
    return {a.requires_grad() ? sum_to_shape(g * b, a.shape()) : Tensor(),
            b.requires_grad() ? sum_to_shape(g * a, b.shape()) : Tensor()};
  });
}
Tensor div(const Tensor &a, const Tensor &b) {
  return record("div", {a, b}, native::binary(BinaryOp::div, a, b), [a, b](const Tensor &g) -> std::vector<Tensor> {
    return {a.requires_grad() ? sum_to_shape(g / b, a.shape()) : Tensor(),
            b.requires_grad() ? sum_to_shape(neg(g * a / (b * b)), b.shape()) : Tensor()};
  });
}
Tensor pow(const Tensor &a, const Tensor &b) {
  Tensor y = native::binary(BinaryOp::pow, a, b);
  return record("pow", {a, b}, y, [a, b, y = y.detach()](const Tensor &g) -> std::vector<Tensor> {
    return {a.requires_grad() ? sum_to_shape(g * b * pow(a, b - 1.0), a.shape()) : Tensor(),
            b.requires_grad() ? sum_to_shape(g * y * log(a), b.shape()) : Tensor()};
  });
}
Tensor maximum(const Tensor &a, const Tensor &b) {
  return record("maximum", {a, b}, native::binary(BinaryOp::maximum, a, b), [a, b](const Tensor &g) -> std::vector<Tensor> {
    Tensor ma = mask_to(native::compare(CompareOp::ge, a, b), g);  // ties go to a
    return {sum_to_shape(g * ma, a.shape()), sum_to_shape(g * (1.0 - ma), b.shape())};
  });
}
Tensor minimum(const Tensor &a, const Tensor &b) {
  return record("minimum", {a, b}, native::binary(BinaryOp::minimum, a, b), [a, b](const Tensor &g) -> std::vector<Tensor> {
    Tensor ma = mask_to(native::compare(CompareOp::le, a, b), g);
    return {sum_to_shape(g * ma, a.shape()), sum_to_shape(g * (1.0 - ma), b.shape())};
  });
}
Tensor add(const Tensor &a, double b) {
  return record("add", {a}, unary_op(UnaryOp::add_scalar, a, b), [](const Tensor &g) -> std::vector<Tensor> { return {g}; });
}
Tensor mul(const Tensor &a, double b) {
  return record("mul", {a}, unary_op(UnaryOp::mul_scalar, a, b), [b](const Tensor &g) -> std::vector<Tensor> { return {g * b}; });
}
Tensor operator-(double a, const Tensor &b) {
  return record("rsub", {b}, unary_op(UnaryOp::rsub_scalar, b, a), [](const Tensor &g) -> std::vector<Tensor> { return {neg(g)}; });
}
Tensor operator/(double a, const Tensor &b) {
  return record("rdiv", {b}, unary_op(UnaryOp::rdiv_scalar, b, a), [a, b](const Tensor &g) -> std::vector<Tensor> {
    return {g * -a / (b * b)};
  });
}

namespace {
Tensor cmp(CompareOp op, const Tensor &a, const Tensor &b) { return native::compare(op, a, b); }
Tensor cmp_scalar(CompareOp op, const Tensor &a, double v) {
  DType dt = is_floating(a.dtype()) ? a.dtype() : kFloat64;
  return native::compare(op, native::cast(a, dt), full({}, v, {dt, a.device()}));
}
}  // namespace
Tensor eq(const Tensor &a, const Tensor &b) { return cmp(CompareOp::eq, a, b); }
Tensor ne(const Tensor &a, const Tensor &b) { return cmp(CompareOp::ne, a, b); }
Tensor lt(const Tensor &a, const Tensor &b) { return cmp(CompareOp::lt, a, b); }
Tensor le(const Tensor &a, const Tensor &b) { return cmp(CompareOp::le, a, b); }
Tensor gt(const Tensor &a, const Tensor &b) { return cmp(CompareOp::gt, a, b); }
Tensor ge(const Tensor &a, const Tensor &b) { return cmp(CompareOp::ge, a, b); }
Tensor operator<(const Tensor &a, double b) { return cmp_scalar(CompareOp::lt, a, b); }
Tensor operator>(const Tensor &a, double b) { return cmp_scalar(CompareOp::gt, a, b); }
Tensor operator<=(const Tensor &a, double b) { return cmp_scalar(CompareOp::le, a, b); }
Tensor operator>=(const Tensor &a, double b) { return cmp_scalar(CompareOp::ge, a, b); }
Tensor logical_not(const Tensor &mask) {
  NR_CHECK(mask.dtype() == kBool, "logical_not: expected a bool mask, got {}", dtype_name(mask.dtype()));
  return cmp_scalar(CompareOp::eq, mask, 0.0);
}

Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b) {
  return record("where", {a, b}, native::where(cond, a, b), [cond, sa = a.shape(), sb = b.shape()](const Tensor &g) -> std::vector<Tensor> {
    Tensor z = scalar_like(g, 0.0);
    return {sum_to_shape(native::where(cond, g, z), sa), sum_to_shape(native::where(cond, z, g), sb)};
  });
}
Tensor masked_fill(const Tensor &x, const Tensor &mask, double value) {
  NR_CHECK(mask.dtype() == kBool, "masked_fill: mask must be bool, got {}", dtype_name(mask.dtype()));
  Shape out = native::broadcast_shapes(x.shape(), mask.shape(), "masked_fill");
  NR_CHECK(out == x.shape(), "masked_fill: mask {} must broadcast to the input's shape {}", shape_str(mask.shape()),
           shape_str(x.shape()));
  return where(mask, scalar_like(x, value), x);
}

}  // namespace nanorlhf
