// Batching: one seeded epoch sampler for every trainer that walks a dataset, and the seed streams
// derived from a run's seed (each mixing constant written once, here).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nanorlhf::rlhf {

// Seed streams: the same run seed feeds several independent streams, one per purpose.
inline constexpr uint64_t kEpochMix = 1000003;                 // epoch shuffles, per-iteration sampling
inline constexpr uint64_t kMinibatchMix = 7919;                // minibatch permutations inside an iteration
inline constexpr uint64_t kHostRngMix = 0x9E3779B97F4A7C15ull;  // host std::mt19937_64 streams
// The shuffle of epoch e of a dataset.
inline uint64_t epoch_seed(uint64_t seed, uint64_t epoch) { return seed * kEpochMix + epoch; }
// The sampling of iteration i (rollouts of REINFORCE, PPO, RAFT, rounds of online DPO).
inline uint64_t iteration_seed(uint64_t seed, uint64_t iteration) { return seed * kEpochMix + iteration; }
// The permutation of pass p over one iteration's rollouts (PPO epochs, RAFT and online DPO passes).
inline uint64_t minibatch_seed(uint64_t seed, uint64_t pass) { return seed * kMinibatchMix + pass; }
// A host RNG stream: 1 = pretraining windows, 7 = the preference annotator's coin flips.
inline uint64_t host_rng_seed(uint64_t seed, uint64_t stream) { return seed * kHostRngMix + stream; }

// What a batch does at the end of an epoch.
enum class ShortBatch {
  kEndsEpoch,  // the epoch's last batch may be short; a batch never spans two epochs' orders
  kFillFromNext,  // every batch is full, topped up from the next epoch's order (prompt streams)
};

// Seeded epochs of shuffled indices 0..n-1: epoch e uses shuffled_indices(n, epoch_seed(seed, e)).
class EpochSampler {
 public:
  EpochSampler(size_t n, size_t batch, uint64_t seed, ShortBatch rule);
  std::vector<size_t> next();
  size_t size() const { return n_; }
  // Where the sampler stands: epochs begun and rows taken from the current one (checkpoints).
  struct Position {
    int64_t epoch = 0;
    size_t cursor = 0;
  };
  Position position() const { return {epoch_, cursor_}; }
  void seek(Position p);

 private:
  size_t n_, batch_;
  uint64_t seed_;
  ShortBatch rule_;
  std::vector<size_t> order_;
  size_t cursor_ = 0;
  int64_t epoch_ = 0;
};

// [begin, end) as indices, for walking a fixed order in chunks.
std::vector<size_t> index_range(size_t begin, size_t end);

}  // namespace nanorlhf::rlhf
