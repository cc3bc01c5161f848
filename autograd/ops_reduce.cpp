// Reductions and their backward formulas: the gradient is broadcast back over the reduced dims.
#include "autograd/ops.h"
#include "tensor/native.h"

namespace nanorlhf {

using native::ReduceOp;
using autograd::record;

namespace {

Shape wrap_dims(const Tensor &x, const Shape &dims, const char *op) {
  Shape out;
  if (dims.empty()) for (int64_t i = 0; i < x.dim(); ++i) out.push_back(i);
  for (auto d : dims) out.push_back(wrap_dim(d, x.dim(), op));
  return out;
}

// Shape with the reduced dims kept as 1, so a reduced gradient broadcasts against the input.
Shape keep_shape(const Shape &xs, const Shape &dims) {
  Shape s = xs;
  for (auto d : dims) s[d] = 1;
  return s;
}

int64_t reduced_count(const Tensor &x, const Shape &dims) {
  int64_t n = 1;
  for (auto d : dims) n *= x.shape()[d];
  return n;
}

Tensor unreduce(const Tensor &g, const Shape &xs, const Shape &dims) { return g.reshape(keep_shape(xs, dims)); }

}  // namespace

Tensor sum_to_shape(const Tensor &g, const Shape &shape) {
  if (g.shape() == shape) return g;
  int64_t lead = g.dim() - (int64_t)shape.size();
  Shape dims;
  for (int64_t i = 0; i < g.dim(); ++i)
    if (i < lead || (shape[i - lead] == 1 && g.shape()[i] != 1)) dims.push_back(i);
  Tensor r = dims.empty() ? g : native::reduce(ReduceOp::sum, g, dims, true);
  return r.reshape(shape);
}

Tensor sum(const Tensor &x, const Shape &dims_in, bool keepdim) {
  Shape dims = wrap_dims(x, dims_in, "sum");
  return record("sum", {x}, native::reduce(ReduceOp::sum, x, dims, keepdim), [xs = x.shape(), dims](const Tensor &g) -> std::vector<Tensor> {
    return {unreduce(g, xs, dims).expand(xs)};
  });
}

Tensor mean(const Tensor &x, const Shape &dims_in, bool keepdim) {
  Shape dims = wrap_dims(x, dims_in, "mean");
  int64_t n = reduced_count(x, dims);
  NR_CHECK(n > 0, "mean: cannot average over an empty dimension (shape {})", shape_str(x.shape()));
  return sum(x, dims, keepdim) * (1.0 / (double)n);
}

namespace {
// amax/amin: the gradient is shared equally among the elements equal to the extreme value.
Tensor extreme(ReduceOp op, const char *name, const Tensor &x, const Shape &dims_in, bool keepdim) {
  Shape dims = wrap_dims(x, dims_in, name);
  Tensor y = native::reduce(op, x, dims, keepdim);
  return record(name, {x}, y, [x, dims, y = y.detach()](const Tensor &g) -> std::vector<Tensor> {
    Tensor yk = unreduce(y, x.shape(), dims);
    Tensor hit = native::cast(eq(x, yk), x.dtype());
    Tensor count = native::reduce(ReduceOp::sum, hit, dims, true);
    return {unreduce(g, x.shape(), dims) * hit / count};
  });
}
}  // namespace

Tensor amax(const Tensor &x, const Shape &dims, bool keepdim) { return extreme(ReduceOp::max, "amax", x, dims, keepdim); }
Tensor amin(const Tensor &x, const Shape &dims, bool keepdim) { return extreme(ReduceOp::min, "amin", x, dims, keepdim); }
Tensor max(const Tensor &x, int64_t dim, bool keepdim) { return amax(x, {dim}, keepdim); }
Tensor min(const Tensor &x, int64_t dim, bool keepdim) { return amin(x, {dim}, keepdim); }
Tensor argmax(const Tensor &x, int64_t dim, bool keepdim) { return native::argmax(x, dim, keepdim); }

Tensor logsumexp(const Tensor &x, const Shape &dims_in, bool keepdim) {
  Shape dims = wrap_dims(x, dims_in, "logsumexp");
  Tensor y = native::reduce(ReduceOp::logsumexp, x, dims, keepdim);
  // d/dx logsumexp(x) = softmax(x) = exp(x - y)
  return record("logsumexp", {x}, y, [x, dims, y = y.detach()](const Tensor &g) -> std::vector<Tensor> {
    return {unreduce(g, x.shape(), dims) * exp(x - unreduce(y, x.shape(), dims))};
  });
}

// var = sum((x - mean)^2) / (n - correction): composed of differentiable ops, so no backward of its own.
Tensor var(const Tensor &x, const Shape &dims_in, int64_t correction, bool keepdim) {
  Shape dims = wrap_dims(x, dims_in, "var");
  int64_t n = reduced_count(x, dims);
  NR_CHECK(n - correction > 0, "var: {} elements with correction {} leave no degrees of freedom", n, correction);
  Tensor d = x - mean(x, dims, true);
  return sum(d * d, dims, keepdim) * (1.0 / (double)(n - correction));
}

}  // namespace nanorlhf
