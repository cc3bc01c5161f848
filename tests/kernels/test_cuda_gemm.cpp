// Tests of the CUDA GEMM ladder (kernels/cuda/gemm/, rungs 1-11), the cuBLAS yardsticks and the
// training entry point gemm_batched (kernels/cuda/gemm/gemm_train.cu) against a CPU reference, on edge
// shapes, 1024^3 and the small transformer's shapes, every transpose combination, with alpha/beta and
// padded leading dimensions. CUDA cases skip without a device; argument checks run everywhere.
//
// Reference: the product in float64 (same contract as kernels::cpu::gemm_naive, which is checked
// against it below), plus sum_k |a_mk b_kn| for the error bound.
// Tolerance (tests/tolerance.h's policy with rtol 0 and a per-element atol, an error bound):
// |got - ref| <= c * sqrt(K + 1) * 2^-24 * (|alpha| sum_k |a b| + |beta| |C0|) + 1e-30,
// c = 16 for FP32 (float accumulation in any order: the error of a sum of K rounded terms grows like
// sqrt(K) ulps of the absolute sum for random signs; 16 leaves room for unlucky elements), c = 64 for
// BF16 inputs (rounded to bf16 on the host first, so the reference sees the same inputs; tensor cores
// accumulate FP32 with truncation inside each MMA, a few times coarser than FMA chains).
// Large shapes are in the CudaGemmLarge suites so a compute-sanitizer run can leave them out
// (--gtest_filter=-*Large*).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "cuda_test_util.h"
#include "kernels/cpu/gemm.h"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/gemm/gemm_ladder.h"

namespace kc = nanorlhf::kernels::cuda;
namespace kcpu = nanorlhf::kernels::cpu;
using namespace nr_cuda_test;

