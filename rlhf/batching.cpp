// The epoch sampler.
#include "rlhf/batching.h"

#include <algorithm>

#include "rlhf/data.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

EpochSampler::EpochSampler(size_t n, size_t batch, uint64_t seed, ShortBatch rule)
    : n_(n), batch_(batch), seed_(seed), rule_(rule) {
  NR_CHECK(n >= 1, "no examples to batch");
  NR_CHECK(batch >= 1, "batch size must be >= 1, got {}", batch);
}

std::vector<size_t> EpochSampler::next() {
  std::vector<size_t> rows;
  while (rows.size() < batch_) {
    if (cursor_ == order_.size()) {
      if (!rows.empty() && rule_ == ShortBatch::kEndsEpoch) break;
      order_ = shuffled_indices(n_, epoch_seed(seed_, uint64_t(epoch_++)));
      cursor_ = 0;
    }
    rows.push_back(order_[cursor_++]);
  }
  return rows;
}

void EpochSampler::seek(Position p) {
  NR_CHECK(p.epoch >= 0 && (p.epoch > 0 || p.cursor == 0) && p.cursor <= n_,
           "sampler position (epoch {}, row {}) does not fit {} rows", p.epoch, p.cursor, n_);
  order_ = p.epoch > 0 ? shuffled_indices(n_, epoch_seed(seed_, uint64_t(p.epoch - 1))) : std::vector<size_t>{};
  epoch_ = p.epoch;
  cursor_ = p.cursor;
}

std::vector<size_t> index_range(size_t begin, size_t end) {
  std::vector<size_t> v;
  for (size_t i = begin; i < end; ++i) v.push_back(i);
  return v;
}

}  // namespace nanorlhf::rlhf
