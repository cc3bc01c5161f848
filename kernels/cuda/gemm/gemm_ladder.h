// The GEMM ladder's host API, plain C++ (no CUDA headers): handwritten CUDA GEMMs from a naive
// kernel (rung 1) to Hopper wgmma + TMA (rung 11), and cuBLAS beside them as the yardstick.
// Conventions are those of kernels/cpu/gemm.h: row-major, C[M,N] = alpha * op(A)[M,K] @ op(B)[K,N]
// + beta * C; op(A) = A stored [M,K] (row stride lda) or, when trans_a, A^T with A stored [K,M];
// op(B) = B stored [K,N] or, when trans_b, B stored [N,K]. Strides count elements. beta == 0
// overwrites C (NaNs in C are not propagated). Every pointer is a device pointer; calls run on the
// default stream and are asynchronous. Any M, N, K >= 0 works for every rung.
#pragma once
#include <cstdint>

namespace nanorlhf::kernels::cuda {

// FP32 rungs on CUDA cores (1..8) and the BF16 tensor-core rungs (9..11).
constexpr int kGemmFirstRung = 1;
constexpr int kGemmLastFp32Rung = 8;
constexpr int kGemmFirstBf16Rung = 9;
constexpr int kGemmLastRung = 11;

// A short name per rung, e.g. gemm_rung_name(6) == "6_vectorized"; "?" outside 1..11.
const char *gemm_rung_name(int rung);
// All rung names in order, index 0 = rung 1.
extern const char *const kGemmRungNames[kGemmLastRung];

// FP32 GEMM with rung 1..8 (throws std::invalid_argument for another rung).
void sgemm_rung(int rung, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);

// BF16 inputs (raw bf16 bits in uint16_t), FP32 accumulation and FP32 C, with rung 9..11.
// Rung 11 needs an sm_90 device (Hopper); it throws std::runtime_error elsewhere.
void bf16_gemm_rung(int rung, bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha,
                    const uint16_t *A, int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C,
                    int64_t ldc);

// The yardsticks: cublasSgemm and cublasGemmEx (A, B CUDA_R_16BF, C CUDA_R_32F, CUBLAS_COMPUTE_32F).
void sgemm_cublas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, const float *B, int64_t ldb, float beta, float *C, int64_t ldc);
void bf16_gemm_cublas(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A,
                      int64_t lda, const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc);

// Whether rung 11 can run on the current device (compute capability 9.0).
bool gemm_hopper_available();

}  // namespace nanorlhf::kernels::cuda
