// Rung 2's loops (cache blocking), shared by gemm_blocked.cpp (the float entry point, rung 2 of
// the ladder) and gemm_small.cpp (the single-threaded small-problem path of gemm() and the float64
// gemm of gradcheck). C is scaled by beta once, then for each (i, k, j) block the inner loop runs over
// contiguous j (C row += a(i,k) * B row), which the compiler vectorises and which keeps a block of B
// hot in cache across the rows of A; OpenMP splits the rows of C.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

namespace nanorlhf::kernels::cpu::detail {

constexpr int64_t kBlockI = 64, kBlockK = 256, kBlockJ = 1024;

template <typename T>
void scale_rows(int64_t i0, int64_t i1, int64_t N, T beta, T *C, int64_t ldc) {
  for (int64_t i = i0; i < i1; ++i) {
    T *c = C + i * ldc;
    if (beta == T(0))
      std::fill(c, c + N, T(0));  // overwrite: NaNs in C must not survive
    else if (beta != T(1))
      for (int64_t j = 0; j < N; ++j) c[j] *= beta;
  }
}

// C[M,N] = alpha * op(A) op(B) + beta * C. With trans_b, op(B) rows are gathered into a small
// contiguous buffer per (k, j) block so the inner loop still runs over contiguous j.
template <typename T>
void gemm_blocked_loops(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, T alpha, const T *A,
             int64_t lda, const T *B, int64_t ldb, T beta, T *C, int64_t ldc, bool threaded) {
  if (M <= 0 || N <= 0) return;
  const int64_t nblocks = (M + kBlockI - 1) / kBlockI;
#pragma omp parallel for schedule(static) if (threaded && nblocks > 1)
  for (int64_t bi = 0; bi < nblocks; ++bi) {
    const int64_t i0 = bi * kBlockI, i1 = std::min(M, i0 + kBlockI);
    scale_rows(i0, i1, N, beta, C, ldc);
    if (alpha == T(0) || K <= 0) continue;
    std::vector<T> bt;  // op(B)[k0:k1, j0:j1] when B is transposed, (k, j) at bt[(k-k0)*bj + j-j0]
    for (int64_t k0 = 0; k0 < K; k0 += kBlockK) {
      const int64_t k1 = std::min(K, k0 + kBlockK);
      for (int64_t j0 = 0; j0 < N; j0 += kBlockJ) {
        const int64_t j1 = std::min(N, j0 + kBlockJ), bj = j1 - j0;
        if (trans_b) {
          bt.resize((k1 - k0) * bj);
          for (int64_t j = j0; j < j1; ++j)
            for (int64_t k = k0; k < k1; ++k) bt[(k - k0) * bj + (j - j0)] = B[j * ldb + k];
        }
        for (int64_t i = i0; i < i1; ++i) {
          T *c = C + i * ldc + j0;
          for (int64_t k = k0; k < k1; ++k) {
            const T a = alpha * (trans_a ? A[k * lda + i] : A[i * lda + k]);
            const T *b = trans_b ? bt.data() + (k - k0) * bj : B + k * ldb + j0;  // op(B)(k, j0:j1)
            for (int64_t j = 0; j < bj; ++j) c[j] += a * b[j];
          }
        }
      }
    }
  }
}

}  // namespace nanorlhf::kernels::cpu::detail
