// Assignment 02_blocked_gemm: a cache-blocked CPU GEMM (rung 2 of the CPU GEMM ladder). The contract
// is kernels/cpu/gemm.h; README.md has the equation, the layouts and hints.
// Write the body between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=02_blocked_gemm
#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "kernels/cpu/gemm.h"

namespace nanorlhf::kernels::cpu {

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C, all row-major, strides in elements:
//   op(A)(i, k) = trans_a ? A[k * lda + i] : A[i * lda + k]
//   op(B)(k, j) = trans_b ? B[j * ldb + k] : B[k * ldb + j]
//   C(i, j)     = C[i * ldc + j]
// beta == 0 overwrites C (NaNs already in C must not survive), as in BLAS.
// NR_GEMM_ARGS (gemm.h) expands to: bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K,
// float alpha, const float *A, int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc
void gemm_blocked(NR_GEMM_ARGS) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: gemm_blocked");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::kernels::cpu
