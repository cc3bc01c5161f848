// CPU elementwise kernels: unary ops, broadcast binary/compare/where, strided copy, cast, fill and
// arange. Random fills live in random.cpp, row reductions in reduce.cpp.
#include "kernels/cpu/elementwise.h"
#include "kernels/cpu/fast_math.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <type_traits>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace nanorlhf::kernels::cpu {
namespace {

// Below this many elements a parallel region costs more than it saves.
constexpr int64_t kParallelMin = 1 << 15;

// y[i] = f(x[i]) over one contiguous range, vectorised (f is branch-free where it matters).
template <class T, class F>
void map_range(const T *x, T *y, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}

// The same loop compiled for AVX-512 (16 floats a vector instead of SSE2's 4), picked at run time.
// AVX512F includes FMA, so the compiler may fuse a*b+c here: values can differ from the SSE2 build by
// an ulp, but a given machine always takes the same path, and the vector body and the remainder are
// fused alike (tests/kernels check that an element's value does not depend on the loop split).
#if defined(__x86_64__) && defined(__GNUC__)
#define NR_HAVE_AVX512_MAP 1
template <class T, class F>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) void map_range_avx512(const T *x, T *y, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) y[i] = f(x[i]);
}
inline bool cpu_has_avx512() {
  static const bool has = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
                          __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw");
  return has;
}
#endif

template <class T, class F>
void map_range_best(const T *x, T *y, int64_t n, F f) {
#ifdef NR_HAVE_AVX512_MAP
  if (cpu_has_avx512()) return map_range_avx512(x, y, n, f);
#endif
  map_range(x, y, n, f);
}

// Splits [0, n) into one run of whole 64-byte blocks (16 floats) per thread and calls body(b0, b1)
// on each thread's run: every thread runs the same vector loop on its own block (`parallel for
// simd` with an if clause leaves the parallel copy scalar in GCC 12). Elementwise results do not
// depend on how the range is split, so this is deterministic.
template <class Body>
void for_each_thread_range(int64_t n, Body body) {
#pragma omp parallel
  {
#ifdef _OPENMP
    const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
#else
    const int64_t nt = 1, tid = 0;
#endif
    const int64_t blocks = (n + 15) / 16;
    const int64_t b0 = std::min(n, blocks * tid / nt * 16), b1 = std::min(n, blocks * (tid + 1) / nt * 16);
    if (b0 < b1) body(b0, b1);
  }
}

// Apply y[i] = f(x[i]) over a contiguous range.
template <class T, class F>
void map_unary(const T *x, T *y, int64_t n, F f) {
  if (n <= kParallelMin) return map_range_best(x, y, n, f);
  for_each_thread_range(n, [&](int64_t b0, int64_t b1) { map_range_best(x + b0, y + b0, b1 - b0, f); });
}

// out[i] = f(a[i], b[i]) over contiguous ranges: the two-input twin of map_unary.
template <class T, class F>
void map2_range(const T *a, const T *b, T *out, int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}
#ifdef NR_HAVE_AVX512_MAP
template <class T, class F>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) void map2_range_avx512(const T *a, const T *b, T *out,
                                                                                    int64_t n, F f) {
#pragma omp simd
  for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
}
#endif
template <class T, class F>
void map2_range_best(const T *a, const T *b, T *out, int64_t n, F f) {
#ifdef NR_HAVE_AVX512_MAP
  if (cpu_has_avx512()) return map2_range_avx512(a, b, out, n, f);
#endif
  map2_range(a, b, out, n, f);
}
template <class T, class F>
void map_binary(const T *a, const T *b, T *out, int64_t n, F f) {
  if (n <= kParallelMin) return map2_range_best(a, b, out, n, f);
  for_each_thread_range(n, [&](int64_t b0, int64_t b1) { map2_range_best(a + b0, b + b0, out + b0, b1 - b0, f); });
}

// Numerically stable logistic: never evaluates exp of a large positive number. One exp, and for
// float a select instead of a branch, so the loop vectorises.
template <class T> inline T sigmoid_of(T x) {
  if constexpr (sizeof(T) == sizeof(float)) {
    const T e = fast_expf(-std::abs(x));  // e^{-|x|} (NaN stays NaN)
    const T d = T(1) + e;
    const T pos = T(1) / d, neg = e / d;  // both, then a select: vectorisable
    return select_bits(x >= T(0), pos, neg);
  } else {
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
  }
}

