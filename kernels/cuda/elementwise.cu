// CUDA elementwise, broadcast, copy, cast, fill and random kernels (CPU reference: kernels/cpu/elementwise.h).
// version 1 (unary, binary): scalar grid-stride loop, one element per thread per step
// version 2 (unary, binary): float4 loads and stores on 16-byte aligned contiguous data, scalar tail
// strided (binary, compare, where, copy_strided): one thread per output element; the host first drops
//   size-1 dims and merges dims that are contiguous for every operand, so most views reach the
//   kernel as one or two dims; a fully contiguous binary goes to version 2
// random: one Philox4x32-10 block serves 4 consecutive uniforms (2 normals), the same stream as
//   kernels/philox.h's per-element functions
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"
#include "kernels/philox.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

constexpr int kBlock = 256;

// ---------------------------------------------------------------------------------------------
// the scalar functions, as kernels/cpu/elementwise.cpp defines them

// Numerically stable logistic: never evaluates exp of a large positive number.
__device__ __forceinline__ float sigmoid_f(float x) {
  if (x >= 0.f) return 1.0f / (1.0f + expf(-x));
  float e = expf(x);
  return e / (1.0f + e);
}

__device__ __forceinline__ float unary_f(UnaryOp op, float x, float alpha, float beta) {
  switch (op) {
    case UnaryOp::neg: return -x;
    case UnaryOp::exp: return expf(x);
    case UnaryOp::log: return logf(x);
    case UnaryOp::sqrt: return sqrtf(x);
    case UnaryOp::rsqrt: return 1.0f / sqrtf(x);
    case UnaryOp::tanh: return tanhf(x);
    case UnaryOp::sigmoid: return sigmoid_f(x);
    case UnaryOp::relu: return x < 0.f ? 0.f : x;  // relu(NaN) = NaN
    case UnaryOp::gelu: {
      // GELU, tanh approximation (Hendrycks & Gimpel 2016): 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
      const float k0 = 0.7978845608028654f, k1 = 0.044715f;
      return 0.5f * x * (1.0f + tanhf(k0 * (x + k1 * x * x * x)));
    }
    case UnaryOp::silu: return x * sigmoid_f(x);
    case UnaryOp::abs: return fabsf(x);
    case UnaryOp::sign: return x > 0.f ? 1.f : (x < 0.f ? -1.f : x);  // keeps 0, -0 and NaN
    case UnaryOp::gelu_grad: {
      // d/dx of the tanh GELU: 0.5 (1 + t) + 0.5 x (1 - t^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)
      const float k0 = 0.7978845608028654f, k1 = 0.044715f;
      float t = tanhf(k0 * (x + k1 * x * x * x));
      return 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * k0 * (1.0f + 3.0f * k1 * x * x);
    }
    case UnaryOp::silu_grad: {
      float s = sigmoid_f(x);
      return s * (1.0f + x * (1.0f - s));
    }
    case UnaryOp::relu_grad: return x > 0.f ? 1.f : 0.f;
    case UnaryOp::pow_scalar:  // the CPU's exact special cases
      return alpha == 2.f ? x * x : alpha == 1.f ? x : alpha == 0.5f ? sqrtf(x) : powf(x, alpha);
    case UnaryOp::add_scalar: return x + alpha;
    case UnaryOp::mul_scalar: return x * alpha;
    case UnaryOp::rsub_scalar: return alpha - x;
    case UnaryOp::rdiv_scalar: return alpha / x;
    case UnaryOp::clamp: return x < alpha ? alpha : (x > beta ? beta : x);  // NaN passes through
    case UnaryOp::log1p: return log1pf(x);
    case UnaryOp::square: return x * x;
    case UnaryOp::reciprocal: return 1.0f / x;
  }
  return x;
}

__device__ __forceinline__ float binary_f(BinaryOp op, float a, float b) {
  switch (op) {
    case BinaryOp::add: return a + b;
    case BinaryOp::sub: return a - b;
    case BinaryOp::mul: return a * b;
    case BinaryOp::div: return a / b;
    case BinaryOp::pow: return powf(a, b);
    case BinaryOp::maximum: return nan_max(a, b);  // NaN propagates, as torch.maximum
    case BinaryOp::minimum: return nan_min(a, b);
  }
  return a;
}

