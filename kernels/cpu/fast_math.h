// A vectorisable float exp for the CPU elementwise kernels (glibc's expf is a call per element that
// the compiler cannot vectorise). Branch-free, so a `#pragma omp simd` loop that calls it vectorises.
//
// Method: e^x = 2^n e^r with n = round(x / ln 2), r = x - n ln 2 (Cody-Waite: ln 2 split in a short
// high part, exact in the product for |n| <= 2^14, and a low part), |r| <= ln2/2 ~ 0.347; e^r by its
// degree-7 Taylor polynomial written as 1 + r + r^2 P(r) (truncation r^8/8! < 5.2e-9 relative), so
// the result is within about 1.5 ulp (|rel err| < 2e-7) of the exact value wherever it is a normal
// float. 2^n is applied as two factors 2^(n/2) 2^(n - n/2), each a normal float for n in
// [-150, 128], so gradual underflow rounds once and overflow gives +inf.
// Limits: exp(x) = +inf for x > ~88.72 (and x = +inf), 0 for x < ~-103.97 (and x = -inf), NaN -> NaN.
// In the default (SSE2) target there is no FMA, so vector lanes and a scalar tail compute the same
// IEEE operations and a value does not depend on where a loop splits its range.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>

namespace nanorlhf::kernels::cpu {

// c ? a : b through integer masks. GCC 12 turns a chain of FP selects into branches, and a loop
// with branches around FP operations (which may trap) is not if-converted, hence not vectorised.
inline float select_bits(bool c, float a, float b) {
  const int32_t m = -int32_t(c);
  return std::bit_cast<float>((std::bit_cast<int32_t>(a) & m) | (std::bit_cast<int32_t>(b) & ~m));
}

inline float fast_expf(float x) {
  const float hi = 88.8f, lo = -104.0f;  // beyond these the result is inf / 0 anyway
  // Below lo the lane computes e^0 and is zeroed at the end: an underflowing multiply would take a
  // microcode assist (~100 cycles) on every masked attention score (-inf). NaN fails both compares,
  // stays NaN through every step below and comes out NaN.
  const float xc = select_bits(x > hi, hi, select_bits(x < lo, 0.0f, x));
  const float log2e = 1.44269504088896341f;
  const float ln2_hi = 0.693359375f;     // 355/512: n * ln2_hi is exact
  const float ln2_lo = -2.12194440e-4f;  // ln 2 - ln2_hi
  const float shifter = 12582912.0f;     // 1.5 * 2^23: adding it rounds to an integer (|t| < 2^22)
  const float t = xc * log2e + shifter;
  const float n = t - shifter;
  float r = xc - n * ln2_hi;
  r = r - n * ln2_lo;
  // e^r = 1 + r + r^2 (1/2 + r/6 + r^2/24 + r^3/120 + r^4/720 + r^5/5040)
  float p = 1.98412698e-4f;
  p = p * r + 1.38888889e-3f;
  p = p * r + 8.33333333e-3f;
  p = p * r + 4.16666667e-2f;
  p = p * r + 1.66666667e-1f;
  p = p * r + 0.5f;
  const float er = (r * r) * p + r + 1.0f;
  // n in [-150, 128]: read it from the low bits of t (t = 1.5 * 2^23 + n exactly), which is also
  // defined for NaN, unlike a float -> int conversion.
  const int32_t ni = std::bit_cast<int32_t>(t) - 0x4B400000;
  const int32_t n1 = ni >> 1, n2 = ni - n1;
  const float s1 = std::bit_cast<float>((n1 + 127) << 23);
  const float s2 = std::bit_cast<float>((n2 + 127) << 23);
  const float y = (er * s1) * s2;
  return select_bits(x < lo, 0.0f, y);
}

// e^x for the kernels' element type: the vectorisable fast_expf for float, std::exp (correctly
// rounded to within glibc's accuracy) for double.
template <class T> inline T exp_of(T x) {
  if constexpr (sizeof(T) == sizeof(float)) return fast_expf(x);
  else return std::exp(x);
}

}  // namespace nanorlhf::kernels::cpu