// GELU, tanh approximation (Hendrycks & Gimpel 2016, section 2):
// \mathrm{gelu}(x) = \tfrac12 x \left(1 + \tanh u\right), \quad u = \sqrt{2/\pi}\,(x + 0.044715 x^3)
// computed through the identity \tfrac12(1 + \tanh u) = \sigma(2u) = 1/(1 + e^{-2u}): one exp
// instead of tanh (about 3x faster in glibc), no cancellation, and e^{-2u} = inf gives -0 exactly.
template <class T> inline T gelu_of(T x) {
  const T k2 = T(2 * 0.7978845608028654);  // 2 sqrt(2/pi)
  return x / (T(1) + exp_of(-k2 * (x + T(0.044715) * x * x * x)));
}

// Exact derivative of the tanh approximation above, with t = \tanh u:
// \mathrm{gelu}'(x) = \tfrac12 (1 + t) + \tfrac12 x (1 - t^2) \sqrt{2/\pi} (1 + 3 \cdot 0.044715 x^2)
// and with s = \sigma(2u): \tfrac12(1 + t) = s, \tfrac12(1 - t^2) = 2 s (1 - s).
template <class T> inline T gelu_grad_of(T x) {
  const T k = T(0.7978845608028654);
  const T s = T(1) / (T(1) + exp_of(-T(2) * k * (x + T(0.044715) * x * x * x)));
  return s + T(2) * x * s * (T(1) - s) * k * (T(1) + T(3 * 0.044715) * x * x);
}

// Offsets (in elements) of up to three strided inputs for each row of a broadcast iteration.
// The output is contiguous. Dims of size 1 are dropped and adjacent dims that are contiguous with
// each other in every input are merged, so most calls reduce to one long inner loop.
template <int K>
struct StridedPlan {
  int nd = 0;
  int64_t shape[kMaxDims];
  int64_t st[K][kMaxDims];
  int64_t inner() const { return nd ? shape[nd - 1] : 1; }
};

template <int K>
bool make_plan(int ndim, const int64_t *shape, const int64_t *const *strides, StridedPlan<K> &p) {
  p.nd = 0;
  for (int d = 0; d < ndim; ++d) {
    if (shape[d] == 0) return false;  // nothing to do
    if (shape[d] == 1) continue;
    if (p.nd > 0) {
      bool mergeable = true;
      for (int k = 0; k < K; ++k)
        if (p.st[k][p.nd - 1] != strides[k][d] * shape[d]) mergeable = false;
      if (mergeable) {
        p.shape[p.nd - 1] *= shape[d];
        for (int k = 0; k < K; ++k) p.st[k][p.nd - 1] = strides[k][d];
        continue;
      }
    }
    p.shape[p.nd] = shape[d];
    for (int k = 0; k < K; ++k) p.st[k][p.nd] = strides[k][d];
    ++p.nd;
  }
  return true;
}

// Calls row(out_offset, in_offsets[K], inner_strides[K], len) over every inner row, cut into
// pieces of at most kPiece elements so that one long contiguous row is still split among threads.
// The pieces are dealt to threads in contiguous blocks; each block unravels its first row index
// once and then steps an odometer, so tiny inner rows stay cheap. Each output element is written
// by exactly one piece, so the result does not depend on the thread count.
constexpr int64_t kPiece = 1 << 14;

template <int K, class Row>
void for_each_row(int ndim, const int64_t *shape, const int64_t *const *strides, Row row) {
  StridedPlan<K> p;
  if (!make_plan<K>(ndim, shape, strides, p)) return;
  const int64_t inner = p.inner();
  int64_t outer = 1;
  for (int d = 0; d + 1 < p.nd; ++d) outer *= p.shape[d];
  int64_t inner_st[K];
  for (int k = 0; k < K; ++k) inner_st[k] = p.nd ? p.st[k][p.nd - 1] : 0;
  const int od = p.nd > 0 ? p.nd - 1 : 0;  // number of outer dims
  const int64_t pieces_per_row = (inner + kPiece - 1) / kPiece;
  const int64_t tasks = outer * pieces_per_row;

#pragma omp parallel if (outer * inner > kParallelMin && tasks > 1)
  {
#ifdef _OPENMP
    const int64_t nt = omp_get_num_threads(), tid = omp_get_thread_num();
#else
    const int64_t nt = 1, tid = 0;
#endif
    const int64_t begin = tasks * tid / nt, end = tasks * (tid + 1) / nt;
    if (begin < end) {
      int64_t idx[kMaxDims] = {0};
      int64_t off[K] = {0};
      int64_t r = begin / pieces_per_row, c = begin % pieces_per_row;
      for (int64_t d = od - 1, rem = r; d >= 0; --d) {
        idx[d] = rem % p.shape[d];
        rem /= p.shape[d];
        for (int k = 0; k < K; ++k) off[k] += idx[d] * p.st[k][d];
      }
      for (int64_t t = begin; t < end; ++t) {
        const int64_t j0 = c * kPiece, len = std::min(kPiece, inner - j0);
        int64_t poff[K];
        for (int k = 0; k < K; ++k) poff[k] = off[k] + j0 * inner_st[k];
        row(r * inner + j0, poff, inner_st, len);
        if (++c < pieces_per_row) continue;
        c = 0;
        ++r;
        for (int d = od - 1; d >= 0; --d) {  // odometer step to the next row
          for (int k = 0; k < K; ++k) off[k] += p.st[k][d];
          if (++idx[d] < p.shape[d]) break;
          for (int k = 0; k < K; ++k) off[k] -= idx[d] * p.st[k][d];
          idx[d] = 0;
        }
      }
    }
  }
}

