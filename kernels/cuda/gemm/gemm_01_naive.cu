// Rung 1, naive: one thread per output C[m, n], a dot product over k straight from global memory.
// The baseline every other rung improves on. threadIdx.x runs along m, so the 32 threads of a warp read
// 32 different rows of A (32 separate memory transactions per k) and write 32 rows of C: the memory
// system, not arithmetic, sets the pace (rung 2 fixes the thread order).
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

// grid (ceil(M/32), ceil(N/32), batch), block (32, 32): thread (x, y) owns C[m = bx*32 + x, n = by*32 + y]
__global__ void sgemm_naive_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  const int m = blockIdx.x * blockDim.x + threadIdx.x;
  const int n = blockIdx.y * blockDim.y + threadIdx.y;
  if (m >= a.M || n >= a.N) return;
  float acc = 0.f;
  for (int k = 0; k < a.K; ++k) acc += load_a(A, a.lda, a.ta, m, k) * load_b(B, a.ldb, a.tb, k, n);
  store_c(C, a.ldc, m, n, acc, a.alpha, a.beta);
}

}  // namespace

void sgemm_01_naive(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 block(32, 32);
    dim3 grid(ceil_div(a.M, 32), ceil_div(a.N, 32), a.batch);
    sgemm_naive_kernel<<<grid, block>>>(a);
    NR_GEMM_LAUNCHED("sgemm_naive_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