__device__ __forceinline__ uint8_t compare_f(CompareOp op, float a, float b) {
  switch (op) {
    case CompareOp::eq: return a == b;
    case CompareOp::ne: return a != b;
    case CompareOp::lt: return a < b;
    case CompareOp::le: return a <= b;
    case CompareOp::gt: return a > b;
    case CompareOp::ge: return a >= b;
  }
  return 0;
}

// ---------------------------------------------------------------------------------------------
// version 1 and 2 of the contiguous kernels

__global__ void unary_v1_kernel(UnaryOp op, const float *__restrict__ x, float *__restrict__ y, int64_t n,
                                float alpha, float beta) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    y[i] = unary_f(op, x[i], alpha, beta);
}

__global__ void unary_v2_kernel(UnaryOp op, const float *__restrict__ x, float *__restrict__ y, int64_t n,
                                float alpha, float beta) {
  const int64_t n4 = n / 4, tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x,
                stride = (int64_t)gridDim.x * blockDim.x;
  const float4 *x4 = reinterpret_cast<const float4 *>(x);
  float4 *y4 = reinterpret_cast<float4 *>(y);
  for (int64_t i = tid; i < n4; i += stride) {
    float4 v = x4[i];
    v.x = unary_f(op, v.x, alpha, beta);
    v.y = unary_f(op, v.y, alpha, beta);
    v.z = unary_f(op, v.z, alpha, beta);
    v.w = unary_f(op, v.w, alpha, beta);
    y4[i] = v;
  }
  for (int64_t i = n4 * 4 + tid; i < n; i += stride) y[i] = unary_f(op, x[i], alpha, beta);
}

__global__ void binary_v1_kernel(BinaryOp op, const float *__restrict__ a, const float *__restrict__ b,
                                 float *__restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    out[i] = binary_f(op, a[i], b[i]);
}

__global__ void binary_v2_kernel(BinaryOp op, const float *__restrict__ a, const float *__restrict__ b,
                                 float *__restrict__ out, int64_t n) {
  const int64_t n4 = n / 4, tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x,
                stride = (int64_t)gridDim.x * blockDim.x;
  const float4 *a4 = reinterpret_cast<const float4 *>(a), *b4 = reinterpret_cast<const float4 *>(b);
  float4 *o4 = reinterpret_cast<float4 *>(out);
  for (int64_t i = tid; i < n4; i += stride) {
    float4 u = a4[i], w = b4[i];
    o4[i] = make_float4(binary_f(op, u.x, w.x), binary_f(op, u.y, w.y), binary_f(op, u.z, w.z),
                        binary_f(op, u.w, w.w));
  }
  for (int64_t i = n4 * 4 + tid; i < n; i += stride) out[i] = binary_f(op, a[i], b[i]);
}

// ---------------------------------------------------------------------------------------------
// strided (broadcast) kernels

// Output shape and up to three operands' element strides, passed by value (kernel parameter space).
struct Strided {
  int ndim;
  int64_t shape[kMaxDims];
  int64_t stride[3][kMaxDims];
};

// Builds the coalesced description; returns the element count (0: nothing to do).
int64_t make_strided(Strided &st, int ndim, const int64_t *shape, int nops, const int64_t *const *strides) {
  if (ndim < 0 || ndim > kMaxDims)
    throw std::invalid_argument("CUDA strided kernel: ndim " + std::to_string(ndim) + " outside [0, " +
                                std::to_string(kMaxDims) + "]");
  int64_t n = 1;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] < 0) throw std::invalid_argument("CUDA strided kernel: negative extent in shape");
    n *= shape[d];
  }
  st = Strided{};
  int k = 0;
  for (int d = 0; d < ndim; ++d) {  // outer to inner
    if (shape[d] == 1) continue;
    bool merge = k > 0;
    for (int o = 0; o < nops && merge; ++o) merge = st.stride[o][k - 1] == strides[o][d] * shape[d];
    if (merge) {
      st.shape[k - 1] *= shape[d];
      for (int o = 0; o < nops; ++o) st.stride[o][k - 1] = strides[o][d];
    } else {
      st.shape[k] = shape[d];
      for (int o = 0; o < nops; ++o) st.stride[o][k] = strides[o][d];
      ++k;
    }
  }
  if (k == 0) {  // a scalar or all extents 1
    st.shape[0] = 1;
    k = 1;
  }
  st.ndim = k;
  return n;
}

bool contiguous1(const Strided &st, int op) { return st.ndim == 1 && st.stride[op][0] == 1; }

