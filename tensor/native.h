// The engine's raw ops: check shapes and dtypes, pick the device, call the kernels. No autograd
// here: the differentiable ops in autograd/ call these and record how to differentiate them.
#pragma once
#include <tuple>
#include <vector>

#include "kernels/ops.h"
#include "tensor/tensor.h"

namespace nanorlhf::native {

using kernels::BinaryOp;
using kernels::CompareOp;
using kernels::ReduceOp;
using kernels::UnaryOp;

// Broadcast two shapes NumPy-style; throws naming both shapes and the op.
Shape broadcast_shapes(const Shape &a, const Shape &b, const char *op);
// Strides that read `t` as if expanded to `shape` (0 on broadcast dims).
Shape broadcast_strides(const Tensor &t, const Shape &shape);
// Same device and dtype, or a clear error naming the op.
void check_same(const Tensor &a, const Tensor &b, const char *op, bool same_dtype = true);

Tensor unary(UnaryOp op, const Tensor &x, double alpha = 0, double beta = 0);
Tensor binary(BinaryOp op, const Tensor &a, const Tensor &b);
Tensor compare(CompareOp op, const Tensor &a, const Tensor &b);  // -> bool
Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b);

Tensor contiguous(const Tensor &x);  // always a fresh contiguous copy
Tensor cast(const Tensor &x, DType dtype);
Tensor to_device(const Tensor &x, Device device);
void fill_(const Tensor &x, double value);
void copy_(const Tensor &dst, const Tensor &src);  // dst must be contiguous

// Reductions over `dims` (empty = all dims).
Tensor reduce(ReduceOp op, const Tensor &x, const Shape &dims, bool keepdim);
Tensor argmax(const Tensor &x, int64_t dim, bool keepdim);

// a [..., M, K] @ b [..., K, N], batch dims broadcast; transposed views are read without copies.
Tensor matmul(const Tensor &a, const Tensor &b);

Tensor softmax(const Tensor &x, int64_t dim, bool log);
Tensor softmax_backward(const Tensor &y, const Tensor &dy, int64_t dim, bool log);
// y, mean, rstd over the last dim
std::tuple<Tensor, Tensor, Tensor> layer_norm(const Tensor &x, const Tensor &weight, const Tensor &bias, double eps);
// dx, dweight, dbias
std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor &dy, const Tensor &x, const Tensor &weight,
                                                        const Tensor &mean, const Tensor &rstd);
// logits [N, V], target int64 [N] -> loss [N], lse [N]
std::pair<Tensor, Tensor> cross_entropy(const Tensor &logits, const Tensor &target, int64_t ignore_index);
Tensor cross_entropy_backward(const Tensor &logits, const Tensor &target, const Tensor &lse, const Tensor &dloss,
                              int64_t ignore_index);
// weight [num, D], idx int64 (any shape) -> [idx..., D]
Tensor index_select_rows(const Tensor &weight, const Tensor &idx);
// dweight [num, D] = sum of dout rows at idx
Tensor index_add_rows(const Tensor &dout, const Tensor &idx, int64_t num);
// along the last dim: x [R, C], idx [R, K] -> [R, K]; and the scatter-add back to [R, C]
Tensor gather_last(const Tensor &x, const Tensor &idx);
Tensor scatter_add_last(const Tensor &dout, const Tensor &idx, int64_t cols);
Tensor cat(const std::vector<Tensor> &xs, int64_t dim);
// Philox draws with an explicit stream position.
Tensor uniform(const Shape &shape, TensorOptions opts, double low, double high);
Tensor normal(const Shape &shape, TensorOptions opts, double mean, double std);

}  // namespace nanorlhf::native