namespace {

struct Shape {
  int64_t M, N, K;
  bool operator<(const Shape &o) const { return std::tie(M, N, K) < std::tie(o.M, o.N, o.K); }
};

const std::vector<Shape> kSmallShapes = {{1, 1, 1}, {17, 33, 65}, {127, 255, 63}, {64, 128, 16}};
// 1024^3 and the small transformer (B*T = 2048 tokens, d_model 128, qkv 384, MLP 512), forward and
// the weight-gradient shape (K = tokens).
const std::vector<Shape> kLargeShapes = {{1024, 1024, 1024}, {2048, 384, 128}, {2048, 128, 512},
                                         {2048, 512, 128},   {2048, 128, 128}, {384, 128, 2048}};

uint16_t to_bf16(float f) {  // round to nearest even (inputs are finite)
  uint32_t u;
  std::memcpy(&u, &f, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}
float from_bf16(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// Logical operands op(A) [M,K], op(B) [K,N], a C0 [M,N], and the reference product.
struct Problem {
  Shape s;
  std::vector<float> a, b, c0;
  std::vector<double> prod, absprod;
};

void reference(const Shape &s, const std::vector<float> &a, const std::vector<float> &b, std::vector<double> &prod,
               std::vector<double> &absprod) {
  prod.assign(s.M * s.N, 0.0);
  absprod.assign(s.M * s.N, 0.0);
#pragma omp parallel for schedule(static)
  for (int64_t m = 0; m < s.M; ++m) {
    double *p = &prod[m * s.N], *q = &absprod[m * s.N];
    for (int64_t k = 0; k < s.K; ++k) {
      const double x = a[m * s.K + k];
      const float *brow = &b[k * s.N];
      for (int64_t n = 0; n < s.N; ++n) {
        p[n] += x * brow[n];
        q[n] += std::abs(x * brow[n]);
      }
    }
  }
}

const Problem &problem(const Shape &s, bool bf16) {
  static std::map<std::pair<Shape, bool>, Problem> cache;
  auto it = cache.find({s, bf16});
  if (it != cache.end()) return it->second;
  Problem p;
  p.s = s;
  p.a = rand_floats(s.M * s.K);
  p.b = rand_floats(s.K * s.N);
  p.c0 = rand_floats(s.M * s.N);
  if (bf16) {
    for (auto &x : p.a) x = from_bf16(to_bf16(x));
    for (auto &x : p.b) x = from_bf16(to_bf16(x));
  }
  reference(s, p.a, p.b, p.prod, p.absprod);
  return cache.emplace(std::make_pair(s, bf16), std::move(p)).first->second;
}

// Stores the logical rows x cols matrix x as the kernel expects it: [rows, cols] (ld = cols + pad) or,
// transposed, [cols, rows] (ld = rows + pad). Padding holds a sentinel that must never be read as data.
std::vector<float> store(const std::vector<float> &x, int64_t rows, int64_t cols, bool trans, int64_t pad,
                         int64_t &ld) {
  const int64_t r = trans ? cols : rows, c = trans ? rows : cols;
  ld = c + pad;
  std::vector<float> out(std::max<int64_t>(1, r * ld), 1e30f);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) (trans ? out[j * ld + i] : out[i * ld + j]) = x[i * cols + j];
  return out;
}

template <class T>
using Runner = std::function<void(bool, bool, int64_t, int64_t, int64_t, float, const T *, int64_t, const T *,
                                  int64_t, float, float *, int64_t)>;

template <class T>
std::vector<T> to_elem(const std::vector<float> &x) {
  if constexpr (std::is_same_v<T, float>) {
    return x;
  } else {
    std::vector<T> y(x.size());
    for (size_t i = 0; i < x.size(); ++i) y[i] = to_bf16(x[i]);
    return y;
  }
}

// Runs one case and checks every element of C against the bound, and that C's padding is untouched.
template <class T>
void check_case(const Runner<T> &run, const Problem &p, bool ta, bool tb, int64_t pad, float alpha, float beta,
                double c) {
  const auto [M, N, K] = p.s;
  SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K << " trans_a=" << ta << " trans_b=" << tb
                                  << " pad=" << pad << " alpha=" << alpha << " beta=" << beta);
  int64_t lda, ldb, ldc;
  DeviceBuffer<T> dA(to_elem<T>(store(p.a, M, K, ta, pad, lda)));
  DeviceBuffer<T> dB(to_elem<T>(store(p.b, K, N, tb, pad, ldb)));
  std::vector<float> c_init = store(p.c0, M, N, false, pad, ldc);
  if (beta == 0.f)  // BLAS semantics: beta == 0 never reads C, so NaNs there must not leak out
    for (int64_t m = 0; m < M; ++m)
      for (int64_t n = 0; n < N; ++n) c_init[m * ldc + n] = std::nanf("");
  DeviceBuffer<float> dC(c_init);
  run(ta, tb, M, N, K, alpha, dA.get(), lda, dB.get(), ldb, beta, dC.get(), ldc);
  const std::vector<float> got = dC.download();

  const double unit = c * std::sqrt(double(K) + 1.0) * std::ldexp(1.0, -24);
  int64_t bad = 0;
  std::string first;
  for (int64_t m = 0; m < M; ++m) {
    for (int64_t n = 0; n < ldc; ++n) {
      const float g = got[m * ldc + n];
      if (n >= N) {  // padding
        if (std::memcmp(&g, &c_init[m * ldc + n], 4) != 0 && bad++ == 0)
          first = "padding C[" + std::to_string(m) + "," + std::to_string(n) + "] overwritten with " + std::to_string(g);
        continue;
      }
      const double c0 = beta == 0.f ? 0.0 : p.c0[m * N + n];
      const double ref = double(alpha) * p.prod[m * N + n] + double(beta) * c0;
      const double bound = unit * (std::abs(alpha) * p.absprod[m * N + n] + std::abs(beta) * std::abs(c0)) + 1e-30;
      if (!nr_test::within(g, ref, {.atol = bound, .rtol = 0}) && bad++ == 0)
        first = "C[" + std::to_string(m) + "," + std::to_string(n) + "] = " + std::to_string(g) + ", reference " +
                std::to_string(ref) + ", bound " + std::to_string(bound);
    }
  }
  EXPECT_EQ(bad, 0) << bad << " bad elements; first: " << first;
}

// Every combination of transposes; for small shapes also a padded (misaligned) leading dimension and
// beta == 0 over a NaN-filled C.
template <class T>
void check_shapes(const Runner<T> &run, const std::vector<Shape> &shapes, bool small, double c) {
  const bool bf16 = !std::is_same_v<T, float>;
  for (const Shape &s : shapes) {
    const Problem &p = problem(s, bf16);
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        check_case<T>(run, p, ta, tb, 0, 0.75f, -1.25f, c);
        if (small) {
          check_case<T>(run, p, ta, tb, 5, 1.f, 0.f, c);
          check_case<T>(run, p, ta, tb, 8, -2.f, 0.5f, c);
        }
      }
  }
}