template <int NOPS>
__device__ __forceinline__ void strided_offsets(const Strided &st, int64_t i, int64_t (&off)[NOPS]) {
#pragma unroll
  for (int o = 0; o < NOPS; ++o) off[o] = 0;
  if (st.ndim == 1) {
#pragma unroll
    for (int o = 0; o < NOPS; ++o) off[o] = i * st.stride[o][0];
    return;
  }
#pragma unroll
  for (int d = kMaxDims - 1; d >= 0; --d) {
    if (d >= st.ndim) continue;
    int64_t idx = i % st.shape[d];
    i /= st.shape[d];
#pragma unroll
    for (int o = 0; o < NOPS; ++o) off[o] += idx * st.stride[o][d];
  }
}

__global__ void binary_strided_kernel(BinaryOp op, Strided st, const float *__restrict__ a,
                                      const float *__restrict__ b, float *__restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off[2];
    strided_offsets<2>(st, i, off);
    out[i] = binary_f(op, a[off[0]], b[off[1]]);
  }
}

__global__ void compare_strided_kernel(CompareOp op, Strided st, const float *__restrict__ a,
                                       const float *__restrict__ b, uint8_t *__restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off[2];
    strided_offsets<2>(st, i, off);
    out[i] = compare_f(op, a[off[0]], b[off[1]]);
  }
}

__global__ void where_strided_kernel(Strided st, const uint8_t *__restrict__ cond, const float *__restrict__ a,
                                     const float *__restrict__ b, float *__restrict__ out, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off[3];
    strided_offsets<3>(st, i, off);
    out[i] = cond[off[0]] ? a[off[1]] : b[off[2]];
  }
}

template <class T>
__global__ void copy_strided_kernel(Strided st, const T *__restrict__ src, T *__restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    int64_t off[1];
    strided_offsets<1>(st, i, off);
    dst[i] = src[off[0]];
  }
}

// ---------------------------------------------------------------------------------------------
// casts, fill, arange, random

template <class S, class D>
__global__ void cast_kernel(const S *__restrict__ src, D *__restrict__ dst, int64_t n) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    dst[i] = static_cast<D>(src[i]);
}

template <class T>
__global__ void fill_kernel(T *__restrict__ p, int64_t n, T value) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    p[i] = value;
}

// p[i] = start + i * step in double, rounded once to float (no fused multiply-add, as on the CPU)
__global__ void arange_kernel(float *__restrict__ p, int64_t n, double start, double step) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x)
    p[i] = (float)__dadd_rn(start, __dmul_rn((double)i, step));
}

// Lane l of Philox block g is uniform element 4g + l (see philox_uniform).
__device__ __forceinline__ Philox4 uniform_block(uint64_t seed, uint64_t offset, int64_t g) {
  uint64_t c = offset + (uint64_t)g;
  return philox4x32((uint32_t)c, (uint32_t)(c >> 32), 0, 0, (uint32_t)seed, (uint32_t)(seed >> 32));
}
__device__ __forceinline__ float lane_uniform(uint32_t r) { return (float)(r >> 8) * (1.0f / 16777216.0f); }

// out[i] = low + (high - low) * u_i, in double and rounded once (as the CPU does)
__global__ void uniform_kernel(float *__restrict__ out, int64_t n, uint64_t seed, uint64_t offset, double low,
                               double range) {
  const int64_t groups = (n + 3) / 4;
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < groups; g += (int64_t)gridDim.x * blockDim.x) {
    Philox4 r = uniform_block(seed, offset, g);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      int64_t i = 4 * g + l;
      if (i < n) out[i] = (float)__dadd_rn(low, __dmul_rn(range, (double)lane_uniform(r.x[l])));
    }
  }
}

// Element i is philox_normal(seed, offset, i): two elements share one Philox block.
__global__ void normal_kernel(float *__restrict__ out, int64_t n, uint64_t seed, uint64_t offset, double mean,
                              double std) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float z = philox_normal(seed, offset, (uint64_t)i);
    out[i] = (float)__dadd_rn(mean, __dmul_rn(std, (double)z));
  }
}

