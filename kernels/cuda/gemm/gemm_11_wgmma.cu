// Rung 11, Hopper: TMA + wgmma with warp specialisation and a persistent schedule (sm_90a only).
// What it adds over rung 10:
//  - wgmma.mma_async: a warpgroup (4 warps) multiplies a 64x256x16 block per instruction straight
//    from shared memory (operands described by 64-bit matrix descriptors, no ldmatrix into registers),
//    asynchronously, so issuing the math costs the SM almost nothing;
//  - TMA (cp.async.bulk.tensor): one thread asks the copy engine for a whole 128x64 or 256x64 tile,
//    with the 128-byte swizzle wgmma expects and zero fill outside the matrix (edge tiles for free);
//    completion is counted in bytes on an mbarrier;
//  - warp specialisation: warpgroup 0 only produces (TMA into a 4-stage ring of shared buffers, with
//    its registers given away by setmaxnreg), warpgroups 1 and 2 only consume (64 rows each, 128 FP32
//    accumulators per thread); "full" and "empty" mbarriers per stage hand buffers back and forth;
//  - a persistent grid (one CTA per SM) walking output tiles in L2-friendly groups, so the producer
//    already loads the next tile while the consumers run the epilogue of the current one.
// Operands are read K-major (A [M,K], B [N,K]); other layouts are packed first (make_k_major).
// The tensor maps are encoded on the host with cuTensorMapEncodeTiled, a driver API fetched through
// cudaGetDriverEntryPointByVersion, so nothing links against libcuda.
#include <cuda.h>          // CUtensorMap and its enums (types only)
#include <cudaTypedefs.h>  // PFN_cuTensorMapEncodeTiled

#include <string>

#include "kernels/cuda/gemm/gemm_bf16.cuh"
#include "kernels/cuda/gemm/gemm_common.cuh"
#include "kernels/cuda/gemm/gemm_ladder.h"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int BM = 128, BN = 256, BK = 64, STAGES = 4;
constexpr int kConsumers = 2;                // consumer warpgroups, 64 rows of the tile each
constexpr int NT = 128 * (1 + kConsumers);   // 384 threads: producer warpgroup + consumers
constexpr int kTileA = BM * BK * 2;          // 16 KiB, 128 rows of 128 bytes
constexpr int kTileB = BN * BK * 2;          // 32 KiB
constexpr int kStageBytes = kTileA + kTileB; // what the producer expects per stage (TMA counts full boxes)
constexpr int kSmemBytes = 1024 + STAGES * kStageBytes + 2 * STAGES * 8;  // align slack + ring + barriers
constexpr int kGroupM = 8;                   // tile rows per raster group

struct Epilogue {
  int M, N, K;
  float alpha, beta;
  float *C;
  int64_t ldc;
};

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)

// Output tile t -> (tile row, tile column), grouped kGroupM tile rows at a time so the CTAs running
// together share the same few A row panels and B column panels in L2.
__device__ __forceinline__ void tile_coords(int t, int tiles_m, int tiles_n, int &tm, int &tn) {
  const int per_group = kGroupM * tiles_n;
  const int first_m = (t / per_group) * kGroupM;
  const int rows = min(kGroupM, tiles_m - first_m);
  const int r = t % per_group;
  tm = first_m + r % rows;
  tn = r / rows;
}

__device__ __forceinline__ void mbar_init(uint32_t bar, int count) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;\n" ::"r"(bar), "r"(count) : "memory");
}
__device__ __forceinline__ void mbar_expect_tx(uint32_t bar, int bytes) {
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;\n" ::"r"(bar), "r"(bytes) : "memory");
}
__device__ __forceinline__ void mbar_arrive(uint32_t bar) {
  asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];\n" ::"r"(bar) : "memory");
}
// Waits until the phase with the given parity has completed. On a fresh barrier (phase 0 running),
// parity 1 counts as completed: that is how the producer starts with every stage free.
__device__ __forceinline__ void mbar_wait(uint32_t bar, uint32_t parity) {
  uint32_t done = 0;
  do {
    asm volatile(
        "{\n.reg .pred p;\n"
        "mbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\n"
        "selp.u32 %0, 1, 0, p;\n}\n"
        : "=r"(done)
        : "r"(bar), "r"(parity)
        : "memory");
  } while (!done);
}

