// The GEMM training calls (cuda_api.h: gemm_batched, use_cublas): FP32, batched with element strides,
// on the ladder's best FP32 rung (rung 8, warp tiling, large or small tiles by shape) or on cuBLAS
// (cublasSgemmStridedBatched) when use_cublas(true) or NANORLHF_USE_CUBLAS=1.
#include <atomic>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/gemm/gemm_common.cuh"
#include "kernels/cuda/gemm/gemm_cublas.h"

namespace nanorlhf::kernels::cuda {

namespace {

std::atomic<bool> g_use_cublas{false};

bool cublas_from_env() {
  static const bool on = [] {
    const char *v = std::getenv("NANORLHF_USE_CUBLAS");
    return v != nullptr && std::strcmp(v, "1") == 0;
  }();
  return on;
}

}  // namespace

void use_cublas(bool on) { g_use_cublas.store(on); }

// C_b[M,N] = alpha * op(A_b) @ op(B_b) + beta * C_b, X_b = X + b * stride_x, b < batch.
// A stride of 0 broadcasts that operand (one weight matrix against a batch of activations).
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, int64_t stride_a, const float *B, int64_t ldb, int64_t stride_b, float beta, float *C,
                  int64_t ldc, int64_t stride_c, int64_t batch) {
  using namespace gemm_detail;
  check_gemm_args("gemm_batched", trans_a, trans_b, M, N, K, lda, ldb, ldc);
  if (batch < 0 || batch > INT_MAX)
    throw std::invalid_argument("gemm_batched: batch must be in [0, 2^31), got " + std::to_string(batch));
  if (stride_a < 0 || stride_b < 0 || stride_c < 0)
    throw std::invalid_argument("gemm_batched: negative batch stride (stride_a=" + std::to_string(stride_a) +
                                " stride_b=" + std::to_string(stride_b) + " stride_c=" + std::to_string(stride_c) + ")");
  // (interleaved outputs such as stride_c = N, ldc = batch * N are fine; one shared C is a race)
  if (batch > 1 && stride_c == 0 && M > 0 && N > 0)
    throw std::invalid_argument("gemm_batched: stride_c = 0 with batch = " + std::to_string(batch) +
                                ": every batch entry needs its own C");
  if (M == 0 || N == 0 || batch == 0) return;

  if (g_use_cublas.load() || cublas_from_env()) {
    cublasHandle_t h = cublas_handle();
    if (batch == 1) {
      NR_GEMM_CUBLAS(cublasSgemm(h, cublas_op(trans_b), cublas_op(trans_a), int(N), int(M), int(K), &alpha, B,
                                 int(ldb), A, int(lda), &beta, C, int(ldc)));
    } else {
      NR_GEMM_CUBLAS(cublasSgemmStridedBatched(h, cublas_op(trans_b), cublas_op(trans_a), int(N), int(M), int(K),
                                               &alpha, B, int(ldb), stride_b, A, int(lda), stride_a, &beta, C,
                                               int(ldc), stride_c, int(batch)));
    }
    return;
  }

  SgemmArgs a;
  a.ta = trans_a; a.tb = trans_b;
  a.M = int(M); a.N = int(N); a.K = int(K);
  a.alpha = alpha; a.beta = beta;
  a.A = A; a.lda = lda; a.sa = stride_a;
  a.B = B; a.ldb = ldb; a.sb = stride_b;
  a.C = C; a.ldc = ldc; a.sc = stride_c;
  a.batch = int(batch);
  vector_flags(a);
  sgemm_08_warptiling(a, /*config: by shape*/ 0);
}

}  // namespace nanorlhf::kernels::cuda
