// CPU row indexing kernels: embedding lookup (index_select_rows) and its scatter-add backward
// (index_add_rows), per-row gather and its scatter-add backward. All results are deterministic.
#include <algorithm>
#include <cstdint>
#include <cstring>

#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
constexpr int64_t kColBlock = 64;  // columns per task of index_add_rows (one 256-byte float strip)
}  // namespace

// out[i, :] = weight[idx[i], :]   weight [num, dim], idx [n], out [n, dim]. Indices are the
// caller's to check.
template <class T>
void index_select_rows(const T *weight, const int64_t *idx, T *out, int64_t n, int64_t dim) {
#pragma omp parallel for schedule(static) if (n * dim > kParallelMin && n > 1)
  for (int64_t i = 0; i < n; ++i) std::memcpy(out + i * dim, weight + idx[i] * dim, size_t(dim) * sizeof(T));
}

// dweight[idx[i], :] += dout[i, :]   dout [n, dim], dweight [num, dim] (not zeroed here).
// Repeated indices make rows collide, so threads split the columns instead of i: every thread
// walks i = 0..n-1 in order over its own column strip, which gives the serial result exactly.
template <class T>
void index_add_rows(const T *dout, const int64_t *idx, T *dweight, int64_t n, int64_t dim) {
  const int64_t blocks = (dim + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (n * dim > kParallelMin && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t j0 = b * kColBlock, j1 = std::min(dim, j0 + kColBlock);
    for (int64_t i = 0; i < n; ++i) {
      const T *src = dout + i * dim;
      T *dst = dweight + idx[i] * dim;
#pragma omp simd
      for (int64_t j = j0; j < j1; ++j) dst[j] += src[j];
    }
  }
}

// out[r, j] = x[r, idx[r, j]]   x [rows, cols], idx/out [rows, k]
template <class T>
void gather_rows(const T *x, const int64_t *idx, T *out, int64_t rows, int64_t cols, int64_t k) {
#pragma omp parallel for schedule(static) if (rows * k > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) out[r * k + j] = x[r * cols + idx[r * k + j]];
}

// dx[r, idx[r, j]] += dout[r, j]   dout [rows, k], dx [rows, cols] (not zeroed here).
// Each row is owned by one thread and walked in order, so repeated indices add deterministically.
template <class T>
void scatter_add_rows(const T *dout, const int64_t *idx, T *dx, int64_t rows, int64_t cols, int64_t k) {
#pragma omp parallel for schedule(static) if (rows * k > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t j = 0; j < k; ++j) dx[r * cols + idx[r * k + j]] += dout[r * k + j];
}

#define NR_INST(T)                                                                              \
  template void index_select_rows<T>(const T *, const int64_t *, T *, int64_t, int64_t);       \
  template void index_add_rows<T>(const T *, const int64_t *, T *, int64_t, int64_t);          \
  template void gather_rows<T>(const T *, const int64_t *, T *, int64_t, int64_t, int64_t);    \
  template void scatter_add_rows<T>(const T *, const int64_t *, T *, int64_t, int64_t, int64_t);
NR_INST(float)
NR_INST(double)
#undef NR_INST

}  // namespace nanorlhf::kernels::cpu
