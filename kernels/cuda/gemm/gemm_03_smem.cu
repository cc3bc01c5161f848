// Rung 3, shared-memory tiling: a block computes a 32x32 tile of C; it walks K in 32-wide steps,
// each step loading a 32x32 tile of A and of B into shared memory once (coalesced, one element per
// thread) and then reading each value 32 times from shared memory. Global traffic drops by the tile
// width (32x), but every multiply-add still needs two shared-memory loads: the kernel is now bound by
// shared-memory bandwidth (rungs 4-5 reuse registers to fix that).
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int kTile = 32;

// grid (ceil(N/32), ceil(M/32), batch), block 32x32 threads, thread (tx, ty) owns C[m0 + ty, n0 + tx]
__global__ void __launch_bounds__(kTile *kTile) sgemm_smem_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ float As[kTile][kTile];  // As[m][k]
  __shared__ float Bs[kTile][kTile];  // Bs[k][n]
  const int tx = threadIdx.x % kTile, ty = threadIdx.x / kTile;
  const int m0 = blockIdx.y * kTile, n0 = blockIdx.x * kTile;
  const int m = m0 + ty, n = n0 + tx;
  float acc = 0.f;
  for (int k0 = 0; k0 < a.K; k0 += kTile) {
    // zero-filled outside the matrix, so the inner loop needs no bounds checks
    As[ty][tx] = (m < a.M && k0 + tx < a.K) ? load_a(A, a.lda, a.ta, m, k0 + tx) : 0.f;
    Bs[ty][tx] = (k0 + ty < a.K && n < a.N) ? load_b(B, a.ldb, a.tb, k0 + ty, n) : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < kTile; ++k) acc += As[ty][k] * Bs[k][tx];
    __syncthreads();
  }
  if (m < a.M && n < a.N) store_c(C, a.ldc, m, n, acc, a.alpha, a.beta);
}

}  // namespace

void sgemm_03_smem(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 grid(ceil_div(a.N, kTile), ceil_div(a.M, kTile), a.batch);
    sgemm_smem_kernel<<<grid, kTile * kTile>>>(a);
    NR_GEMM_LAUNCHED("sgemm_smem_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
