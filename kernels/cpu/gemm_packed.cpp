// Rung 3: BLIS-style packed GEMM, the driver. op(B) is copied into kc x NR panels (kc x nc block
// sized for L3, each panel for L1) and op(A) into kc x MR panels (mc x kc block sized for L2), so the
// micro-kernel streams both with unit stride and keeps an MR x NR tile of C in registers for all kc
// steps: that turns the memory-bound triple loop into an FMA-bound one. Transposes are absorbed by
// the packing, edges by zero padding. Threads take row chunks of C dynamically (columns are split
// statically when M is small), each with its own packed B: no barriers. The micro-kernel flavour (AVX-512, AVX2, portable) is picked at run time.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <memory>
#include <stdexcept>
#include <string>

#include "kernels/cpu/gemm_packed_impl.h"

namespace nanorlhf::kernels::cpu {
namespace detail {
namespace {

int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// A grow-only, 64-byte aligned scratch buffer per thread: no malloc/page faults on the hot path.
float *scratch(int slot, size_t floats) {
  struct buf {
    float *p = nullptr;
    size_t n = 0;
    ~buf() { std::free(p); }
  };
  thread_local buf bufs[2];
  buf &b = bufs[slot];
  if (b.n < floats) {
    std::free(b.p);
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    b.p = static_cast<float *>(std::aligned_alloc(64, bytes));
    if (!b.p) throw std::bad_alloc();
    b.n = floats;
  }
  return b.p;
}

// Thread grid tm x tn over (MR-row tiles of C) x (NR-column panels of an nc block): the split with
// the fewest tiles per thread; splitting columns makes every thread pack the same A rows, so it
// must win by more than a little.
void thread_grid(int nt, int64_t tiles_m, int64_t tiles_n, int &tm, int &tn) {
  tm = nt, tn = 1;
  double best = 1e300;
  for (int d = nt; d >= 1; --d) {
    if (nt % d) continue;
    const double cost = (double)ceil_div(tiles_m, d) * ceil_div(tiles_n, nt / d) * (1.0 + 0.05 * (nt / d - 1));
    if (cost < best) best = cost, tm = d, tn = nt / d;
  }
}

}  // namespace

void scale_c(int64_t M, int64_t N, float beta, float *C, int64_t ldc) {
  if (beta == 1.0f) return;
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

void gemm_packed_run(const packed_isa &isa, NR_GEMM_ARGS) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0.0f) {
    scale_c(M, N, beta, C, ldc);
    return;
  }
  const int64_t MR = isa.mr, NR = isa.nr;

