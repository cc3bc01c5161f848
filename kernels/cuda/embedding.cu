// CUDA embedding lookups and their scatter-add backward (CPU reference: kernels/cpu/nn_kernels.h).
// index_select_rows: out (n, dim) = weight[idx] (num, dim); one block per output row (grid-stride over
//   rows), threads across dim with float4 when dim % 4 == 0 and the pointers are 16-byte aligned
// index_add_rows: dweight[idx[i]] += dout[i]; same layout with atomicAdd. Repeated indices add in
//   whatever order the hardware serialises them, so the float sum can differ in the last bits from
//   run to run (nondeterministic); acceptable for training, and the tests compare with a tolerance
// gather_rows: out (rows, k) = x[r, idx[r, j]] from x (rows, cols); one thread per output element
// scatter_add_rows: dx[r, idx[r, j]] += dout[r, j]; atomicAdd (same caveat as index_add_rows)
// Indices outside [0, cols) in gather/scatter are skipped (gather writes 0); index_select cannot check
// the upper bound (the table's row count is not passed): the caller checks indices.
#include <cuda_runtime.h>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

constexpr int kBlock = 256;

template <bool VEC4>
__global__ void index_select_kernel(const float *__restrict__ weight, const int64_t *__restrict__ idx,
                                    float *__restrict__ out, int64_t n, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t row = idx[i];
    if (row < 0) continue;
    const float *src = weight + row * dim;
    float *dst = out + i * dim;
    if (VEC4) {
      const float4 *s4 = reinterpret_cast<const float4 *>(src);
      float4 *d4 = reinterpret_cast<float4 *>(dst);
      for (int64_t d = threadIdx.x; d < dim / 4; d += blockDim.x) d4[d] = s4[d];
    } else {
      for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) dst[d] = src[d];
    }
  }
}

__global__ void index_add_kernel(const float *__restrict__ dout, const int64_t *__restrict__ idx,
                                 float *__restrict__ dweight, int64_t n, int64_t dim) {
  for (int64_t i = blockIdx.x; i < n; i += gridDim.x) {
    const int64_t row = idx[i];
    if (row < 0) continue;
    for (int64_t d = threadIdx.x; d < dim; d += blockDim.x) atomicAdd(&dweight[row * dim + d], dout[i * dim + d]);
  }
}

__global__ void gather_kernel(const float *__restrict__ x, const int64_t *__restrict__ idx, float *__restrict__ out,
                              int64_t rows, int64_t cols, int64_t k) {
  const int64_t n = rows * k;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / k, c = idx[e];
    out[e] = (c >= 0 && c < cols) ? x[r * cols + c] : 0.f;
  }
}

__global__ void scatter_add_kernel(const float *__restrict__ dout, const int64_t *__restrict__ idx,
                                   float *__restrict__ dx, int64_t rows, int64_t cols, int64_t k) {
  const int64_t n = rows * k;
  for (int64_t e = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; e < n; e += (int64_t)gridDim.x * blockDim.x) {
    const int64_t r = e / k, c = idx[e];
    if (c >= 0 && c < cols) atomicAdd(&dx[r * cols + c], dout[e]);
  }
}

unsigned row_grid(int64_t n) {
  int64_t cap = (int64_t)num_sms() * 16;
  return (unsigned)(n < cap ? n : cap);
}

int row_block(int64_t dim) { return dim >= 256 ? kBlock : dim > 64 ? 128 : 32; }

}  // namespace

void index_select_rows(const float *weight, const int64_t *idx, float *out, int64_t n, int64_t dim) {
  if (n <= 0 || dim <= 0) return;
  if (dim % 4 == 0 && aligned16(weight) && aligned16(out)) {
    index_select_kernel<true><<<row_grid(n), row_block(dim / 4)>>>(weight, idx, out, n, dim);
  } else {
    index_select_kernel<false><<<row_grid(n), row_block(dim)>>>(weight, idx, out, n, dim);
  }
  CUDA_LAUNCH_CHECK("index_select_kernel");
}

void index_add_rows(const float *dout, const int64_t *idx, float *dweight, int64_t n, int64_t dim) {
  if (n <= 0 || dim <= 0) return;
  index_add_kernel<<<row_grid(n), row_block(dim)>>>(dout, idx, dweight, n, dim);
  CUDA_LAUNCH_CHECK("index_add_kernel");
}

void gather_rows(const float *x, const int64_t *idx, float *out, int64_t rows, int64_t cols, int64_t k) {
  if (rows <= 0 || k <= 0) return;
  gather_kernel<<<grid_for(rows * k, kBlock), kBlock>>>(x, idx, out, rows, cols, k);
  CUDA_LAUNCH_CHECK("gather_kernel");
}

void scatter_add_rows(const float *dout, const int64_t *idx, float *dx, int64_t rows, int64_t cols, int64_t k) {
  if (rows <= 0 || k <= 0) return;
  scatter_add_kernel<<<grid_for(rows * k, kBlock), kBlock>>>(dout, idx, dx, rows, cols, k);
  CUDA_LAUNCH_CHECK("scatter_add_kernel");
}

}  // namespace nanorlhf::kernels::cuda