__global__ void dropout_kernel(const float *__restrict__ x, float *__restrict__ y, uint8_t *__restrict__ mask,
                               int64_t n, float p, uint64_t seed, uint64_t offset) {
  const int64_t groups = (n + 3) / 4;
  const float keep_scale = 1.0f - p;
  for (int64_t g = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; g < groups; g += (int64_t)gridDim.x * blockDim.x) {
    Philox4 r = uniform_block(seed, offset, g);
#pragma unroll
    for (int l = 0; l < 4; ++l) {
      int64_t i = 4 * g + l;
      if (i < n) {
        bool keep = lane_uniform(r.x[l]) >= p;
        if (mask) mask[i] = keep;
        y[i] = keep ? x[i] / keep_scale : 0.f;
      }
    }
  }
}

template <class T>
void launch_fill(T *p, int64_t n, T value) {
  if (n <= 0) return;
  fill_kernel<T><<<grid_for(n, kBlock), kBlock>>>(p, n, value);
  CUDA_LAUNCH_CHECK("fill_kernel");
}

template <class S, class D>
void launch_cast(const S *src, D *dst, int64_t n) {
  if (n <= 0) return;
  cast_kernel<S, D><<<grid_for(n, kBlock), kBlock>>>(src, dst, n);
  CUDA_LAUNCH_CHECK("cast_kernel");
}

