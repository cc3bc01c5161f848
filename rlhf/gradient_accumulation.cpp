#include "rlhf/gradient_accumulation.h"

#include <algorithm>

#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::rlhf {

void check_accumulation(const std::string &who, int64_t batch, int64_t steps, const std::string &unit) {
  NR_CHECK(steps >= 1, "{}: gradient_accumulation_steps must be >= 1, got {}", who, steps);
  NR_CHECK(batch % steps == 0, "{}: a batch of {} {} does not divide into gradient_accumulation_steps {} micro-batches",
           who, batch, unit, steps);
}

std::vector<std::vector<size_t>> micro_batches(const std::vector<size_t> &rows, int64_t steps) {
  NR_CHECK(steps >= 1, "micro_batches: steps must be >= 1, got {}", steps);
  const size_t n = std::min(rows.size(), (size_t)steps);
  std::vector<std::vector<size_t>> out;
  for (size_t k = 0, begin = 0; k < n; ++k) {
    const size_t end = begin + rows.size() / n + (k < rows.size() % n ? 1 : 0);
    out.emplace_back(rows.begin() + (std::ptrdiff_t)begin, rows.begin() + (std::ptrdiff_t)end);
    begin = end;
  }
  return out;
}

double share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

void AccumulatedMetrics::add(const std::string &key, double micro_mean, double weight) {
  sum_[key] += micro_mean * weight;
}

void AccumulatedMetrics::add(const Metrics &micro, double weight) {
  for (const auto &[k, v] : micro) add(k, v, weight);
}

}  // namespace nanorlhf::rlhf
