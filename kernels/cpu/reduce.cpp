// CPU row reductions x[rows, cols] -> out[rows]: sum, max, min, logsumexp and argmax.
// Rows run in parallel; each row is reduced by one thread in a fixed order, so results are
// deterministic and independent of the thread count.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>

#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/isa_dispatch.h"

namespace nanorlhf::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

// Accumulation type: float rows are summed in double (error ~1e-16 relative per add instead of
// ~6e-8 growing with cols); double rows in double with the lanes of `omp simd` (a fixed pairwise
// split by vector width, deterministic for a given build).
template <class T> struct Acc { using type = double; };

template <class T> inline typename Acc<T>::type row_sum(const T *x, int64_t n) {
  typename Acc<T>::type s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += x[j];
  return s;
}

// Max (or min) that propagates NaN like torch.max: any NaN in the row gives NaN.
template <class T, bool IsMax> inline T row_extreme(const T *x, int64_t n) {
  T m = IsMax ? -std::numeric_limits<T>::infinity() : std::numeric_limits<T>::infinity();
  int nan = 0;
  if constexpr (IsMax) {
#pragma omp simd reduction(max : m) reduction(| : nan)
    for (int64_t j = 0; j < n; ++j) { m = x[j] > m ? x[j] : m; nan |= (x[j] != x[j]); }
  } else {
#pragma omp simd reduction(min : m) reduction(| : nan)
    for (int64_t j = 0; j < n; ++j) { m = x[j] < m ? x[j] : m; nan |= (x[j] != x[j]); }
  }
  return nan ? std::numeric_limits<T>::quiet_NaN() : m;
}

// Stable log-sum-exp:
// \mathrm{logsumexp}(x) = m + \log \sum_j e^{x_j - m}, \quad m = \max_j x_j
// A row of all -inf gives -inf; a row containing +inf gives +inf.
template <class T> T row_logsumexp(const T *x, int64_t n) {
  const T m = row_extreme<T, true>(x, n);
  if (std::isnan(m) || std::isinf(m)) return m;
  double s = 0;
#pragma omp simd reduction(+ : s)
  for (int64_t j = 0; j < n; ++j) s += double(exp_of(x[j] - m));
  return static_cast<T>(double(m) + std::log(s));
}

}  // namespace

// Empty rows (cols == 0) give sum 0, max -inf, min +inf, logsumexp -inf.
template <class T>
void reduce_rows(ReduceOp op, const T *x, int64_t rows, int64_t cols, T *out) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols;
    switch (op) {
      case ReduceOp::sum: out[r] = static_cast<T>(row_sum(xr, cols)); break;
      case ReduceOp::max: out[r] = row_extreme<T, true>(xr, cols); break;
      case ReduceOp::min: out[r] = row_extreme<T, false>(xr, cols); break;
      case ReduceOp::logsumexp: out[r] = row_logsumexp(xr, cols); break;
    }
  }
}

// First index of the row maximum; a NaN counts as the maximum (first NaN wins), as in PyTorch.
// An empty row gives 0: the caller must reject cols == 0.
template <class T>
void argmax_rows(const T *x, int64_t rows, int64_t cols, int64_t *out) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols;
    int64_t best = 0;
    for (int64_t j = 1; j < cols; ++j) {
      if (xr[best] != xr[best]) break;  // NaN already found
      if (xr[j] > xr[best] || xr[j] != xr[j]) best = j;
    }
    out[r] = best;
  }
}

// Column sums. Columns are cut into blocks of kColBlock; a block's double accumulators stay in
// registers/L1 while the rows stream through, and the inner loop over the block's columns is a
// plain vectorisable add. Blocks are dealt to threads; a column is never split between threads.
constexpr int64_t kColBlock = 64;  // a [*, 128] bias gradient still splits between two threads

template <class T>
inline void col_block_sum(const T *x, int64_t rows, int64_t cols, int64_t c0, int64_t n, T *out) {
  double acc[kColBlock];
  for (int64_t j = 0; j < n; ++j) acc[j] = 0;
  for (int64_t r = 0; r < rows; ++r) {
    const T *xr = x + r * cols + c0;
#pragma omp simd
    for (int64_t j = 0; j < n; ++j) acc[j] += double(xr[j]);
  }
  for (int64_t j = 0; j < n; ++j) out[c0 + j] = static_cast<T>(acc[j]);
}


template <class T>
void reduce_cols_sum(const T *x, int64_t rows, int64_t cols, T *out) {
  const int64_t blocks = (cols + kColBlock - 1) / kColBlock;
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && blocks > 1)
  for (int64_t b = 0; b < blocks; ++b) {
    const int64_t c0 = b * kColBlock, n = std::min(kColBlock, cols - c0);
    // AVX-512 where the CPU has it (8 double accumulators a vector instead of 2): each column is
    // still one running sum in row order, so the bits equal the SSE2 build's.
    run_best([&] { col_block_sum(x, rows, cols, c0, n, out); });
  }
}

template void reduce_cols_sum<float>(const float *, int64_t, int64_t, float *);
template void reduce_cols_sum<double>(const double *, int64_t, int64_t, double *);
template void reduce_rows<float>(ReduceOp, const float *, int64_t, int64_t, float *);
template void reduce_rows<double>(ReduceOp, const double *, int64_t, int64_t, double *);
template void argmax_rows<float>(const float *, int64_t, int64_t, int64_t *);
template void argmax_rows<double>(const double *, int64_t, int64_t, int64_t *);

}  // namespace nanorlhf::kernels::cpu
