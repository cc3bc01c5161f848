// CUDA layer norm over the last dim, forward and backward (CPU reference: kernels/cpu/nn_kernels.h).
// x, y, dy, dx (rows, cols); weight, bias, dweight, dbias (cols), each may be null; mean, rstd (rows).
// forward version 1: one thread per row, two passes (mean, then variance); the CPU loop on the GPU
// forward version 2: one warp per row; each lane runs Welford's update over its columns and the lanes'
//                    (count, mean, M2) merge by Chan et al.'s formula through shuffles; a second
//                    pass normalises
// forward version 3: one block per row, the same with a shared-memory merge across warps; long rows
// backward: kernel 1 computes dx, one warp (or block, for long rows) per row:
//             dx = rstd * (g - mean_j(g) - xhat * mean_j(g * xhat)),  g = dy * weight
//           kernel 2 sums dweight = sum_r dy * xhat and dbias = sum_r dy over chunks of rows into
//             per-chunk partials (a 32-column by 8-row block, columns on the fast lanes), kernel 3
//             adds the partials in chunk order: the same bits on every run, no float atomics.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

// Welford state: count, mean, sum of squared deviations.
struct Welford {
  float n, mean, m2;
};

__device__ __forceinline__ Welford welford_push(Welford a, float x) {
  a.n += 1.f;
  float d = x - a.mean;
  a.mean += d / a.n;
  a.m2 += d * (x - a.mean);
  return a;
}

// Chan, Golub & LeVeque (1979): merge two partial states.
__device__ __forceinline__ Welford welford_merge(Welford a, Welford b) {
  float n = a.n + b.n;
  if (n == 0.f) return a;
  float d = b.mean - a.mean, fb = b.n / n;
  return {n, a.mean + d * fb, a.m2 + b.m2 + d * d * a.n * fb};
}

__device__ __forceinline__ Welford warp_welford(Welford v) {
  for (int o = 16; o > 0; o >>= 1) {
    Welford w{__shfl_xor_sync(kFullMask, v.n, o), __shfl_xor_sync(kFullMask, v.mean, o),
              __shfl_xor_sync(kFullMask, v.m2, o)};
    v = welford_merge(v, w);
  }
  return v;
}

