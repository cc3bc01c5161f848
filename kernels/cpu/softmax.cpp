// CPU softmax and log-softmax over the last dim of x[rows, cols], forward and backward.
// One row per iteration, rows in parallel; row sums accumulate in double.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/isa_dispatch.h"
#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {
namespace {

constexpr int64_t kParallelMin = 1 << 15;

template <class T> inline T row_max(const T *x, int64_t n) {
  T m = -INFINITY;
#pragma omp simd reduction(max : m)
  for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

}  // namespace

// Softmax, stable form (subtracting the row max changes nothing mathematically):
// \mathrm{softmax}(x)_j = \frac{e^{x_j - m}}{\sum_k e^{x_k - m}}, \quad m = \max_k x_k
// x, y [rows, cols]. A row of all -inf gives NaN, as in PyTorch.
template <class T>
void softmax_forward(const T *x, T *y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *xr = x + r * cols;
    T *yr = y + r * cols;
    const T m = row_max(xr, cols);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; ++j) {
      const T e = exp_of(xr[j] - m);
      yr[j] = e;
      s += double(e);
    }
    const T inv = T(1.0 / s);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) yr[j] *= inv;
  });
}

// Log-softmax:
// \log\mathrm{softmax}(x)_j = x_j - m - \log \sum_k e^{x_k - m}
template <class T>
void log_softmax_forward(const T *x, T *y, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *xr = x + r * cols;
    T *yr = y + r * cols;
    const T m = row_max(xr, cols);
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; ++j) s += double(exp_of(xr[j] - m));
    // (x - m) - log s, not x - (m + log s): the latter rounds m + log s at the scale of |m|.
    const T log_s = T(std::log(s));
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) - log_s;
  });
}

// Softmax backward (Jacobian-vector product with J = diag(y) - y y^T):
// \frac{\partial L}{\partial x_j} = y_j \left(\frac{\partial L}{\partial y_j} - \sum_k \frac{\partial L}{\partial y_k} y_k\right)
// y, dy, dx [rows, cols]; dx is written, not accumulated.
template <class T>
void softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    T *dxr = dx + r * cols;
    double dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int64_t j = 0; j < cols; ++j) dot += double(dyr[j]) * double(yr[j]);
    const T d = T(dot);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) dxr[j] = yr[j] * (dyr[j] - d);
  });
}

// Log-softmax backward, with y = log softmax(x):
// \frac{\partial L}{\partial x_j} = \frac{\partial L}{\partial y_j} - e^{y_j} \sum_k \frac{\partial L}{\partial y_k}
template <class T>
void log_softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *yr = y + r * cols, *dyr = dy + r * cols;
    T *dxr = dx + r * cols;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; ++j) s += double(dyr[j]);
    const T sum = T(s);
#pragma omp simd
    for (int64_t j = 0; j < cols; ++j) dxr[j] = dyr[j] - exp_of(yr[j]) * sum;
  });
}

#define NR_INST(T)                                                                  \
  template void softmax_forward<T>(const T *, T *, int64_t, int64_t);               \
  template void log_softmax_forward<T>(const T *, T *, int64_t, int64_t);           \
  template void softmax_backward<T>(const T *, const T *, T *, int64_t, int64_t);    \
  template void log_softmax_backward<T>(const T *, const T *, T *, int64_t, int64_t);
NR_INST(float)
NR_INST(double)
#undef NR_INST

}  // namespace nanorlhf::kernels::cpu
