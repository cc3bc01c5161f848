// Private helpers for tensor/native_*.cpp: dtype visitation and the CUDA switch.
#pragma once
#include "tensor/tensor.h"

#ifdef NANORLHF_WITH_CUDA
#include "kernels/cuda/cuda_api.h"
#define NR_CUDA(...) __VA_ARGS__
#else
#define NR_CUDA(...) \
  throw ::nanorlhf::Error("this build has no CUDA backend (configure with NANORLHF_CUDA=ON where nvcc and cuBLAS exist)")
#endif

namespace nanorlhf::native {

// Calls f(T{}) with T = float or double; other dtypes are an error naming the op.
template <class F> void visit_float(DType t, const char *op, F &&f) {
  if (t == kFloat32) f(float{});
  else if (t == kFloat64) f(double{});
  else throw Error(fmt::format("{}: expected a floating-point tensor, got {}", op, dtype_name(t)));
}

// Calls f(T{}) for every dtype.
template <class F> void visit_all(DType t, F &&f) {
  switch (t) {
    case kFloat32: f(float{}); break;
    case kFloat64: f(double{}); break;
    case kInt32: f(int32_t{}); break;
    case kInt64: f(int64_t{}); break;
    case kBool: f(uint8_t{}); break;
  }
}

// CUDA kernels take float32 values.
inline void check_cuda_f32(const Tensor &t, const char *op) {
  NR_CHECK(t.dtype() == kFloat32, "{} on CUDA supports float32 only, got {}", op, dtype_name(t.dtype()));
}

}  // namespace nanorlhf::native