[[noreturn]] void bad_version(const char *family, int version) {
  throw std::invalid_argument(std::string("CUDA ") + family + ": no version " + std::to_string(version));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// versions

namespace versions {

void unary(int version, UnaryOp op, const float *x, float *y, int64_t n, double alpha, double beta) {
  if (n <= 0) return;
  if (version == 1) {
    unary_v1_kernel<<<grid_for(n, kBlock), kBlock>>>(op, x, y, n, (float)alpha, (float)beta);
    CUDA_LAUNCH_CHECK("unary_v1_kernel");
  } else if (version == 2) {
    if (!aligned16(x) || !aligned16(y)) return unary(1, op, x, y, n, alpha, beta);
    unary_v2_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock>>>(op, x, y, n, (float)alpha, (float)beta);
    CUDA_LAUNCH_CHECK("unary_v2_kernel");
  } else {
    bad_version("unary", version);
  }
}

void binary_contiguous(int version, BinaryOp op, const float *a, const float *b, float *out, int64_t n) {
  if (n <= 0) return;
  if (version == 1) {
    binary_v1_kernel<<<grid_for(n, kBlock), kBlock>>>(op, a, b, out, n);
    CUDA_LAUNCH_CHECK("binary_v1_kernel");
  } else if (version == 2) {
    if (!aligned16(a) || !aligned16(b) || !aligned16(out)) return binary_contiguous(1, op, a, b, out, n);
    binary_v2_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock>>>(op, a, b, out, n);
    CUDA_LAUNCH_CHECK("binary_v2_kernel");
  } else {
    bad_version("binary", version);
  }
}

}  // namespace versions

// ---------------------------------------------------------------------------------------------
// the public kernels

void unary(UnaryOp op, const float *x, float *y, int64_t n, double alpha, double beta) {
  versions::unary(2, op, x, y, n, alpha, beta);
}

void binary(BinaryOp op, int ndim, const int64_t *shape, const float *a, const int64_t *sa, const float *b,
            const int64_t *sb, float *out) {
  Strided st;
  const int64_t *strides[2] = {sa, sb};
  int64_t n = make_strided(st, ndim, shape, 2, strides);
  if (n == 0) return;
  if (contiguous1(st, 0) && contiguous1(st, 1)) return versions::binary_contiguous(2, op, a, b, out, n);
  binary_strided_kernel<<<grid_for(n, kBlock), kBlock>>>(op, st, a, b, out, n);
  CUDA_LAUNCH_CHECK("binary_strided_kernel");
}

void compare(CompareOp op, int ndim, const int64_t *shape, const float *a, const int64_t *sa, const float *b,
             const int64_t *sb, uint8_t *out) {
  Strided st;
  const int64_t *strides[2] = {sa, sb};
  int64_t n = make_strided(st, ndim, shape, 2, strides);
  if (n == 0) return;
  compare_strided_kernel<<<grid_for(n, kBlock), kBlock>>>(op, st, a, b, out, n);
  CUDA_LAUNCH_CHECK("compare_strided_kernel");
}

void where(int ndim, const int64_t *shape, const uint8_t *cond, const int64_t *sc, const float *a,
           const int64_t *sa, const float *b, const int64_t *sb, float *out) {
  Strided st;
  const int64_t *strides[3] = {sc, sa, sb};
  int64_t n = make_strided(st, ndim, shape, 3, strides);
  if (n == 0) return;
  where_strided_kernel<<<grid_for(n, kBlock), kBlock>>>(st, cond, a, b, out, n);
  CUDA_LAUNCH_CHECK("where_strided_kernel");
}

void copy_strided(int ndim, const int64_t *shape, const void *src, const int64_t *strides, void *dst, int elem_size) {
  if (elem_size != 1 && elem_size != 2 && elem_size != 4 && elem_size != 8)
    throw std::invalid_argument("CUDA copy_strided: element size " + std::to_string(elem_size) +
                                " is not 1, 2, 4 or 8 bytes");
  Strided st;
  const int64_t *s[1] = {strides};
  int64_t n = make_strided(st, ndim, shape, 1, s);
  if (n == 0) return;
  if (contiguous1(st, 0) || n == 1) {
    CUDA_CHECK(cudaMemcpyAsync(dst, src, (size_t)n * elem_size, cudaMemcpyDeviceToDevice, 0));
    return;
  }
  const unsigned grid = grid_for(n, kBlock);
  switch (elem_size) {
    case 1: copy_strided_kernel<uint8_t><<<grid, kBlock>>>(st, (const uint8_t *)src, (uint8_t *)dst, n); break;
    case 2: copy_strided_kernel<uint16_t><<<grid, kBlock>>>(st, (const uint16_t *)src, (uint16_t *)dst, n); break;
    case 4: copy_strided_kernel<uint32_t><<<grid, kBlock>>>(st, (const uint32_t *)src, (uint32_t *)dst, n); break;
    case 8:
      copy_strided_kernel<unsigned long long>
          <<<grid, kBlock>>>(st, (const unsigned long long *)src, (unsigned long long *)dst, n);
      break;
  }
  CUDA_LAUNCH_CHECK("copy_strided_kernel");
}

void cast_f32_i64(const float *src, int64_t *dst, int64_t n) { launch_cast(src, dst, n); }
void cast_i64_f32(const int64_t *src, float *dst, int64_t n) { launch_cast(src, dst, n); }
void cast_u8_f32(const uint8_t *src, float *dst, int64_t n) { launch_cast(src, dst, n); }

void fill(float *p, int64_t n, float value) {
  if (n > 0 && value == 0.f && !std::signbit(value)) {  // +0.0 is all-zero bits
    CUDA_CHECK(cudaMemsetAsync(p, 0, (size_t)n * sizeof(float), 0));
    return;
  }
  launch_fill(p, n, value);
}

void fill_i64(int64_t *p, int64_t n, int64_t value) {
  if (n > 0 && value == 0) {
    CUDA_CHECK(cudaMemsetAsync(p, 0, (size_t)n * sizeof(int64_t), 0));
    return;
  }
  launch_fill(p, n, value);
}

void arange(float *p, int64_t n, double start, double step) {
  if (n <= 0) return;
  arange_kernel<<<grid_for(n, kBlock), kBlock>>>(p, n, start, step);
  CUDA_LAUNCH_CHECK("arange_kernel");
}

void uniform(float *out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  if (n <= 0) return;
  uniform_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock>>>(out, n, seed, offset, low, high - low);
  CUDA_LAUNCH_CHECK("uniform_kernel");
}

void normal(float *out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
  if (n <= 0) return;
  normal_kernel<<<grid_for(n, kBlock), kBlock>>>(out, n, seed, offset, mean, std);
  CUDA_LAUNCH_CHECK("normal_kernel");
}

void dropout(const float *x, float *y, uint8_t *mask, int64_t n, float p, uint64_t seed, uint64_t offset) {
  if (n <= 0) return;
  if (!(p >= 0.f && p <= 1.f)) throw std::invalid_argument("CUDA dropout: p must be in [0, 1], got " + std::to_string(p));
  if (p >= 1.f) {  // every element dropped (the formula would divide 0 by 0)
    fill(y, n, 0.f);
    if (mask) CUDA_CHECK(cudaMemsetAsync(mask, 0, (size_t)n, 0));
    return;
  }
  dropout_kernel<<<grid_for((n + 3) / 4, kBlock), kBlock>>>(x, y, mask, n, p, seed, offset);
  CUDA_LAUNCH_CHECK("dropout_kernel");
}

}  // namespace nanorlhf::kernels::cuda