// TMA: the box at (x = k, y = row) of the tensor map into shared memory, completion on `bar`.
__device__ __forceinline__ void tma_load_2d(uint32_t dst, const CUtensorMap *map, int x, int y, uint32_t bar) {
  asm volatile(
      "cp.async.bulk.tensor.2d.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1, {%2, %3}], [%4];\n" ::"r"(
          dst),
      "l"(reinterpret_cast<uint64_t>(map)), "r"(x), "r"(y), "r"(bar)
      : "memory");
}

// wgmma shared-memory matrix descriptor for a K-major tile written by TMA with the 128-byte swizzle:
// start address >> 4 (bits 0-13), leading byte offset (unused for swizzled K-major, 1), stride byte
// offset 1024 >> 4 (bits 32-45: 8 rows of 128 bytes between core-matrix groups), swizzle mode 1 =
// 128B (bits 62-63). Advancing the start by 32 bytes steps 16 elements along K inside the swizzle
// atom; the hardware applies the XOR on absolute address bits, which is why tiles are 1024-aligned.
__device__ __forceinline__ uint64_t smem_desc(uint32_t addr) {
  return uint64_t((addr & 0x3FFFF) >> 4) | (uint64_t(1) << 16) | (uint64_t(1024 >> 4) << 32) | (uint64_t(1) << 62);
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;\n" ::: "memory"); }
__device__ __forceinline__ void wgmma_wait0() { asm volatile("wgmma.wait_group.sync.aligned 0;\n" ::: "memory"); }
// Pins the accumulators in place around the asynchronous MMA: the compiler must not read or move
// them across this point (it does not know wgmma writes them in the background).
__device__ __forceinline__ void fence_acc(float *d) {
#pragma unroll
  for (int i = 0; i < 128; ++i) asm volatile("" : "+f"(d[i])::"memory");
}

// d (64x256 per warpgroup, 128 fp32 per thread) = (accumulate ? d : 0) + A(64x16) * B(256x16)^T
__device__ __forceinline__ void wgmma_m64n256k16(float *d, uint64_t desc_a, uint64_t desc_b, int accumulate) {
  asm volatile(
      "{\n"
      ".reg .pred p;\n"
      "setp.ne.b32 p, %130, 0;\n"
      "wgmma.mma_async.sync.aligned.m64n256k16.f32.bf16.bf16 "
      "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, %22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, %44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, %66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87, %88, %89, %90, %91, %92, %93, %94, %95, %96, %97, %98, %99, %100, %101, %102, %103, %104, %105, %106, %107, %108, %109, %110, %111, %112, %113, %114, %115, %116, %117, %118, %119, %120, %121, %122, %123, %124, %125, %126, %127}, "
      "%128, %129, p, 1, 1, 0, 0;\n"
      "}\n"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]),
        "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]),
        "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]),
        "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]),
        "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]),
        "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]),
        "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]),
        "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]),
        "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]),
        "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]),
        "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87]),
        "+f"(d[88]), "+f"(d[89]), "+f"(d[90]), "+f"(d[91]), "+f"(d[92]), "+f"(d[93]), "+f"(d[94]), "+f"(d[95]),
        "+f"(d[96]), "+f"(d[97]), "+f"(d[98]), "+f"(d[99]), "+f"(d[100]), "+f"(d[101]), "+f"(d[102]), "+f"(d[103]),
        "+f"(d[104]), "+f"(d[105]), "+f"(d[106]), "+f"(d[107]), "+f"(d[108]), "+f"(d[109]), "+f"(d[110]), "+f"(d[111]),
        "+f"(d[112]), "+f"(d[113]), "+f"(d[114]), "+f"(d[115]), "+f"(d[116]), "+f"(d[117]), "+f"(d[118]), "+f"(d[119]),
        "+f"(d[120]), "+f"(d[121]), "+f"(d[122]), "+f"(d[123]), "+f"(d[124]), "+f"(d[125]), "+f"(d[126]), "+f"(d[127])
      : "l"(desc_a), "l"(desc_b), "r"(accumulate));
}

#endif  // __CUDA_ARCH_FEAT_SM90_ALL

// A [M, K] and B [N, K] through the tensor maps; grid = min(tiles, SMs), 384 threads, kSmemBytes.
__global__ void __launch_bounds__(NT, 1)
    bgemm_wgmma_kernel(const __grid_constant__ CUtensorMap map_a, const __grid_constant__ CUtensorMap map_b,
                       Epilogue e) {
#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
  extern __shared__ uint8_t smem_raw[];
  // 128-byte swizzle atoms are 1024 bytes: align the ring to 1024
  const uint32_t raw = smem_u32(smem_raw);
  const uint32_t base = (raw + 1023) & ~1023u;
  const uint32_t bars = base + STAGES * kStageBytes;
  auto tile_a = [&](int s) { return base + s * kStageBytes; };
  auto tile_b = [&](int s) { return base + s * kStageBytes + kTileA; };
  auto full = [&](int s) { return bars + 8 * s; };             // TMA bytes landed
  auto empty = [&](int s) { return bars + 8 * (STAGES + s); }; // consumers done reading

  const int tiles_m = (e.M + BM - 1) / BM, tiles_n = (e.N + BN - 1) / BN;
  const int num_tiles = tiles_m * tiles_n;
  const int KB = (e.K + BK - 1) / BK;  // >= 1: the host handles K == 0
  const int wg = threadIdx.x / 128;

  if (threadIdx.x == 0) {
    for (int s = 0; s < STAGES; ++s) {
      mbar_init(full(s), 1);                    // the producer's arrive.expect_tx
      mbar_init(empty(s), 4 * kConsumers);      // one arrive per consumer warp
    }
    asm volatile("fence.mbarrier_init.release.cluster;\n" ::: "memory");
    asm volatile("fence.proxy.async.shared::cta;\n" ::: "memory");  // visible to TMA (async proxy)
  }
  __syncthreads();

  if (wg == 0) {
    // producer: give registers away, one thread drives TMA
    asm volatile("setmaxnreg.dec.sync.aligned.u32 40;\n" ::: "memory");
    if (threadIdx.x == 0) {
      int s = 0;
      uint32_t phase = 0;
      for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
        int tm, tn;
        tile_coords(t, tiles_m, tiles_n, tm, tn);
        for (int kb = 0; kb < KB; ++kb) {
          mbar_wait(empty(s), phase ^ 1);
          mbar_expect_tx(full(s), kStageBytes);
          tma_load_2d(tile_a(s), &map_a, kb * BK, tm * BM, full(s));
          tma_load_2d(tile_b(s), &map_b, kb * BK, tn * BN, full(s));
          if (++s == STAGES) { s = 0; phase ^= 1; }
        }
      }
    }
  } else {
    asm volatile("setmaxnreg.inc.sync.aligned.u32 232;\n" ::: "memory");
    const int c = wg - 1;                        // rows c*64 .. c*64+63 of the tile
    const int warp = (threadIdx.x % 128) / 32, lane = threadIdx.x % 32;
    float d[128];
#pragma unroll
    for (int i = 0; i < 128; ++i) d[i] = 0.f;
    int s = 0;
    uint32_t phase = 0;
    for (int t = blockIdx.x; t < num_tiles; t += gridDim.x) {
      int tm, tn;
      tile_coords(t, tiles_m, tiles_n, tm, tn);
      for (int kb = 0; kb < KB; ++kb) {
        mbar_wait(full(s), phase);
        fence_acc(d);
        wgmma_fence();
#pragma unroll
        for (int kk = 0; kk < BK / 16; ++kk) {
          const uint64_t da = smem_desc(tile_a(s) + c * 64 * 128 + kk * 32);
          const uint64_t db = smem_desc(tile_b(s) + kk * 32);
          wgmma_m64n256k16(d, da, db, (kb | kk) != 0);  // the tile's first MMA overwrites d
        }
        wgmma_commit();
        wgmma_wait0();
        fence_acc(d);
        __syncwarp();
        if (lane == 0) mbar_arrive(empty(s));  // this warp's reads of stage s are complete
        if (++s == STAGES) { s = 0; phase ^= 1; }
      }
      // epilogue straight from registers: warp w holds rows 16w..16w+15 of the consumer's 64; lane
      // (g, t) holds rows g, g+8 and columns 8j+2t, 8j+2t+1 for j < 32 (the m16n8 layout, 32 times)
      const int g = lane >> 2, tq = lane & 3;
      const int r0 = tm * BM + c * 64 + warp * 16 + g;
      const int c0 = tn * BN + 2 * tq;
#pragma unroll
      for (int j = 0; j < BN / 8; ++j) {
        const int n = c0 + 8 * j;
#pragma unroll
        for (int h = 0; h < 2; ++h) {
          const int m = r0 + 8 * h;
          if (m < e.M) {
            if (n < e.N) store_c(e.C, e.ldc, m, n, d[4 * j + 2 * h], e.alpha, e.beta);
            if (n + 1 < e.N) store_c(e.C, e.ldc, m, n + 1, d[4 * j + 2 * h + 1], e.alpha, e.beta);
          }
        }
      }
    }
  }
