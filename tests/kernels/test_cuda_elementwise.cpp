// Tests of the CUDA elementwise, broadcast, copy, cast, fill and random kernels
// (kernels/cuda/elementwise.cu) against the CPU reference kernels (kernels/cpu/elementwise.h):
// every op, every version, odd sizes, empty and one-element inputs, broadcast and non-contiguous
// strides, misaligned pointers, and the Philox streams bit for bit. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/elementwise.h"
#include "kernels/cuda/versions.h"
#include "kernels/philox.h"

namespace kc = nanorlhf::kernels::cuda;
namespace cpu = nanorlhf::kernels::cpu;
using nanorlhf::kernels::BinaryOp;
using nanorlhf::kernels::CompareOp;
using nanorlhf::kernels::UnaryOp;
using namespace nr_cuda_test;

namespace {

const std::vector<int64_t> kSizes = {0, 1, 3, 4, 5, 255, 256, 257, 1000, 4099};

struct UnaryCase {
  UnaryOp op;
  const char *name;
  float lo, hi;  // input domain
  double alpha, beta;
};

const std::vector<UnaryCase> kUnaryCases = {
    {UnaryOp::neg, "neg", -3, 3, 0, 0},          {UnaryOp::exp, "exp", -5, 5, 0, 0},
    {UnaryOp::log, "log", 0.05f, 5, 0, 0},       {UnaryOp::sqrt, "sqrt", 0, 5, 0, 0},
    {UnaryOp::rsqrt, "rsqrt", 0.05f, 5, 0, 0},   {UnaryOp::tanh, "tanh", -4, 4, 0, 0},
    {UnaryOp::sigmoid, "sigmoid", -8, 8, 0, 0},  {UnaryOp::relu, "relu", -3, 3, 0, 0},
    {UnaryOp::gelu, "gelu", -5, 5, 0, 0},        {UnaryOp::silu, "silu", -8, 8, 0, 0},
    {UnaryOp::abs, "abs", -3, 3, 0, 0},          {UnaryOp::sign, "sign", -3, 3, 0, 0},
    {UnaryOp::gelu_grad, "gelu_grad", -5, 5, 0, 0}, {UnaryOp::silu_grad, "silu_grad", -8, 8, 0, 0},
    {UnaryOp::relu_grad, "relu_grad", -3, 3, 0, 0}, {UnaryOp::pow_scalar, "pow_scalar", 0.05f, 3, 1.7, 0},
    {UnaryOp::pow_scalar, "pow_scalar_2", -3, 3, 2.0, 0}, {UnaryOp::add_scalar, "add_scalar", -3, 3, 0.25, 0},
    {UnaryOp::mul_scalar, "mul_scalar", -3, 3, -1.5, 0},  {UnaryOp::rsub_scalar, "rsub_scalar", -3, 3, 2.0, 0},
    {UnaryOp::rdiv_scalar, "rdiv_scalar", 0.1f, 3, 2.0, 0}, {UnaryOp::clamp, "clamp", -3, 3, -0.5, 0.75},
    {UnaryOp::log1p, "log1p", -0.9f, 5, 0, 0},   {UnaryOp::square, "square", -3, 3, 0, 0},
    {UnaryOp::reciprocal, "reciprocal", 0.1f, 3, 0, 0},
};

const Tol kMathTol{2e-6, 2e-5};  // expf/logf/tanhf/powf: a few ulps between CUDA and glibc

}  // namespace

TEST(CudaUnary, EveryOpEveryVersionMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (const auto &c : kUnaryCases) {
    for (int64_t n : kSizes) {
      std::vector<float> x = rand_floats(n, c.lo, c.hi);
      std::vector<float> ref(n);
      cpu::unary<float>(c.op, x.data(), ref.data(), n, c.alpha, c.beta);
      DeviceBuffer<float> dx(x), dy(n);
      for (int v = 1; v <= kc::versions::kUnaryVersions; ++v) {
        dy.poison();
        kc::versions::unary(v, c.op, dx.get(), dy.get(), n, c.alpha, c.beta);
        EXPECT_TRUE(allclose(dy.download(), ref, kMathTol)) << c.name << " v" << v << " n=" << n;
      }
      dy.poison();
      kc::unary(c.op, dx.get(), dy.get(), n, c.alpha, c.beta);
      EXPECT_TRUE(allclose(dy.download(), ref, kMathTol)) << c.name << " public n=" << n;
    }
  }
}

