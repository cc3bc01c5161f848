// Philox4x32-10 counter-based RNG (Salmon et al., SC'11), shared by CPU and CUDA so both draw the
// same stream: element i of a draw with (seed, offset) depends only on (seed, offset + i).
#pragma once
#include <cmath>
#include <cstdint>

#include "kernels/ops.h"

namespace nanorlhf::kernels {

struct Philox4 { uint32_t x[4]; };

NR_HD uint32_t mulhilo32(uint32_t a, uint32_t b, uint32_t* hi) {
  uint64_t p = (uint64_t)a * (uint64_t)b;
  *hi = (uint32_t)(p >> 32);
  return (uint32_t)p;
}

// Ten rounds of Philox on counter (c0..c3) with key (k0,k1).
NR_HD Philox4 philox4x32(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
  for (int r = 0; r < 10; ++r) {
    uint32_t hi0, hi1;
    uint32_t lo0 = mulhilo32(0xD2511F53u, c0, &hi0);
    uint32_t lo1 = mulhilo32(0xCD9E8D57u, c2, &hi1);
    uint32_t n0 = hi1 ^ c1 ^ k0, n1 = lo1, n2 = hi0 ^ c3 ^ k1, n3 = lo0;
    c0 = n0; c1 = n1; c2 = n2; c3 = n3;
    k0 += 0x9E3779B9u; k1 += 0xBB67AE85u;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// Uniform in [0, 1) for element `i` of the stream (seed, offset): 24 random bits.
NR_HD float philox_uniform(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t c = offset + i / 4;
  Philox4 r = philox4x32((uint32_t)c, (uint32_t)(c >> 32), 0, 0, (uint32_t)seed, (uint32_t)(seed >> 32));
  return (float)(r.x[i % 4] >> 8) * (1.0f / 16777216.0f);
}

// Standard normal for element `i` (Box-Muller on two lanes of one Philox block).
NR_HD float philox_normal(uint64_t seed, uint64_t offset, uint64_t i) {
  uint64_t c = offset + i / 2;
  Philox4 r = philox4x32((uint32_t)c, (uint32_t)(c >> 32), 1, 0, (uint32_t)seed, (uint32_t)(seed >> 32));
  uint32_t a = r.x[2 * (i % 2)], b = r.x[2 * (i % 2) + 1];
  float u1 = ((float)(a >> 8) + 1.0f) * (1.0f / 16777216.0f);  // (0, 1]
  float u2 = (float)(b >> 8) * (1.0f / 16777216.0f);
  return sqrtf(-2.0f * logf(u1)) * cosf(6.283185307179586f * u2);
}

}  // namespace nanorlhf::kernels
