// Tests of the CUDA row reductions and argmax (kernels/cuda/reduce.cu) against the CPU kernels:
// every op, every version, rows and columns around the warp and block sizes, empty rows, NaN.
// Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/versions.h"

namespace kc = nanorlhf::kernels::cuda;
namespace cpu = nanorlhf::kernels::cpu;
using nanorlhf::kernels::ReduceOp;
using namespace nr_cuda_test;

namespace {
struct Shape {
  int64_t rows, cols;
};
const std::vector<Shape> kShapes = {{1, 1},   {1, 31},  {3, 32},   {5, 33},   {7, 255},  {2, 1024},
                                    {3, 1025}, {1, 4099}, {129, 17}, {33, 3000}, {2, 20000}, {0, 5}};
// Float sums in a different order than the CPU's double accumulation: relative error grows ~ sqrt(cols) ulps.
const Tol kSumTol{2e-5, 2e-5};
}  // namespace

TEST(CudaReduceRows, EveryOpEveryVersionMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &s : kShapes) {
    std::vector<float> x = rand_floats(s.rows * s.cols, -3, 3);
    DeviceBuffer<float> dx(x), dout(s.rows);
    for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::logsumexp}) {
      std::vector<float> ref(s.rows);
      cpu::reduce_rows<float>(op, x.data(), s.rows, s.cols, ref.data());
      const Tol tol = op == ReduceOp::sum ? Tol{1e-4 * std::sqrt((double)s.cols), 2e-5} : kSumTol;
      for (int v = 1; v <= kc::versions::kReduceVersions; ++v) {
        dout.poison();
        kc::versions::reduce_rows(v, op, dx.get(), s.rows, s.cols, dout.get());
        EXPECT_TRUE(allclose(dout.download(), ref, tol))
            << "op " << (int)op << " v" << v << " rows " << s.rows << " cols " << s.cols;
      }
      dout.poison();
      kc::reduce_rows(op, dx.get(), s.rows, s.cols, dout.get());
      EXPECT_TRUE(allclose(dout.download(), ref, tol)) << "op " << (int)op << " public " << s.rows << "x" << s.cols;
    }
  }
}

TEST(CudaReduceRows, EmptyRowsGiveTheIdentity) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t rows = 3;
  DeviceBuffer<float> dx(1), dout(rows);
  for (ReduceOp op : {ReduceOp::sum, ReduceOp::max, ReduceOp::min, ReduceOp::logsumexp}) {
    std::vector<float> ref(rows);
    cpu::reduce_rows<float>(op, nullptr, rows, 0, ref.data());
    for (int v = 1; v <= kc::versions::kReduceVersions; ++v) {
      dout.poison();
      kc::versions::reduce_rows(v, op, dx.get(), rows, 0, dout.get());
      EXPECT_TRUE(allclose(dout.download(), ref, Tol{1e-5, 1e-5})) << "op " << (int)op << " v" << v;
    }
  }
}

TEST(CudaReduceRows, NanAndInfinityFollowTheCpu) {
  NR_SKIP_WITHOUT_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  // rows: a NaN in the middle, all -inf, a +inf
  std::vector<float> x = {1, nan, 2, 3, -inf, -inf, -inf, -inf, 1, inf, 2, 3};
  const int64_t rows = 3, cols = 4;
  DeviceBuffer<float> dx(x), dout(rows);
  for (ReduceOp op : {ReduceOp::max, ReduceOp::min, ReduceOp::logsumexp}) {
    std::vector<float> ref(rows);
    cpu::reduce_rows<float>(op, x.data(), rows, cols, ref.data());
    for (int v = 1; v <= kc::versions::kReduceVersions; ++v) {
      kc::versions::reduce_rows(v, op, dx.get(), rows, cols, dout.get());
      EXPECT_TRUE(allclose(dout.download(), ref, Tol{1e-5, 1e-5})) << "op " << (int)op << " v" << v;
    }
  }
}

TEST(CudaArgmax, MatchesCpuWithTiesAndNan) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &s : kShapes) {
    // few distinct values: ties everywhere, the lowest index must win
    std::vector<float> x(s.rows * s.cols);
    for (auto &v : x) v = (float)rand_indices(1, 0, 5)[0];
    if (s.rows > 1 && s.cols > 3) x[s.cols + s.cols / 2] = std::numeric_limits<float>::quiet_NaN();
    std::vector<int64_t> ref(s.rows);
    cpu::argmax_rows<float>(x.data(), s.rows, s.cols, ref.data());
    DeviceBuffer<float> dx(x);
    DeviceBuffer<int64_t> dout(s.rows);
    dout.poison();
    kc::argmax_rows(dx.get(), s.rows, s.cols, dout.get());
    EXPECT_TRUE(all_equal(dout.download(), ref)) << s.rows << "x" << s.cols;
  }
}
