// The per-device cuBLAS handle shared by the ladder's yardsticks and gemm_train.cu (private).
#pragma once
#include <cublas_v2.h>

namespace nanorlhf::kernels::cuda::gemm_detail {

// One handle per device, created on first use on the current device and kept for the life of the
// process (destroying it from a static destructor can run after the driver has shut down).
cublasHandle_t cublas_handle();

// Row-major C[M,N] = op(A) op(B) is column-major C^T[N,M] = op(B)^T op(A)^T: cuBLAS gets B first, and
// a row-major operand that is not transposed is, seen column-major, exactly the transposed factor it needs.
inline cublasOperation_t cublas_op(bool trans) { return trans ? CUBLAS_OP_T : CUBLAS_OP_N; }

}  // namespace nanorlhf::kernels::cuda::gemm_detail
