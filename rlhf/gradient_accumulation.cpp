#include "rlhf/gradient_accumulation.h"

#include <algorithm>


#include "nn/distributed.h"

#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::rlhf {

void check_accumulation(const std::string &who, int64_t batch, int64_t steps, const std::string &unit) {
  NR_CHECK(steps >= 1, "{}: gradient_accumulation_steps must be >= 1, got {}", who, steps);
  const int64_t ranks = dist::world_size();
  NR_CHECK(batch % (ranks * steps) == 0, "{}: a batch of {} {} does not divide into {}gradient_accumulation_steps {} "
           "micro-batches", who, batch, unit, ranks > 1 ? fmt::format("{} ranks x ", ranks) : "", steps);
}

std::vector<size_t> part_of(const std::vector<size_t> &rows, int64_t n, int64_t k) {
  const size_t N = rows.size(), q = N / (size_t)n, r = N % (size_t)n;
  const size_t begin = (size_t)k * q + std::min((size_t)k, r), end = begin + q + ((size_t)k < r ? 1 : 0);
  return std::vector<size_t>(rows.begin() + (std::ptrdiff_t)begin, rows.begin() + (std::ptrdiff_t)end);
}

std::vector<std::vector<size_t>> micro_batches(const std::vector<size_t> &rows, int64_t steps) {
  NR_CHECK(steps >= 1, "micro_batches: steps must be >= 1, got {}", steps);
  const std::vector<size_t> shard = part_of(rows, dist::world_size(), dist::rank());
  std::vector<std::vector<size_t>> out;
  for (int64_t k = 0; k < steps; ++k)
    if (std::vector<size_t> p = part_of(shard, steps, k); !p.empty()) out.push_back(std::move(p));
  return out;
}

double share(double part, double whole) { return whole > 0 ? part / whole : 0.0; }

double sum_rows(const std::vector<double> &per_row, const std::vector<size_t> &rows) {
  double n = 0;
  for (size_t r : rows) n += per_row.at(r);
  return n;
}

Metrics sum_over_ranks(const Metrics &m) {
  if (dist::world_size() == 1) return m;
  std::string keys;
  std::vector<double> values;
  for (const auto &[k, v] : m) keys += k + '\n', values.push_back(v);  // NaN passes: the loop reports it
  const std::vector<double> all_values = dist::all_gather(values);
  Metrics out;
  size_t at = 0;
  for (const std::string &rank_keys : dist::all_gather(keys))
    for (size_t b = 0, e; (e = rank_keys.find('\n', b)) != std::string::npos; b = e + 1)
      out[rank_keys.substr(b, e - b)] += all_values.at(at++);
  return out;
}

Metrics AccumulatedMetrics::result() const { return sum_over_ranks(sum_); }

void AccumulatedMetrics::add(const std::string &key, double micro_mean, double weight) {
  sum_[key] += micro_mean * weight;
}

void AccumulatedMetrics::add(const Metrics &micro, double weight) {
  for (const auto &[k, v] : micro) add(k, v, weight);
}

}  // namespace nanorlhf::rlhf
