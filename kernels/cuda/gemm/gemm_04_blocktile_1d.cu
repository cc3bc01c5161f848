// Rung 4, 1D register blocking: each thread computes a column of TM = 8 outputs. For every k it
// loads one value of B from shared memory into a register and reuses it for its 8 outputs, so a
// multiply-add costs about 1.1 shared loads instead of 2, and the block tile grows to 64x64 with a
// thin BK = 8 slice (fewer threads, more work each, more arithmetic per byte moved).
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int BM = 64, BN = 64, BK = 8, TM = 8;
constexpr int NT = BM * BN / TM;  // 512 threads
static_assert(BM * BK == NT && BK * BN == NT, "one element of each tile per thread");

// grid (ceil(N/BN), ceil(M/BM), batch); thread t owns C[m0 + (t / BN) * TM + i, n0 + t % BN], i < TM
__global__ void __launch_bounds__(NT) sgemm_blocktile_1d_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ float As[BM][BK];  // As[m][k]
  __shared__ float Bs[BK][BN];  // Bs[k][n]
  const int t = threadIdx.x;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int tcol = t % BN, trow = t / BN;
  // which tile element this thread loads
  const int am = t / BK, ak = t % BK, bk = t / BN, bn = t % BN;
  float acc[TM] = {};
  for (int k0 = 0; k0 < a.K; k0 += BK) {
    As[am][ak] = (m0 + am < a.M && k0 + ak < a.K) ? load_a(A, a.lda, a.ta, m0 + am, k0 + ak) : 0.f;
    Bs[bk][bn] = (k0 + bk < a.K && n0 + bn < a.N) ? load_b(B, a.ldb, a.tb, k0 + bk, n0 + bn) : 0.f;
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      const float b = Bs[k][tcol];
#pragma unroll
      for (int i = 0; i < TM; ++i) acc[i] += As[trow * TM + i][k] * b;
    }
    __syncthreads();
  }
  const int n = n0 + tcol;
  if (n >= a.N) return;
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + trow * TM + i;
    if (m < a.M) store_c(C, a.ldc, m, n, acc[i], a.alpha, a.beta);
  }
}

}  // namespace

void sgemm_04_blocktile_1d(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM), a.batch);
    sgemm_blocktile_1d_kernel<<<grid, NT>>>(a);
    NR_GEMM_LAUNCHED("sgemm_blocktile_1d_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