// Inner loop of a binary op, specialised on the common stride patterns so the contiguous and
// scalar-broadcast cases vectorise.
template <class A, class B, class O, class F>
inline void binary_row(const A *a, int64_t sa, const B *b, int64_t sb, O *out, int64_t n, F f) {
  if (sa == 1 && sb == 1) {
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const B bv = *b;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const A av = *a;
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = f(av, b[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = f(a[i * sa], b[i * sb]);
  }
}

#ifdef NR_HAVE_AVX512_MAP
// binary_row compiled for AVX-512. Each element is one IEEE operation (or a compare/select), so the
// results are the same bits as the SSE2 build's.
template <class A, class B, class O, class F>
__attribute__((target("avx512f,avx512vl,avx512dq,avx512bw"))) void binary_row_avx512(const A *a, int64_t sa, const B *b,
                                                                                    int64_t sb, O *out, int64_t n, F f) {
  binary_row(a, sa, b, sb, out, n, f);
}
#endif

template <class T, class O, class F>
void binary_apply(int ndim, const int64_t *shape, const T *a, const int64_t *sa, const T *b,
                  const int64_t *sb, O *out, F f) {
  const int64_t *strides[2] = {sa, sb};
#ifdef NR_HAVE_AVX512_MAP
  if (cpu_has_avx512()) {
    for_each_row<2>(ndim, shape, strides, [&](int64_t o, const int64_t *off, const int64_t *ist, int64_t n) {
      binary_row_avx512(a + off[0], ist[0], b + off[1], ist[1], out + o, n, f);
    });
    return;
  }
#endif
  for_each_row<2>(ndim, shape, strides, [&](int64_t o, const int64_t *off, const int64_t *ist, int64_t n) {
    binary_row(a + off[0], ist[0], b + off[1], ist[1], out + o, n, f);
  });
}

// Max/min that propagate NaN, as torch.maximum/minimum do.
template <class T> inline T nan_max(T a, T b) { return a != a ? a : (b != b ? b : (a > b ? a : b)); }
template <class T> inline T nan_min(T a, T b) { return a != a ? a : (b != b ? b : (a < b ? a : b)); }

}  // namespace

template <class T>
void unary(UnaryOp op, const T *x, T *y, int64_t n, double alpha, double beta) {
  const T a = T(alpha), b = T(beta);
  switch (op) {
    case UnaryOp::neg: return map_unary(x, y, n, [](T v) { return -v; });
    case UnaryOp::exp: return map_unary(x, y, n, [](T v) { return exp_of(v); });
    case UnaryOp::log: return map_unary(x, y, n, [](T v) { return std::log(v); });
    case UnaryOp::sqrt: return map_unary(x, y, n, [](T v) { return std::sqrt(v); });
    case UnaryOp::rsqrt: return map_unary(x, y, n, [](T v) { return T(1) / std::sqrt(v); });
    case UnaryOp::tanh: return map_unary(x, y, n, [](T v) { return std::tanh(v); });
    case UnaryOp::sigmoid: return map_unary(x, y, n, [](T v) { return sigmoid_of(v); });
    // relu(NaN) = NaN, as in PyTorch.
    case UnaryOp::relu: return map_unary(x, y, n, [](T v) { return v < T(0) ? T(0) : v; });
    case UnaryOp::gelu: return map_unary(x, y, n, [](T v) { return gelu_of(v); });
    case UnaryOp::silu: return map_unary(x, y, n, [](T v) { return v * sigmoid_of(v); });
    case UnaryOp::abs: return map_unary(x, y, n, [](T v) { return std::abs(v); });
    // sign keeps 0, -0 and NaN as they are.
    case UnaryOp::sign: return map_unary(x, y, n, [](T v) { return v > T(0) ? T(1) : (v < T(0) ? T(-1) : v); });
    case UnaryOp::gelu_grad: return map_unary(x, y, n, [](T v) { return gelu_grad_of(v); });
    // d/dx x s(x) = s(x) (1 + x (1 - s(x)))
    case UnaryOp::silu_grad:
      return map_unary(x, y, n, [](T v) { T s = sigmoid_of(v); return s * (T(1) + v * (T(1) - s)); });
    case UnaryOp::relu_grad: return map_unary(x, y, n, [](T v) { return v > T(0) ? T(1) : T(0); });
    case UnaryOp::pow_scalar:
      if (alpha == 2) return map_unary(x, y, n, [](T v) { return v * v; });
      if (alpha == 1) return map_unary(x, y, n, [](T v) { return v; });
      if (alpha == 0.5) return map_unary(x, y, n, [](T v) { return std::sqrt(v); });
      return map_unary(x, y, n, [a](T v) { return std::pow(v, a); });
    case UnaryOp::add_scalar: return map_unary(x, y, n, [a](T v) { return v + a; });
    case UnaryOp::mul_scalar: return map_unary(x, y, n, [a](T v) { return v * a; });
    case UnaryOp::rsub_scalar: return map_unary(x, y, n, [a](T v) { return a - v; });
    case UnaryOp::rdiv_scalar: return map_unary(x, y, n, [a](T v) { return a / v; });
    // NaN passes through; the bounds are not checked for lo <= hi (caller's job).
    case UnaryOp::clamp: return map_unary(x, y, n, [a, b](T v) { return v < a ? a : (v > b ? b : v); });
    case UnaryOp::log1p: return map_unary(x, y, n, [](T v) { return std::log1p(v); });
    case UnaryOp::square: return map_unary(x, y, n, [](T v) { return v * v; });
    case UnaryOp::reciprocal: return map_unary(x, y, n, [](T v) { return T(1) / v; });
  }
}

template <class T>
void unary_grad_mul(UnaryOp op, const T *g, const T *x, T *out, int64_t n) {
  switch (op) {
    case UnaryOp::gelu_grad: return map_binary(g, x, out, n, [](T gv, T v) { return gv * gelu_grad_of(v); });
    case UnaryOp::silu_grad:
      return map_binary(g, x, out, n, [](T gv, T v) { T s = sigmoid_of(v); return gv * (s * (T(1) + v * (T(1) - s))); });
    default: {  // any other derivative: f'(x) into out, then the product in place
      unary<T>(op, x, out, n);
      return map_binary(g, out, out, n, [](T gv, T d) { return gv * d; });
    }
  }
}

template <class T>
void binary(BinaryOp op, int ndim, const int64_t *shape, const T *a, const int64_t *sa, const T *b,
            const int64_t *sb, T *out) {
  switch (op) {
    case BinaryOp::add: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x + y; });
    case BinaryOp::sub: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x - y; });
    case BinaryOp::mul: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x * y; });
    case BinaryOp::div: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return x / y; });
    case BinaryOp::pow: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return std::pow(x, y); });
    case BinaryOp::maximum: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return nan_max(x, y); });
    case BinaryOp::minimum: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return nan_min(x, y); });
  }
}

