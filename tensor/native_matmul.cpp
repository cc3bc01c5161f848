// Raw batched matmul: reads transposed operands through the GEMM's trans flags (no copies),
// broadcasts batch dims, and parallelises over the batch when each matrix is small.
#include <omp.h>

#include "kernels/cpu/gemm.h"
#include "tensor/dispatch.h"
#include "tensor/native.h"

namespace nanorlhf::native {

namespace {

// How the GEMM reads one matrix operand (the last two dims of a tensor).
struct MatArg {
  Tensor t;  // possibly a contiguous copy of the original
  bool trans = false;
  int64_t ld = 0;
};

MatArg as_gemm_operand(const Tensor &x) {
  int64_t nd = x.dim(), rows = x.shape()[nd - 2], cols = x.shape()[nd - 1];
  int64_t sr = x.strides()[nd - 2], sc = x.strides()[nd - 1];
  if (cols == 1 || sc == 1) return {x, false, rows == 1 ? std::max<int64_t>(cols, 1) : sr};
  if (rows == 1 || sr == 1) return {x, true, cols == 1 ? std::max<int64_t>(rows, 1) : sc};
  Tensor c = contiguous(x);
  return {c, false, std::max<int64_t>(cols, 1)};
}

// Element offset of batch element `b` (row-major over batch_shape) in tensor t broadcast to batch_shape.
int64_t batch_offset(int64_t b, const Shape &batch_shape, const Shape &bstrides) {
  int64_t off = 0;
  for (int64_t i = (int64_t)batch_shape.size() - 1; i >= 0; --i) {
    int64_t n = batch_shape[i];
    off += (b % n) * bstrides[i];
    b /= n;
  }
  return off;
}

// One stride for the whole (flattened) batch, if the strides allow it.
[[maybe_unused]] bool single_batch_stride(const Shape &batch_shape, const Shape &st, int64_t *stride) {
  int64_t s = -1, expect = -1;
  for (int64_t i = (int64_t)batch_shape.size() - 1; i >= 0; --i) {
    if (batch_shape[i] == 1) continue;
    if (s < 0) { s = st[i]; expect = st[i] * batch_shape[i]; continue; }
    if (st[i] != expect && !(st[i] == 0 && s == 0)) return false;
    expect = st[i] * batch_shape[i];
  }
  *stride = s < 0 ? 0 : s;
  return true;
}

}  // namespace

Tensor matmul(const Tensor &a_in, const Tensor &b_in) {
  check_same(a_in, b_in, "matmul");
  NR_CHECK(a_in.dim() >= 1 && b_in.dim() >= 1, "matmul: scalars cannot be multiplied (shapes {} and {})",
           shape_str(a_in.shape()), shape_str(b_in.shape()));
  Tensor a = a_in, b = b_in;
  bool squeeze_m = false, squeeze_n = false;
  auto add_dim = [](const Tensor &t, int64_t pos) {  // a raw unsqueeze (no autograd)
    auto impl = std::make_shared<TensorImpl>(*t.impl_ptr());
    impl->grad_fn = nullptr; impl->grad = nullptr; impl->requires_grad = false;
    int64_t st = pos < t.dim() ? t.strides()[pos] * t.shape()[pos] : 1;
    impl->shape.insert(impl->shape.begin() + pos, 1);
    impl->strides.insert(impl->strides.begin() + pos, st);
    return Tensor(impl);
  };
  if (a.dim() == 1) { a = add_dim(a, 0); squeeze_m = true; }
  if (b.dim() == 1) { b = add_dim(b, 1); squeeze_n = true; }
  int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1];
  int64_t K2 = b.shape()[b.dim() - 2], N = b.shape()[b.dim() - 1];
  NR_CHECK(K == K2, "matmul: shapes {} and {} do not match (inner dims {} and {})", shape_str(a_in.shape()),
           shape_str(b_in.shape()), K, K2);
  Shape ab(a.shape().begin(), a.shape().end() - 2), bb(b.shape().begin(), b.shape().end() - 2);
  Shape batch = broadcast_shapes(ab, bb, "matmul (batch dims)");
  int64_t nbatch = shape_numel(batch);
  Shape out_shape = batch;
  out_shape.push_back(M);
  out_shape.push_back(N);
  Tensor out = Tensor::empty(out_shape, {a.dtype(), a.device()});

  MatArg A = as_gemm_operand(a), B = as_gemm_operand(b);
  auto bstr = [&](const Tensor &t) {  // batch strides broadcast to `batch`
    Shape st(batch.size(), 0);
    int64_t k = t.dim() - 2;
    for (int64_t i = 0; i < k; ++i) {
      int64_t o = (int64_t)batch.size() - k + i;
      st[o] = t.shape()[i] == 1 ? 0 : t.strides()[i];
    }
    return st;
  };
  Shape sa = bstr(A.t), sb = bstr(B.t);
  if (out.numel() == 0) return squeeze_m || squeeze_n ? out : out;

  if (a.is_cuda()) {
    check_cuda_f32(a, "matmul");
    NR_CUDA({
      int64_t s1, s2;
      const float *pa = A.t.data_ptr<float>(), *pb = B.t.data_ptr<float>();
      float *pc = out.data_ptr<float>();
      if (single_batch_stride(batch, sa, &s1) && single_batch_stride(batch, sb, &s2)) {
        kernels::cuda::gemm_batched(A.trans, B.trans, M, N, K, 1.f, pa, A.ld, s1, pb, B.ld, s2, 0.f, pc, N, M * N, nbatch);
      } else {
        for (int64_t i = 0; i < nbatch; ++i)
          kernels::cuda::gemm_batched(A.trans, B.trans, M, N, K, 1.f, pa + batch_offset(i, batch, sa), A.ld, 0,
                                      pb + batch_offset(i, batch, sb), B.ld, 0, 0.f, pc + i * M * N, N, 0, 1);
      }
    });
  } else {
    visit_float(a.dtype(), "matmul", [&](auto tag) {
      using T = decltype(tag);
      const T *pa = (const T *)A.t.raw_data(), *pb = (const T *)B.t.raw_data();
      T *pc = (T *)out.raw_data();
      auto one = [&](int64_t i) {
        kernels::cpu::gemm(A.trans, B.trans, M, N, K, T(1), pa + batch_offset(i, batch, sa), A.ld,
                           pb + batch_offset(i, batch, sb), B.ld, T(0), pc + i * M * N, N);
      };
      // Small matrices: one thread per matrix beats threading inside each tiny GEMM.
      if (nbatch > 1 && M * N * K <= 128 * 128 * 128) {
#pragma omp parallel for schedule(static)
        for (int64_t i = 0; i < nbatch; ++i) one(i);
      } else {
        for (int64_t i = 0; i < nbatch; ++i) one(i);
      }
    });
  }
  if (squeeze_m || squeeze_n) {
    Shape s = batch;
    if (!squeeze_m) s.push_back(M);
    if (!squeeze_n) s.push_back(N);
    auto impl = std::make_shared<TensorImpl>(*out.impl_ptr());
    impl->shape = s;
    impl->strides = contiguous_strides(s);
    return Tensor(impl);
  }
  return out;
}

}  // namespace nanorlhf::native
