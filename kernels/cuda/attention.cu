// CUDA causal self-attention forward: q, k, v, out (B, H, T, D), contiguous;
// out[b,h,i] = sum_{j<=i} softmax_j(scale * q_i . k_j) v_j (CPU reference: kernels/cpu/nn_kernels.h).
// version 1: one block per query row (b, h, i): threads compute the i+1 scores into shared memory,
//            a block max and sum, then threads across D form the weighted sum of V rows; reads K and V
//            once per query row (T times per head): the naive algorithm, for reading
// version 2: flash-attention-style (Dao et al. 2022, Algorithm 1, forward only): one block per
//            (query tile of 64 rows, b*h), one thread per query row; tiles of 32 K and V rows are
//            staged in shared memory and every thread keeps an online softmax (running max m, sum l)
//            and its output row in registers, rescaling by exp(m_old - m_new) as each tile arrives.
//            Tiles above the diagonal are never loaded. Head dims 16, 32, 64 and 128 are compiled;
//            other head dims fall back to version 1. Heavier (later) query tiles are scheduled first.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

// version 1: block (b*h*T + i); dynamic shared memory holds the scores of row i (T floats)
__global__ void attention_v1_kernel(const float *__restrict__ q, const float *__restrict__ k,
                                    const float *__restrict__ v, float *__restrict__ out, int64_t T, int64_t D,
                                    float scale) {
  extern __shared__ float scores[];
  const int64_t row = blockIdx.x, bh = row / T, i = row % T;
  const float *qi = q + row * D, *kh = k + bh * T * D, *vh = v + bh * T * D;
  float m = -INFINITY;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    float s = 0.f;
    for (int64_t d = 0; d < D; ++d) s += qi[d] * kh[j * D + d];
    s *= scale;
    scores[j] = s;
    m = fmaxf(m, s);
  }
  m = block_reduce(m, MaxOp{}, -INFINITY);
  float l = 0.f;
  for (int64_t j = threadIdx.x; j <= i; j += blockDim.x) {
    float p = expf(scores[j] - m);
    scores[j] = p;
    l += p;
  }
  l = block_reduce(l, SumOp{}, 0.f);  // its opening barrier also publishes every scores[j]
  const float inv = 1.0f / l;
  for (int64_t d = threadIdx.x; d < D; d += blockDim.x) {
    float acc = 0.f;
    for (int64_t j = 0; j <= i; ++j) acc += scores[j] * vh[j * D + d];
    out[row * D + d] = acc * inv;
  }
}

constexpr int kBr = 64;  // query rows per block (= threads per block)
constexpr int kBc = 32;  // key/value rows per shared-memory tile

template <int D>
constexpr size_t flash_smem_bytes() {
  return sizeof(float) * ((size_t)kBr * (D + 1) + 2 * (size_t)kBc * D + (size_t)kBr * (kBc + 1));
}

// version 2: grid (query tiles, B*H), block kBr threads; thread t owns query row q0 + t.
// shared: Qs (kBr, D+1) and Ps (kBr, kBc+1) padded so that threads reading their own rows hit
//         distinct banks; Ks, Vs (kBc, D) read by all threads at the same address (broadcast).
template <int D>
__global__ void __launch_bounds__(kBr) attention_flash_kernel(const float *__restrict__ q, const float *__restrict__ k,
                                                              const float *__restrict__ v, float *__restrict__ out,
                                                              int64_t T, float scale) {
  extern __shared__ float smem[];
  float *Qs = smem, *Ks = Qs + kBr * (D + 1), *Vs = Ks + kBc * D, *Ps = Vs + kBc * D;
  const int t = threadIdx.x;
  const int64_t tile = gridDim.x - 1 - blockIdx.x;  // last (heaviest) tiles first
  const int64_t q0 = tile * kBr, bh = blockIdx.y;
  const float *qh = q + bh * T * D, *kh = k + bh * T * D, *vh = v + bh * T * D;
  const int64_t i = q0 + t;
  const bool active = i < T;

  for (int e = t; e < kBr * D; e += kBr) {  // stage the query tile (coalesced), pre-scaled
    int r = e / D, d = e % D;
    Qs[r * (D + 1) + d] = (q0 + r < T) ? qh[(q0 + r) * D + d] * scale : 0.f;
  }

  float acc[D];
#pragma unroll
  for (int d = 0; d < D; ++d) acc[d] = 0.f;
  float m = -INFINITY, l = 0.f;

  const int64_t last_key = min(T - 1, q0 + kBr - 1);
  for (int64_t k0 = 0; k0 <= last_key; k0 += kBc) {
    __syncthreads();  // previous tile fully consumed (and, the first time, Qs written)
    for (int e = t; e < kBc * D; e += kBr) {
      int r = e / D, d = e % D;
      bool in = k0 + r < T;
      Ks[e] = in ? kh[(k0 + r) * D + d] : 0.f;
      Vs[e] = in ? vh[(k0 + r) * D + d] : 0.f;
    }
    __syncthreads();
    if (!active) continue;
    // scores of this tile into the thread's own row of Ps (shared memory keeps registers for acc)
    float *prow = Ps + t * (kBc + 1);
    const float *qrow = Qs + t * (D + 1);
    float tile_max = -INFINITY;
    for (int jj = 0; jj < kBc; ++jj) {
      float dot = 0.f;
#pragma unroll 8
      for (int d = 0; d < D; ++d) dot += qrow[d] * Ks[jj * D + d];
      const float sc = (k0 + jj <= i) ? dot : -INFINITY;  // causal mask (also drops keys past T)
      prow[jj] = sc;
      tile_max = fmaxf(tile_max, sc);
    }
    const float m_new = fmaxf(m, tile_max);  // finite: key 0 is in every row's first tile
    const float corr = expf(m - m_new);
    float tile_sum = 0.f;
    for (int jj = 0; jj < kBc; ++jj) {
      const float p = expf(prow[jj] - m_new);
      prow[jj] = p;
      tile_sum += p;
    }
    l = l * corr + tile_sum;
#pragma unroll
    for (int d = 0; d < D; ++d) acc[d] *= corr;
#pragma unroll 2
    for (int jj = 0; jj < kBc; ++jj) {
      const float p = prow[jj];
#pragma unroll
      for (int d = 0; d < D; ++d) acc[d] += p * Vs[jj * D + d];
    }
    m = m_new;
  }
  if (active) {
    const float inv = 1.0f / l;
    float *o = out + (bh * T + i) * D;
#pragma unroll
    for (int d = 0; d < D; ++d) o[d] = acc[d] * inv;
  }
}

