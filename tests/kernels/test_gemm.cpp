// Tests for every CPU GEMM rung (and each ISA flavour this CPU has) against a float64 reference:
// odd shapes, the small transformer's shapes, all trans combinations, alpha/beta, padded strides, K = 0.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "kernels/cpu/gemm.h"
#include "tolerance.h"

namespace cpu = nanorlhf::kernels::cpu;

namespace {

using gemm_fn = void (*)(bool, bool, int64_t, int64_t, int64_t, float, const float *, int64_t,
                         const float *, int64_t, float, float *, int64_t);

struct rung {
  const char *name;
  gemm_fn fn;
  const char *needs;  // CPU feature for __builtin_cpu_supports, or nullptr
  bool big;           // fast enough for the transformer shapes
};

const rung kRungs[] = {
    {"naive", cpu::gemm_naive, nullptr, false},
    {"blocked", cpu::gemm_blocked, nullptr, true},
    {"packed", cpu::gemm_packed, nullptr, true},
    {"packed_avx512", cpu::gemm_packed_avx512, "avx512f", true},
    {"packed_avx2", cpu::gemm_packed_avx2, "avx2", true},
    {"packed_portable", cpu::gemm_packed_portable, nullptr, true},
    {"gemm", cpu::gemm, nullptr, true},
};

bool cpu_has(const char *feature) {
  if (!feature) return true;
  const std::string f = feature;
  if (f == "avx512f") return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
  if (f == "avx2") return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  return false;
}

// Tolerance (tests/tolerance.h's policy, |got - ref| <= atol + rtol * |ref|) with atol and rtol both
// growing like sqrt(K): rounding errors of a K-term float sum behave like a random walk. Inputs are in
// [-1, 1].
bool close(double got, double ref, int64_t K, double eps) {
  const double s = eps * std::sqrt((double)std::max<int64_t>(K, 1));
  return nr_test::within(got, ref, {.atol = s, .rtol = s});
}
constexpr double kEpsF32 = 2e-6, kEpsF64 = 1e-13;

struct gemm_case {
  int64_t M, N, K;
  bool ta, tb;
  float alpha = 1.0f, beta = 0.0f;
  int64_t pad = 0;  // lda/ldb/ldc exceed the stored row width by this much
};

std::string case_name(const gemm_case &c) {
  auto f = [](float v) {
    std::string s = std::to_string((int)(v * 10));
    for (auto &ch : s)
      if (ch == '-') ch = 'm';
    return s;
  };
  return std::to_string(c.M) + "x" + std::to_string(c.N) + "x" + std::to_string(c.K) + "_" + (c.ta ? "T" : "N") +
         (c.tb ? "T" : "N") + "_a" + f(c.alpha) + "_b" + f(c.beta) + "_pad" + std::to_string(c.pad);
}

// Operands in storage layout plus the float64 reference C = alpha op(A) op(B) + beta C0.
struct problem {
  int64_t lda, ldb, ldc;
  std::vector<float> A, B, C0;
  std::vector<double> ref;
};

const problem &make_problem(const gemm_case &c) {
  static std::map<std::string, problem> cache;  // the reference is the slow part: share it
  const std::string key = case_name(c);
  if (auto it = cache.find(key); it != cache.end()) return it->second;
  problem p;
  const int64_t a_rows = c.ta ? c.K : c.M, a_cols = c.ta ? c.M : c.K;
  const int64_t b_rows = c.tb ? c.N : c.K, b_cols = c.tb ? c.K : c.N;
  p.lda = a_cols + c.pad, p.ldb = b_cols + c.pad, p.ldc = c.N + c.pad;
  std::mt19937 rng(1234 + (uint32_t)(c.M * 7 + c.N * 13 + c.K * 31));
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  p.A.resize(std::max<int64_t>(1, a_rows * p.lda));
  p.B.resize(std::max<int64_t>(1, b_rows * p.ldb));
  p.C0.resize(std::max<int64_t>(1, c.M * p.ldc));
  for (auto &v : p.A) v = u(rng);
  for (auto &v : p.B) v = u(rng);
  for (auto &v : p.C0) v = c.beta == 0.0f ? std::numeric_limits<float>::quiet_NaN() : u(rng);
  // op(A) (M x K) and op(B) (K x N) as dense float64, then an i-k-j product.
  std::vector<double> a(c.M * c.K), b(c.K * c.N), acc(c.M * c.N, 0.0);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t k = 0; k < c.K; ++k) a[i * c.K + k] = c.ta ? p.A[k * p.lda + i] : p.A[i * p.lda + k];
  for (int64_t k = 0; k < c.K; ++k)
    for (int64_t j = 0; j < c.N; ++j) b[k * c.N + j] = c.tb ? p.B[j * p.ldb + k] : p.B[k * p.ldb + j];
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t k = 0; k < c.K; ++k)
      for (int64_t j = 0; j < c.N; ++j) acc[i * c.N + j] += a[i * c.K + k] * b[k * c.N + j];
  p.ref.resize(c.M * c.N);
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = 0; j < c.N; ++j)
      p.ref[i * c.N + j] = (double)c.alpha * acc[i * c.N + j] +
                           (c.beta == 0.0f ? 0.0 : (double)c.beta * p.C0[i * p.ldc + j]);
  return cache.emplace(key, std::move(p)).first->second;
}

