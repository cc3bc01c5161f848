// One optimizer step as every trainer takes it: AdamW with weight decay on matrices only, the
// learning-rate schedule, and global-norm gradient clipping.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "nn/module.h"
#include "nn/optim.h"

namespace nanorlhf::optim {

struct OptimConfig {
  double lr = 1e-3;
  double min_lr_ratio = 0.1;  // final lr as a fraction of the peak (cosine/linear)
  double weight_decay = 0.1;
  double beta1 = 0.9, beta2 = 0.95;
  double grad_clip = 1.0;  // max global gradient norm; 0 = off
  int64_t warmup = 50;     // linear warm-up steps
  std::string schedule = "cosine";
  bool skip_nonfinite = false;  // skip a step whose gradient norm is NaN/inf instead of stopping the run
  void validate() const;  // an unknown schedule, beta1/beta2 >= 1
};

// The schedules lr_schedule knows.
const std::vector<std::string> &schedules();

// AdamW over a model, weight decay on matrices only (embeddings and Linear weights, dim >= 2; not
// on biases and LayerNorm gains, as in GPT-2/nanoGPT), with the lr schedule over `total_steps`
// and global-norm clipping.
class Optimization {
 public:
  Optimization(const nn::Module &model, const OptimConfig &cfg, int64_t total_steps);
  struct Stats { double lr = 0, grad_norm = 0; bool skipped = false; };
  // After backward: sets the scheduled lr for `step` (0-based), clips, steps AdamW, zeroes grads.
  // A non-finite gradient norm is an error naming the step (the run diverged), before any weight
  // changes; with skip_nonfinite the step is skipped instead (skipped = true, grads zeroed).
  Stats step(int64_t step);
  void zero_grad();
  const OptimConfig &config() const { return cfg_; }
  int64_t total_steps() const { return total_; }
  // Both AdamW groups' state ("decay.<key>", "no_decay.<key>"), for resumable checkpoints.
  std::map<std::string, Tensor> state_dict() const;
  void load_state_dict(const std::map<std::string, Tensor> &state);

 private:
  OptimConfig cfg_;
  int64_t total_;
  std::vector<Tensor> params_;
  std::unique_ptr<AdamW> decay_, no_decay_;
};

}  // namespace nanorlhf::optim
