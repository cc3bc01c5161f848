// Grader of assignment 02_blocked_gemm: gemm_blocked against a plain double-precision triple loop
// written here, on odd shapes that straddle any block size, every transpose, padded strides (the
// padding must stay untouched) and BLAS's alpha/beta rules. The bonus part times it against
// gemm_naive with a generous margin (best of several runs), so it passes or fails on the code, not
// on the machine's noise.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "grading.h"
#include "kernels/cpu/gemm.h"

NR_GRADE_ASSIGNMENT("02_blocked_gemm");

namespace {

namespace cpu = nanorlhf::kernels::cpu;

constexpr float kPad = 12345.0f;  // written into C's padding columns; must survive

struct Case {
  bool ta, tb;
  int64_t M, N, K;
  float alpha = 1, beta = 0;
  int64_t pad = 0;  // extra elements per row of A, B and C (lda > the row length)
};

std::vector<float> random_floats(size_t n, unsigned seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(-1, 1);
  std::vector<float> v(n);
  for (auto &x : v) x = d(g);
  return v;
}

// Runs the student's gemm_blocked on one case; checks every element of C (including the padding).
::testing::AssertionResult check(const Case &c, unsigned seed) {
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  const int64_t lda = a_cols + c.pad, ldb = b_cols + c.pad, ldc = c.N + c.pad;
  std::vector<float> A = random_floats(std::max<int64_t>(a_rows * lda, 1), seed);
  std::vector<float> B = random_floats(std::max<int64_t>(b_rows * ldb, 1), seed + 1);
  std::vector<float> C = random_floats(std::max<int64_t>(c.M * ldc, 1), seed + 2);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < ldc; ++j) C[i * ldc + j] = kPad;
  std::vector<float> C0 = C;
  cpu::gemm_blocked(c.ta, c.tb, c.M, c.N, c.K, c.alpha, A.data(), lda, B.data(), ldb, c.beta, C.data(), ldc);
  const double atol = 1e-5 * (double)(c.K + 1) * std::max(1.0f, std::abs(c.alpha)), rtol = 1e-4;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < ldc; ++j) {
      double want;
      if (j >= c.N) {
        want = kPad;
      } else {
        double acc = 0;
        for (int64_t k = 0; k < c.K; ++k)
          acc += (double)(c.ta ? A[k * lda + i] : A[i * lda + k]) * (double)(c.tb ? B[j * ldb + k] : B[k * ldb + j]);
        want = c.alpha * acc + (c.beta == 0 ? 0.0 : (double)c.beta * C0[i * ldc + j]);
      }
      const double got = C[i * ldc + j];
      if (!(std::abs(got - want) <= atol + rtol * std::abs(want)))
        return ::testing::AssertionFailure()
               << "trans_a=" << c.ta << " trans_b=" << c.tb << " M=" << c.M << " N=" << c.N << " K=" << c.K
               << " alpha=" << c.alpha << " beta=" << c.beta << " pad=" << c.pad << ": C(" << i << ", " << j
               << ") = " << got << ", expected " << want << (j >= c.N ? " (a padding column: must not change)" : "");
    }
  }
  return ::testing::AssertionSuccess();
}

// Shapes that are odd, tiny, and larger than any usual block (64, 256, 1024) in each dimension.
const int64_t kShapes[][3] = {{1, 1, 1},     {2, 3, 4},    {7, 5, 3},    {1, 300, 17}, {33, 1, 70},
                              {64, 64, 64},  {65, 129, 257}, {3, 1100, 5}, {130, 37, 300}};

void check_all_shapes(bool ta, bool tb, float alpha, float beta, int64_t pad) {
  unsigned seed = 100 * ta + 10 * tb + 1;
  for (auto &s : kShapes) EXPECT_TRUE(check({ta, tb, s[0], s[1], s[2], alpha, beta, pad}, seed += 3));
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_NoTranspose, 40, "C = alpha A B + beta C, row-major, no transposes");

TEST(Part1_NoTranspose, OddShapesBetaZero) { check_all_shapes(false, false, 1, 0, 0); }
TEST(Part1_NoTranspose, AlphaAndBeta) { check_all_shapes(false, false, 0.5f, 2.0f, 0); }
TEST(Part1_NoTranspose, PaddedStridesLeaveThePaddingAlone) { check_all_shapes(false, false, -1.5f, 0.25f, 3); }

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_Transposes, 40, "op(A) and op(B) transposed, alone and together");

