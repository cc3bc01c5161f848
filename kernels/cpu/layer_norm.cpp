// CPU layer normalisation over the last dim of x[rows, cols], forward (saving mean and rstd) and
// backward (dx, and dweight/dbias reduced over rows in a fixed order, so deterministically).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/isa_dispatch.h"
#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

// Layer norm (Ba, Kiros & Hinton 2016, eq. 4), biased variance, eps inside the square root:
// \mu = \frac1C \sum_j x_j, \quad \sigma^2 = \frac1C \sum_j (x_j - \mu)^2, \quad
// y_j = \frac{x_j - \mu}{\sqrt{\sigma^2 + \epsilon}}\, w_j + b_j
// x, y [rows, cols]; weight, bias [cols] (null = 1 / 0); mean, rstd [rows] saved for backward.
// Statistics use two passes in double, which stays exact-ish when |mean| >> std.
template <class T>
void layer_norm_forward(const T *x, const T *weight, const T *bias, T *y, T *mean, T *rstd,
                        int64_t rows, int64_t cols, double eps) {
#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *xr = x + r * cols;
    T *yr = y + r * cols;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < cols; ++j) s += double(xr[j]);
    const double mu = s / double(cols);
    double ss = 0;
#pragma omp simd reduction(+ : ss)
    for (int64_t j = 0; j < cols; ++j) {
      const double d = double(xr[j]) - mu;
      ss += d * d;
    }
    const double rs = 1.0 / std::sqrt(ss / double(cols) + eps);
    const T m = T(mu), rt = T(rs);
    if (mean) mean[r] = m;
    if (rstd) rstd[r] = rt;
    if (weight && bias) {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * rt * weight[j] + bias[j];
    } else if (weight) {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * rt * weight[j];
    } else if (bias) {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * rt + bias[j];
    } else {
#pragma omp simd
      for (int64_t j = 0; j < cols; ++j) yr[j] = (xr[j] - m) * rt;
    }
  });
}

// Layer norm backward, with \hat x_j = (x_j - \mu) r, r = 1/\sqrt{\sigma^2+\epsilon}, g_j = dy_j w_j:
// dx_j = r \left(g_j - \frac1C \sum_k g_k - \hat x_j \frac1C \sum_k g_k \hat x_k\right), \quad
// dw_j = \sum_{rows} dy_j \hat x_j, \quad db_j = \sum_{rows} dy_j
// dy, x, dx [rows, cols]; weight [cols] (null = 1); mean, rstd [rows] from the forward;
// dweight, dbias [cols] written (not accumulated), either may be null.
// Rows are cut into fixed-size chunks (a function of `rows` only, never of the thread count); each
// chunk sums its rows' dw/db into its own double slot, and the slots are added in chunk order.
template <class T>
void layer_norm_backward(const T *dy, const T *x, const T *weight, const T *mean, const T *rstd,
                         T *dx, T *dweight, T *dbias, int64_t rows, int64_t cols) {
  const bool want_params = dweight || dbias;
  const int64_t chunk = std::max<int64_t>(32, (rows + 127) / 128);  // at most 128 chunks
  const int64_t nchunks = (rows + chunk - 1) / chunk;
  std::vector<double> pdw(want_params ? size_t(nchunks * cols) : 0), pdb(pdw.size());

#pragma omp parallel for schedule(static) if (rows * cols > kParallelMin && nchunks > 1)
  for (int64_t c = 0; c < nchunks; ++c) run_best([&] {
    double *cdw = want_params ? pdw.data() + c * cols : nullptr;
    double *cdb = want_params ? pdb.data() + c * cols : nullptr;
    if (want_params) std::fill(cdw, cdw + cols, 0.0), std::fill(cdb, cdb + cols, 0.0);
    const int64_t r1 = std::min(rows, (c + 1) * chunk);
    for (int64_t r = c * chunk; r < r1; ++r) {
      const T *dyr = dy + r * cols, *xr = x + r * cols;
      T *dxr = dx ? dx + r * cols : nullptr;
      const T m = mean[r], rs = rstd[r];
      if (want_params) {
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) {
          cdw[j] += double(dyr[j]) * double((xr[j] - m) * rs);
          cdb[j] += double(dyr[j]);
        }
      }
      if (!dxr) continue;
      double sg = 0, sgx = 0;
#pragma omp simd reduction(+ : sg, sgx)
      for (int64_t j = 0; j < cols; ++j) {
        const double g = double(dyr[j]) * (weight ? double(weight[j]) : 1.0);
        sg += g;
        sgx += g * double((xr[j] - m) * rs);
      }
      const T mg = T(sg / double(cols)), mgx = T(sgx / double(cols));
      if (weight) {
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) dxr[j] = rs * (dyr[j] * weight[j] - mg - (xr[j] - m) * rs * mgx);
      } else {
#pragma omp simd
        for (int64_t j = 0; j < cols; ++j) dxr[j] = rs * (dyr[j] - mg - (xr[j] - m) * rs * mgx);
      }
    }
  });
  if (!want_params) return;
#pragma omp parallel for schedule(static) if (nchunks * cols > kParallelMin)
  for (int64_t j = 0; j < cols; ++j) {
    double w = 0, b = 0;
    for (int64_t c = 0; c < nchunks; ++c) {
      w += pdw[c * cols + j];
      b += pdb[c * cols + j];
    }
    if (dweight) dweight[j] = T(w);
    if (dbias) dbias[j] = T(b);
  }
}

#define NR_INST(T)                                                                                   \
  template void layer_norm_forward<T>(const T *, const T *, const T *, T *, T *, T *, int64_t,       \
                                      int64_t, double);                                              \
  template void layer_norm_backward<T>(const T *, const T *, const T *, const T *, const T *, T *, \
                                       T *, T *, int64_t, int64_t);
NR_INST(float)
NR_INST(double)
#undef NR_INST

}  // namespace nanorlhf::kernels::cpu
