// Shared pieces of the GEMM ladder: the argument block every kernel receives, the operand accessors
// that hide the transpose flags, the alpha/beta epilogue, and the float4 tile loader of rungs 6-8.
// Internal to kernels/cuda/gemm (the public API is gemm_ladder.h).
#pragma once
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>

#include "kernels/cuda/gemm/gemm_check.h"

namespace nanorlhf::kernels::cuda::gemm_detail {

// One (batched) FP32 GEMM as a kernel sees it: C_b = alpha * op(A_b) @ op(B_b) + beta * C_b for
// b < batch, X_b = X + b * stride_x (stride 0 broadcasts). Shapes as in gemm_ladder.h.
struct SgemmArgs {
  bool ta = false, tb = false;
  int M = 0, N = 0, K = 0;
  float alpha = 1.f, beta = 0.f;
  const float *A = nullptr;
  int64_t lda = 0, sa = 0;
  const float *B = nullptr;
  int64_t ldb = 0, sb = 0;
  float *C = nullptr;
  int64_t ldc = 0, sc = 0;
  int batch = 1;
  // float4 loads/stores are legal: base pointers 16-byte aligned, leading dims and batch strides
  // multiples of 4 (set by the host, see vector_flags).
  bool vec_a = false, vec_b = false, vec_c = false;
};

inline bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

inline void vector_flags(SgemmArgs &a) {
  auto ok = [&](const void *p, int64_t ld, int64_t stride) {
    return aligned16(p) && ld % 4 == 0 && (a.batch == 1 || stride % 4 == 0);
  };
  a.vec_a = ok(a.A, a.lda, a.sa);
  a.vec_b = ok(a.B, a.ldb, a.sb);
  a.vec_c = ok(a.C, a.ldc, a.sc);
}

// gridDim.z is limited to 65535: launch larger batches in chunks.
template <class Launch>
void for_each_batch_chunk(const SgemmArgs &a, Launch &&launch) {
  constexpr int kMaxZ = 65535;
  for (int b0 = 0; b0 < a.batch; b0 += kMaxZ) {
    SgemmArgs c = a;
    c.A += static_cast<int64_t>(b0) * a.sa;
    c.B += static_cast<int64_t>(b0) * a.sb;
    c.C += static_cast<int64_t>(b0) * a.sc;
    c.batch = std::min(kMaxZ, a.batch - b0);
    launch(c);
  }
}

inline unsigned ceil_div(int a, int b) { return static_cast<unsigned>((a + b - 1) / b); }

// The launchers, one per rung (gemm_01_naive.cu ... gemm_08_warptiling.cu). Rungs 7 and 8 have a
// large-tile and a small-tile configuration: config 0 picks by shape, 1 = large, 2 = small.
void sgemm_01_naive(const SgemmArgs &a);
void sgemm_02_coalesced(const SgemmArgs &a);
void sgemm_03_smem(const SgemmArgs &a);
void sgemm_04_blocktile_1d(const SgemmArgs &a);
void sgemm_05_blocktile_2d(const SgemmArgs &a);
void sgemm_06_vectorized(const SgemmArgs &a);
void sgemm_07_tuned(const SgemmArgs &a, int config = 0);
void sgemm_08_warptiling(const SgemmArgs &a, int config = 0);

// Number of SMs of the current device (cached per device).
int sm_count();

// Throws std::invalid_argument, naming `who`, the shape and the leading dimensions, unless the shape
// is valid (dims in [0, 2^31)) and every leading dimension is at least the stored row length.
void check_gemm_args(const char *who, bool ta, bool tb, int64_t M, int64_t N, int64_t K, int64_t lda, int64_t ldb,
                     int64_t ldc);

#if defined(__CUDACC__)

// Move the operand pointers to this block's batch entry (blockIdx.z).
__device__ __forceinline__ void select_batch(const SgemmArgs &a, const float *&A, const float *&B, float *&C) {
  const int64_t b = blockIdx.z;
  A = a.A + b * a.sa;
  B = a.B + b * a.sb;
  C = a.C + b * a.sc;
}

// op(A)[m, k] and op(B)[k, n] whatever the storage.
__device__ __forceinline__ float load_a(const float *A, int64_t lda, bool ta, int m, int k) {
  return ta ? A[static_cast<int64_t>(k) * lda + m] : A[static_cast<int64_t>(m) * lda + k];
}
__device__ __forceinline__ float load_b(const float *B, int64_t ldb, bool tb, int k, int n) {
  return tb ? B[static_cast<int64_t>(n) * ldb + k] : B[static_cast<int64_t>(k) * ldb + n];
}

// C = alpha * acc + beta * C, where beta == 0 never reads C (BLAS semantics).
__device__ __forceinline__ void store_c(float *C, int64_t ldc, int m, int n, float acc, float alpha, float beta) {
  float *p = C + static_cast<int64_t>(m) * ldc + n;
  *p = beta == 0.f ? alpha * acc : alpha * acc + beta * *p;
}

// W consecutive outputs of row m from column n: float4 stores when the whole run is inside C and
// aligned, predicated scalar stores at the edges.
template <int W>
__device__ __forceinline__ void store_c_row(float *C, int64_t ldc, int M, int N, bool vec, int m, int n,
                                            const float *acc, float alpha, float beta) {
  static_assert(W % 4 == 0, "runs of whole float4");
  if (m >= M) return;
  float *row = C + static_cast<int64_t>(m) * ldc;
  if (vec && n + W <= N) {
#pragma unroll
    for (int j = 0; j < W; j += 4) {
      float4 *p = reinterpret_cast<float4 *>(row + n + j);
      float4 v = make_float4(alpha * acc[j], alpha * acc[j + 1], alpha * acc[j + 2], alpha * acc[j + 3]);
      if (beta != 0.f) {
        const float4 c = *p;
        v.x += beta * c.x; v.y += beta * c.y; v.z += beta * c.z; v.w += beta * c.w;
      }
      *p = v;
    }
  } else {
#pragma unroll
    for (int j = 0; j < W; ++j)
      if (n + j < N) store_c(C, ldc, m, n + j, acc[j], alpha, beta);
  }
}

// Loads one operand tile into shared memory in "k-major" form S[k][r] (row stride ROWS + PAD), the
// layout rungs 6-8 read from: at a fixed k the ROWS values a thread needs are contiguous, so it reads
// them with float4. X(r, k) is the operand seen as rows x K (A: r = m; B: r = n); it is stored
// p[r * ld + k] when k_contig (A plain, B transposed) and p[k * ld + r] otherwise. Out-of-range
// elements read as 0, so edge tiles need no special case in the inner loop.
// Split into fetch (global -> registers) and store (registers -> shared) so rung 8 can keep the next
// tile's loads in flight while it computes on the current one.
template <int ROWS, int BK, int NT, int PAD>
struct TileLoader {
  static constexpr int kChunks = ROWS * BK / 4;  // float4 chunks per tile
  static constexpr int kPerThread = kChunks / NT;
  static_assert(kChunks % NT == 0, "every thread loads the same number of chunks");
  static_assert(BK % 8 == 0, "the k-contiguous path pairs chunks along k");
  float4 v[kPerThread];

