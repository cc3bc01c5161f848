// Rung 8, warp tiling with double buffering: the block tile is split into warp tiles (64x64 for the
// large configuration) and each warp's tile into per-thread fragments laid out so that the 32 lanes
// of a warp read a compact 8x4 pattern of As/Bs addresses: the operands a warp needs at each k come
// from few shared-memory wavefronts and stay in registers longer (the hierarchy block -> warp ->
// thread mirrors SM -> scheduler -> lane). Double buffering: while the warps compute on one shared
// buffer, the next K slice is already on its way from global memory into registers and is stored to
// the other buffer afterwards, so there is one __syncthreads per slice and load latency overlaps the
// FMAs. Target: >= 90% of cublasSgemm at 4096^3.
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int kPad = 4;

// Block tile BM x BN x BK; warp tile WM x WN, computed as WMITER x WNITER sub-tiles of
// (WM/WMITER) x (WN/WNITER); a lane owns a TM x TN block of each sub-tile.
// grid (ceil(N/BN), ceil(M/BM), batch), 32 * (BM/WM) * (BN/WN) threads.
template <int BM, int BN, int BK, int WM, int WN, int WMITER, int WNITER, int TM, int TN>
__global__ void __launch_bounds__(32 * (BM / WM) * (BN / WN)) sgemm_warptiling_kernel(SgemmArgs a) {
  constexpr int NT = 32 * (BM / WM) * (BN / WN);
  constexpr int WSUBM = WM / WMITER, WSUBN = WN / WNITER;
  constexpr int TCOLS = WSUBN / TN;  // lanes across a sub-tile
  static_assert((WSUBM / TM) * TCOLS == 32, "a sub-tile is covered by the 32 lanes of a warp");
  static_assert(TM % 4 == 0 && TN % 4 == 0, "float4 fragments");
  constexpr int LDA = BM + kPad, LDB = BN + kPad;
  const float *A, *B;
  float *C;
  select_batch(a, A, B, C);
  __shared__ __align__(16) float As[2][BK * LDA];  // As[buf][k][m]
  __shared__ __align__(16) float Bs[2][BK * LDB];  // Bs[buf][k][n]
  TileLoader<BM, BK, NT, kPad> la;
  TileLoader<BN, BK, NT, kPad> lb;

  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wrow = warp / (BN / WN), wcol = warp % (BN / WN);
  const int trow = lane / TCOLS, tcol = lane % TCOLS;
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int am = wrow * WM + trow * TM;  // this lane's first row inside the block tile (+ wm * WSUBM)
  const int bn = wcol * WN + tcol * TN;  // its first column (+ wn * WSUBN)

  float acc[WMITER * TM][WNITER * TN] = {};
  const int KT = (a.K + BK - 1) / BK;
  if (KT > 0) {
    la.fetch(A, a.lda, !a.ta, a.vec_a, m0, 0, a.M, a.K);
    lb.fetch(B, a.ldb, a.tb, a.vec_b, n0, 0, a.N, a.K);
    la.store(As[0], !a.ta);
    lb.store(Bs[0], a.tb);
  }
  __syncthreads();
  for (int kt = 0; kt < KT; ++kt) {
    const int cur = kt & 1;
    const bool more = kt + 1 < KT;
    if (more) {  // issue the next slice's global loads now; they land while we compute
      la.fetch(A, a.lda, !a.ta, a.vec_a, m0, (kt + 1) * BK, a.M, a.K);
      lb.fetch(B, a.ldb, a.tb, a.vec_b, n0, (kt + 1) * BK, a.N, a.K);
    }
    const float *as = As[cur], *bs = Bs[cur];
#pragma unroll
    for (int k = 0; k < BK; ++k) {
      float rm[WMITER * TM], rn[WNITER * TN];
#pragma unroll
      for (int wm = 0; wm < WMITER; ++wm)
#pragma unroll
        for (int i = 0; i < TM; i += 4)
          *reinterpret_cast<float4 *>(rm + wm * TM + i) =
              *reinterpret_cast<const float4 *>(as + k * LDA + am + wm * WSUBM + i);
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn)
#pragma unroll
        for (int j = 0; j < TN; j += 4)
          *reinterpret_cast<float4 *>(rn + wn * TN + j) =
              *reinterpret_cast<const float4 *>(bs + k * LDB + bn + wn * WSUBN + j);
#pragma unroll
      for (int i = 0; i < WMITER * TM; ++i)
#pragma unroll
        for (int j = 0; j < WNITER * TN; ++j) acc[i][j] += rm[i] * rn[j];
    }
    // buffer cur ^ 1 was last read in iteration kt - 1, which every thread finished before the
    // barrier that ended it; the barrier below publishes the new slice before iteration kt + 1 reads it
    if (more) {
      la.store(As[cur ^ 1], !a.ta);
      lb.store(Bs[cur ^ 1], a.tb);
    }
    __syncthreads();
  }
#pragma unroll
  for (int wm = 0; wm < WMITER; ++wm)
#pragma unroll
    for (int i = 0; i < TM; ++i)
#pragma unroll
      for (int wn = 0; wn < WNITER; ++wn)
        store_c_row<TN>(C, a.ldc, a.M, a.N, a.vec_c, m0 + am + wm * WSUBM + i, n0 + bn + wn * WSUBN,
                        &acc[wm * TM + i][wn * TN], a.alpha, a.beta);
}

template <int BM, int BN, int BK, int WM, int WN, int WMITER, int WNITER, int TM, int TN>
void launch_warptiling(const SgemmArgs &a) {
  dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM), a.batch);
  sgemm_warptiling_kernel<BM, BN, BK, WM, WN, WMITER, WNITER, TM, TN>
      <<<grid, 32 * (BM / WM) * (BN / WN)>>>(a);
  NR_GEMM_LAUNCHED("sgemm_warptiling_kernel");
}

}  // namespace

void sgemm_08_warptiling(const SgemmArgs &args, int config) {
  for_each_batch_chunk(args, [config](const SgemmArgs &a) {
    const int64_t large_tiles = int64_t(ceil_div(a.M, 128)) * ceil_div(a.N, 128) * a.batch;
    const bool large = config == 1 || (config == 0 && large_tiles >= sm_count());
    if (large)  // 128x128 block, four 64x64 warp tiles, 8x4 per lane in each of 1x4 sub-tiles: 128 outputs
      launch_warptiling<128, 128, 16, 64, 64, 1, 4, 8, 4>(a);
    else  // 64x64 block, four 32x32 warp tiles, 4x4 per lane in each of 1x2 sub-tiles: 32 outputs
      launch_warptiling<64, 64, 16, 32, 32, 1, 2, 4, 4>(a);
  });
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