__device__ __forceinline__ Welford block_welford(Welford v) {
  __shared__ float sn[32], smean[32], sm2[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  v = warp_welford(v);
  __syncthreads();
  if (lane == 0) {
    sn[warp] = v.n;
    smean[warp] = v.mean;
    sm2[warp] = v.m2;
  }
  __syncthreads();
  Welford w = lane < nwarps ? Welford{sn[lane], smean[lane], sm2[lane]} : Welford{0.f, 0.f, 0.f};
  return warp_welford(w);
}

// version 1: thread r normalises row r
__global__ void layer_norm_v1_kernel(const float *__restrict__ x, const float *__restrict__ weight,
                                     const float *__restrict__ bias, float *__restrict__ y, float *__restrict__ mean,
                                     float *__restrict__ rstd, int64_t rows, int64_t cols, float eps) {
  int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *xr = x + r * cols;
  float *yr = y + r * cols;
  float s = 0.f;
  for (int64_t j = 0; j < cols; ++j) s += xr[j];
  const float mu = s / (float)cols;
  float v = 0.f;
  for (int64_t j = 0; j < cols; ++j) v += (xr[j] - mu) * (xr[j] - mu);
  const float rs = 1.0f / sqrtf(v / (float)cols + eps);
  for (int64_t j = 0; j < cols; ++j) {
    float o = (xr[j] - mu) * rs;
    if (weight) o *= weight[j];
    if (bias) o += bias[j];
    yr[j] = o;
  }
  if (mean) mean[r] = mu;
  if (rstd) rstd[r] = rs;
}

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

// versions 2 (WARP) and 3 (block)
template <bool WARP>
__global__ void layer_norm_welford_kernel(const float *__restrict__ x, const float *__restrict__ weight,
                                          const float *__restrict__ bias, float *__restrict__ y,
                                          float *__restrict__ mean, float *__restrict__ rstd, int64_t rows,
                                          int64_t cols, float eps) {
  RowTeam<WARP> team;
  if (team.row >= rows) return;
  const float *xr = x + team.row * cols;
  float *yr = y + team.row * cols;
  Welford w{0.f, 0.f, 0.f};
  for (int64_t j = team.t; j < cols; j += team.size) w = welford_push(w, xr[j]);
  if constexpr (WARP) w = warp_welford(w);
  else w = block_welford(w);
  const float mu = w.mean, rs = 1.0f / sqrtf(w.m2 / (float)cols + eps);
  for (int64_t j = team.t; j < cols; j += team.size) {
    float o = (xr[j] - mu) * rs;
    if (weight) o *= weight[j];
    if (bias) o += bias[j];
    yr[j] = o;
  }
  if (team.t == 0) {
    if (mean) mean[team.row] = mu;
    if (rstd) rstd[team.row] = rs;
  }
}

// backward kernel 1: dx (rows, cols)
template <bool WARP>
__global__ void layer_norm_dx_kernel(const float *__restrict__ dy, const float *__restrict__ x,
                                     const float *__restrict__ weight, const float *__restrict__ mean,
                                     const float *__restrict__ rstd, float *__restrict__ dx, int64_t rows,
                                     int64_t cols) {
  RowTeam<WARP> team;
  if (team.row >= rows) return;
  const int64_t base = team.row * cols;
  const float mu = mean[team.row], rs = rstd[team.row];
  float s1 = 0.f, s2 = 0.f;  // sum g, sum g * xhat
  for (int64_t j = team.t; j < cols; j += team.size) {
    float g = dy[base + j] * (weight ? weight[j] : 1.f);
    s1 += g;
    s2 += g * (x[base + j] - mu) * rs;
  }
  if constexpr (WARP) {
    s1 = warp_reduce(s1, SumOp{});
    s2 = warp_reduce(s2, SumOp{});
  } else {
    s1 = block_reduce(s1, SumOp{}, 0.f);
    s2 = block_reduce(s2, SumOp{}, 0.f);
  }
  const float inv_n = 1.0f / (float)cols, m1 = s1 * inv_n, m2 = s2 * inv_n;
  for (int64_t j = team.t; j < cols; j += team.size) {
    float g = dy[base + j] * (weight ? weight[j] : 1.f);
    float xhat = (x[base + j] - mu) * rs;
    dx[base + j] = rs * (g - m1 - xhat * m2);
  }
}

constexpr int kColTile = 32, kRowLanes = 8;

// backward kernel 2: partial_w/partial_b (chunks, cols); block (32, 8) covers 32 columns of one chunk
__global__ void layer_norm_param_partial_kernel(const float *__restrict__ dy, const float *__restrict__ x,
                                                const float *__restrict__ mean, const float *__restrict__ rstd,
                                                float *__restrict__ partial_w, float *__restrict__ partial_b,
                                                int64_t rows, int64_t cols, int64_t rows_per_chunk) {
  __shared__ float sw[kRowLanes][kColTile + 1], sb[kRowLanes][kColTile + 1];
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int64_t c = blockIdx.x * (int64_t)kColTile + tx, chunk = blockIdx.y;
  const int64_t r0 = chunk * rows_per_chunk, r1 = min(rows, r0 + rows_per_chunk);
  float aw = 0.f, ab = 0.f;
  if (c < cols) {
    for (int64_t r = r0 + ty; r < r1; r += kRowLanes) {
      float g = dy[r * cols + c];
      aw += g * (x[r * cols + c] - mean[r]) * rstd[r];
      ab += g;
    }
  }
  sw[ty][tx] = aw;
  sb[ty][tx] = ab;
  __syncthreads();
  if (ty == 0 && c < cols) {
    for (int k = 1; k < kRowLanes; ++k) {  // fixed order: deterministic
      aw += sw[k][tx];
      ab += sb[k][tx];
    }
    partial_w[chunk * cols + c] = aw;
    partial_b[chunk * cols + c] = ab;
  }
}

// backward kernel 3: dweight[c] = sum over chunks of partial_w[chunk, c] (in chunk order); same for dbias
__global__ void layer_norm_param_final_kernel(const float *__restrict__ partial_w, const float *__restrict__ partial_b,
                                              float *__restrict__ dweight, float *__restrict__ dbias, int64_t chunks,
                                              int64_t cols) {
  const int64_t c = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (c >= cols) return;
  float aw = 0.f, ab = 0.f;
  for (int64_t k = 0; k < chunks; ++k) {
    aw += partial_w[k * cols + c];
    ab += partial_b[k * cols + c];
  }
  if (dweight) dweight[c] = aw;
  if (dbias) dbias[c] = ab;
}

// Scratch from the caching allocator, returned when the scope ends (stream order keeps it safe).
struct Scratch {
  void *p = nullptr;
  int device = 0;
  explicit Scratch(size_t bytes) {
    CUDA_CHECK(cudaGetDevice(&device));
    p = device_malloc(bytes, device);
  }
  ~Scratch() {
    try {
      device_free(p, device);
    } catch (...) {
    }
  }
  float *f() const { return static_cast<float *>(p); }
};

}  // namespace