template <class T>
void compare(CompareOp op, int ndim, const int64_t *shape, const T *a, const int64_t *sa, const T *b,
             const int64_t *sb, uint8_t *out) {
  using U = uint8_t;
  switch (op) {
    case CompareOp::eq: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x == y); });
    case CompareOp::ne: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x != y); });
    case CompareOp::lt: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x < y); });
    case CompareOp::le: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x <= y); });
    case CompareOp::gt: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x > y); });
    case CompareOp::ge: return binary_apply(ndim, shape, a, sa, b, sb, out, [](T x, T y) { return U(x >= y); });
  }
}

template <class T>
void where(int ndim, const int64_t *shape, const uint8_t *cond, const int64_t *sc, const T *a,
           const int64_t *sa, const T *b, const int64_t *sb, T *out) {
  const int64_t *strides[3] = {sc, sa, sb};
  for_each_row<3>(ndim, shape, strides, [&](int64_t o, const int64_t *off, const int64_t *ist, int64_t n) {
    const uint8_t *c = cond + off[0];
    const T *pa = a + off[1], *pb = b + off[2];
    T *po = out + o;
    if (ist[0] == 1 && ist[1] == 1 && ist[2] == 1) {
#pragma omp simd
      for (int64_t i = 0; i < n; ++i) po[i] = c[i] ? pa[i] : pb[i];
    } else {
      for (int64_t i = 0; i < n; ++i) po[i] = c[i * ist[0]] ? pa[i * ist[1]] : pb[i * ist[2]];
    }
  });
}

