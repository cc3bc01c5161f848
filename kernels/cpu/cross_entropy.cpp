// CPU fused cross-entropy over logits[rows, vocab] with integer targets: per-row loss and saved
// logsumexp (forward), and dlogits = dloss * (softmax - onehot) (backward). Rows in parallel.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/fast_math.h"
#include "kernels/cpu/isa_dispatch.h"
#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

// Cross-entropy of a softmax classifier with target t (negative log-likelihood):
// \ell = -\log \mathrm{softmax}(z)_t = \log \sum_k e^{z_k} - z_t
//      = m + \log \sum_k e^{z_k - m} - z_t, \quad m = \max_k z_k
// logits [rows, vocab], target [rows]; loss, lse [rows]. Ignored rows get loss 0 (lse is still
// computed). The caller reduces (mean over non-ignored rows, ...) and checks target ranges.
template <class T>
void cross_entropy_forward(const T *logits, const int64_t *target, T *loss, T *lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * vocab > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *z = logits + r * vocab;
    T m = -INFINITY;
#pragma omp simd reduction(max : m)
    for (int64_t j = 0; j < vocab; ++j) m = z[j] > m ? z[j] : m;
    double s = 0;
#pragma omp simd reduction(+ : s)
    for (int64_t j = 0; j < vocab; ++j) s += double(exp_of(z[j] - m));
    const double l = double(m) + std::log(s);
    if (lse) lse[r] = T(l);
    const int64_t t = target[r];
    loss[r] = t == ignore_index ? T(0) : T(l - double(z[t]));
  });
}

// Gradient of the loss above with respect to the logits, scaled by the upstream dloss:
// \frac{\partial \ell}{\partial z_j} = \mathrm{softmax}(z)_j - [j = t] = e^{z_j - \mathrm{lse}} - [j = t]
// dlogits [rows, vocab] is written (not accumulated); ignored rows are zero.
template <class T>
void cross_entropy_backward(const T *logits, const int64_t *target, const T *lse, const T *dloss,
                            T *dlogits, int64_t rows, int64_t vocab, int64_t ignore_index) {
#pragma omp parallel for schedule(static) if (rows * vocab > kParallelMin && rows > 1)
  for (int64_t r = 0; r < rows; ++r) run_best([&] {
    const T *z = logits + r * vocab;
    T *dz = dlogits + r * vocab;
    const int64_t t = target[r];
    if (t == ignore_index) {
#pragma omp simd
      for (int64_t j = 0; j < vocab; ++j) dz[j] = T(0);
      return;
    }
    const T l = lse[r], g = dloss[r];
#pragma omp simd
    for (int64_t j = 0; j < vocab; ++j) dz[j] = g * exp_of(z[j] - l);
    dz[t] -= g;
  });
}

#define NR_INST(T)                                                                                  \
  template void cross_entropy_forward<T>(const T *, const int64_t *, T *, T *, int64_t, int64_t,    \
                                         int64_t);                                                  \
  template void cross_entropy_backward<T>(const T *, const int64_t *, const T *, const T *, T *,    \
                                          int64_t, int64_t, int64_t);
NR_INST(float)
NR_INST(double)
#undef NR_INST

}  // namespace nanorlhf::kernels::cpu