TEST(CudaUnary, MisalignedPointersFallBackToScalar) {
  NR_SKIP_WITHOUT_CUDA();
  const int64_t n = 1001;
  std::vector<float> x = rand_floats(n + 1, -3, 3);
  std::vector<float> ref(n);
  cpu::unary<float>(UnaryOp::gelu, x.data() + 1, ref.data(), n, 0, 0);
  DeviceBuffer<float> dx(x), dy(n + 1);
  dy.poison();
  kc::versions::unary(2, UnaryOp::gelu, dx.get() + 1, dy.get() + 1, n, 0, 0);
  std::vector<float> got = dy.download();
  EXPECT_TRUE(allclose(std::vector<float>(got.begin() + 1, got.end()), ref, kMathTol));
}

TEST(CudaUnary, NanAndSignedZeroSemantics) {
  NR_SKIP_WITHOUT_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {nan, -0.0f, 0.0f, -2.f, 2.f};
  for (UnaryOp op : {UnaryOp::relu, UnaryOp::sign, UnaryOp::clamp, UnaryOp::abs}) {
    std::vector<float> ref(x.size());
    cpu::unary<float>(op, x.data(), ref.data(), (int64_t)x.size(), -1.0, 1.0);
    DeviceBuffer<float> dx(x), dy(x.size());
    kc::unary(op, dx.get(), dy.get(), (int64_t)x.size(), -1.0, 1.0);
    EXPECT_TRUE(all_equal(dy.download(), ref)) << "op " << (int)op;
  }
}

namespace {

// One broadcast case: the output shape and the two inputs' storage sizes and element strides.
struct BroadcastCase {
  std::string name;
  std::vector<int64_t> shape;
  int64_t a_size, b_size;
  std::vector<int64_t> sa, sb;
};

std::vector<BroadcastCase> broadcast_cases() {
  std::vector<BroadcastCase> cs;
  cs.push_back({"contiguous", {4099}, 4099, 4099, {1}, {1}});
  cs.push_back({"contiguous_3d", {3, 5, 7}, 105, 105, {35, 7, 1}, {35, 7, 1}});
  cs.push_back({"outer_broadcast", {3, 4, 5}, 15, 20, {5, 0, 1}, {0, 5, 1}});  // [3,1,5] op [1,4,5]
  cs.push_back({"scalar_b", {7, 9}, 63, 1, {9, 1}, {0, 0}});
  cs.push_back({"row_bias", {33, 65}, 33 * 65, 65, {65, 1}, {0, 1}});
  cs.push_back({"transposed_a", {6, 5}, 30, 30, {1, 6}, {5, 1}});  // a stored (5,6), read as its transpose
  cs.push_back({"strided_slice", {4, 3}, 40, 12, {10, 3}, {3, 1}});  // every 3rd element of rows of 10
  cs.push_back({"rank0", {}, 1, 1, {}, {}});
  cs.push_back({"empty", {3, 0, 2}, 0, 0, {0, 2, 1}, {0, 2, 1}});
  cs.push_back({"ones", {1, 1, 1}, 1, 1, {1, 1, 1}, {0, 0, 0}});
  cs.push_back({"rank8", {2, 1, 3, 1, 2, 2, 1, 3}, 72, 3, {36, 36, 12, 12, 6, 3, 3, 1}, {0, 0, 0, 0, 0, 0, 0, 1}});
  return cs;
}

}  // namespace

TEST(CudaBinary, EveryOpMatchesCpuOnBroadcastAndStridedViews) {
  NR_SKIP_WITHOUT_CUDA();
  const BinaryOp ops[] = {BinaryOp::add, BinaryOp::sub,     BinaryOp::mul,    BinaryOp::div,
                          BinaryOp::pow, BinaryOp::maximum, BinaryOp::minimum};
  for (const auto &c : broadcast_cases()) {
    const int64_t n = numel(c.shape);
    for (BinaryOp op : ops) {
      const bool positive = op == BinaryOp::pow || op == BinaryOp::div;
      std::vector<float> a = rand_floats(c.a_size, positive ? 0.1f : -2.f, 2.f);
      std::vector<float> b = rand_floats(c.b_size, positive ? 0.1f : -2.f, 2.f);
      std::vector<float> ref(n);
      cpu::binary<float>(op, (int)c.shape.size(), c.shape.data(), a.data(), c.sa.data(), b.data(), c.sb.data(),
                         ref.data());
      DeviceBuffer<float> da(a), db(b), dout(n);
      dout.poison();
      kc::binary(op, (int)c.shape.size(), c.shape.data(), da.get(), c.sa.data(), db.get(), c.sb.data(), dout.get());
      EXPECT_TRUE(allclose(dout.download(), ref, kMathTol)) << c.name << " op " << (int)op;
    }
  }
}

