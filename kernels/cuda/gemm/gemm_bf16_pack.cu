// K-major packing for the BF16 rungs 10-11 (see make_k_major in gemm_bf16.cuh): a tiled transpose
// through shared memory, coalesced on both the read and the write side, with zero padding up to a
// leading dimension that is a multiple of 8 (16 bytes, what cp.async and TMA need).
#include <mutex>

#include "kernels/cuda/gemm/gemm_bf16.cuh"

namespace nanorlhf::kernels::cuda::gemm_detail {
namespace {

constexpr int kT = 32;

// out[r, k] (R x ldo, row stride ldo) = X(r, k) for k < K, 0 for K <= k < ldo, where X(r, k) is
// p[r * ld + k] when k_contig else p[k * ld + r]. grid (ceil(ldo/32), ceil(R/32)), block (32, 8).
__global__ void pack_k_major_kernel(const uint16_t *p, int64_t ld, bool k_contig, int R, int K, uint16_t *out,
                                    int64_t ldo) {
  __shared__ uint16_t tile[kT][kT + 2];  // tile[r][k]
  const int r0 = blockIdx.y * kT, k0 = blockIdx.x * kT;
  const int tx = threadIdx.x, ty = threadIdx.y;
  for (int i = ty; i < kT; i += blockDim.y) {
    if (k_contig) {  // read along k
      const int r = r0 + i, k = k0 + tx;
      tile[i][tx] = (r < R && k < K) ? p[int64_t(r) * ld + k] : uint16_t(0);
    } else {  // read along r
      const int k = k0 + i, r = r0 + tx;
      tile[tx][i] = (r < R && k < K) ? p[int64_t(k) * ld + r] : uint16_t(0);
    }
  }
  __syncthreads();
  for (int i = ty; i < kT; i += blockDim.y) {
    const int r = r0 + i, k = k0 + tx;
    if (r < R && k < ldo) out[int64_t(r) * ldo + k] = tile[i][tx];
  }
}

struct Scratch {
  void *p = nullptr;
  size_t bytes = 0;
};

uint16_t *scratch(int slot, size_t bytes) {
  static std::mutex mu;
  static Scratch bufs[64][2];
  int dev = 0;
  NR_GEMM_CUDA(cudaGetDevice(&dev));
  NR_GEMM_REQUIRE(dev >= 0 && dev < 64, "device index >= 64");
  std::lock_guard<std::mutex> lock(mu);
  Scratch &s = bufs[dev][slot];
  if (s.bytes < bytes) {
    if (s.p) NR_GEMM_CUDA(cudaFree(s.p));  // synchronises: earlier GEMMs reading it are done
    s.p = nullptr;
    s.bytes = 0;
    NR_GEMM_CUDA(cudaMalloc(&s.p, bytes));
    s.bytes = bytes;
  }
  return static_cast<uint16_t *>(s.p);
}

bool aligned16(const void *p) { return (reinterpret_cast<uintptr_t>(p) & 15) == 0; }

const uint16_t *pack(int slot, const uint16_t *p, int64_t ld, bool k_contig, int R, int K, int64_t &ldo) {
  ldo = (int64_t(K) + 7) / 8 * 8;
  if (ldo == 0) ldo = 8;
  uint16_t *out = scratch(slot, size_t(R) * size_t(ldo) * sizeof(uint16_t));
  dim3 grid(unsigned((ldo + kT - 1) / kT), unsigned((R + kT - 1) / kT));
  pack_k_major_kernel<<<grid, dim3(kT, 8)>>>(p, ld, k_contig, R, K, out, ldo);
  NR_GEMM_LAUNCHED("pack_k_major_kernel");
  return out;
}

}  // namespace

BgemmArgs make_k_major(const BgemmArgs &a) {
  BgemmArgs k = a;
  if (a.ta || a.lda % 8 != 0 || !aligned16(a.A)) {
    k.A = pack(0, a.A, a.lda, !a.ta, a.M, a.K, k.lda);
    k.ta = false;
  }
  if (!a.tb || a.ldb % 8 != 0 || !aligned16(a.B)) {
    k.B = pack(1, a.B, a.ldb, a.tb, a.N, a.K, k.ldb);
    k.tb = true;
  }
  return k;
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail
