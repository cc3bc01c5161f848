// Rung 7, tuned tiles and bank-conflict-free shared memory: rung 6 with (a) BK = 16, half as many
// __syncthreads per multiply-add; (b) each shared row padded by 4 floats, so the transposing stores
// of a warp (16 rows x 2 k-chunks) land 16 banks apart and never conflict, while rows stay 16-byte
// aligned for LDS.128; (c) a 64x64 tile configuration for shapes whose 128x128 tiles would leave
// most of the SMs idle (a 2048x128 output is 16 large tiles on 132 SMs, 64 small ones).
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int kPad = 4;

// grid (ceil(N/BN), ceil(M/BM), batch); thread t owns the TMxTN block at rows (t / (BN/TN)) * TM,
// cols (t % (BN/TN)) * TN of the block tile
template <int BM, int BN, int BK, int TM, int TN>
__global__ void __launch_bounds__((BM / TM) * (BN / TN)) sgemm_tuned_kernel(SgemmArgs a) {
  constexpr int NT = (BM / TM) * (BN / TN);
  constexpr int LDA = BM + kPad, LDB = BN + kPad;
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ __align__(16) float As[BK * LDA];  // As[k][m]
  __shared__ __align__(16) float Bs[BK * LDB];  // Bs[k][n]
  TileLoader<BM, BK, NT, kPad> la;
  TileLoader<BN, BK, NT, kPad> lb;
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
        *reinterpret_cast<float4 *>(rm + i) = *reinterpret_cast<const float4 *>(As + k * LDA + trow * TM + i);
#pragma unroll
      for (int j = 0; j < TN; j += 4)
        *reinterpret_cast<float4 *>(rn + j) = *reinterpret_cast<const float4 *>(Bs + k * LDB + tcol * TN + j);
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

template <int BM, int BN, int BK, int TM, int TN>
void launch_tuned(const SgemmArgs &a) {
  dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM), a.batch);
  sgemm_tuned_kernel<BM, BN, BK, TM, TN><<<grid, (BM / TM) * (BN / TN)>>>(a);
  NR_GEMM_LAUNCHED("sgemm_tuned_kernel");
}

}  // namespace

void sgemm_07_tuned(const SgemmArgs &args, int config) {
  for_each_batch_chunk(args, [config](const SgemmArgs &a) {
    const int64_t large_tiles = int64_t(ceil_div(a.M, 128)) * ceil_div(a.N, 128) * a.batch;
    const bool large = config == 1 || (config == 0 && large_tiles >= sm_count());
    if (large)
      launch_tuned<128, 128, 16, 8, 8>(a);
    else
      launch_tuned<64, 64, 16, 4, 4>(a);
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
