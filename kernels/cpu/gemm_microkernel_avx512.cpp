// Rung 3, AVX-512 flavour: a 12x32 micro-kernel. Per k step it loads one 32-wide row of the B
// panel (2 zmm), broadcasts 12 values of the A panel and issues 24 FMAs into 24 zmm accumulators,
// which keeps both FMA ports busy (2 x 16 lanes x 2 flops per cycle) with loads to spare.
// Compiled with target attributes, so the rest of the build stays generic; chosen only when the
// CPU reports AVX-512F.
#include <immintrin.h>

#include "kernels/cpu/gemm_packed_impl.h"

#define NR_AVX512 __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,fma,avx2")))

namespace nanorlhf::kernels::cpu::detail {
namespace {

constexpr int kMR = 12, kNR = 32;

// C[m, n] = alpha * sum_k a[k*12 + r] * b[k*32 + j] + beta * C; columns past n masked off.
NR_AVX512 void kernel_12x32(int64_t kc, const float *a, const float *b, float *c, int64_t ldc,
                            float alpha, float beta, int m, int n) {
  // C's rows are ldc apart (often a multiple of 4 KiB) and usually not in L1: start fetching them
  // now so the misses overlap the k loop instead of stalling the stores at the end.
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    if (r < m) {
      _mm_prefetch((const char *)(c + r * ldc), _MM_HINT_T0);
      _mm_prefetch((const char *)(c + r * ldc + 16), _MM_HINT_T0);
    }
  }
  __m512 acc[kMR][2];
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
#pragma GCC unroll 2
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
#pragma GCC unroll 12
    for (int r = 0; r < kMR; ++r) {
      const __m512 av = _mm512_set1_ps(a[r]);
      acc[r][0] = _mm512_fmadd_ps(av, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(av, b1, acc[r][1]);
    }
    a += kMR;
    b += kNR;
  }
  const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
  const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
  const __m512 va = _mm512_set1_ps(alpha), vb = _mm512_set1_ps(beta);
#pragma GCC unroll 12
  for (int r = 0; r < kMR; ++r) {
    if (r >= m) break;
    float *cr = c + r * ldc;
    __m512 x0 = _mm512_mul_ps(va, acc[r][0]), x1 = _mm512_mul_ps(va, acc[r][1]);
    if (beta != 0.0f) {  // beta == 0 never reads C (it may hold NaN)
      x0 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m0, cr), x0);
      x1 = _mm512_fmadd_ps(vb, _mm512_maskz_loadu_ps(m1, cr + 16), x1);
    }
    _mm512_mask_storeu_ps(cr, m0, x0);
    _mm512_mask_storeu_ps(cr + 16, m1, x1);
  }
}

// src is 4 rows x 8 columns (row stride ld); writes column kk as 4 floats at dst[kk*ds .. +3].
// Two unpack rounds and a 128-bit split: the transposes that both "A not transposed" and
// "B transposed" need, at ~8 floats per cycle instead of one scalar move per float.
NR_AVX512 inline void transpose_4x8(const float *src, int64_t ld, float *dst, int64_t ds) {
  const __m256 r0 = _mm256_loadu_ps(src), r1 = _mm256_loadu_ps(src + ld);
  const __m256 r2 = _mm256_loadu_ps(src + 2 * ld), r3 = _mm256_loadu_ps(src + 3 * ld);
  const __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
  const __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  _mm_storeu_ps(dst + 0 * ds, _mm256_castps256_ps128(u0));
  _mm_storeu_ps(dst + 1 * ds, _mm256_castps256_ps128(u1));
  _mm_storeu_ps(dst + 2 * ds, _mm256_castps256_ps128(u2));
  _mm_storeu_ps(dst + 3 * ds, _mm256_castps256_ps128(u3));
  _mm_storeu_ps(dst + 4 * ds, _mm256_extractf128_ps(u0, 1));
  _mm_storeu_ps(dst + 5 * ds, _mm256_extractf128_ps(u1, 1));
  _mm_storeu_ps(dst + 6 * ds, _mm256_extractf128_ps(u2, 1));
  _mm_storeu_ps(dst + 7 * ds, _mm256_extractf128_ps(u3, 1));
}

// op(A)[0:mc, 0:kc] -> 12-row panels. Full panels take vector paths; the last partial panel
// (zero padded) goes through the generic code.
NR_AVX512 void pack_a(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc, float *dst) {
  const int64_t full = mc / kMR * kMR;
  for (int64_t i0 = 0; i0 < full; i0 += kMR, dst += kc * kMR) {
    if (trans) {  // 12 contiguous floats per k
      for (int64_t k = 0; k < kc; ++k)
        _mm512_mask_storeu_ps(dst + k * kMR, 0x0FFF, _mm512_maskz_loadu_ps(0x0FFF, A + k * lda + i0));
    } else {  // rows of A -> columns of the panel, 4 rows x 8 k at a time
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int g = 0; g < kMR; g += 4) transpose_4x8(A + (i0 + g) * lda + k, lda, dst + k * kMR + g, kMR);
      for (; k < kc; ++k)
        for (int r = 0; r < kMR; ++r) dst[k * kMR + r] = A[(i0 + r) * lda + k];
    }
  }
  if (full < mc) pack_a_generic<kMR>(trans, trans ? A + full : A + full * lda, lda, mc - full, kc, dst);
}

// op(B)[0:kc, 0:nc] -> 32-column panels, zero padded.
NR_AVX512 void pack_b(bool trans, const float *B, int64_t ldb, int64_t kc, int64_t nc, float *dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += kNR, dst += kc * kNR) {
    const int n = (int)(nc - j0 < kNR ? nc - j0 : kNR);
    if (!trans) {  // one 32-wide row per k: two (masked) zmm copies
      const __mmask16 m0 = n >= 16 ? 0xFFFF : (__mmask16)((1u << n) - 1);
      const __mmask16 m1 = n >= 32 ? 0xFFFF : n <= 16 ? 0 : (__mmask16)((1u << (n - 16)) - 1);
      const float *src = B + j0;
      for (int64_t k = 0; k < kc; ++k, src += ldb) {
        _mm512_storeu_ps(dst + k * kNR, _mm512_maskz_loadu_ps(m0, src));
        _mm512_storeu_ps(dst + k * kNR + 16, _mm512_maskz_loadu_ps(m1, src + 16));
      }
    } else if (n == kNR) {  // stored rows of B -> columns of the panel
      int64_t k = 0;
      for (; k + 8 <= kc; k += 8)
        for (int g = 0; g < kNR; g += 4) transpose_4x8(B + (j0 + g) * ldb + k, ldb, dst + k * kNR + g, kNR);
      for (; k < kc; ++k)
        for (int j = 0; j < kNR; ++j) dst[k * kNR + j] = B[(j0 + j) * ldb + k];
    } else {
      pack_b_generic<kNR>(true, B + j0 * ldb, ldb, kc, n, dst);
    }
  }
}

}  // namespace

const packed_isa *isa_avx512() {
  // kc = 256: the 32 KiB B panel plus a 12 KiB A panel fit the 48 KiB L1; mc = 384: the A block
  // (384 KiB) sits in the 2 MiB L2 beside the C rows in flight.
  static const packed_isa isa{"avx512", kMR, kNR, /*mc=*/384, /*kc=*/256, kernel_12x32, pack_a, pack_b};
  static const bool ok = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  return ok ? &isa : nullptr;
}

}  // namespace nanorlhf::kernels::cpu::detail