template <int D>
void launch_flash(const float *q, const float *k, const float *v, float *out, int64_t BH, int64_t T, float scale) {
  constexpr size_t smem = flash_smem_bytes<D>();
  if (smem > 48 * 1024) {
    static bool raised = false;  // the attribute is per function, per device context; setting it twice is harmless
    if (!raised) {
      CUDA_CHECK(cudaFuncSetAttribute(attention_flash_kernel<D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                      (int)smem));
      raised = true;
    }
  }
  dim3 grid((unsigned)((T + kBr - 1) / kBr), (unsigned)BH);
  attention_flash_kernel<D><<<grid, kBr, smem>>>(q, k, v, out, T, scale);
  CUDA_LAUNCH_CHECK("attention_flash_kernel");
}

void launch_v1(const float *q, const float *k, const float *v, float *out, int64_t BH, int64_t T, int64_t D,
               float scale) {
  const size_t smem = (size_t)T * sizeof(float);
  if (smem > 48 * 1024) {
    int dev = 0, max_optin = 0;
    CUDA_CHECK(cudaGetDevice(&dev));
    CUDA_CHECK(cudaDeviceGetAttribute(&max_optin, cudaDevAttrMaxSharedMemoryPerBlockOptin, dev));
    if (smem > (size_t)max_optin)
      throw std::invalid_argument("CUDA causal_attention_forward v1: T = " + std::to_string(T) +
                                  " scores do not fit in shared memory");
    CUDA_CHECK(cudaFuncSetAttribute(attention_v1_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, (int)smem));
  }
  attention_v1_kernel<<<(unsigned)(BH * T), 128, smem>>>(q, k, v, out, T, D, scale);
  CUDA_LAUNCH_CHECK("attention_v1_kernel");
}

}  // namespace

namespace versions {
void causal_attention_forward(int version, const float *q, const float *k, const float *v, float *out, int64_t B,
                              int64_t H, int64_t T, int64_t D, double scale) {
  const int64_t BH = B * H;
  if (BH <= 0 || T <= 0 || D <= 0) return;
  const float s = (float)scale;
  if (version == 1) return launch_v1(q, k, v, out, BH, T, D, s);
  if (version != 2) throw std::invalid_argument("CUDA causal_attention_forward: no version " + std::to_string(version));
  if (BH > 65535) throw std::invalid_argument("CUDA causal_attention_forward: B*H above 65535");
  switch (D) {
    case 16: return launch_flash<16>(q, k, v, out, BH, T, s);
    case 32: return launch_flash<32>(q, k, v, out, BH, T, s);
    case 64: return launch_flash<64>(q, k, v, out, BH, T, s);
    case 128: return launch_flash<128>(q, k, v, out, BH, T, s);
    default: return launch_v1(q, k, v, out, BH, T, D, s);
  }
}
}  // namespace versions

void causal_attention_forward(const float *q, const float *k, const float *v, float *out, int64_t B, int64_t H,
                              int64_t T, int64_t D, double scale) {
  versions::causal_attention_forward(2, q, k, v, out, B, H, T, D, scale);
}

}  // namespace nanorlhf::kernels::cuda
