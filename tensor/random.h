// The global random state: a seed and a Philox counter offset. Each draw of n numbers consumes
// its own block of the counter, so streams are reproducible and identical on CPU and CUDA.
#pragma once
#include <cstdint>

namespace nanorlhf {

void manual_seed(uint64_t seed);
uint64_t initial_seed();
// Reserve n counter values; returns the offset where this draw starts.
uint64_t philox_reserve(uint64_t n);

// The whole random state, for checkpoints that resume a run bitwise (torch.get_rng_state's role).
struct RngState {
  uint64_t seed = 0, offset = 0;
};
RngState get_rng_state();
void set_rng_state(RngState state);
// Saves and restores the random state (for reproducible sub-computations, e.g. evaluation).
struct RngStateGuard {
  RngStateGuard();
  ~RngStateGuard();
  uint64_t seed, offset;
};

}  // namespace nanorlhf
