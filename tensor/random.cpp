// The global seed and Philox counter.
#include "tensor/random.h"

namespace nanorlhf {

namespace {
uint64_t g_seed = 0x5eed, g_offset = 0;
}

void manual_seed(uint64_t seed) { g_seed = seed; g_offset = 0; }
uint64_t initial_seed() { return g_seed; }
uint64_t philox_reserve(uint64_t n) {
  uint64_t o = g_offset;
  g_offset += n / 2 + 4;  // uniform uses i/4, normal i/2 counters: n/2+4 blocks covers both
  return o;
}
RngState get_rng_state() { return {g_seed, g_offset}; }
void set_rng_state(RngState state) { g_seed = state.seed; g_offset = state.offset; }
RngStateGuard::RngStateGuard() : seed(g_seed), offset(g_offset) {}
RngStateGuard::~RngStateGuard() { g_seed = seed; g_offset = offset; }

}  // namespace nanorlhf
