// Gradient accumulation (TRL's gradient_accumulation_steps) and data parallelism: a global batch
// cut into shards, one per rank (nn/distributed.h), and each shard into micro-batches, whose
// gradients add up (the all-reduce sums the ranks') before one optimizer step. Every loss is a mean over the global batch, of
// sequences or of tokens. A micro-batch's own mean weighted by its share of that count (its
// sequences or tokens over the global batch's) sums to the global mean exactly, so the cut changes
// nothing but memory and float rounding. Normalising each micro-batch by its own count instead is
// the bug TRL's users met (a micro-batch of few tokens weighs as much as one of many).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "rlhf/run_dir.h"

namespace nanorlhf::rlhf {

// "<who>: a batch of <batch> <unit> does not divide into <R> ranks x gradient_accumulation_steps
// <steps> micro-batches" unless ranks x steps divides batch; unit names what the batch counts and
// its key: "pairs (batch_size)", "completions (batch_size x num_generations)".
void check_accumulation(const std::string &who, int64_t batch, int64_t steps, const std::string &unit);

// This rank's micro-batches of rows: its shard (the rank-th of world_size consecutive parts), cut
// into `steps` consecutive micro-batches. Parts differ in size by at most one row; a short last
// batch of an epoch gives fewer micro-batches (none, on a rank it does not reach), never an empty one.
std::vector<std::vector<size_t>> micro_batches(const std::vector<size_t> &rows, int64_t steps);
// rows cut into n consecutive parts whose sizes differ by at most one; part k of them.
std::vector<size_t> part_of(const std::vector<size_t> &rows, int64_t n, int64_t k);

// A micro-batch's share of a global count: part / whole, 0 when the whole is 0.
double share(double part, double whole);
// The sum of per_row over rows: a (micro-)batch's count of tokens, from each row's.
double sum_rows(const std::vector<double> &per_row, const std::vector<size_t> &rows);

// Each key's sum over the ranks (a key some rank lacks counts 0 there); m on one rank.
Metrics sum_over_ranks(const Metrics &m);

// The global batch's metrics from its micro-batches: each value a micro-batch's mean, weighted by
// that micro-batch's share of the metric's count (shares over all ranks' micro-batches sum to 1).
class AccumulatedMetrics {
 public:
  void add(const std::string &key, double micro_mean, double weight);
  void add(const Metrics &micro, double weight);  // every key with the same weight
  // The sums over every rank's micro-batches (collective: every rank calls it, as often).
  Metrics result() const;

 private:
  Metrics sum_;
};

}  // namespace nanorlhf::rlhf