// Runs one rung on one case; checks every element and that the padding of C is untouched.
void check(gemm_fn fn, const gemm_case &c) {
  const problem &p = make_problem(c);
  std::vector<float> C = p.C0;
  const float kSentinel = 12345.0f;
  for (int64_t i = 0; i < c.M; ++i)
    for (int64_t j = c.N; j < p.ldc; ++j) C[i * p.ldc + j] = kSentinel;
  fn(c.ta, c.tb, c.M, c.N, c.K, c.alpha, p.A.data(), p.lda, p.B.data(), p.ldb, c.beta, C.data(), p.ldc);
  int64_t bad = 0;
  for (int64_t i = 0; i < c.M; ++i) {
    for (int64_t j = 0; j < c.N; ++j) {
      const double got = C[i * p.ldc + j], ref = p.ref[i * c.N + j];
      if (!close(got, ref, c.K, kEpsF32) && bad++ < 5)
        ADD_FAILURE() << "C(" << i << "," << j << ") = " << got << ", expected " << ref;
    }
    for (int64_t j = c.N; j < p.ldc; ++j)
      if (C[i * p.ldc + j] != kSentinel && bad++ < 5) ADD_FAILURE() << "padding of C written at (" << i << "," << j << ")";
  }
  EXPECT_EQ(bad, 0) << case_name(c);
}

std::vector<gemm_case> all_cases() {
  std::vector<gemm_case> cases;
  const int64_t odd[][3] = {{1, 1, 1}, {17, 33, 65}, {127, 255, 63}, {64, 64, 64}, {300, 200, 100}, {5, 700, 3}};
  for (auto &s : odd)
    for (int t = 0; t < 4; ++t) cases.push_back({s[0], s[1], s[2], bool(t & 1), bool(t & 2)});
  // alpha/beta and padded strides (beta = 0 with NaN in C must overwrite; beta = 1 accumulates)
  for (int t = 0; t < 4; ++t) {
    cases.push_back({37, 45, 29, bool(t & 1), bool(t & 2), 1.0f, 1.0f, 0});
    cases.push_back({37, 45, 29, bool(t & 1), bool(t & 2), -0.5f, 2.0f, 7});
    cases.push_back({300, 200, 100, bool(t & 1), bool(t & 2), 1.5f, 0.0f, 3});
    cases.push_back({129, 67, 300, bool(t & 1), bool(t & 2), 0.5f, -1.0f, 5});
  }
  // K = 0: C = beta * C (and zeros for beta = 0)
  cases.push_back({13, 9, 0, false, false, 1.0f, 0.0f, 0});
  cases.push_back({13, 9, 0, true, true, 1.0f, 0.5f, 2});
  return cases;
}

// The small transformer (T=2048 tokens, C=128, 3C=384, 4C=512): forward x @ W and the backward
// products dX = dY @ W^T (NT) and dW = X^T @ dY (TN).
std::vector<gemm_case> transformer_cases() {
  return {
      {2048, 384, 128, false, false}, {2048, 128, 128, false, false}, {2048, 512, 128, false, false},
      {2048, 128, 512, false, false}, {2048, 128, 384, false, true},  {2048, 512, 128, false, true},
      {128, 384, 2048, true, false},  {512, 128, 2048, true, false},  {128, 128, 2048, true, true, 1.0f, 1.0f},
  };
}

using param = std::tuple<int, gemm_case>;

class GemmTest : public ::testing::TestWithParam<param> {};

TEST_P(GemmTest, MatchesFloat64Reference) {
  const rung &v = kRungs[std::get<0>(GetParam())];
  if (!cpu_has(v.needs)) GTEST_SKIP() << v.name << " needs " << v.needs;
  check(v.fn, std::get<1>(GetParam()));
}

