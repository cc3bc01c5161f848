// Shared device helpers for kernels/cuda/*.cu: launch sizing, warp and block reductions, and the
// online (max, sum-of-exp) pair that softmax, logsumexp and cross-entropy merge.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>

#include "kernels/cuda/check.h"

namespace nanorlhf::kernels::cuda::detail {

constexpr unsigned kFullMask = 0xffffffffu;

// Multiprocessors of the current device (cached per device; 132 on an H100 SXM).
inline int num_sms() {
  static int cached[64] = {0};
  int dev = 0;
  CUDA_CHECK(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) dev = 0;
  if (cached[dev] == 0) {
    int sms = 0;
    CUDA_CHECK(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, dev));
    cached[dev] = sms > 0 ? sms : 1;
  }
  return cached[dev];
}

// Blocks for a grid-stride loop over n work items: enough to fill the machine a few times over,
// never more than the items need.
inline unsigned grid_for(int64_t n, int block) {
  int64_t need = (n + block - 1) / block;
  int64_t cap = (int64_t)num_sms() * 8;
  int64_t g = need < cap ? need : cap;
  return (unsigned)(g > 0 ? g : 1);
}

inline bool aligned16(const void *p) { return ((uintptr_t)p & 15u) == 0; }

// Max/min that propagate NaN, as torch.maximum/minimum and the CPU kernels do (fmaxf drops NaN).
__device__ __forceinline__ float nan_max(float a, float b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
__device__ __forceinline__ float nan_min(float a, float b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }

struct SumOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return a + b; }
};
struct MaxOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fmaxf(a, b); }
};
struct MinOp {
  __device__ __forceinline__ float operator()(float a, float b) const { return fminf(a, b); }
};

template <class Op>
__device__ __forceinline__ float warp_reduce(float v, Op op) {
  for (int o = 16; o > 0; o >>= 1) v = op(v, __shfl_xor_sync(kFullMask, v, o));
  return v;  // every lane holds the result (butterfly)
}

// Block-wide reduction; blockDim.x must be a multiple of 32. Every thread gets the result.
// Starts with a barrier so that two calls in a row never race on the shared partials.
template <class Op>
__device__ __forceinline__ float block_reduce(float v, Op op, float identity) {
  __shared__ float partial[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce(v, op);
  __syncthreads();
  if (lane == 0) partial[warp] = v;
  __syncthreads();
  v = lane < nwarps ? partial[lane] : identity;
  return warp_reduce(v, op);  // each warp reduces the same partials
}

// Online softmax statistics: m = running max, s = sum of exp(x - m). Merging two partial states
// rescales the smaller-max side; m = -inf means "nothing seen yet" (s = 0).
struct MaxSum {
  float m, s;
};

__device__ __forceinline__ MaxSum maxsum_merge(MaxSum a, MaxSum b) {
  float m = nan_max(a.m, b.m);  // a NaN seen anywhere makes the result NaN
  if (m == -INFINITY) return {m, 0.f};
  float s = (a.m == -INFINITY ? 0.f : a.s * expf(a.m - m)) + (b.m == -INFINITY ? 0.f : b.s * expf(b.m - m));
  return {m, s};
}

// Adds one element x to the running state.
__device__ __forceinline__ MaxSum maxsum_push(MaxSum a, float x) {
  if (x != x) return {x, x};  // NaN poisons the state (and stays: every later update involves it)
  if (x > a.m) {
    float s = (a.m == -INFINITY ? 0.f : a.s * expf(a.m - x)) + 1.f;
    return {x, s};
  }
  if (x == -INFINITY) return a;  // also covers a.m == -inf: nothing to add
  return {a.m, a.s + expf(x - a.m)};
}

__device__ __forceinline__ MaxSum warp_reduce_maxsum(MaxSum v) {
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other{__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)};
    v = maxsum_merge(v, other);
  }
  return v;
}

__device__ __forceinline__ MaxSum block_reduce_maxsum(MaxSum v) {
  __shared__ float pm[32], ps[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_reduce_maxsum(v);
  __syncthreads();
  if (lane == 0) {
    pm[warp] = v.m;
    ps[warp] = v.s;
  }
  __syncthreads();
  MaxSum w = lane < nwarps ? MaxSum{pm[lane], ps[lane]} : MaxSum{-INFINITY, 0.f};
  return warp_reduce_maxsum(w);
}

// log(sum exp) of a finished state; -inf for an empty or all -inf row, +inf if a +inf was seen.
__device__ __forceinline__ float maxsum_lse(MaxSum v) {
  if (v.m == -INFINITY || v.m == INFINITY) return v.m;
  return v.m + logf(v.s);
}

}  // namespace nanorlhf::kernels::cuda::detail