#else
  __trap();  // compiled without sm_90a features: rung 11 needs the sm_90a cubin (see cmake/cuda_gemm.cmake)
#endif
}

PFN_cuTensorMapEncodeTiled_v12000 tensor_map_encoder() {
  static PFN_cuTensorMapEncodeTiled_v12000 fn = [] {
    void *p = nullptr;
    cudaDriverEntryPointQueryResult q{};
    NR_GEMM_CUDA(cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", &p, 12000, cudaEnableDefault, &q));
    NR_GEMM_REQUIRE(q == cudaDriverEntryPointSuccess && p != nullptr,
                    "cuTensorMapEncodeTiled not found in the CUDA driver (needs driver >= 12.0)");
    return reinterpret_cast<PFN_cuTensorMapEncodeTiled_v12000>(p);
  }();
  return fn;
}

// 2-D bf16 tensor map over a K-major operand [rows, K] (row stride ld elements), boxes of box_rows x 64.
CUtensorMap make_map(const uint16_t *p, int64_t rows, int64_t K, int64_t ld, int box_rows) {
  CUtensorMap map;
  const cuuint64_t dims[2] = {cuuint64_t(K), cuuint64_t(rows)};
  const cuuint64_t strides[1] = {cuuint64_t(ld) * 2};  // bytes, multiple of 16
  const cuuint32_t box[2] = {cuuint32_t(BK), cuuint32_t(box_rows)};
  const cuuint32_t elem_strides[2] = {1, 1};
  const CUresult r = tensor_map_encoder()(&map, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, const_cast<uint16_t *>(p), dims,
                                          strides, box, elem_strides, CU_TENSOR_MAP_INTERLEAVE_NONE,
                                          CU_TENSOR_MAP_SWIZZLE_128B, CU_TENSOR_MAP_L2_PROMOTION_L2_256B,
                                          CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
  NR_GEMM_REQUIRE(r == CUDA_SUCCESS, "cuTensorMapEncodeTiled failed with CUresult " + std::to_string(int(r)) +
                                         " (rows=" + std::to_string(rows) + " K=" + std::to_string(K) +
                                         " ld=" + std::to_string(ld) + ")");
  return map;
}

}  // namespace

void bgemm_11_wgmma(const BgemmArgs &args) {
  NR_GEMM_REQUIRE(gemm_hopper_available(), "GEMM rung 11 (wgmma + TMA) needs a compute capability 9.0 GPU");
  if (args.K == 0) {  // nothing to multiply: C = beta * C
    bgemm_09_wmma(args);
    return;
  }
  const BgemmArgs a = make_k_major(args);
  const CUtensorMap map_a = make_map(a.A, a.M, a.K, a.lda, BM);
  const CUtensorMap map_b = make_map(a.B, a.N, a.K, a.ldb, BN);
  const int tiles = int(ceil_div(a.M, BM) * ceil_div(a.N, BN));
  const int grid = std::min(tiles, sm_count());
  NR_GEMM_CUDA(cudaFuncSetAttribute(bgemm_wgmma_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, kSmemBytes));
  bgemm_wgmma_kernel<<<grid, NT, kSmemBytes>>>(map_a, map_b, Epilogue{a.M, a.N, a.K, a.alpha, a.beta, a.C, a.ldc});
  NR_GEMM_LAUNCHED("bgemm_wgmma_kernel");
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