std::string param_name(const ::testing::TestParamInfo<param> &info) {
  return std::string(kRungs[std::get<0>(info.param)].name) + "_" + case_name(std::get<1>(info.param));
}

std::vector<param> params(bool big) {
  std::vector<param> out;
  for (int v = 0; v < (int)std::size(kRungs); ++v)
    if (!big || kRungs[v].big)
      for (auto &c : big ? transformer_cases() : all_cases()) out.emplace_back(v, c);
  return out;
}

INSTANTIATE_TEST_SUITE_P(Shapes, GemmTest, ::testing::ValuesIn(params(false)), param_name);
INSTANTIATE_TEST_SUITE_P(Transformer, GemmTest, ::testing::ValuesIn(params(true)), param_name);

// Unsupported flavours must refuse rather than crash.
TEST(Gemm, UnsupportedIsaThrows) {
  float a = 1, b = 1, c = 0;
  if (!cpu_has("avx512f")) EXPECT_THROW(cpu::gemm_packed_avx512(false, false, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1), std::runtime_error);
  if (!cpu_has("avx2")) EXPECT_THROW(cpu::gemm_packed_avx2(false, false, 1, 1, 1, 1, &a, 1, &b, 1, 0, &c, 1), std::runtime_error);
  const std::string isa = cpu::gemm_packed_isa();
  EXPECT_TRUE(isa == "avx512" || isa == "avx2" || isa == "portable") << isa;
  if (cpu_has("avx512f")) EXPECT_EQ(isa, "avx512");
}

// The packed driver's thread split (rows, or columns when M is small) at several team sizes.
TEST(Gemm, PackedAnyThreadCount) {
  const int saved = omp_get_max_threads();
  for (int t : {1, 2, 3, 4}) {
    omp_set_num_threads(t);
    SCOPED_TRACE("threads=" + std::to_string(t));
    check(cpu::gemm_packed, {250, 300, 270, false, false, 1.0f, 0.5f, 1});
    check(cpu::gemm_packed, {20, 1000, 200, true, false});
  }
  omp_set_num_threads(saved);
}

// Called from inside a parallel region (nested regions run on one thread).
TEST(Gemm, PackedInsideParallelRegion) {
  bool ok = true;
#pragma omp parallel num_threads(2) reduction(&& : ok)
  {
    const gemm_case c{100, 90, 80, false, true};
    const problem *p = nullptr;
#pragma omp critical
    p = &make_problem(c);
    std::vector<float> C(c.M * p->ldc);
    cpu::gemm_packed(false, true, c.M, c.N, c.K, 1.0f, p->A.data(), p->lda, p->B.data(), p->ldb, 0.0f, C.data(), p->ldc);
    for (int64_t i = 0; i < c.M * c.N; ++i) ok = ok && close(C[i], p->ref[i], c.K, kEpsF32);
  }
  EXPECT_TRUE(ok);
}

// The float64 overload (gradcheck's GEMM), all trans combinations, alpha/beta, padding.
TEST(Gemm, Float64) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> u(-1.0, 1.0);
  for (int t = 0; t < 4; ++t) {
    const bool ta = t & 1, tb = t & 2;
    const int64_t M = 33, N = 47, K = 301, pad = 3;
    const int64_t lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
    std::vector<double> A((ta ? K : M) * lda), B((tb ? N : K) * ldb), C(M * ldc), C0;
    for (auto &v : A) v = u(rng);
    for (auto &v : B) v = u(rng);
    for (auto &v : C) v = u(rng);
    C0 = C;
    cpu::gemm(ta, tb, M, N, K, 0.75, A.data(), lda, B.data(), ldb, -2.0, C.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) {
        long double acc = 0;
        for (int64_t k = 0; k < K; ++k)
          acc += (long double)(ta ? A[k * lda + i] : A[i * lda + k]) * (tb ? B[j * ldb + k] : B[k * ldb + j]);
        const double ref = 0.75 * (double)acc - 2.0 * C0[i * ldc + j];
        ASSERT_TRUE(close(C[i * ldc + j], ref, K, kEpsF64)) << i << "," << j << " " << C[i * ldc + j] << " vs " << ref;
      }
    // beta = 0 overwrites NaN
    std::fill(C.begin(), C.end(), std::numeric_limits<double>::quiet_NaN());
    cpu::gemm(ta, tb, M, N, K, 1.0, A.data(), lda, B.data(), ldb, 0.0, C.data(), ldc);
    for (int64_t i = 0; i < M; ++i)
      for (int64_t j = 0; j < N; ++j) ASSERT_FALSE(std::isnan(C[i * ldc + j]));
  }
}

}  // namespace