constexpr double kFp32C = 16, kBf16C = 64;
constexpr int kCublas = 0;  // "rung 0" in the parameterised suites

Runner<float> fp32_runner(int rung) {
  return [rung](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const float *A, int64_t lda,
                const float *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (rung == kCublas)
      kc::sgemm_cublas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      kc::sgemm_rung(rung, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  };
}

Runner<uint16_t> bf16_runner(int rung) {
  return [rung](bool ta, bool tb, int64_t M, int64_t N, int64_t K, float alpha, const uint16_t *A, int64_t lda,
                const uint16_t *B, int64_t ldb, float beta, float *C, int64_t ldc) {
    if (rung == kCublas)
      kc::bf16_gemm_cublas(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    else
      kc::bf16_gemm_rung(rung, ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  };
}

std::string rung_label(const testing::TestParamInfo<int> &info) {
  if (info.param == kCublas) return "cublas";
  std::string n = kc::gemm_rung_name(info.param);
  return "rung" + n;
}

// Why a rung cannot run here ("" when it can). GTEST_SKIP only leaves the function it is written in,
// so tests call it as SKIP_UNLESS_RUNNABLE(rung) in their own body.
// (NR_SKIP_WITHOUT_CUDA comes first, in the macro.)
std::string why_not_runnable(int rung) {
  if (rung == 11 && !kc::gemm_hopper_available()) return "rung 11 needs a compute capability 9.0 GPU";
  return "";
}
#define SKIP_UNLESS_RUNNABLE(rung)                            \
  do {                                                        \
    NR_SKIP_WITHOUT_CUDA();                                   \
    const std::string why_ = why_not_runnable(rung);          \
    if (!why_.empty()) GTEST_SKIP() << why_;                  \
  } while (0)

}  // namespace

// ---- argument checks and names: no device needed -------------------------------------------------

TEST(CudaGemmApi, RungNames) {
  EXPECT_STREQ(kc::gemm_rung_name(1), "1_naive");
  EXPECT_STREQ(kc::gemm_rung_name(8), "8_warptiling");
  EXPECT_STREQ(kc::gemm_rung_name(11), "11_wgmma_bf16");
  EXPECT_STREQ(kc::gemm_rung_name(0), "?");
  EXPECT_STREQ(kc::gemm_rung_name(12), "?");
  for (int r = kc::kGemmFirstRung; r <= kc::kGemmLastRung; ++r)
    EXPECT_EQ(std::string(kc::kGemmRungNames[r - 1]).rfind(std::to_string(r) + "_", 0), 0u) << r;
}

TEST(CudaGemmApi, BadArgumentsThrowBeforeTouchingTheDevice) {
  float *p = nullptr;
  const uint16_t *h = nullptr;
  EXPECT_THROW(kc::sgemm_rung(0, false, false, 1, 1, 1, 1.f, p, 1, p, 1, 0.f, p, 1), std::invalid_argument);
  EXPECT_THROW(kc::sgemm_rung(9, false, false, 1, 1, 1, 1.f, p, 1, p, 1, 0.f, p, 1), std::invalid_argument);
  EXPECT_THROW(kc::bf16_gemm_rung(8, false, false, 1, 1, 1, 1.f, h, 1, h, 1, 0.f, p, 1), std::invalid_argument);
  EXPECT_THROW(kc::sgemm_rung(1, false, false, -1, 1, 1, 1.f, p, 1, p, 1, 0.f, p, 1), std::invalid_argument);
  // lda must cover K (A stored [M,K]) or M (A stored [K,M])
  EXPECT_THROW(kc::sgemm_rung(1, false, false, 4, 4, 8, 1.f, p, 7, p, 4, 0.f, p, 4), std::invalid_argument);
  EXPECT_THROW(kc::sgemm_rung(1, true, false, 6, 4, 8, 1.f, p, 5, p, 4, 0.f, p, 4), std::invalid_argument);
  EXPECT_THROW(kc::sgemm_rung(1, false, true, 4, 6, 8, 1.f, p, 8, p, 7, 0.f, p, 6), std::invalid_argument);
  EXPECT_THROW(kc::sgemm_rung(1, false, false, 4, 6, 8, 1.f, p, 8, p, 6, 0.f, p, 5), std::invalid_argument);
  try {
    kc::gemm_batched(false, false, 4, 6, 8, 1.f, p, 8, 0, p, 6, 0, 0.f, p, 6, 0, 2);
    ADD_FAILURE() << "stride_c = 0 with batch 2 must throw";
  } catch (const std::invalid_argument &e) {
    EXPECT_NE(std::string(e.what()).find("stride_c"), std::string::npos) << e.what();
  }
  try {
    kc::gemm_batched(false, false, 4, 6, 8, 1.f, p, 3, 0, p, 6, 0, 0.f, p, 6, 0, 1);
    ADD_FAILURE() << "lda < K must throw";
  } catch (const std::invalid_argument &e) {  // says what was expected and what came
    EXPECT_NE(std::string(e.what()).find("lda must be >= 8"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("lda=3"), std::string::npos) << e.what();
  }
  // empty problems are no-ops, whatever the pointers
  EXPECT_NO_THROW(kc::sgemm_rung(8, false, false, 0, 5, 5, 1.f, p, 5, p, 5, 0.f, p, 5));
  EXPECT_NO_THROW(kc::gemm_batched(false, false, 3, 3, 3, 1.f, p, 3, 9, p, 3, 9, 0.f, p, 3, 9, 0));
}

// The float64 reference of this file agrees with the CPU library's reference kernel.
TEST(CudaGemmApi, ReferenceMatchesCpuGemmNaive) {
  const Shape s{17, 33, 65};
  const Problem &p = problem(s, false);
  std::vector<float> c(s.M * s.N, 0.f);
  kcpu::gemm_naive(false, false, s.M, s.N, s.K, 1.f, p.a.data(), s.K, p.b.data(), s.N, 0.f, c.data(), s.N);
  for (int64_t i = 0; i < s.M * s.N; ++i)
    ASSERT_TRUE(nr_test::isclose(c[i], p.prod[i], {.atol = 1e-5 * (1 + p.absprod[i]), .rtol = 0})) << "element " << i;
}

// ---- FP32 rungs 1-8 and cublasSgemm ---------------------------------------------------------------

class CudaGemmFp32 : public testing::TestWithParam<int> {};
class CudaGemmLargeFp32 : public testing::TestWithParam<int> {};

TEST_P(CudaGemmFp32, SmallShapesMatchReference) {
  SKIP_UNLESS_RUNNABLE(GetParam());
  check_shapes<float>(fp32_runner(GetParam()), kSmallShapes, true, kFp32C);
}
TEST_P(CudaGemmLargeFp32, LargeShapesMatchReference) {
  SKIP_UNLESS_RUNNABLE(GetParam());
  check_shapes<float>(fp32_runner(GetParam()), kLargeShapes, false, kFp32C);
}
INSTANTIATE_TEST_SUITE_P(Rungs, CudaGemmFp32, testing::Values(kCublas, 1, 2, 3, 4, 5, 6, 7, 8), rung_label);
INSTANTIATE_TEST_SUITE_P(Rungs, CudaGemmLargeFp32, testing::Values(kCublas, 1, 2, 3, 4, 5, 6, 7, 8), rung_label);

// ---- BF16 rungs 9-11 and cublasGemmEx --------------------------------------------------------------

class CudaGemmBf16 : public testing::TestWithParam<int> {};
class CudaGemmLargeBf16 : public testing::TestWithParam<int> {};

TEST_P(CudaGemmBf16, SmallShapesMatchReference) {
  SKIP_UNLESS_RUNNABLE(GetParam());
  check_shapes<uint16_t>(bf16_runner(GetParam()), kSmallShapes, true, kBf16C);
}
TEST_P(CudaGemmLargeBf16, LargeShapesMatchReference) {
  SKIP_UNLESS_RUNNABLE(GetParam());
  check_shapes<uint16_t>(bf16_runner(GetParam()), kLargeShapes, false, kBf16C);
}
INSTANTIATE_TEST_SUITE_P(Rungs, CudaGemmBf16, testing::Values(kCublas, 9, 10, 11), rung_label);
INSTANTIATE_TEST_SUITE_P(Rungs, CudaGemmLargeBf16, testing::Values(kCublas, 9, 10, 11), rung_label);

// K not a multiple of 8 with 16-byte aligned rows: rungs 10/11 read the operands in place and zero-fill
// the partial last K chunk (cp.async src-size / TMA out-of-bounds fill) instead of packing.
TEST(CudaGemmBf16Edges, PartialKChunkInPlace) {
  NR_SKIP_WITHOUT_CUDA();
  for (int rung : {10, 11}) {
    if (!why_not_runnable(rung).empty()) continue;
    SCOPED_TRACE(testing::Message() << "rung " << rung);
    const Problem &p = problem({40, 300, 13}, true);
    // trans_b with ld = 16: both operands K-major, 16-byte rows, K = 13
    check_case<uint16_t>(bf16_runner(rung), p, false, true, 3, 1.f, 0.f, kBf16C);
  }
}

// ---- gemm_batched (the training entry point), handwritten and cuBLAS -------------------------------

namespace {

// batch entries b < batch: C_b = alpha op(A_b) op(B_b) + beta C_b; checks against per-entry references.
void check_batched(bool use_cublas, bool ta, bool tb, Shape s, int64_t batch, bool broadcast_a, bool interleave_c) {
  SCOPED_TRACE(testing::Message() << "cublas=" << use_cublas << " M=" << s.M << " N=" << s.N << " K=" << s.K
                                  << " batch=" << batch << " ta=" << ta << " tb=" << tb << " broadcast_a="
                                  << broadcast_a << " interleave_c=" << interleave_c);
  const float alpha = 1.5f, beta = 0.25f;
  const int64_t na = broadcast_a ? 1 : batch;
  std::vector<std::vector<float>> a(na), b(batch), c0(batch);
  for (auto &x : a) x = rand_floats(s.M * s.K);
  for (auto &x : b) x = rand_floats(s.K * s.N);
  for (auto &x : c0) x = rand_floats(s.M * s.N);
  // A_b stored one after the other (stride = one matrix), or one A for all (stride 0)
  int64_t lda = 0, ldb = 0, ld_unused = 0;
  std::vector<float> ha, hb;
  for (auto &x : a) {
    auto st = store(x, s.M, s.K, ta, 0, lda);
    ha.insert(ha.end(), st.begin(), st.end());
  }
  for (auto &x : b) {
    auto st = store(x, s.K, s.N, tb, 0, ldb);
    hb.insert(hb.end(), st.begin(), st.end());
  }
  const int64_t stride_a = broadcast_a ? 0 : std::max<int64_t>(1, s.M * s.K);
  const int64_t stride_b = std::max<int64_t>(1, s.K * s.N);
  // C as [batch, M, N] or interleaved [M, batch, N] (ldc = batch * N, stride_c = N), like per-head outputs
  const int64_t ldc = interleave_c ? batch * s.N : s.N, stride_c = interleave_c ? s.N : s.M * s.N;
  std::vector<float> hc(batch * s.M * s.N);
  for (int64_t bi = 0; bi < batch; ++bi)
    for (int64_t m = 0; m < s.M; ++m)
      for (int64_t n = 0; n < s.N; ++n) hc[bi * stride_c + m * ldc + n] = c0[bi][m * s.N + n];
  (void)ld_unused;
  DeviceBuffer<float> dA(ha), dB(hb), dC(hc);
  kc::use_cublas(use_cublas);
  kc::gemm_batched(ta, tb, s.M, s.N, s.K, alpha, dA.get(), lda, stride_a, dB.get(), ldb, stride_b, beta, dC.get(),
                   ldc, stride_c, batch);
  kc::use_cublas(false);
  const std::vector<float> got = dC.download();
  const double unit = kFp32C * std::sqrt(double(s.K) + 1.0) * std::ldexp(1.0, -24);
  int64_t bad = 0;
  for (int64_t bi = 0; bi < batch; ++bi) {
    std::vector<double> prod, absprod;
    reference(s, a[broadcast_a ? 0 : bi], b[bi], prod, absprod);
    for (int64_t m = 0; m < s.M; ++m)
      for (int64_t n = 0; n < s.N; ++n) {
        const double c = c0[bi][m * s.N + n];
        const double ref = alpha * prod[m * s.N + n] + beta * c;
        const double bound = unit * (alpha * absprod[m * s.N + n] + beta * std::abs(c)) + 1e-30;
        const double g = got[bi * stride_c + m * ldc + n];
        if (!nr_test::within(g, ref, {.atol = bound, .rtol = 0}) && bad++ < 3)
          ADD_FAILURE() << "batch " << bi << " C[" << m << "," << n << "] = " << g << ", reference " << ref;
      }
  }
  EXPECT_EQ(bad, 0);
}

}  // namespace

TEST(CudaGemmBatched, MatchesReferenceHandwrittenAndCublas) {
  NR_SKIP_WITHOUT_CUDA();
  for (bool cub : {false, true})
    for (int ta = 0; ta < 2; ++ta)
      for (int tb = 0; tb < 2; ++tb) {
        check_batched(cub, ta, tb, {33, 47, 29}, 3, false, false);
        check_batched(cub, ta, tb, {64, 128, 96}, 4, true, false);  // one A for every entry
        check_batched(cub, ta, tb, {16, 24, 40}, 5, false, true);   // interleaved outputs
      }
  // attention-like: 8 heads x (T=128, D=32) score and value products, both large and small tile paths
  check_batched(false, false, true, {128, 128, 32}, 8, false, false);
  check_batched(false, false, false, {128, 32, 128}, 8, false, false);
  check_batched(false, false, false, {512, 512, 64}, 2, false, false);
}

TEST(CudaGemmBatched, MoreEntriesThanOneGridDimension) {
  NR_SKIP_WITHOUT_CUDA();
  check_batched(false, false, false, {2, 3, 4}, 70000, false, false);  // gridDim.z <= 65535: chunked
}

TEST(CudaGemmBatched, CublasFlagGivesTheSameResults) {
  NR_SKIP_WITHOUT_CUDA();
  // the two paths agree within the FP32 bound on a transformer shape (different summation orders)
  const Shape s{2048, 128, 512};
  const Problem &p = problem(s, false);
  int64_t lda, ldb, ldc;
  DeviceBuffer<float> dA(store(p.a, s.M, s.K, false, 0, lda)), dB(store(p.b, s.K, s.N, true, 0, ldb));
  DeviceBuffer<float> c1(s.M * s.N), c2(s.M * s.N);
  ldc = s.N;
  kc::use_cublas(false);
  kc::gemm_batched(false, true, s.M, s.N, s.K, 1.f, dA.get(), lda, 0, dB.get(), ldb, 0, 0.f, c1.get(), ldc, 0, 1);
  kc::use_cublas(true);
  kc::gemm_batched(false, true, s.M, s.N, s.K, 1.f, dA.get(), lda, 0, dB.get(), ldb, 0, 0.f, c2.get(), ldc, 0, 1);
  kc::use_cublas(false);
  const auto g1 = c1.download(), g2 = c2.download();
  const double unit = 2 * kFp32C * std::sqrt(double(s.K) + 1.0) * std::ldexp(1.0, -24);
  for (int64_t i = 0; i < s.M * s.N; ++i)
    ASSERT_TRUE(nr_test::isclose(g1[i], g2[i], {.atol = unit * p.absprod[i] + 1e-30, .rtol = 0})) << "element " << i;
}
