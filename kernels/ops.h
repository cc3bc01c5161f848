// The op codes shared by every backend's elementwise and reduction kernels, and the host/device macro.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define NR_HD __host__ __device__ __forceinline__
#else
#define NR_HD inline
#endif

namespace nanorlhf::kernels {

// y = f(x) elementwise. `*_grad` codes are derivatives f'(x), used by backward formulas.
enum class UnaryOp : int32_t {
  neg, exp, log, sqrt, rsqrt, tanh, sigmoid, relu, gelu, silu, abs, sign,
  gelu_grad, silu_grad, relu_grad,
  pow_scalar,   // x^alpha
  add_scalar,   // x + alpha
  mul_scalar,   // x * alpha
  rsub_scalar,  // alpha - x
  rdiv_scalar,  // alpha / x
  clamp,        // clamp(x, alpha, beta)
  log1p, square, reciprocal,
};

// out = f(a, b) elementwise with broadcasting.
enum class BinaryOp : int32_t { add, sub, mul, div, pow, maximum, minimum };

// mask = a OP b (stored as uint8 0/1).
enum class CompareOp : int32_t { eq, ne, lt, le, gt, ge };

// Row reductions: x[rows, cols] -> out[rows].
enum class ReduceOp : int32_t { sum, max, min, logsumexp };

constexpr int kMaxDims = 8;

}  // namespace nanorlhf::kernels
