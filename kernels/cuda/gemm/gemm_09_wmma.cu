// Rung 9, tensor cores through WMMA (BF16 in, FP32 accumulate): the first rung on tensor cores. A warp
// multiplies whole 16x16x16 fragments with one mma_sync (hundreds of FMAs in one instruction) instead of
// one FMA per lane per instruction; the block keeps rung 3's structure (load a 128x128x32 slice into
// shared memory, synchronise, multiply). WMMA is the portable sm_70-era API: on Hopper it compiles to
// the sm_80 mma.sync path, loads fragments with plain shared loads, and nothing overlaps the global
// loads with the math, so it stays far below cuBLAS, which uses wgmma + TMA (rung 11).
#include <mma.h>

#include "kernels/cuda/gemm/gemm_bf16.cuh"
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

using namespace nvcuda;

constexpr int BM = 128, BN = 128, BK = 32;
constexpr int WM = 64, WN = 32;                      // warp tile: 4 x 2 fragments of 16x16
constexpr int NT = 32 * (BM / WM) * (BN / WN);       // 8 warps
constexpr int LDA = BK + 8, LDB = BN + 8;            // padded rows (WMMA wants ld % 8 == 0, 32-byte aligned rows)

struct Bf16Vec { bool a, b; };

// Fills S[r][c] (row stride LDS, r < ROWS, c < COLS) with X(r0 + r, c0 + c), zero outside R x Cn.
// X(r, c) is p[r * ld + c] when row_contig, else p[c * ld + r]; 16-byte vectors along the contiguous
// side when vec (aligned base, ld % 8 == 0), scalar loads otherwise and at the edges.
template <int ROWS, int COLS, int LDS>
__device__ __forceinline__ void load_tile_bf16(uint16_t *S, const uint16_t *p, int64_t ld, bool row_contig, bool vec,
                                               int r0, int c0, int R, int Cn) {
  constexpr int kChunks = ROWS * COLS / 8;
  static_assert(kChunks % NT == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kChunks / NT; ++i) {
    const int id = threadIdx.x + i * NT;
    uint16_t v[8];
    if (row_contig) {
      const int r = id / (COLS / 8), c = (id % (COLS / 8)) * 8;
      const int gr = r0 + r, gc = c0 + c;
      const uint16_t *q = p + int64_t(gr) * ld + gc;
      if (gr < R && vec && gc + 7 < Cn) {
        *reinterpret_cast<uint4 *>(v) = *reinterpret_cast<const uint4 *>(q);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = (gr < R && gc + e < Cn) ? q[e] : uint16_t(0);
      }
      *reinterpret_cast<uint4 *>(S + r * LDS + c) = *reinterpret_cast<const uint4 *>(v);
    } else {
      const int c = id / (ROWS / 8), r = (id % (ROWS / 8)) * 8;
      const int gr = r0 + r, gc = c0 + c;
      const uint16_t *q = p + int64_t(gc) * ld + gr;
      if (gc < Cn && vec && gr + 7 < R) {
        *reinterpret_cast<uint4 *>(v) = *reinterpret_cast<const uint4 *>(q);
      } else {
#pragma unroll
        for (int e = 0; e < 8; ++e) v[e] = (gc < Cn && gr + e < R) ? q[e] : uint16_t(0);
      }
#pragma unroll
      for (int e = 0; e < 8; ++e) S[(r + e) * LDS + c] = v[e];
    }
  }
}

// grid (ceil(N/BN), ceil(M/BM)), 256 threads; warp w owns rows (w / 4) * 64, cols (w % 4) * 32 of the tile
__global__ void __launch_bounds__(NT) bgemm_wmma_kernel(BgemmArgs a, Bf16Vec vec) {
  __shared__ __align__(128) uint16_t As[BM * LDA];  // As[m][k]
  __shared__ __align__(128) uint16_t Bs[BK * LDB];  // Bs[k][n]
  __shared__ __align__(128) float scratch[NT / 32][16 * 16];
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / (BN / WN), wn = warp % (BN / WN);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;

  wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[WM / 16][WN / 16];
#pragma unroll
  for (int i = 0; i < WM / 16; ++i)
#pragma unroll
    for (int j = 0; j < WN / 16; ++j) wmma::fill_fragment(acc[i][j], 0.f);

  for (int k0 = 0; k0 < a.K; k0 += BK) {
    load_tile_bf16<BM, BK, LDA>(As, a.A, a.lda, !a.ta, vec.a, m0, k0, a.M, a.K);  // op(A) rows m, cols k
    load_tile_bf16<BK, BN, LDB>(Bs, a.B, a.ldb, !a.tb, vec.b, k0, n0, a.K, a.N);  // op(B) rows k, cols n
    __syncthreads();
#pragma unroll
    for (int kk = 0; kk < BK; kk += 16) {
      wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa[WM / 16];
      wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb[WN / 16];
#pragma unroll
      for (int i = 0; i < WM / 16; ++i)
        wmma::load_matrix_sync(fa[i], reinterpret_cast<const __nv_bfloat16 *>(As + (wm * WM + i * 16) * LDA + kk), LDA);
#pragma unroll
      for (int j = 0; j < WN / 16; ++j)
        wmma::load_matrix_sync(fb[j], reinterpret_cast<const __nv_bfloat16 *>(Bs + kk * LDB + wn * WN + j * 16), LDB);
#pragma unroll
      for (int i = 0; i < WM / 16; ++i)
#pragma unroll
        for (int j = 0; j < WN / 16; ++j) wmma::mma_sync(acc[i][j], fa[i], fb[j], acc[i][j]);
    }
    __syncthreads();
  }

  // Epilogue through a per-warp 16x16 staging tile: the fragment layout is opaque, so store it to
  // shared memory first, then each lane applies alpha/beta to 8 known (row, col) positions.
  float *st = scratch[warp];
#pragma unroll
  for (int i = 0; i < WM / 16; ++i)
#pragma unroll
    for (int j = 0; j < WN / 16; ++j) {
      wmma::store_matrix_sync(st, acc[i][j], 16, wmma::mem_row_major);
      __syncwarp();
      for (int e = lane; e < 256; e += 32) {
        const int m = m0 + wm * WM + i * 16 + e / 16, n = n0 + wn * WN + j * 16 + e % 16;
        if (m < a.M && n < a.N) store_c(a.C, a.ldc, m, n, st[e], a.alpha, a.beta);
      }
      __syncwarp();
    }
}

}  // namespace

void bgemm_09_wmma(const BgemmArgs &a) {
  Bf16Vec vec{aligned16(a.A) && a.lda % 8 == 0, aligned16(a.B) && a.ldb % 8 == 0};
  dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM));
  bgemm_wmma_kernel<<<grid, NT>>>(a, vec);
  NR_GEMM_LAUNCHED("bgemm_wmma_kernel");
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
