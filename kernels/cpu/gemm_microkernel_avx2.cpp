// Rung 3, AVX2 flavour: a 6x16 micro-kernel, 12 ymm accumulators fed by 2 B loads and 6
// broadcasts of A per k step (the classic Haswell shape: 12 FMAs per step, 16 registers in all).
// Target attributes keep the rest of the build generic; chosen when the CPU has AVX2 and FMA.
#include <immintrin.h>

#include "kernels/cpu/gemm_packed_impl.h"

#define NR_AVX2 __attribute__((target("avx2,fma")))

namespace nanorlhf::kernels::cpu::detail {
namespace {

constexpr int kMR = 6, kNR = 16;

// C[m, n] = alpha * sum_k a[k*6 + r] * b[k*16 + j] + beta * C; partial tiles go through a buffer.
NR_AVX2 void kernel_6x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                         float alpha, float beta, int m, int n) {
  __m256 acc[kMR][2];
#pragma GCC unroll 6
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 b0 = _mm256_loadu_ps(b), b1 = _mm256_loadu_ps(b + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      const __m256 av = _mm256_broadcast_ss(a + r);
      acc[r][0] = _mm256_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(av, b1, acc[r][1]);
    }
    a += kMR;
    b += kNR;
  }
  const __m256 va = _mm256_set1_ps(alpha), vb = _mm256_set1_ps(beta);
  if (m == kMR && n == kNR) {
#pragma GCC unroll 6
    for (int r = 0; r < kMR; ++r) {
      float *cr = c + r * ldc;
      __m256 x0 = _mm256_mul_ps(va, acc[r][0]), x1 = _mm256_mul_ps(va, acc[r][1]);
      if (beta != 0.0f) {
        x0 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), x0);
        x1 = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr + 8), x1);
      }
      _mm256_storeu_ps(cr, x0);
      _mm256_storeu_ps(cr + 8, x1);
    }
    return;
  }
  alignas(32) float tile[kMR][kNR];
  for (int r = 0; r < kMR; ++r) {
    _mm256_store_ps(tile[r], _mm256_mul_ps(va, acc[r][0]));
    _mm256_store_ps(tile[r] + 8, _mm256_mul_ps(va, acc[r][1]));
  }
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j) {
      float &cv = c[r * ldc + j];
      cv = beta == 0.0f ? tile[r][j] : tile[r][j] + beta * cv;
    }
}

NR_AVX2 void pack_a(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc, float *dst) {
  pack_a_generic<kMR>(trans, A, lda, mc, kc, dst);
}

NR_AVX2 void pack_b(bool trans, const float *B, int64_t ldb, int64_t kc, int64_t nc, float *dst) {
  pack_b_generic<kNR>(trans, B, ldb, kc, nc, dst);
}

}  // namespace

const packed_isa *isa_avx2() {
  static const packed_isa isa{"avx2", kMR, kNR, /*mc=*/192, /*kc=*/256, kernel_6x16, pack_a, pack_b};
  static const bool ok = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return ok ? &isa : nullptr;
}

}  // namespace nanorlhf::kernels::cpu::detail