TEST(Part2_Transposes, TransposedA) {
  check_all_shapes(true, false, 1, 0, 0);
  check_all_shapes(true, false, 0.5f, -1.0f, 2);
}
TEST(Part2_Transposes, TransposedB) {
  check_all_shapes(false, true, 1, 0, 0);
  check_all_shapes(false, true, 2.0f, 0.5f, 5);
}
TEST(Part2_Transposes, BothTransposed) {
  check_all_shapes(true, true, 1, 0, 0);
  check_all_shapes(true, true, -0.75f, 1.0f, 1);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part3_EdgeCases, 20, "BLAS rules: beta = 0 overwrites, alpha = 0, K = 0, empty C");

TEST(Part3_EdgeCases, BetaZeroOverwritesNaNs) {
  // C starts as NaN: with beta = 0 the old C is never read (0 * NaN would be NaN).
  const int64_t M = 5, N = 6, K = 7;
  std::vector<float> A = random_floats(M * K, 1), B = random_floats(K * N, 2);
  std::vector<float> C(M * N, std::numeric_limits<float>::quiet_NaN());
  cpu::gemm_blocked(false, false, M, N, K, 1.0f, A.data(), K, B.data(), N, 0.0f, C.data(), N);
  for (int64_t i = 0; i < M * N; ++i) ASSERT_FALSE(std::isnan(C[i])) << "C[" << i << "] is still NaN";
}

TEST(Part3_EdgeCases, AlphaZeroOrKZeroOnlyScalesC) {
  EXPECT_TRUE(check({false, false, 9, 11, 13, 0.0f, 3.0f, 0}, 7));  // alpha = 0: C = beta C
  EXPECT_TRUE(check({false, true, 9, 11, 0, 1.0f, -2.0f, 1}, 8));   // K = 0: the product is empty
  EXPECT_TRUE(check({true, false, 4, 4, 0, 1.0f, 0.0f, 0}, 9));     // K = 0, beta = 0: C = 0
}

TEST(Part3_EdgeCases, EmptyCIsANoOp) {
  std::vector<float> A = random_floats(64, 1), B = random_floats(64, 2), C = {kPad, kPad};
  cpu::gemm_blocked(false, false, 0, 2, 4, 1.0f, A.data(), 4, B.data(), 2, 0.0f, C.data(), 2);  // M = 0
  cpu::gemm_blocked(false, false, 1, 0, 4, 1.0f, A.data(), 4, B.data(), 2, 0.0f, C.data(), 2);  // N = 0
  EXPECT_EQ(C[0], kPad);
  EXPECT_EQ(C[1], kPad);
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_BONUS_PART(Part4_Bonus_Speed, 10, "bonus: no slower than the naive triple loop (1.5x margin)");

TEST(Part4_Bonus_Speed, NotSlowerThanGemmNaive) {
  // 256^3 with B not transposed: the naive loop reads B down its columns (a cache miss per
  // element); a blocked loop streams rows. Blocking wins several times over; a 1.5x margin and the
  // best of five runs keep the verdict about the code, not the machine's load.
  const int64_t n = 256;
  ASSERT_TRUE(check({false, false, n, n, n, 1.0f, 0.0f, 0}, 77)) << "the bonus needs a correct result first";
  std::vector<float> A = random_floats(n * n, 1), B = random_floats(n * n, 2), C(n * n);
  auto best_of = [&](auto fn) {
    double best = 1e30;
    for (int r = 0; r < 5; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      fn(false, false, n, n, n, 1.0f, A.data(), n, B.data(), n, 0.0f, C.data(), n);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    }
    return best;
  };
  const double naive = best_of(cpu::gemm_naive), blocked = best_of(cpu::gemm_blocked);
  std::printf("  gemm_naive %.2f ms, your gemm_blocked %.2f ms (%.1fx)\n", naive * 1e3, blocked * 1e3, naive / blocked);
  EXPECT_LE(blocked, 1.5 * naive) << "gemm_blocked took " << blocked * 1e3 << " ms, gemm_naive " << naive * 1e3 << " ms";
}

}  // namespace
