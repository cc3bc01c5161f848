// Deterministic random helpers on std::mt19937_64 (the world, pretraining batches, preference pairs):
// std::uniform_int_distribution and friends differ across standard libraries, the engine does not.
#pragma once

#include <cstdint>
#include <random>
#include <utility>
#include <vector>

namespace nanorlhf::rlhf {

uint64_t rand_below(std::mt19937_64& rng, uint64_t n);  // uniform in [0, n), n > 0
double rand_unit(std::mt19937_64& rng);                   // uniform in [0, 1), 53 bits
template <class T>
const T& rand_choice(std::mt19937_64& rng, const std::vector<T>& v) {
  return v[rand_below(rng, v.size())];
}
template <class T>
void rand_shuffle(std::mt19937_64& rng, std::vector<T>& v) {  // Fisher-Yates
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rand_below(rng, i)]);
}

}  // namespace nanorlhf::rlhf
