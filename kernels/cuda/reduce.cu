// CUDA row reductions x[rows, cols] -> out[rows] (sum, max, min, logsumexp) and argmax
// (CPU reference: kernels/cpu/elementwise.h reduce_rows, argmax_rows).
// version 1: one thread per row, loops over the columns (uncoalesced: neighbouring threads read
//            addresses `cols` apart); the plainest port of the CPU loop
// version 2: one warp per row, lanes stride the columns (coalesced), butterfly shuffle reduction
// version 3: one block per row, warp shuffles then one shared-memory round across warps; for long rows
// the public reduce_rows uses version 2 for rows up to 1024 columns and version 3 beyond.
// logsumexp keeps an online (max, sum of exp) pair per thread, so every version reads x once.
// An empty row gives the op's identity: sum 0, max -inf, min +inf, logsumexp -inf; argmax 0.
// max and min propagate NaN, and argmax returns the first NaN, as the CPU kernels (and PyTorch) do.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

// One reduction's per-thread state. logsumexp uses both fields (running max, sum of exp);
// the other ops keep their value in .m.
template <ReduceOp OP>
struct Reducer {
  __device__ static MaxSum init() {
    if constexpr (OP == ReduceOp::sum) return {0.f, 0.f};
    else if constexpr (OP == ReduceOp::min) return {INFINITY, 0.f};
    else return {-INFINITY, 0.f};
  }
  __device__ static MaxSum push(MaxSum a, float x) {
    if constexpr (OP == ReduceOp::sum) return {a.m + x, 0.f};
    else if constexpr (OP == ReduceOp::max) return {nan_max(a.m, x), 0.f};
    else if constexpr (OP == ReduceOp::min) return {nan_min(a.m, x), 0.f};
    else return maxsum_push(a, x);
  }
  __device__ static MaxSum merge(MaxSum a, MaxSum b) {
    if constexpr (OP == ReduceOp::sum) return {a.m + b.m, 0.f};
    else if constexpr (OP == ReduceOp::max) return {nan_max(a.m, b.m), 0.f};
    else if constexpr (OP == ReduceOp::min) return {nan_min(a.m, b.m), 0.f};
    else return maxsum_merge(a, b);
  }
  __device__ static float finish(MaxSum a) {
    if constexpr (OP == ReduceOp::logsumexp) return maxsum_lse(a);
    else return a.m;
  }
};

template <ReduceOp OP>
__device__ __forceinline__ MaxSum warp_merge(MaxSum v) {
  for (int o = 16; o > 0; o >>= 1) {
    MaxSum other{__shfl_xor_sync(kFullMask, v.m, o), __shfl_xor_sync(kFullMask, v.s, o)};
    v = Reducer<OP>::merge(v, other);
  }
  return v;
}

// version 1: x (rows, cols) -> out (rows); thread r reduces row r
template <ReduceOp OP>
__global__ void reduce_v1_kernel(const float *__restrict__ x, int64_t rows, int64_t cols, float *__restrict__ out) {
  int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *row = x + r * cols;
  MaxSum acc = Reducer<OP>::init();
  for (int64_t j = 0; j < cols; ++j) acc = Reducer<OP>::push(acc, row[j]);
  out[r] = Reducer<OP>::finish(acc);
}

// version 2: warp w of the block reduces row blockIdx.x * (blockDim.x / 32) + w
template <ReduceOp OP>
__global__ void reduce_v2_kernel(const float *__restrict__ x, int64_t rows, int64_t cols, float *__restrict__ out) {
  const int lane = threadIdx.x & 31;
  const int64_t r = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
  if (r >= rows) return;  // whole warps leave together: the shuffles below stay full-mask
  const float *row = x + r * cols;
  MaxSum acc = Reducer<OP>::init();
  for (int64_t j = lane; j < cols; j += 32) acc = Reducer<OP>::push(acc, row[j]);
  acc = warp_merge<OP>(acc);
  if (lane == 0) out[r] = Reducer<OP>::finish(acc);
}

// version 3: block b reduces row b
template <ReduceOp OP>
__global__ void reduce_v3_kernel(const float *__restrict__ x, int64_t rows, int64_t cols, float *__restrict__ out) {
  __shared__ float pm[32], ps[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int64_t r = blockIdx.x;
  const float *row = x + r * cols;
  MaxSum acc = Reducer<OP>::init();
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) acc = Reducer<OP>::push(acc, row[j]);
  acc = warp_merge<OP>(acc);
  if (lane == 0) {
    pm[warp] = acc.m;
    ps[warp] = acc.s;
  }
  __syncthreads();
  if (warp == 0) {
    acc = lane < nwarps ? MaxSum{pm[lane], ps[lane]} : Reducer<OP>::init();
    acc = warp_merge<OP>(acc);
    if (lane == 0) out[r] = Reducer<OP>::finish(acc);
  }
}

