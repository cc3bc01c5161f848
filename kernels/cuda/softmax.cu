// CUDA softmax and log_softmax over the last dim, forward and backward (CPU reference:
// kernels/cpu/nn_kernels.h). x, y, dy, dx are (rows, cols), row-major and contiguous.
// version 1: one thread per row, three passes (max, sum of exp, write); the CPU loop on the GPU
// version 2: one warp per row; one pass keeps an online (max, sum of exp) per lane (Milakov &
//            Gimelshein 2018, "Online normalizer calculation for softmax"), a shuffle merge, then
//            a second pass writes y
// version 3: one block per row, the same online pass with a shared-memory merge across warps; for
//            long rows (vocabulary-sized)
// The public functions use version 2 up to 1024 columns and version 3 beyond; the backward kernels
// use the same warp-or-block split.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

// version 1: thread r handles row r
template <bool LOG>
__global__ void softmax_v1_kernel(const float *__restrict__ x, float *__restrict__ y, int64_t rows, int64_t cols) {
  int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *xr = x + r * cols;
  float *yr = y + r * cols;
  float m = -INFINITY;
  for (int64_t j = 0; j < cols; ++j) m = fmaxf(m, xr[j]);
  float s = 0.f;
  for (int64_t j = 0; j < cols; ++j) s += expf(xr[j] - m);
  if (LOG) {
    // (x - m) - log s, not x - (m + log s): the latter rounds m + log s at the scale of |m|
    const float log_s = logf(s);
    for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
  } else {
    float inv = 1.0f / s;
    for (int64_t j = 0; j < cols; ++j) yr[j] = expf(xr[j] - m) * inv;
  }
}

// The row a thread works on, its index within the row's team of threads, and the team size:
// WARP = one warp per row (several rows per block), otherwise the whole block takes one row.
template <bool WARP>
struct RowTeam {
  int64_t row;
  int t, size;
  __device__ RowTeam() {
    if (WARP) {
      row = blockIdx.x * (int64_t)(blockDim.x >> 5) + (threadIdx.x >> 5);
      t = threadIdx.x & 31;
      size = 32;
    } else {
      row = blockIdx.x;
      t = threadIdx.x;
      size = blockDim.x;
    }
  }
};

// versions 2 (WARP) and 3 (block): x (rows, cols) -> y (rows, cols)
template <bool LOG, bool WARP>
__global__ void softmax_online_kernel(const float *__restrict__ x, float *__restrict__ y, int64_t rows,
                                      int64_t cols) {
  RowTeam<WARP> team;
  if (team.row >= rows) return;  // in the warp layout whole warps leave together
  const float *xr = x + team.row * cols;
  float *yr = y + team.row * cols;
  MaxSum acc{-INFINITY, 0.f};
  for (int64_t j = team.t; j < cols; j += team.size) acc = maxsum_push(acc, xr[j]);
  if constexpr (WARP) acc = warp_reduce_maxsum(acc);
  else acc = block_reduce_maxsum(acc);
  if (LOG) {
    const float log_s = logf(acc.s);
    for (int64_t j = team.t; j < cols; j += team.size) yr[j] = (xr[j] - acc.m) - log_s;
  } else {
    const float inv = 1.0f / acc.s;
    for (int64_t j = team.t; j < cols; j += team.size) yr[j] = expf(xr[j] - acc.m) * inv;
  }
}

// softmax: dx = y * (dy - sum(dy * y));  log_softmax: dx = dy - exp(y) * sum(dy)
template <bool LOG, bool WARP>
__global__ void softmax_backward_kernel(const float *__restrict__ y, const float *__restrict__ dy,
                                        float *__restrict__ dx, int64_t rows, int64_t cols) {
  RowTeam<WARP> team;
  if (team.row >= rows) return;
  const int64_t base = team.row * cols;
  float s = 0.f;
  for (int64_t j = team.t; j < cols; j += team.size) s += LOG ? dy[base + j] : dy[base + j] * y[base + j];
  if constexpr (WARP) s = warp_reduce(s, SumOp{});
  else s = block_reduce(s, SumOp{}, 0.f);
  for (int64_t j = team.t; j < cols; j += team.size) {
    const float yv = y[base + j], g = dy[base + j];
    dx[base + j] = LOG ? g - expf(yv) * s : yv * (g - s);
  }
}

template <bool LOG>
void launch_softmax(int version, const float *x, float *y, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  if (version == 1) {
    softmax_v1_kernel<LOG><<<(unsigned)((rows + 127) / 128), 128>>>(x, y, rows, cols);
    CUDA_LAUNCH_CHECK("softmax_v1_kernel");
  } else if (version == 2) {
    softmax_online_kernel<LOG, true><<<(unsigned)((rows + 3) / 4), 128>>>(x, y, rows, cols);
    CUDA_LAUNCH_CHECK("softmax_online_kernel<warp>");
  } else if (version == 3) {
    softmax_online_kernel<LOG, false><<<(unsigned)rows, cols > 8192 ? 512 : 256>>>(x, y, rows, cols);
    CUDA_LAUNCH_CHECK("softmax_online_kernel<block>");
  } else {
    throw std::invalid_argument("CUDA softmax_forward: no version " + std::to_string(version));
  }
}

int best_version(int64_t cols) { return cols <= 1024 ? 2 : 3; }

template <bool LOG>
void launch_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return;
  if (cols <= 1024) {
    softmax_backward_kernel<LOG, true><<<(unsigned)((rows + 3) / 4), 128>>>(y, dy, dx, rows, cols);
  } else {
    softmax_backward_kernel<LOG, false><<<(unsigned)rows, cols > 8192 ? 512 : 256>>>(y, dy, dx, rows, cols);
  }
  CUDA_LAUNCH_CHECK("softmax_backward_kernel");
}

}  // namespace

namespace versions {
void softmax_forward(int version, const float *x, float *y, int64_t rows, int64_t cols) {
  launch_softmax<false>(version, x, y, rows, cols);
}
}  // namespace versions

void softmax_forward(const float *x, float *y, int64_t rows, int64_t cols) {
  launch_softmax<false>(best_version(cols), x, y, rows, cols);
}
void log_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols) {
  launch_softmax<true>(best_version(cols), x, y, rows, cols);
}
void softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols) {
  launch_backward<false>(y, dy, dx, rows, cols);
}
void log_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols) {
  launch_backward<true>(y, dy, dx, rows, cols);
}

}  // namespace nanorlhf::kernels::cuda
