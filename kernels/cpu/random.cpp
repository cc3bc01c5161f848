// CPU random fills on the Philox4x32-10 streams of kernels/philox.h: element i of (seed, offset)
// is bit-identical to philox_uniform/philox_normal(seed, offset, i), and so to the CUDA draws.
#include <cstdint>

#include "kernels/cpu/elementwise.h"
#include "kernels/philox.h"

namespace nanorlhf::kernels::cpu {
namespace {
constexpr int64_t kParallelMin = 1 << 14;  // Philox is ~40 integer ops per block: parallel early
}

// out[i] = low + (high - low) * u_i, u_i = philox_uniform(seed, offset, i) in [0, 1).
// One Philox block gives the four lanes of elements 4c..4c+3, so each block is computed once
// (philox_uniform itself recomputes it per element). The scaling is done in double and rounded
// once to T; for float a u_i just below 1 may round to `high`.
template <class T>
void uniform(T *out, int64_t n, uint64_t seed, uint64_t offset, double low, double high) {
  const int64_t blocks = (n + 3) / 4;
  const double scale = high - low;
  const uint32_t k0 = uint32_t(seed), k1 = uint32_t(seed >> 32);
#pragma omp parallel for schedule(static) if (n > kParallelMin)
  for (int64_t blk = 0; blk < blocks; ++blk) {
    const uint64_t c = offset + uint64_t(blk);
    const Philox4 r = philox4x32(uint32_t(c), uint32_t(c >> 32), 0, 0, k0, k1);
    for (int l = 0; l < 4; ++l) {
      const int64_t i = blk * 4 + l;
      if (i >= n) break;
      const float u = float(r.x[l] >> 8) * (1.0f / 16777216.0f);
      out[i] = static_cast<T>(low + scale * double(u));
    }
  }
}

// out[i] = mean + std * z_i, z_i = philox_normal(seed, offset, i) (Box-Muller, two per block).
// The draw is computed by philox_normal itself so that CPU and CUDA share one formula exactly.
template <class T>
void normal(T *out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std) {
#pragma omp parallel for schedule(static) if (n > kParallelMin / 4)
  for (int64_t i = 0; i < n; ++i)
    out[i] = static_cast<T>(mean + std * double(philox_normal(seed, offset, uint64_t(i))));
}

template void uniform<float>(float *, int64_t, uint64_t, uint64_t, double, double);
template void uniform<double>(double *, int64_t, uint64_t, uint64_t, double, double);
template void normal<float>(float *, int64_t, uint64_t, uint64_t, double, double);
template void normal<double>(double *, int64_t, uint64_t, uint64_t, double, double);

}  // namespace nanorlhf::kernels::cpu
