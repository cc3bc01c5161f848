// Raw reductions: move the reduced dims last, make the tensor [rows, cols], reduce each row.
#include <algorithm>

#include "kernels/cpu/elementwise.h"
#include "tensor/dispatch.h"
#include "tensor/native.h"

namespace nanorlhf::native {

namespace {

struct RowsView {
  Tensor x2d;      // [rows, cols] contiguous
  Shape out_shape;  // shape of the result
};

RowsView to_rows(const Tensor &x, const Shape &dims_in, bool keepdim, const char *op) {
  int64_t nd = x.dim();
  std::vector<bool> red(std::max<int64_t>(nd, 1), dims_in.empty());
  for (auto d : dims_in) {
    int64_t w = wrap_dim(d, nd, op);
    NR_CHECK(!red[w] || dims_in.empty(), "{}: dim {} repeated", op, d);
    red[w] = true;
  }
  Shape perm, out_shape;
  int64_t rows = 1, cols = 1;
  for (int64_t i = 0; i < nd; ++i)
    if (!red[i]) { perm.push_back(i); rows *= x.shape()[i]; out_shape.push_back(x.shape()[i]); }
    else if (keepdim) out_shape.push_back(1);
  for (int64_t i = 0; i < nd; ++i)
    if (red[i]) { perm.push_back(i); cols *= x.shape()[i]; }
  // Permute without autograd: build the strided view by hand.
  auto impl = std::make_shared<TensorImpl>(*x.impl_ptr());
  impl->grad_fn = nullptr; impl->grad = nullptr; impl->requires_grad = false;
  for (int64_t i = 0; i < nd; ++i) { impl->shape[i] = x.shape()[perm[i]]; impl->strides[i] = x.strides()[perm[i]]; }
  Tensor p(impl);
  if (!p.is_contiguous()) p = contiguous(p);
  auto impl2 = std::make_shared<TensorImpl>(*p.impl_ptr());
  impl2->shape = {rows, cols};
  impl2->strides = {cols, 1};
  return {Tensor(impl2), out_shape};
}

// The reduced dims are exactly a leading prefix 0..p-1 (0 < p < x.dim()) of a contiguous CPU float
// tensor: a column sum of x seen as [rows, cols], with no transposed copy. Returns p, or 0.
int64_t leading_prefix(const Tensor &x, const Shape &dims) {
  const int64_t nd = x.dim();
  if (dims.empty() || nd < 2 || !x.is_contiguous()) return 0;
  std::vector<bool> red(nd, false);
  for (auto d : dims) {
    if (d < -nd || d >= nd) return 0;  // let to_rows report it
    int64_t w = d < 0 ? d + nd : d;
    if (red[w]) return 0;
    red[w] = true;
  }
  int64_t p = 0;
  while (p < nd && red[p]) ++p;
  for (int64_t i = p; i < nd; ++i)
    if (red[i]) return 0;
  return p < nd ? p : 0;
}

}  // namespace

Tensor reduce(ReduceOp op, const Tensor &x, const Shape &dims, bool keepdim) {
  const char *name = op == ReduceOp::sum ? "sum" : op == ReduceOp::max ? "max" : op == ReduceOp::min ? "min" : "logsumexp";
  if (int64_t p = op == ReduceOp::sum && !x.is_cuda() && is_floating(x.dtype()) ? leading_prefix(x, dims) : 0) {
    Shape out_shape;
    int64_t rows = 1, cols = 1;
    for (int64_t i = 0; i < x.dim(); ++i) {
      if (i < p) {
        rows *= x.shape()[i];
        if (keepdim) out_shape.push_back(1);
      } else {
        cols *= x.shape()[i];
        out_shape.push_back(x.shape()[i]);
      }
    }
    Tensor out = Tensor::empty(out_shape, {x.dtype(), x.device()});
    visit_float(x.dtype(), name, [&](auto tag) {
      using T = decltype(tag);
      kernels::cpu::reduce_cols_sum<T>((const T *)x.raw_data(), rows, cols, (T *)out.raw_data());
    });
    return out;
  }
  RowsView v = to_rows(x, dims, keepdim, name);
  int64_t rows = v.x2d.shape()[0], cols = v.x2d.shape()[1];
  NR_CHECK(cols > 0 || op == ReduceOp::sum, "{}: cannot reduce an empty dimension (shape {})", name, shape_str(x.shape()));
  Tensor out = Tensor::empty(v.out_shape, {x.dtype(), x.device()});
  if (rows == 0) return out;
  if (x.is_cuda()) {
    check_cuda_f32(x, name);
    NR_CUDA(kernels::cuda::reduce_rows(op, v.x2d.data_ptr<float>(), rows, cols, out.data_ptr<float>()));
    return out;
  }
  if (!is_floating(x.dtype())) return cast(reduce(op, cast(x, kFloat64), dims, keepdim), x.dtype());
  visit_float(x.dtype(), name, [&](auto tag) {
    using T = decltype(tag);
    kernels::cpu::reduce_rows<T>(op, (const T *)v.x2d.raw_data(), rows, cols, (T *)out.raw_data());
  });
  return out;
}

Tensor argmax(const Tensor &x, int64_t dim, bool keepdim) {
  RowsView v = to_rows(x, {dim}, keepdim, "argmax");
  int64_t rows = v.x2d.shape()[0], cols = v.x2d.shape()[1];
  NR_CHECK(cols > 0, "argmax: cannot reduce an empty dimension (shape {})", shape_str(x.shape()));
  Tensor out = Tensor::empty(v.out_shape, {kInt64, x.device()});
  if (rows == 0) return out;
  if (x.is_cuda()) {
    check_cuda_f32(x, "argmax");
    NR_CUDA(kernels::cuda::argmax_rows(v.x2d.data_ptr<float>(), rows, cols, out.data_ptr<int64_t>()));
    return out;
  }
  Tensor xf = is_floating(x.dtype()) ? v.x2d : cast(v.x2d, kFloat64);
  visit_float(xf.dtype(), "argmax", [&](auto tag) {
    using T = decltype(tag);
    kernels::cpu::argmax_rows<T>((const T *)xf.raw_data(), rows, cols, out.data_ptr<int64_t>());
  });
  return out;
}

}  // namespace nanorlhf::native
