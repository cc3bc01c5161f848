// matmul and its backward: dA = dC B^T, dB = A^T dC, each summed over broadcast batch dims.
#include "autograd/ops.h"
#include "tensor/native.h"

namespace nanorlhf {

Tensor matmul(const Tensor &a, const Tensor &b) {
  return autograd::record("matmul", {a, b}, native::matmul(a, b), [a, b](const Tensor &g) -> std::vector<Tensor> {
    Tensor A = a.dim() == 1 ? a.unsqueeze(0) : a, B = b.dim() == 1 ? b.unsqueeze(1) : b;
    Tensor G = g;
    if (a.dim() == 1) G = G.unsqueeze(-2);
    if (b.dim() == 1) G = G.unsqueeze(-1);
    Tensor da, db;
    if (a.requires_grad()) da = sum_to_shape(native::matmul(G, B.transpose(-1, -2)), A.shape()).reshape(a.shape());
    if (b.requires_grad()) {
      if (B.dim() == 2 && G.dim() == 2 && B.strides()[0] == 1 && B.shape()[0] > 1 && B.shape()[1] > 1) {
        // B is a transposed view of a row-major matrix (Linear's W^T): compute dB^T = G^T A, so
        // that the transpose's backward hands the weight a contiguous gradient (no strided copy).
        db = native::matmul(G.transpose(-1, -2), A).transpose(-1, -2).reshape(b.shape());
      } else {
        db = sum_to_shape(native::matmul(A.transpose(-1, -2), G), B.shape()).reshape(b.shape());
      }
    }
    return {da, db};
  });
}

}  // namespace nanorlhf