template <ReduceOp OP>
void launch_reduce(int version, const float *x, int64_t rows, int64_t cols, float *out) {
  if (version == 1) {
    const int block = 128;
    reduce_v1_kernel<OP><<<(unsigned)((rows + block - 1) / block), block>>>(x, rows, cols, out);
    CUDA_LAUNCH_CHECK("reduce_v1_kernel");
  } else if (version == 2) {
    const int block = 128, rows_per_block = block / 32;
    reduce_v2_kernel<OP><<<(unsigned)((rows + rows_per_block - 1) / rows_per_block), block>>>(x, rows, cols, out);
    CUDA_LAUNCH_CHECK("reduce_v2_kernel");
  } else if (version == 3) {
    const int block = cols > 16384 ? 512 : 256;
    reduce_v3_kernel<OP><<<(unsigned)rows, block>>>(x, rows, cols, out);
    CUDA_LAUNCH_CHECK("reduce_v3_kernel");
  } else {
    throw std::invalid_argument("CUDA reduce_rows: no version " + std::to_string(version));
  }
}

// argmax: one block per row (a single warp for short rows); ties go to the lowest index and a NaN
// counts as larger than any number, as in PyTorch.
struct ValIdx {
  float v;
  int64_t i;
};
__device__ __forceinline__ bool beats(ValIdx a, ValIdx b) {
  bool an = a.v != a.v, bn = b.v != b.v;
  if (an || bn) return an && (!bn || a.i < b.i);
  return a.v > b.v || (a.v == b.v && a.i < b.i);
}
__device__ __forceinline__ ValIdx warp_argmax(ValIdx a) {
  for (int o = 16; o > 0; o >>= 1) {
    ValIdx b{__shfl_xor_sync(kFullMask, a.v, o), (int64_t)__shfl_xor_sync(kFullMask, (long long)a.i, o)};
    if (beats(b, a)) a = b;
  }
  return a;
}

__global__ void argmax_kernel(const float *__restrict__ x, int64_t rows, int64_t cols, int64_t *__restrict__ out) {
  __shared__ float sv[32];
  __shared__ int64_t si[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const int64_t r = blockIdx.x;
  const float *row = x + r * cols;
  ValIdx best{-INFINITY, cols};  // loses to any real element; index `cols` marks "none seen"
  for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
    ValIdx c{row[j], j};
    if (beats(c, best)) best = c;
  }
  best = warp_argmax(best);
  if (lane == 0) {
    sv[warp] = best.v;
    si[warp] = best.i;
  }
  __syncthreads();
  if (warp == 0) {
    best = lane < nwarps ? ValIdx{sv[lane], si[lane]} : ValIdx{-INFINITY, cols};
    best = warp_argmax(best);
    if (lane == 0) out[r] = best.i < cols ? best.i : 0;
  }
}

}  // namespace

namespace versions {
void reduce_rows(int version, ReduceOp op, const float *x, int64_t rows, int64_t cols, float *out) {
  if (rows <= 0) return;
  switch (op) {
    case ReduceOp::sum: return launch_reduce<ReduceOp::sum>(version, x, rows, cols, out);
    case ReduceOp::max: return launch_reduce<ReduceOp::max>(version, x, rows, cols, out);
    case ReduceOp::min: return launch_reduce<ReduceOp::min>(version, x, rows, cols, out);
    case ReduceOp::logsumexp: return launch_reduce<ReduceOp::logsumexp>(version, x, rows, cols, out);
  }
  throw std::invalid_argument("CUDA reduce_rows: unknown ReduceOp " + std::to_string((int)op));
}
}  // namespace versions

void reduce_rows(ReduceOp op, const float *x, int64_t rows, int64_t cols, float *out) {
  versions::reduce_rows(cols <= 1024 ? 2 : 3, op, x, rows, cols, out);
}

void argmax_rows(const float *x, int64_t rows, int64_t cols, int64_t *out) {
  if (rows <= 0) return;
  const int block = cols <= 1024 ? 32 : 256;
  argmax_kernel<<<(unsigned)rows, block>>>(x, rows, cols, out);
  CUDA_LAUNCH_CHECK("argmax_kernel");
}

}  // namespace nanorlhf::kernels::cuda
