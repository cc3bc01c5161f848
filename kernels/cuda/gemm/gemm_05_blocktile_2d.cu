// Rung 5, 2D register blocking: each thread computes an 8x8 block of outputs. Per k it loads 8 values
// of A and 8 of B into registers and does 64 multiply-adds with them (an outer product): 16 shared
// loads per 64 FMAs instead of 2 per FMA in rung 3. The block tile grows to 128x128, so each value
// fetched from global memory is also reused 128 times. From here on the kernel is close to compute
// bound; what is left are load instructions (rung 6) and bank conflicts (rung 7).
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
constexpr int NT = (BM / TM) * (BN / TN);  // 256 threads
constexpr int kLoads = BM * BK / NT;       // elements of each tile per thread (4)
static_assert(BM * BK % NT == 0 && BK * BN % NT == 0, "whole tiles per thread");

// grid (ceil(N/BN), ceil(M/BM), batch); thread t owns the 8x8 block at rows (t / 16) * 8, cols (t % 16) * 8
__global__ void __launch_bounds__(NT) sgemm_blocktile_2d_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ float As[BM][BK];  // As[m][k]
  __shared__ float Bs[BK][BN];  // Bs[k][n]
  const int t = threadIdx.x;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int trow = t / (BN / TN), tcol = t % (BN / TN);
  float acc[TM][TN] = {};
  float rm[TM], rn[TN];
  for (int k0 = 0; k0 < a.K; k0 += BK) {
#pragma unroll
    for (int l = 0; l < kLoads; ++l) {
      const int e = t + l * NT;
      const int am = e / BK, ak = e % BK;  // consecutive threads along k of one row of A
      As[am][ak] = (m0 + am < a.M && k0 + ak < a.K) ? load_a(A, a.lda, a.ta, m0 + am, k0 + ak) : 0.f;
      const int bk = e / BN, bn = e % BN;  // consecutive threads along n of one row of B
      Bs[bk][bn] = (k0 + bk < a.K && n0 + bn < a.N) ? load_b(B, a.ldb, a.tb, k0 + bk, n0 + bn) : 0.f;
    }
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
#pragma unroll
      for (int i = 0; i < TM; ++i) rm[i] = As[trow * TM + i][k];
#pragma unroll
      for (int j = 0; j < TN; ++j) rn[j] = Bs[k][tcol * TN + j];
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += rm[i] * rn[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i) {
    const int m = m0 + trow * TM + i;
    if (m >= a.M) break;
#pragma unroll
    for (int j = 0; j < TN; ++j) {
      const int n = n0 + tcol * TN + j;
      if (n < a.N) store_c(C, a.ldc, m, n, acc[i][j], a.alpha, a.beta);
    }
  }
}

}  // namespace

void sgemm_05_blocktile_2d(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM), a.batch);
    sgemm_blocktile_2d_kernel<<<grid, NT>>>(a);
    NR_GEMM_LAUNCHED("sgemm_blocktile_2d_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
