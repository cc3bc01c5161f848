// The other users of rung 2's blocked loops (gemm_blocked_impl.h): the single-threaded path of
// gemm() for small problems, and the float64 gemm used by gradcheck (correctness over speed).
#include "kernels/cpu/gemm.h"
#include "kernels/cpu/gemm_blocked_impl.h"
#include "kernels/cpu/gemm_packed_impl.h"

namespace nanorlhf::kernels::cpu {

namespace detail {
// The cheap path for small problems: the blocked loops on one thread (no fork, no packing).
void gemm_small(NR_GEMM_ARGS) {
  gemm_blocked_loops<float>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, false);
}
}  // namespace detail

void gemm(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, double alpha, const double *A,
          int64_t lda, const double *B, int64_t ldb, double beta, double *C, int64_t ldc) {
  detail::gemm_blocked_loops<double>(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc, true);
}

}  // namespace nanorlhf::kernels::cpu
