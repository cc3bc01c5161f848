// Rung 10, mma.sync + ldmatrix + swizzled shared memory + a 4-stage cp.async pipeline (the Ampere
// recipe, BF16 in, FP32 accumulate). What it adds over rung 9:
//  - cp.async copies global -> shared without passing through registers, and with 4 stages in flight
//    the loads of K slices kt+1..kt+3 overlap the math on slice kt (one __syncthreads per slice);
//  - mma.sync.m16n8k16 with fragments loaded by ldmatrix.x4 (four 8x8 matrices per instruction, in
//    exactly the register layout the mma wants) instead of WMMA's opaque loads;
//  - an XOR swizzle of the 16-byte chunks of each 64-byte shared row, so the 8 rows an ldmatrix phase
//    reads fall into 8 distinct bank groups (without it, 4-way conflicts);
//  - a 128x128 tile computed by 8 warps of 64x32, 64 FP32 accumulators per thread.
// Operands are read K-major (A [M,K], B [N,K]); other layouts are packed first (make_k_major).
#include "kernels/cuda/gemm/gemm_bf16.cuh"
#include "kernels/cuda/gemm/gemm_common.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int BM = 128, BN = 128, BK = 32, STAGES = 4;
constexpr int WM = 64, WN = 32;                 // warp tile
constexpr int MI = WM / 16, NI = WN / 8;        // m16n8k16 tiles per warp: 4 x 4
constexpr int NT = 32 * (BM / WM) * (BN / WN);  // 256 threads
constexpr int kRowBytes = BK * 2;               // 64 bytes: 4 chunks of 16 bytes
constexpr int kTileA = BM * kRowBytes, kTileB = BN * kRowBytes;
constexpr int kStageBytes = kTileA + kTileB;    // 16 KiB
constexpr int kSmemBytes = STAGES * kStageBytes;  // 64 KiB (dynamic, opt-in above 48 KiB)

// Byte offset of 16-byte chunk `ch` (0..3) of row `row` in a swizzled tile: rows r and r+2 would share
// banks (64-byte rows, 128-byte bank period), so the chunk index is XORed with bits 1-2 of the row.
__device__ __forceinline__ uint32_t swz(int row, int ch) { return row * kRowBytes + ((ch ^ ((row >> 1) & 3)) << 4); }

__device__ __forceinline__ void cp_async16(uint32_t dst, const void *src, int src_bytes) {
  // src_bytes < 16 zero-fills the rest (edge tiles); 0 reads nothing
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src), "r"(src_bytes));
}
__device__ __forceinline__ void cp_async_commit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ __forceinline__ void cp_async_wait() { asm volatile("cp.async.wait_group %0;\n" ::"n"(N)); }

__device__ __forceinline__ void ldmatrix_x4(uint32_t addr, uint32_t &r0, uint32_t &r1, uint32_t &r2, uint32_t &r3) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
               : "=r"(r0), "=r"(r1), "=r"(r2), "=r"(r3)
               : "r"(addr));
}

// d += a * b for one m16n8k16 tile (a: 4 regs of 2 bf16, b: 2 regs, d: 4 fp32)
__device__ __forceinline__ void mma_bf16(float *d, const uint32_t *a, const uint32_t *b) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
      "{%0, %1, %2, %3};\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

// One K slice of a ROWS x BK operand tile (K-major in global memory) into a swizzled stage buffer.
template <int ROWS>
__device__ __forceinline__ void load_slice(uint32_t tile, const uint16_t *p, int64_t ld, int r0, int R, int k0,
                                           int K) {
  constexpr int kChunks = ROWS * (BK / 8);
  static_assert(kChunks % NT == 0, "whole chunks per thread");
#pragma unroll
  for (int i = 0; i < kChunks / NT; ++i) {
    const int id = threadIdx.x + i * NT;
    const int row = id / (BK / 8), ch = id % (BK / 8);
    const int gr = r0 + row, gk = k0 + ch * 8;
    const int valid = (gr < R && gk < K) ? min(8, K - gk) * 2 : 0;
    const uint16_t *src = valid ? p + int64_t(gr) * ld + gk : p;
    cp_async16(tile + swz(row, ch), src, valid);
  }
}

