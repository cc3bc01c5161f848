// CUDA AdamW step (Loshchilov & Hutter 2019) on n parameters (CPU reference: kernels/cpu/nn_kernels.h):
//   m = beta1 m + (1 - beta1) g;  v = beta2 v + (1 - beta2) g^2
//   p -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * p),  mhat = m / (1 - beta1^t), vhat = v / (1 - beta2^t)
// One pass: each element's p, g, m, v are read once and p, m, v written once (28 bytes per parameter).
// version 1: scalar grid-stride loop
// version 2: float4 loads and stores (all four arrays 16-byte aligned), scalar tail
// The bias corrections are computed once on the host in double.
#include <cuda_runtime.h>

#include <cmath>
#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

struct AdamWArgs {
  float lr, beta1, beta2, eps, weight_decay, inv_bc1, inv_bc2;  // inv_bc = 1 / (1 - beta^t)
};

__device__ __forceinline__ void adamw_one(float &p, float g, float &m, float &v, const AdamWArgs &a) {
  m = a.beta1 * m + (1.f - a.beta1) * g;
  v = a.beta2 * v + (1.f - a.beta2) * g * g;
  const float mhat = m * a.inv_bc1, vhat = v * a.inv_bc2;
  p -= a.lr * (mhat / (sqrtf(vhat) + a.eps) + a.weight_decay * p);
}

__global__ void adamw_v1_kernel(float *__restrict__ p, const float *__restrict__ g, float *__restrict__ m,
                                float *__restrict__ v, int64_t n, AdamWArgs a) {
  for (int64_t i = blockIdx.x * (int64_t)blockDim.x + threadIdx.x; i < n; i += (int64_t)gridDim.x * blockDim.x) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, g[i], mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

__global__ void adamw_v2_kernel(float *__restrict__ p, const float *__restrict__ g, float *__restrict__ m,
                                float *__restrict__ v, int64_t n, AdamWArgs a) {
  const int64_t n4 = n / 4, tid = blockIdx.x * (int64_t)blockDim.x + threadIdx.x,
                stride = (int64_t)gridDim.x * blockDim.x;
  float4 *p4 = reinterpret_cast<float4 *>(p), *m4 = reinterpret_cast<float4 *>(m), *v4 = reinterpret_cast<float4 *>(v);
  const float4 *g4 = reinterpret_cast<const float4 *>(g);
  for (int64_t i = tid; i < n4; i += stride) {
    float4 pp = p4[i], gg = g4[i], mm = m4[i], vv = v4[i];
    adamw_one(pp.x, gg.x, mm.x, vv.x, a);
    adamw_one(pp.y, gg.y, mm.y, vv.y, a);
    adamw_one(pp.z, gg.z, mm.z, vv.z, a);
    adamw_one(pp.w, gg.w, mm.w, vv.w, a);
    p4[i] = pp;
    m4[i] = mm;
    v4[i] = vv;
  }
  for (int64_t i = n4 * 4 + tid; i < n; i += stride) {
    float pi = p[i], mi = m[i], vi = v[i];
    adamw_one(pi, g[i], mi, vi, a);
    p[i] = pi;
    m[i] = mi;
    v[i] = vi;
  }
}

}  // namespace

namespace versions {
void adamw_step(int version, float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step) {
  if (n <= 0) return;
  if (step < 1) throw std::invalid_argument("CUDA adamw_step: step counts from 1, got " + std::to_string(step));
  AdamWArgs a{lr, beta1, beta2, eps, weight_decay,
              (float)(1.0 / (1.0 - std::pow((double)beta1, (double)step))),
              (float)(1.0 / (1.0 - std::pow((double)beta2, (double)step)))};
  const int block = 256;
  if (version == 1) {
    adamw_v1_kernel<<<grid_for(n, block), block>>>(p, g, m, v, n, a);
    CUDA_LAUNCH_CHECK("adamw_v1_kernel");
  } else if (version == 2) {
    if (!aligned16(p) || !aligned16(g) || !aligned16(m) || !aligned16(v))
      return adamw_step(1, p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step);
    adamw_v2_kernel<<<grid_for((n + 3) / 4, block), block>>>(p, g, m, v, n, a);
    CUDA_LAUNCH_CHECK("adamw_v2_kernel");
  } else {
    throw std::invalid_argument("CUDA adamw_step: no version " + std::to_string(version));
  }
}
}  // namespace versions

void adamw_step(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step) {
  versions::adamw_step(2, p, g, m, v, n, lr, beta1, beta2, eps, weight_decay, step);
}

}  // namespace nanorlhf::kernels::cuda