template <class T>
void copy_strided(int ndim, const int64_t *shape, const T *src, const int64_t *strides, T *dst) {
  static_assert(std::is_trivially_copyable_v<T>);
  const int64_t *st[1] = {strides};
  for_each_row<1>(ndim, shape, st, [&](int64_t o, const int64_t *off, const int64_t *ist, int64_t n) {
    const T *s = src + off[0];
    T *d = dst + o;
    if (ist[0] == 1) {
      std::memcpy(d, s, size_t(n) * sizeof(T));
    } else if (ist[0] == 0) {
      std::fill(d, d + n, *s);
    } else {
      const int64_t step = ist[0];
      for (int64_t i = 0; i < n; ++i) d[i] = s[i * step];
    }
  });
}

// Float -> narrow integer goes through int64 so that out-of-range values wrap (as in PyTorch on
// x86) instead of being undefined behaviour; NaN and |x| >= 2^63 stay undefined.
template <class S, class D>
void cast(const S *src, D *dst, int64_t n) {
  constexpr bool via_i64 = std::is_floating_point_v<S> && std::is_integral_v<D> && sizeof(D) < 8;
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) {
    if constexpr (via_i64)
      dst[i] = static_cast<D>(static_cast<int64_t>(src[i]));
    else
      dst[i] = static_cast<D>(src[i]);
  }
}

template <class T>
void fill(T *p, int64_t n, T value) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] = value;
}

// p[i] = start + i * step, computed in double (not by repeated addition, which drifts).
template <class T>
void arange(T *p, int64_t n, double start, double step) {
#pragma omp parallel for simd schedule(static) if (n > kParallelMin)
  for (int64_t i = 0; i < n; ++i) p[i] = static_cast<T>(start + double(i) * step);
}

// --- instantiations -------------------------------------------------------------------------
#define NR_FLOATING(T)                                                                              \
  template void unary<T>(UnaryOp, const T *, T *, int64_t, double, double);                        \
  template void unary_grad_mul<T>(UnaryOp, const T *, const T *, T *, int64_t);                    \
  template void binary<T>(BinaryOp, int, const int64_t *, const T *, const int64_t *, const T *,   \
                          const int64_t *, T *);                                                   \
  template void compare<T>(CompareOp, int, const int64_t *, const T *, const int64_t *, const T *, \
                           const int64_t *, uint8_t *);                                            \
  template void where<T>(int, const int64_t *, const uint8_t *, const int64_t *, const T *,        \
                         const int64_t *, const T *, const int64_t *, T *);
NR_FLOATING(float)
NR_FLOATING(double)
#undef NR_FLOATING

#define NR_ALL_TYPES(T)                                                                    \
  template void copy_strided<T>(int, const int64_t *, const T *, const int64_t *, T *);  \
  template void fill<T>(T *, int64_t, T);                                                 \
  template void cast<T, float>(const T *, float *, int64_t);                              \
  template void cast<T, double>(const T *, double *, int64_t);                            \
  template void cast<T, int32_t>(const T *, int32_t *, int64_t);                          \
  template void cast<T, int64_t>(const T *, int64_t *, int64_t);                          \
  template void cast<T, uint8_t>(const T *, uint8_t *, int64_t);
NR_ALL_TYPES(float)
NR_ALL_TYPES(double)
NR_ALL_TYPES(int32_t)
NR_ALL_TYPES(int64_t)
NR_ALL_TYPES(uint8_t)
#undef NR_ALL_TYPES

template void arange<float>(float *, int64_t, double, double);
template void arange<double>(double *, int64_t, double, double);
template void arange<int32_t>(int32_t *, int64_t, double, double);
template void arange<int64_t>(int64_t *, int64_t, double, double);

}  // namespace nanorlhf::kernels::cpu
