// The CPU GEMM ladder, rung by rung, from the plain triple loop to a BLIS-style packed kernel with AVX-512.
// All are row-major: C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C.
// op(A) = A (stored [M,K], row stride lda) or, when trans_a, A^T (A stored [K,M], row stride lda).
// Likewise B: stored [K,N] (ldb) or, when trans_b, stored [N,K]. Strides count elements.
// beta == 0 means C is overwritten (NaNs in C are not propagated), as in BLAS.
#pragma once
#include <cstdint>

namespace nanorlhf::kernels::cpu {

#define NR_GEMM_ARGS                                                                              \
  bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,      \
      int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc

// rung 1: naive triple loop, the reference every other rung is tested against.
void gemm_naive(NR_GEMM_ARGS);
// rung 2: cache blocking over (i, k, j) with the inner loop over contiguous j; OpenMP over rows.
void gemm_blocked(NR_GEMM_ARGS);
// rung 3: BLIS-style packing of A and B panels and a register-blocked micro-kernel;
// the micro-kernel is chosen at run time: AVX-512, AVX2+FMA, or portable C++.
void gemm_packed(NR_GEMM_ARGS);
// The micro-kernel flavours of rung 3, callable directly for the benchmark (each throws
// std::runtime_error when the CPU lacks the instructions).
void gemm_packed_avx512(NR_GEMM_ARGS);
void gemm_packed_avx2(NR_GEMM_ARGS);
void gemm_packed_portable(NR_GEMM_ARGS);
// The best rung for this CPU and shape; what the tensor engine calls.
void gemm(NR_GEMM_ARGS);

// float64, used by gradcheck: a straightforward blocked version (correctness over speed).
void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
          int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc);

// Which micro-kernel gemm_packed picks on this CPU: "avx512", "avx2" or "portable".
const char *gemm_packed_isa();

}  // namespace nanorlhf::kernels::cpu
