// Rung 6, vectorised loads with a transposed A tile: rung 5's 128x128x8 tiling, but shared memory holds
// A transposed (As[k][m]) so that, for a fixed k, the 8 values of A a thread needs are contiguous, like
// those of B: the inner loop reads each operand with two 128-bit LDS.128 instead of eight 32-bit loads,
// and global memory is read with float4 (LDG.128) as well. Fewer load instructions leave more issue
// slots for FMAs. The transposing store into As has 2-way bank conflicts, which rung 7 removes.
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int BM = 128, BN = 128, BK = 8, TM = 8, TN = 8;
constexpr int NT = (BM / TM) * (BN / TN);  // 256 threads

// grid (ceil(N/BN), ceil(M/BM), batch); thread t owns the 8x8 block at rows (t / 16) * 8, cols (t % 16) * 8
__global__ void __launch_bounds__(NT) sgemm_vectorized_kernel(SgemmArgs a) {
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ __align__(16) float As[BK * BM];  // As[k][m]
  __shared__ __align__(16) float Bs[BK * BN];  // Bs[k][n]
  TileLoader<BM, BK, NT, 0> la;
  TileLoader<BN, BK, NT, 0> lb;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int trow = threadIdx.x / (BN / TN), tcol = threadIdx.x % (BN / TN);
  float acc[TM][TN] = {};
  for (int k0 = 0; k0 < a.K; k0 += BK) {
    la.fetch(A, a.lda, !a.ta, a.vec_a, m0, k0, a.M, a.K);
    lb.fetch(B, a.ldb, a.tb, a.vec_b, n0, k0, a.N, a.K);
    la.store(As, !a.ta);
    lb.store(Bs, a.tb);
    __syncthreads();
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float rm[TM], rn[TN];
#pragma unroll
      for (int i = 0; i < TM; i += 4)
        *reinterpret_cast<float4 *>(rm + i) = *reinterpret_cast<const float4 *>(As + k * BM + trow * TM + i);
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4 *>(rn + j) = *reinterpret_cast<const float4 *>(Bs + k * BN + tcol * TN + j);
#pragma unroll
      for (int i = 0; i < TM; ++i)
#pragma unroll
        for (int j = 0; j < TN; ++j) acc[i][j] += rm[i] * rn[j];
    }
    __syncthreads();
  }
#pragma unroll
  for (int i = 0; i < TM; ++i)
    store_c_row<TN>(C, a.ldc, a.M, a.N, a.vec_c, m0 + trow * TM + i, n0 + tcol * TN, acc[i], a.alpha, a.beta);
}

}  // namespace

void sgemm_06_vectorized(const SgemmArgs &args) {
  for_each_batch_chunk(args, [](const SgemmArgs &a) {
    dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM), a.batch);
    sgemm_vectorized_kernel<<<grid, NT>>>(a);
    NR_GEMM_LAUNCHED("sgemm_vectorized_kernel");
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