TEST(CudaBinary, ContiguousVersionsMatchCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : kSizes) {
    std::vector<float> a = rand_floats(n), b = rand_floats(n);
    std::vector<int64_t> shape = {n}, s = {1};
    std::vector<float> ref(n);
    cpu::binary<float>(BinaryOp::mul, 1, shape.data(), a.data(), s.data(), b.data(), s.data(), ref.data());
    DeviceBuffer<float> da(a), db(b), dout(n);
    for (int v = 1; v <= kc::versions::kBinaryVersions; ++v) {
      dout.poison();
      kc::versions::binary_contiguous(v, BinaryOp::mul, da.get(), db.get(), dout.get(), n);
      EXPECT_TRUE(all_equal(dout.download(), ref)) << "v" << v << " n=" << n;
    }
  }
}

TEST(CudaBinary, MaximumMinimumPropagateNan) {
  NR_SKIP_WITHOUT_CUDA();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> a = {nan, 1.f, nan, 2.f}, b = {1.f, nan, nan, 3.f};
  std::vector<int64_t> shape = {4}, s = {1};
  for (BinaryOp op : {BinaryOp::maximum, BinaryOp::minimum}) {
    std::vector<float> ref(4);
    cpu::binary<float>(op, 1, shape.data(), a.data(), s.data(), b.data(), s.data(), ref.data());
    DeviceBuffer<float> da(a), db(b), dout(4);
    kc::binary(op, 1, shape.data(), da.get(), s.data(), db.get(), s.data(), dout.get());
    EXPECT_TRUE(allclose(dout.download(), ref, Tol{1e-5, 1e-5}));
  }
}

TEST(CudaCompare, EveryOpMatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  const CompareOp ops[] = {CompareOp::eq, CompareOp::ne, CompareOp::lt, CompareOp::le, CompareOp::gt, CompareOp::ge};
  for (const auto &c : broadcast_cases()) {
    const int64_t n = numel(c.shape);
    // small integers, so that equal pairs are common
    std::vector<float> a(c.a_size), b(c.b_size);
    for (auto &x : a) x = (float)rand_indices(1, -2, 3)[0];
    for (auto &x : b) x = (float)rand_indices(1, -2, 3)[0];
    for (CompareOp op : ops) {
      std::vector<uint8_t> ref(n);
      cpu::compare<float>(op, (int)c.shape.size(), c.shape.data(), a.data(), c.sa.data(), b.data(), c.sb.data(),
                          ref.data());
      DeviceBuffer<float> da(a), db(b);
      DeviceBuffer<uint8_t> dout(n);
      dout.poison();
      kc::compare(op, (int)c.shape.size(), c.shape.data(), da.get(), c.sa.data(), db.get(), c.sb.data(), dout.get());
      EXPECT_TRUE(all_equal(dout.download(), ref)) << c.name << " op " << (int)op;
    }
  }
}

TEST(CudaWhere, BroadcastConditionAndOperands) {
  NR_SKIP_WITHOUT_CUDA();
  struct Case {
    std::vector<int64_t> shape, sc, sa, sb;
    int64_t c_size, a_size, b_size;
  };
  const std::vector<Case> cases = {
      {{3, 4}, {1, 0}, {0, 1}, {4, 1}, 3, 4, 12},        // cond [3,1], a [1,4], b [3,4]
      {{257}, {1}, {1}, {0}, 257, 257, 1},               // scalar b
      {{5, 6}, {1, 5}, {6, 1}, {1, 5}, 30, 30, 30},      // transposed cond and b
      {{0, 4}, {4, 1}, {4, 1}, {4, 1}, 0, 0, 0},         // empty
  };
  for (const auto &c : cases) {
    const int64_t n = numel(c.shape);
    std::vector<uint8_t> cond(c.c_size);
    for (auto &x : cond) x = (uint8_t)rand_indices(1, 0, 2)[0];
    std::vector<float> a = rand_floats(c.a_size), b = rand_floats(c.b_size), ref(n);
    cpu::where<float>((int)c.shape.size(), c.shape.data(), cond.data(), c.sc.data(), a.data(), c.sa.data(), b.data(),
                      c.sb.data(), ref.data());
    DeviceBuffer<uint8_t> dc(cond);
    DeviceBuffer<float> da(a), db(b), dout(n);
    dout.poison();
    kc::where((int)c.shape.size(), c.shape.data(), dc.get(), c.sc.data(), da.get(), c.sa.data(), db.get(), c.sb.data(),
              dout.get());
    EXPECT_TRUE(all_equal(dout.download(), ref)) << "n=" << n;
  }
}

