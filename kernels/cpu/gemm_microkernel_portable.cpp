// Rung 3, portable flavour: the same packed driver with a 4x16 micro-kernel in plain C++
// (the accumulator tile is a local array the compiler keeps in SSE registers). Runs anywhere;
// slower than the vector flavours but already far ahead of the blocked loops.
#include "kernels/cpu/gemm_packed_impl.h"

namespace nanorlhf::kernels::cpu::detail {
namespace {

constexpr int kMR = 4, kNR = 16;

void kernel_4x16(int64_t kc, const float *a, const float *b, float *c, int64_t ldc, float alpha,
                 float beta, int m, int n) {
  float acc[kMR][kNR] = {};
  for (int64_t k = 0; k < kc; ++k, a += kMR, b += kNR)
    for (int r = 0; r < kMR; ++r)
      for (int j = 0; j < kNR; ++j) acc[r][j] += a[r] * b[j];
  for (int r = 0; r < m; ++r)
    for (int j = 0; j < n; ++j) {
      float &cv = c[r * ldc + j];
      cv = beta == 0.0f ? alpha * acc[r][j] : alpha * acc[r][j] + beta * cv;
    }
}

}  // namespace

const packed_isa *isa_portable() {
  static const packed_isa isa{"portable", kMR, kNR, /*mc=*/128, /*kc=*/256, kernel_4x16,
                              pack_a_generic<kMR>, pack_b_generic<kNR>};
  return &isa;
}

}  // namespace nanorlhf::kernels::cpu::detail