  // Threads: one per ~2 MFLOP at least (a fork/join costs microseconds), at most omp_get_max_threads().
  const double flops = 2.0 * M * N * K;
  int nt = std::max(1, std::min<int>(omp_get_max_threads(), (int)(flops / 2e6)));
  // The B a thread packs is at most kPackBytes (K x nb floats, nb a multiple of NR; one NR panel
  // where even that is larger): a thread's columns go in blocks of nb. Packing all of op(B) at once
  // would hold K x N floats per thread for good (2 x 154 MB for GPT-2's head on two threads).
  constexpr int64_t kPackBytes = int64_t(32) << 20;
  const int64_t nb = std::max<int64_t>(1, kPackBytes / (int64_t)sizeof(float) / K / NR) * NR;
  const int64_t blocks = ceil_div(N, nb);  // per column group, at most
  // Row chunks are handed out dynamically (one counter per column group and block): on this shared
  // 2-core machine a thread the OS preempts then costs only its current chunk, not half the product.
  std::unique_ptr<std::atomic<int64_t>[]> next_chunk(new std::atomic<int64_t>[nt * blocks]);
  for (int64_t t = 0; t < nt * blocks; ++t) next_chunk[t] = 0;
#pragma omp parallel num_threads(nt)
  {
    // nt may not all arrive (a nested region runs on one thread): split by the team we got.
    const int nth = omp_get_num_threads(), tid = omp_get_thread_num();
    const int64_t tiles_m = ceil_div(M, MR), tiles_n = ceil_div(N, NR);
    int tm, tn;
    thread_grid(nth, tiles_m, tiles_n, tm, tn);
    const int tj = tid % tn;
    // This thread's columns [c0, c1) of C in whole NR panels; rows come in chunks of ch (<= MC).
    const int64_t c0 = std::min(N, tj * tiles_n / tn * NR), c1 = std::min(N, (tj + 1) * tiles_n / tn * NR);
    const int64_t ch = std::min(ceil_div(isa.mc, MR), std::max<int64_t>(1, ceil_div(tiles_m, 3 * tm))) * MR;
    const int64_t nchunks = ceil_div(M, ch);
    // Even k blocks: K = 300 with KC = 256 becomes two blocks of 150, not 256 + 44.
    const int64_t kc = ceil_div(K, ceil_div(K, isa.kc));
    float *apack = scratch(1, (size_t)(ch * kc));
    for (int64_t b0 = c0, blk = 0; b0 < c1; b0 += nb, ++blk) {
      const int64_t cols = std::min(nb, c1 - b0), cols_p = ceil_div(cols, NR) * NR;
      // This thread's own copy of op(B)[:, b0:b0+cols], packed once for all k blocks (block pc
      // starts at pc * cols_p): no barriers and no B shared between cores.
      float *bpack = scratch(0, (size_t)(K * cols_p));
      bool b_ready = false;
      for (int64_t chunk; (chunk = next_chunk[tj * blocks + blk].fetch_add(1)) < nchunks;) {
        if (!b_ready) {
          for (int64_t pc = 0; pc < K; pc += kc)
            isa.pack_b(trans_b, trans_b ? B + b0 * ldb + pc : B + pc * ldb + b0, ldb, std::min(kc, K - pc), cols,
                       bpack + pc * cols_p);
          b_ready = true;
        }
        const int64_t ic = chunk * ch, mcur = std::min(ch, M - ic);
        for (int64_t pc = 0; pc < K; pc += kc) {
          const int64_t kcur = std::min(kc, K - pc);
          const float beta_k = pc == 0 ? beta : 1.0f;  // later k blocks accumulate
          isa.pack_a(trans_a, trans_a ? A + pc * lda + ic : A + ic * lda + pc, lda, mcur, kcur, apack);
          for (int64_t jr = 0; jr < cols; jr += NR) {  // the B panel stays in L1 across the ir loop
            const float *bp = bpack + pc * cols_p + jr * kcur;
            const int n = (int)std::min(NR, cols - jr);
            float *cj = C + ic * ldc + b0 + jr;
            for (int64_t ir = 0; ir < mcur; ir += MR)
              isa.kernel(kcur, apack + ir * kcur, bp, cj + ir * ldc, ldc, alpha, beta_k, (int)std::min(MR, mcur - ir),
                         n);
          }
        }
      }
    }
  }
}

}  // namespace detail

namespace {

const detail::packed_isa &best_isa() {
  static const detail::packed_isa *isa = [] {
    if (auto *p = detail::isa_avx512()) return p;
    if (auto *p = detail::isa_avx2()) return p;
    return detail::isa_portable();
  }();
  return *isa;
}

void run_or_throw(const detail::packed_isa *isa, const char *what, NR_GEMM_ARGS) {
  if (!isa) throw std::runtime_error(std::string(what) + ": this CPU lacks the instructions");
  detail::gemm_packed_run(*isa, trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace

void gemm_packed(NR_GEMM_ARGS) {
  detail::gemm_packed_run(best_isa(), trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_packed_avx512(NR_GEMM_ARGS) {
  run_or_throw(detail::isa_avx512(), "gemm_packed_avx512", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_packed_avx2(NR_GEMM_ARGS) {
  run_or_throw(detail::isa_avx2(), "gemm_packed_avx2", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}
void gemm_packed_portable(NR_GEMM_ARGS) {
  run_or_throw(detail::isa_portable(), "gemm_packed_portable", trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *gemm_packed_isa() { return best_isa().name; }

void gemm(NR_GEMM_ARGS) {
  // Below ~32^3 multiply-adds packing and threads cost more than they save.
  if ((double)M * N * K < 32.0 * 32 * 32)
    detail::gemm_small(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  else
    gemm_packed(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

}  // namespace nanorlhf::kernels::cpu