namespace {
template <class T>
void check_copy_strided(const std::vector<int64_t> &shape, const std::vector<int64_t> &strides, int64_t src_size,
                        const std::string &what) {
  std::vector<T> src(src_size);
  for (size_t i = 0; i < src.size(); ++i) src[i] = (T)(i * 7 + 3);
  const int64_t n = numel(shape);
  std::vector<T> ref(n);
  cpu::copy_strided<T>((int)shape.size(), shape.data(), src.data(), strides.data(), ref.data());
  DeviceBuffer<T> dsrc(src), ddst(n);
  ddst.poison();
  kc::copy_strided((int)shape.size(), shape.data(), dsrc.get(), strides.data(), ddst.get(), (int)sizeof(T));
  EXPECT_TRUE(all_equal(ddst.download(), ref)) << what << " elem " << sizeof(T);
}
}  // namespace

TEST(CudaCopyStrided, PermutedBroadcastAndContiguousViewsOfEachElementSize) {
  NR_SKIP_WITHOUT_CUDA();
  struct Case {
    std::string name;
    std::vector<int64_t> shape, strides;
    int64_t src_size;
  };
  const std::vector<Case> cases = {
      {"contiguous", {3, 5, 7}, {35, 7, 1}, 105},
      {"permuted", {4, 3, 2}, {1, 4, 12}, 24},      // (2,3,4) stored, permuted to (4,3,2)
      {"broadcast", {3, 5}, {0, 1}, 5},             // expand a row
      {"slice", {3, 33}, {100, 2}, 300},            // every other column of 3 rows of 100
      {"rank0", {}, {}, 1},
      {"empty", {2, 0}, {0, 1}, 0},
      {"large_transpose", {129, 257}, {1, 129}, 129 * 257},
  };
  for (const auto &c : cases) {
    check_copy_strided<uint8_t>(c.shape, c.strides, c.src_size, c.name);
    check_copy_strided<float>(c.shape, c.strides, c.src_size, c.name);
    check_copy_strided<int64_t>(c.shape, c.strides, c.src_size, c.name);
  }
}

TEST(CudaCopyStrided, RejectsBadElementSize) {
  NR_SKIP_WITHOUT_CUDA();
  std::vector<int64_t> shape = {1}, strides = {1};
  EXPECT_THROW(kc::copy_strided(1, shape.data(), nullptr, strides.data(), nullptr, 3), std::invalid_argument);
}

TEST(CudaCast, MatchesCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : kSizes) {
    std::vector<float> f = rand_floats(n, -1000.f, 1000.f);
    std::vector<int64_t> i64 = rand_indices(n, -(int64_t(1) << 40), int64_t(1) << 40);
    std::vector<uint8_t> u8(n);
    for (auto &x : u8) x = (uint8_t)rand_indices(1, 0, 256)[0];
    std::vector<int64_t> ref_i(n);
    std::vector<float> ref_f(n), ref_u(n);
    cpu::cast<float, int64_t>(f.data(), ref_i.data(), n);
    cpu::cast<int64_t, float>(i64.data(), ref_f.data(), n);
    cpu::cast<uint8_t, float>(u8.data(), ref_u.data(), n);
    DeviceBuffer<float> df(f), out_f(n), out_u(n);
    DeviceBuffer<int64_t> di(i64), out_i(n);
    DeviceBuffer<uint8_t> du(u8);
    kc::cast_f32_i64(df.get(), out_i.get(), n);
    kc::cast_i64_f32(di.get(), out_f.get(), n);
    kc::cast_u8_f32(du.get(), out_u.get(), n);
    EXPECT_TRUE(all_equal(out_i.download(), ref_i)) << n;
    EXPECT_TRUE(all_equal(out_f.download(), ref_f)) << n;
    EXPECT_TRUE(all_equal(out_u.download(), ref_u)) << n;
  }
}

