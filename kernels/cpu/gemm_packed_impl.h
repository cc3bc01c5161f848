// Private to the CPU GEMM: the pieces of the BLIS-style packed GEMM that each ISA file supplies
// (micro-kernel, packing routines, blocking sizes) and the shared driver that runs them.
#pragma once
#include <cstdint>

#include "kernels/cpu/gemm.h"

namespace nanorlhf::kernels::cpu::detail {

// One flavour of the packed GEMM. Packed layouts (both zero padded to full panels):
//   A panel: kc x MR, element (r, k) at a[k*MR + r]  (one MR-wide column per k)
//   B panel: kc x NR, element (k, j) at b[k*NR + j]  (one NR-wide row per k)
struct packed_isa {
  const char *name;
  int mr, nr;              // register block of the micro-kernel
  int64_t mc, kc;          // cache blocks: A block mc x kc in L2, B panel kc x NR in L1
  // C[m, n] (row stride ldc) = alpha * (a_panel^T b_panel) + beta * C, for m <= MR, n <= NR;
  // beta == 0 overwrites C.
  void (*kernel)(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                 float beta, int m, int n);
  // op(A)[0:mc, 0:kc] -> ceil(mc/MR) panels. A points at op(A)(0, 0): A[i*lda + k] or, trans, A[k*lda + i].
  void (*pack_a)(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc, float *dst);
  // op(B)[0:kc, 0:nc] -> ceil(nc/NR) panels. B points at op(B)(0, 0): B[k*ldb + j] or, trans, B[j*ldb + k].
  void (*pack_b)(bool trans, const float *B, int64_t ldb, int64_t kc, int64_t nc, float *dst);
};

// Each returns nullptr when the CPU lacks the instructions.
const packed_isa *isa_avx512();
const packed_isa *isa_avx2();
const packed_isa *isa_portable();

// The packed driver: row chunk (<= MC, shared out dynamically) -> pc (KC) -> jr (NR) -> ir (MR), with
// op(B) packed once per thread; threads with OpenMP.
void gemm_packed_run(const packed_isa &isa, NR_GEMM_ARGS);

// C[M, N] *= beta (beta == 0 writes zeros, dropping NaNs); used when K == 0 or alpha == 0.
void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc);

// The cheap path for small problems: blocked loops on one thread (in gemm_small.cpp).
void gemm_small(NR_GEMM_ARGS);

// Plain C++ packing, zero padded; ISA files may use these or their own vector versions.
template <int MR>
inline void pack_a_generic(bool trans, const float *A, int64_t lda, int64_t mc, int64_t kc, float *dst) {
  for (int64_t i0 = 0; i0 < mc; i0 += MR, dst += kc * MR) {
    const int m = (int)(mc - i0 < MR ? mc - i0 : MR);
    if (trans) {  // op(A)(i, k) = A[k*lda + i]: MR contiguous floats per k
      for (int64_t k = 0; k < kc; ++k) {
        const float *src = A + k * lda + i0;
        for (int r = 0; r < m; ++r) dst[k * MR + r] = src[r];
        for (int r = m; r < MR; ++r) dst[k * MR + r] = 0.0f;
      }
    } else {  // op(A)(i, k) = A[i*lda + k]: walk each row contiguously
      for (int r = 0; r < m; ++r) {
        const float *src = A + (i0 + r) * lda;
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = src[k];
      }
      for (int r = m; r < MR; ++r)
        for (int64_t k = 0; k < kc; ++k) dst[k * MR + r] = 0.0f;
    }
  }
}

template <int NR>
inline void pack_b_generic(bool trans, const float *B, int64_t ldb, int64_t kc, int64_t nc, float *dst) {
  for (int64_t j0 = 0; j0 < nc; j0 += NR, dst += kc * NR) {
    const int n = (int)(nc - j0 < NR ? nc - j0 : NR);
    if (!trans) {  // op(B)(k, j) = B[k*ldb + j]: NR contiguous floats per k
      for (int64_t k = 0; k < kc; ++k) {
        const float *src = B + k * ldb + j0;
        for (int j = 0; j < n; ++j) dst[k * NR + j] = src[j];
        for (int j = n; j < NR; ++j) dst[k * NR + j] = 0.0f;
      }
    } else {  // op(B)(k, j) = B[j*ldb + k]: walk each stored row contiguously
      for (int j = 0; j < n; ++j) {
        const float *src = B + (j0 + j) * ldb;
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = src[k];
      }
      for (int j = n; j < NR; ++j)
        for (int64_t k = 0; k < kc; ++k) dst[k * NR + j] = 0.0f;
    }
  }
}

}  // namespace nanorlhf::kernels::cpu::detail
