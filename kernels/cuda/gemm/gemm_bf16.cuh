// Shared pieces of the BF16 tensor-core rungs (9-11): their argument block, the K-major packing that
// rungs 10 and 11 need, and small PTX wrappers. Internal to kernels/cuda/gemm.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/cuda/gemm/gemm_check.h"

namespace nanorlhf::kernels::cuda::gemm_detail {

// C[M,N] (fp32) = alpha * op(A) @ op(B) + beta * C with A, B as raw bf16 bits; shapes as gemm_ladder.h.
struct BgemmArgs {
  bool ta = false, tb = false;
  int M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const uint16_t *A = nullptr;
  int64_t lda = 0;
  const uint16_t *B = nullptr;
  int64_t ldb = 0;
  float *C = nullptr;
  int64_t ldc = 0;
};

void bgemm_09_wmma(const BgemmArgs &a);
void bgemm_10_mma(const BgemmArgs &a);
void bgemm_11_wgmma(const BgemmArgs &a);

// Rungs 10 and 11 read both operands "K-major": A as [M, K] and B as [N, K] (i.e. trans_b), rows
// 16-byte aligned (leading dimension a multiple of 8 elements). Returns args in that form: operands
// already so laid out are used in place, the others are transposed/copied into per-device scratch
// buffers (leading dimension K rounded up to 8, zero padded). The scratch is reused by the next call:
// not thread-safe, and the result is valid until the next call on the same device.
BgemmArgs make_k_major(const BgemmArgs &a);

#if defined(__CUDACC__)

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

#endif

}  // namespace nanorlhf::kernels::cuda::gemm_detail
