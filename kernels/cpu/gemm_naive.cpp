// Rung 1: the plain triple loop. Slow (strided B reads, no reuse of anything in cache or
// registers) but obviously right; it accumulates in double so it serves as the tests' reference.
#include "kernels/cpu/gemm.h"

namespace nanorlhf::kernels::cpu {

void gemm_naive(NR_GEMM_ARGS) {
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double acc = 0.0;
      for (int64_t k = 0; k < K; ++k) {
        const double a = trans_a ? A[k * lda + i] : A[i * lda + k];  // op(A)(i, k)
        const double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];  // op(B)(k, j)
        acc += a * b;
      }
      float &c = C[i * ldc + j];
      const double out = (double)alpha * acc;
      c = beta == 0.0f ? (float)out : (float)(out + (double)beta * c);  // beta == 0: overwrite
    }
  }
}

}  // namespace nanorlhf::kernels::cpu
