// Grader of assignment 06_cuda_softmax: the student's CUDA softmax against the CPU kernel
// (kernels/cpu/softmax.cpp) on small and odd shapes, many rows, vocabulary-long rows, and inputs
// that need the max subtracted. Without a GPU (or in a build without the CUDA backend) every test
// skips with "no CUDA device": the grader then reports 0 of 0 available points.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

#include "grading.h"
#include "kernels/cpu/nn_kernels.h"

#ifdef NANORLHF_WITH_CUDA
#include "kernels/cuda/cuda_api.h"
#include "lectures/assignments/06_cuda_softmax/cuda_softmax.h"
#define NR_SKIP_WITHOUT_CUDA()                                                  \
  do {                                                                          \
    if (::nanorlhf::kernels::cuda::device_count() == 0) GTEST_SKIP() << "no CUDA device"; \
  } while (0)
#else
#define NR_SKIP_WITHOUT_CUDA() GTEST_SKIP() << "no CUDA device (this build has no CUDA backend)"
#endif

NR_GRADE_ASSIGNMENT("06_cuda_softmax");

namespace {

std::vector<float> random_floats(size_t n, float lo, float hi, unsigned seed) {
  std::mt19937_64 g(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v) x = d(g);
  return v;
}

// Runs the student's kernel on a copy of x on the device; y starts as NaN so unwritten outputs show.
std::vector<float> run_cuda([[maybe_unused]] const std::vector<float> &x, [[maybe_unused]] int64_t rows,
                            [[maybe_unused]] int64_t cols) {
#ifdef NANORLHF_WITH_CUDA
  namespace kc = nanorlhf::kernels::cuda;
  const size_t bytes = x.size() * sizeof(float);
  float *dx = static_cast<float *>(kc::device_malloc(bytes, 0)), *dy = static_cast<float *>(kc::device_malloc(bytes, 0));
  std::vector<float> y(x.size(), std::numeric_limits<float>::quiet_NaN());
  try {
    kc::memcpy_h2d(dx, x.data(), bytes);
    kc::memcpy_h2d(dy, y.data(), bytes);
    kc::assignment::softmax_forward(dx, dy, rows, cols);
    kc::synchronize();
    kc::memcpy_d2h(y.data(), dy, bytes);
  } catch (...) {
    kc::device_free(dx, 0);
    kc::device_free(dy, 0);
    throw;
  }
  kc::device_free(dx, 0);
  kc::device_free(dy, 0);
  return y;
#else
  return {};
#endif
}

::testing::AssertionResult matches_cpu(const std::vector<float> &x, int64_t rows, int64_t cols) {
  std::vector<float> want(x.size());
  nanorlhf::kernels::cpu::softmax_forward<float>(x.data(), want.data(), rows, cols);
  std::vector<float> got = run_cuda(x, rows, cols);
  for (size_t i = 0; i < want.size(); ++i)
    if (!(std::abs(got[i] - want[i]) <= 1e-6 + 1e-4 * std::abs(want[i])))
      return ::testing::AssertionFailure() << "shape [" << rows << ", " << cols << "], row " << i / cols << ", column "
                                           << i % cols << ": got " << got[i] << ", the CPU kernel gives " << want[i];
  return ::testing::AssertionSuccess();
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part1_SmallAndOddShapes, 40, "small, odd and many-row shapes");

TEST(Part1_SmallAndOddShapes, MatchesTheCpuKernel) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t shapes[][2] = {{1, 1}, {1, 7}, {3, 5}, {5, 33}, {37, 129}, {128, 1024}};
  unsigned seed = 1;
  for (auto &s : shapes) EXPECT_TRUE(matches_cpu(random_floats(s[0] * s[1], -8, 8, seed++), s[0], s[1]));
}

TEST(Part1_SmallAndOddShapes, ManyShortRows) {
  NR_SKIP_WITHOUT_CUDA();
  // more rows than one grid dimension of blocks-per-row launches would allow if mis-sized
  EXPECT_TRUE(matches_cpu(random_floats(70001 * 4, -3, 3, 9), 70001, 4));
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part2_LongRows, 40, "vocabulary-long rows");

TEST(Part2_LongRows, MatchesTheCpuKernel) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t shapes[][2] = {{4, 4096}, {2, 50257}, {1, 100000}};
  unsigned seed = 21;
  for (auto &s : shapes) EXPECT_TRUE(matches_cpu(random_floats(s[0] * s[1], -8, 8, seed++), s[0], s[1]));
}

// ---------------------------------------------------------------------------------------------
NR_GRADE_PART(Part3_Stability, 20, "large logits and masked (-inf) entries");

TEST(Part3_Stability, LargeLogitsAndMaskedEntries) {
  NR_SKIP_WITHOUT_CUDA();
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_TRUE(matches_cpu({1000, 1001, 999, -1000, -1001, -999}, 2, 3));
  EXPECT_TRUE(matches_cpu({0, -inf, 0, -inf, 5, -inf}, 2, 3));
  std::vector<float> big = random_floats(3 * 3000, 500, 600, 31);
  EXPECT_TRUE(matches_cpu(big, 3, 3000));
}

}  // namespace
