// Rung 2 of the CPU GEMM ladder: cache blocking over (i, k, j) with the inner loop over contiguous
// j; OpenMP splits the rows of C. The loops live in gemm_blocked_impl.h (gemm_small.cpp runs them too);
// this file is only the float entry point, so that assignment 02_blocked_gemm can build the library
// with the student's version in its place (lectures/assignments/).
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_blocked_impl.h"

namespace nanorlhf::kernels::cpu {

// C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N] + beta * C   (row-major; strides count elements)
void gemm_blocked(NR_GEMM_ARGS) {
  detail::gemm_blocked_loops<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, true);
}

}  // namespace nanorlhf::kernels::cpu