namespace versions {
void layer_norm_forward(int version, const float *x, const float *weight, const float *bias, float *y, float *mean,
                        float *rstd, int64_t rows, int64_t cols, double eps) {
  if (rows <= 0) return;
  if (cols <= 0) throw std::invalid_argument("CUDA layer_norm_forward: cols must be positive");
  if (version == 1) {
    layer_norm_v1_kernel<<<(unsigned)((rows + 127) / 128), 128>>>(x, weight, bias, y, mean, rstd, rows, cols,
                                                                   (float)eps);
    CUDA_LAUNCH_CHECK("layer_norm_v1_kernel");
  } else if (version == 2) {
    layer_norm_welford_kernel<true>
        <<<(unsigned)((rows + 3) / 4), 128>>>(x, weight, bias, y, mean, rstd, rows, cols, (float)eps);
    CUDA_LAUNCH_CHECK("layer_norm_welford_kernel<warp>");
  } else if (version == 3) {
    layer_norm_welford_kernel<false>
        <<<(unsigned)rows, cols > 8192 ? 512 : 256>>>(x, weight, bias, y, mean, rstd, rows, cols, (float)eps);
    CUDA_LAUNCH_CHECK("layer_norm_welford_kernel<block>");
  } else {
    throw std::invalid_argument("CUDA layer_norm_forward: no version " + std::to_string(version));
  }
}
}  // namespace versions

void layer_norm_forward(const float *x, const float *weight, const float *bias, float *y, float *mean, float *rstd,
                        int64_t rows, int64_t cols, double eps) {
  versions::layer_norm_forward(cols <= 2048 ? 2 : 3, x, weight, bias, y, mean, rstd, rows, cols, eps);
}

void layer_norm_backward(const float *dy, const float *x, const float *weight, const float *mean, const float *rstd,
                         float *dx, float *dweight, float *dbias, int64_t rows, int64_t cols) {
  if (cols <= 0) return;
  if (rows <= 0) {  // an empty batch contributes nothing: the parameter gradients are zero
    if (dweight) fill(dweight, cols, 0.f);
    if (dbias) fill(dbias, cols, 0.f);
    return;
  }
  if (dx) {
    if (cols <= 1024) {
      layer_norm_dx_kernel<true><<<(unsigned)((rows + 3) / 4), 128>>>(dy, x, weight, mean, rstd, dx, rows, cols);
    } else {
      layer_norm_dx_kernel<false><<<(unsigned)rows, 256>>>(dy, x, weight, mean, rstd, dx, rows, cols);
    }
    CUDA_LAUNCH_CHECK("layer_norm_dx_kernel");
  }
  if (!dweight && !dbias) return;
  // At most 256 chunks of at least 32 rows: depends on the shape only, so results are reproducible.
  int64_t rows_per_chunk = (rows + 255) / 256;
  if (rows_per_chunk < 32) rows_per_chunk = 32;
  const int64_t chunks = (rows + rows_per_chunk - 1) / rows_per_chunk;
  Scratch scratch((size_t)(2 * chunks * cols) * sizeof(float));
  float *pw = scratch.f(), *pb = pw + chunks * cols;
  dim3 grid((unsigned)((cols + kColTile - 1) / kColTile), (unsigned)chunks), block(kColTile, kRowLanes);
  layer_norm_param_partial_kernel<<<grid, block>>>(dy, x, mean, rstd, pw, pb, rows, cols, rows_per_chunk);
  CUDA_LAUNCH_CHECK("layer_norm_param_partial_kernel");
  layer_norm_param_final_kernel<<<(unsigned)((cols + 255) / 256), 256>>>(pw, pb, dweight, dbias, chunks, cols);
  CUDA_LAUNCH_CHECK("layer_norm_param_final_kernel");
}

}  // namespace nanorlhf::kernels::cuda