// grid (ceil(N/BN), ceil(M/BM)), 256 threads; A [M, K] (lda), B [N, K] (ldb), both 16-byte aligned rows
__global__ void __launch_bounds__(NT) bgemm_mma_kernel(BgemmArgs a) {
  extern __shared__ __align__(128) uint8_t smem[];
  const uint32_t base = smem_u32(smem);
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  const int wm = warp / (BN / WN), wn = warp % (BN / WN);
  const int m0 = blockIdx.y * BM, n0 = blockIdx.x * BN;
  const int KT = (a.K + BK - 1) / BK;

  auto stage_a = [&](int s) { return base + s * kStageBytes; };
  auto stage_b = [&](int s) { return base + s * kStageBytes + kTileA; };
  auto load_stage = [&](int s, int kt) {
    load_slice<BM>(stage_a(s), a.A, a.lda, m0, a.M, kt * BK, a.K);
    load_slice<BN>(stage_b(s), a.B, a.ldb, n0, a.N, kt * BK, a.K);
  };

  float acc[MI][NI][4] = {};

  // prologue: slices 0..STAGES-2 in flight, one commit group each (empty groups keep the count right)
#pragma unroll
  for (int s = 0; s < STAGES - 1; ++s) {
    if (s < KT) load_stage(s, s);
    cp_async_commit();
  }

  for (int kt = 0; kt < KT; ++kt) {
    // groups committed so far: STAGES-1 + kt; allowing STAGES-2 pending means slice kt has landed
    cp_async_wait<STAGES - 2>();
    __syncthreads();  // ...for every thread's copies, and every warp is done with slice kt-1's stage
    const int next = kt + STAGES - 1;
    if (next < KT) load_stage(next % STAGES, next);  // refills the stage slice kt-1 used
    cp_async_commit();

    const uint32_t sa = stage_a(kt % STAGES), sb = stage_b(kt % STAGES);
#pragma unroll
    for (int kk = 0; kk < BK / 16; ++kk) {
      uint32_t af[MI][4], bf[NI][2];
#pragma unroll
      for (int i = 0; i < MI; ++i) {
        // lanes 0-15: rows 0-15 at k 0-7; lanes 16-31: rows 0-15 at k 8-15 -> a0..a3 of the mma
        const int row = wm * WM + i * 16 + (lane & 15);
        ldmatrix_x4(sa + swz(row, kk * 2 + (lane >> 4)), af[i][0], af[i][1], af[i][2], af[i][3]);
      }
#pragma unroll
      for (int j = 0; j < NI; j += 2) {
        // matrices: (n 0-7, k 0-7), (n 0-7, k 8-15), (n 8-15, k 0-7), (n 8-15, k 8-15) -> b0,b1 of tiles j, j+1
        const int row = wn * WN + j * 8 + (lane & 7) + ((lane >> 4) << 3);
        ldmatrix_x4(sb + swz(row, kk * 2 + ((lane >> 3) & 1)), bf[j][0], bf[j][1], bf[j + 1][0], bf[j + 1][1]);
      }
#pragma unroll
      for (int i = 0; i < MI; ++i)
#pragma unroll
        for (int j = 0; j < NI; ++j) mma_bf16(acc[i][j], af[i], bf[j]);
    }
  }
  cp_async_wait<0>();

  // accumulator layout of m16n8: lane (g = lane/4, t = lane%4) holds rows g and g+8, columns 2t, 2t+1
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int i = 0; i < MI; ++i)
#pragma unroll
    for (int j = 0; j < NI; ++j)
#pragma unroll
      for (int h = 0; h < 2; ++h) {
        const int m = m0 + wm * WM + i * 16 + g + h * 8;
        const int n = n0 + wn * WN + j * 8 + 2 * t;
        if (m < a.M) {
          if (n < a.N) store_c(a.C, a.ldc, m, n, acc[i][j][2 * h], a.alpha, a.beta);
          if (n + 1 < a.N) store_c(a.C, a.ldc, m, n + 1, acc[i][j][2 * h + 1], a.alpha, a.beta);
        }
      }
}

}  // namespace

void bgemm_10_mma(const BgemmArgs &args) {
  const BgemmArgs a = make_k_major(args);
  // cheap host call; set on every launch so it holds for whichever device is current
  NR_GEMM_CUDA(cudaFuncSetAttribute(bgemm_mma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  dim3 grid(ceil_div(a.N, BN), ceil_div(a.M, BM));
  bgemm_mma_kernel<<<grid, NT, kSmemBytes>>>(a);
  NR_GEMM_LAUNCHED("bgemm_mma_kernel");
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
