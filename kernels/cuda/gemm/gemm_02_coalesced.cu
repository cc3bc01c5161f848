// Rung 2, coalesced: the same one-thread-per-output kernel with threadIdx.x running along n. A warp
// now reads one value of A (a broadcast), 32 consecutive values of B (one 128-byte transaction) and
// writes 32 consecutive values of C: roughly a warp-width fewer transactions than rung 1. It is still
// memory bound: every operand is fetched from global memory (L1/L2 at best) once per multiply-add.
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

// grid (ceil(N/32), ceil(M/32), batch), block 32*32: lane-fast index tid % 32 runs along n
__global__ void sgemm_coalesced_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  const int n = blockIdx.x * 32 + threadIdx.x % 32;
  const int m = blockIdx.y * 32 + threadIdx.x / 32;
  if (m >= a.M || n >= a.N) return;
  float acc = 0.f;
  for (int k = 0; k < a.K; ++k) acc += load_a(A, a.lda, a.ta, m, k) * load_b(B, a.ldb, a.tb, k, n);
  store_c(C, a.ldc, m, n, acc, a.alpha, a.beta);
}

}  // namespace

void sgemm_02_coalesced(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 grid(ceil_div(a.N, 32), ceil_div(a.M, 32), a.batch);
    sgemm_coalesced_kernel<<<grid, 32 * 32>>>(a);
    NR_GEMM_LAUNCHED("sgemm_coalesced_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