  // Chunk c of the tile: (r, k) of its first element. k-contiguous storage: chunks run along k and
  // consecutive lanes alternate between two chunks of a row, so the transposing stores below hit 32
  // different banks when ROWS + PAD = 4 (mod 32) rows apart land 16 banks apart (PAD = 4, ROWS % 32 == 0).
  // r-contiguous storage: chunks run along r and are stored as they come.
  __device__ __forceinline__ static void chunk_pos(int c, bool k_contig, int &r, int &k) {
    if (k_contig) {
      const int g = c / (2 * ROWS), rr = c % (2 * ROWS);
      r = rr >> 1;
      k = 4 * (2 * g + (rr & 1));
    } else {
      k = c / (ROWS / 4);
      r = (c % (ROWS / 4)) * 4;
    }
  }

  __device__ __forceinline__ void fetch(const float *p, int64_t ld, bool k_contig, bool vec, int r0, int k0, int R,
                                        int Kd) {
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      int r, k;
      chunk_pos(threadIdx.x + i * NT, k_contig, r, k);
      const int gr = r0 + r, gk = k0 + k;
      float4 x = make_float4(0.f, 0.f, 0.f, 0.f);
      if (k_contig) {
        if (gr < R) {
          const float *q = p + static_cast<int64_t>(gr) * ld + gk;
          if (vec && gk + 3 < Kd) {
            x = *reinterpret_cast<const float4 *>(q);
          } else {
            if (gk < Kd) x.x = q[0];
            if (gk + 1 < Kd) x.y = q[1];
            if (gk + 2 < Kd) x.z = q[2];
            if (gk + 3 < Kd) x.w = q[3];
          }
        }
      } else {
        if (gk < Kd) {
          const float *q = p + static_cast<int64_t>(gk) * ld + gr;
          if (vec && gr + 3 < R) {
            x = *reinterpret_cast<const float4 *>(q);
          } else {
            if (gr < R) x.x = q[0];
            if (gr + 1 < R) x.y = q[1];
            if (gr + 2 < R) x.z = q[2];
            if (gr + 3 < R) x.w = q[3];
          }
        }
      }
      v[i] = x;
    }
  }

  __device__ __forceinline__ void store(float *S, bool k_contig) const {
    constexpr int LDS = ROWS + PAD;
#pragma unroll
    for (int i = 0; i < kPerThread; ++i) {
      int r, k;
      chunk_pos(threadIdx.x + i * NT, k_contig, r, k);
      if (k_contig) {
        S[(k + 0) * LDS + r] = v[i].x;
        S[(k + 1) * LDS + r] = v[i].y;
        S[(k + 2) * LDS + r] = v[i].z;
        S[(k + 3) * LDS + r] = v[i].w;
      } else {
        *reinterpret_cast<float4 *>(S + k * LDS + r) = v[i];
      }
    }
  }
};

#endif  // __CUDACC__

}  // namespace nanorlhf::kernels::cuda::gemm_detail