TEST(CudaFill, FillAndArangeMatchCpu) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : kSizes) {
    for (float value : {0.f, -0.f, 1.5f}) {
      std::vector<float> ref(n);
      cpu::fill<float>(ref.data(), n, value);
      DeviceBuffer<float> d(n);
      d.poison();
      kc::fill(d.get(), n, value);
      EXPECT_TRUE(all_equal(d.download(), ref)) << n << " " << value;
    }
    for (int64_t value : {int64_t(0), int64_t(-7), int64_t(1) << 40}) {
      std::vector<int64_t> ref(n);
      cpu::fill<int64_t>(ref.data(), n, value);
      DeviceBuffer<int64_t> d(n);
      d.poison();
      kc::fill_i64(d.get(), n, value);
      EXPECT_TRUE(all_equal(d.download(), ref)) << n << " " << value;
    }
    std::vector<float> ref(n);
    cpu::arange<float>(ref.data(), n, -3.25, 0.1);
    DeviceBuffer<float> d(n);
    d.poison();
    kc::arange(d.get(), n, -3.25, 0.1);
    EXPECT_TRUE(all_equal(d.download(), ref)) << n;
  }
}

TEST(CudaRandom, UniformIsTheCpuStreamBitForBit) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t(1), int64_t(3), int64_t(4), int64_t(1001), int64_t(65539)}) {
    for (uint64_t seed : {uint64_t(0), uint64_t(1234567890123ull)}) {
      for (uint64_t offset : {uint64_t(0), uint64_t(17), (uint64_t(1) << 32) - 3}) {
        for (auto [lo, hi] : {std::pair{0.0, 1.0}, std::pair{-2.5, 7.0}}) {
          std::vector<float> ref(n);
          cpu::uniform<float>(ref.data(), n, seed, offset, lo, hi);
          DeviceBuffer<float> d(n);
          d.poison();
          kc::uniform(d.get(), n, seed, offset, lo, hi);
          std::vector<float> got = d.download();
          EXPECT_TRUE(all_equal(got, ref)) << "n=" << n << " seed=" << seed << " offset=" << offset;
          if (lo == 0.0 && hi == 1.0)  // and the raw stream of kernels/philox.h, element by element
            for (int64_t i = 0; i < n; i += 97)
              ASSERT_EQ(got[i], nanorlhf::kernels::philox_uniform(seed, offset, (uint64_t)i)) << i;
        }
      }
    }
  }
}

TEST(CudaRandom, NormalMatchesTheCpuStream) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t(1), int64_t(2), int64_t(3), int64_t(10001)}) {
    for (uint64_t offset : {uint64_t(0), uint64_t(5)}) {
      std::vector<float> ref(n);
      cpu::normal<float>(ref.data(), n, 42, offset, 0.5, 2.0);
      DeviceBuffer<float> d(n);
      d.poison();
      kc::normal(d.get(), n, 42, offset, 0.5, 2.0);
      // Box-Muller goes through logf and cosf, which may differ from glibc by an ulp or two
      EXPECT_TRUE(allclose(d.download(), ref, Tol{1e-5, 1e-5})) << "n=" << n << " offset=" << offset;
    }
  }
}

TEST(CudaRandom, DropoutMaskAndScaleFollowTheUniformStream) {
  NR_SKIP_WITHOUT_CUDA();
  for (int64_t n : {int64_t(0), int64_t(1), int64_t(7), int64_t(4097)}) {
    for (float p : {0.f, 0.3f, 0.9f, 1.f}) {
      std::vector<float> x = rand_floats(n, -2, 2), ref_y(n);
      std::vector<uint8_t> ref_m(n);
      for (int64_t i = 0; i < n; ++i) {
        const bool keep = nanorlhf::kernels::philox_uniform(99, 3, (uint64_t)i) >= p;
        ref_m[i] = keep;
        ref_y[i] = keep ? x[i] / (1.0f - p) : 0.f;
      }
      DeviceBuffer<float> dx(x), dy(n);
      DeviceBuffer<uint8_t> dm(n);
      dy.poison();
      dm.poison();
      kc::dropout(dx.get(), dy.get(), dm.get(), n, p, 99, 3);
      EXPECT_TRUE(all_equal(dm.download(), ref_m)) << "n=" << n << " p=" << p;
      EXPECT_TRUE(allclose(dy.download(), ref_y, Tol{0, 1e-6})) << "n=" << n << " p=" << p;
    }
  }
}
