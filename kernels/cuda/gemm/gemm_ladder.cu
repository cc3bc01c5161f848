// The ladder's dispatcher (gemm_ladder.h): argument checks, rung selection, the rung names, and the
// cuBLAS yardsticks (cublasSgemm, cublasGemmEx with BF16 inputs) with the per-device handle.
#include <climits>
#include <mutex>
#include <stdexcept>
#include <string>

#include "kernels/cuda/gemm/gemm_bf16.cuh"
#include "kernels/cuda/gemm/gemm_common.cuh"
#include "kernels/cuda/gemm/gemm_cublas.h"
#include "kernels/cuda/gemm/gemm_ladder.h"

namespace nanorlhf::kernels::cuda {

const char *const kGemmRungNames[kGemmLastRung] = {
    "1_naive",   "2_coalesced",  "3_smem",       "4_blocktile_1d", "5_blocktile_2d", "6_vectorized",
    "7_tuned",   "8_warptiling", "9_wmma_bf16",  "10_mma_bf16",    "11_wgmma_bf16",
};

const char *gemm_rung_name(int rung) {
  return rung >= kGemmFirstRung && rung <= kGemmLastRung ? kGemmRungNames[rung - 1] : "?";
}

namespace gemm_detail {

cublasHandle_t cublas_handle() {
  static std::mutex mu;
  static cublasHandle_t handles[64] = {};
  int dev = 0;
  NR_GEMM_CUDA(cudaGetDevice(&dev));
  NR_GEMM_REQUIRE(dev >= 0 && dev < 64, "device index " + std::to_string(dev) + " >= 64");
  std::lock_guard<std::mutex> lock(mu);
  if (!handles[dev]) NR_GEMM_CUBLAS(cublasCreate(&handles[dev]));
  return handles[dev];
}

int sm_count() {
  static int counts[64] = {};  // 0 = not asked yet; a benign race writes the same value twice
  int dev = 0;
  NR_GEMM_CUDA(cudaGetDevice(&dev));
  if (dev < 0 || dev >= 64) return 132;
  if (counts[dev] == 0) NR_GEMM_CUDA(cudaDeviceGetAttribute(&counts[dev], cudaDevAttrMultiProcessorCount, dev));
  return counts[dev];
}

// Shapes and leading dimensions as BLAS requires them (row-major: the stored row length), with a
// message that names both what was expected and what came.
void check_gemm_args(const char *who, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc) {
  auto fail = [&](const std::string &what) {
    throw std::invalid_argument(std::string(who) + ": " + what + " (M=" + std::to_string(M) +
                                " N=" + std::to_string(N) + " K=" + std::to_string(K) + " trans_a=" +
                                std::to_string(ta) + " trans_b=" + std::to_string(tb) + " lda=" +
                                std::to_string(lda) + " ldb=" + std::to_string(ldb) + " ldc=" + std::to_string(ldc) + ")");
  };
  if (M < 0 || N < 0 || K < 0) fail("negative dimension");
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX) fail("dimension above 2^31 - 1");
  const int64_t need_a = std::max<int64_t>(1, ta ? M : K), need_b = std::max<int64_t>(1, tb ? K : N);
  if (lda < need_a) fail("lda must be >= " + std::to_string(need_a));
  if (ldb < need_b) fail("ldb must be >= " + std::to_string(need_b));
  if (ldc < std::max<int64_t>(1, N)) fail("ldc must be >= max(1, N)");
}

}  // namespace gemm_detail

using namespace gemm_detail;

void sgemm_rung(int rung, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (rung < kGemmFirstRung || rung > kGemmLastFp32Rung)
    throw std::invalid_argument("sgemm_rung: rung " + std::to_string(rung) + " is not an FP32 rung (1..8)");
  check_gemm_args("sgemm_rung", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  SgemmArgs a;
  a.ta = ta; a.tb = tb;
  a.M = int(M); a.N = int(N); a.K = int(K);
  a.alpha = alpha; a.beta = beta;
  a.A = A; a.lda = lda; a.B = B; a.ldb = ldb; a.C = C; a.ldc = ldc;
  vector_flags(a);
  switch (rung) {
    case 1: sgemm_01_naive(a); break;
    case 2: sgemm_02_coalesced(a); break;
    case 3: sgemm_03_smem(a); break;
    case 4: sgemm_04_blocktile_1d(a); break;
    case 5: sgemm_05_blocktile_2d(a); break;
    case 6: sgemm_06_vectorized(a); break;
    case 7: sgemm_07_tuned(a); break;
    default: sgemm_08_warptiling(a); break;
  }
}

void bf16_gemm_rung(int rung, bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
                    int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  if (rung < kGemmFirstBf16Rung || rung > kGemmLastRung)
    throw std::invalid_argument("bf16_gemm_rung: rung " + std::to_string(rung) + " is not a BF16 rung (9..11)");
  check_gemm_args("bf16_gemm_rung", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  BgemmArgs a;
  a.ta = ta; a.tb = tb;
  a.M = int(M); a.N = int(N); a.K = int(K);
  a.alpha = alpha; a.beta = beta;
  a.A = A; a.lda = lda; a.B = B; a.ldb = ldb; a.C = C; a.ldc = ldc;
  switch (rung) {
    case 9: bgemm_09_wmma(a); break;
    case 10: bgemm_10_mma(a); break;
    default: bgemm_11_wgmma(a); break;
  }
}

void sgemm_cublas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                  const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  check_gemm_args("sgemm_cublas", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  NR_GEMM_CUBLAS(cublasSgemm(cublas_handle(), cublas_op(tb), cublas_op(ta), int(N), int(M), int(K), &alpha, B,
                             int(ldb), A, int(lda), &beta, C, int(ldc)));
}

void bf16_gemm_cublas(bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
                      int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
  check_gemm_args("bf16_gemm_cublas", ta, tb, M, N, K, lda, ldb, ldc);
  if (M == 0 || N == 0) return;
  NR_GEMM_CUBLAS(cublasGemmEx(cublas_handle(), cublas_op(tb), cublas_op(ta), int(N), int(M), int(K), &alpha, B,
                              CUDA_R_16BF, int(ldb), A, CUDA_R_16BF, int(lda), &beta, C, CUDA_R_32F, int(ldc),
                              CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
}

bool gemm_hopper_available() {
  int dev = 0, major = 0, minor = 0;
  if (cudaGetDevice(&dev) != cudaSuccess) { (void)cudaGetLastError(); return false; }
  if (cudaDeviceGetAttribute(&major, cudaDevAttrComputeCapabilityMajor, dev) != cudaSuccess ||
      cudaDeviceGetAttribute(&minor, cudaDevAttrComputeCapabilityMinor, dev) != cudaSuccess) {
    (void)cudaGetLastError();
    return false;
  }
  return major == 9 && minor == 0;
}

}  // namespace nanorlhf::kernels::cuda
