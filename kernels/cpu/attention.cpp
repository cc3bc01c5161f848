// Naive CPU causal self-attention forward: the reference the fused and CUDA versions are checked
// against. Clear over fast: one query row at a time, scores and sums in double.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {

// Scaled dot-product attention with a causal mask (Vaswani et al. 2017, eq. 1):
// \mathrm{out}_i = \sum_{j \le i} \frac{e^{s_{ij}}}{\sum_{k \le i} e^{s_{ik}}} v_j, \quad s_{ij} = \mathrm{scale}\; q_i \cdot k_j
// q, k, v, out [B, H, T, D]; scale is usually 1/sqrt(D).
template <class T>
void causal_attention_forward(const T *q, const T *k, const T *v, T *out, int64_t B, int64_t H, int64_t T_,
                              int64_t D, double scale) {
  const int64_t heads = B * H;
#pragma omp parallel if (heads * T_ * T_ * D > (1 << 16))
  {
    std::vector<double> p(static_cast<size_t>(T_)), acc(static_cast<size_t>(D));
#pragma omp for schedule(static) collapse(2)
    for (int64_t bh = 0; bh < heads; ++bh) {
      for (int64_t i = 0; i < T_; ++i) {
        const T *qh = q + bh * T_ * D, *kh = k + bh * T_ * D, *vh = v + bh * T_ * D;
        const T *qi = qh + i * D;
        double m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {  // s_ij for the visible keys only
          double s = 0;
          for (int64_t d = 0; d < D; ++d) s += double(qi[d]) * double(kh[j * D + d]);
          p[j] = s * scale;
          m = std::max(m, p[j]);
        }
        double z = 0;
        for (int64_t j = 0; j <= i; ++j) z += (p[j] = std::exp(p[j] - m));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j <= i; ++j)
          for (int64_t d = 0; d < D; ++d) acc[d] += p[j] * double(vh[j * D + d]);
        T *oi = out + bh * T_ * D + i * D;
        for (int64_t d = 0; d < D; ++d) oi[d] = T(acc[d] / z);
      }
    }
  }
}

template void causal_attention_forward<float>(const float *, const float *, const float *, float *, int64_t,
                                              int64_t, int64_t, int64_t, double);
template void causal_attention_forward<double>(const double *, const double *, const double *, double *, int64_t,
                                               int64_t, int64_t, int64_t, double);

}  // namespace nanorlhf::kernels::cpu
