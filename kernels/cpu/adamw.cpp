// CPU AdamW: one fused, elementwise optimizer step over a flat float parameter buffer.
#include <cmath>
#include <cstdint>

#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 15;
}

// AdamW (Loshchilov & Hutter 2019, Algorithm 2, with decoupled weight decay scaled by lr as in
// PyTorch's AdamW), step t counted from 1:
// m_t = \beta_1 m_{t-1} + (1-\beta_1) g_t, \quad v_t = \beta_2 v_{t-1} + (1-\beta_2) g_t^2
// \hat m_t = \frac{m_t}{1-\beta_1^t}, \quad \hat v_t = \frac{v_t}{1-\beta_2^t}
// \theta_t = \theta_{t-1} - \eta \left(\frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon} + \lambda \theta_{t-1}\right)
// p, g, m, v [n]; m and v are updated in place. The bias corrections are computed once in double.
void adamw_step(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step) {
  const float inv_bc1 = float(1.0 / (1.0 - std::pow(double(beta1), double(step))));
  const float inv_bc2 = float(1.0 / (1.0 - std::pow(double(beta2), double(step))));
  const float one_m_b1 = 1.0f - beta1, one_m_b2 = 1.0f - beta2;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    const float gi = g[i];
    const float mi = beta1 * m[i] + one_m_b1 * gi;
    const float vi = beta2 * v[i] + one_m_b2 * gi * gi;
    m[i] = mi;
    v[i] = vi;
    const float mhat = mi * inv_bc1, vhat = vi * inv_bc2;
    p[i] -= lr * (mhat / (std::sqrt(vhat) + eps) + weight_decay * p[i]);
  }
}

}  // namespace nanorlhf::kernels::cpu
