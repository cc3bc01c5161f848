// rand_below (multiply-shift) and rand_unit (53-bit mantissa) on std::mt19937_64.
#include "rlhf/random.h"

#include <stdexcept>

namespace nanorlhf::rlhf {

uint64_t rand_below(std::mt19937_64& rng, uint64_t n) {
  if (n == 0) throw std::invalid_argument("rand_below: n must be > 0");
  // Multiply-shift (Lemire): deterministic, and bias of order n / 2^64 is irrelevant here.
  return uint64_t((unsigned __int128)rng() * n >> 64);
}

double rand_unit(std::mt19937_64& rng) { return double(rng() >> 11) * 0x1.0p-53; }

}  // namespace nanorlhf::rlhf
