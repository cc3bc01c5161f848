// PPO for RLHF (lecture: "PPO"; Schulman et al. 2017; InstructGPT; "The N Implementation Details of
// RLHF with PPO"): rollouts, per-token KL-shaped rewards, GAE, clipped policy and value losses.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "rlhf/trainers/reinforce.h"

namespace nanorlhf::rlhf {

struct PPOOptions {
  int64_t batch_size = 32;       // prompts (= rollouts) per iteration
  int64_t minibatch_size = 32;   // rows per gradient step (the whole batch: TRL's num_mini_batches = 1)
  int64_t ppo_epochs = 4;        // passes over each rollout batch
  double beta = 0.05;            // initial KL coefficient
  bool adaptive_kl = false;      // Ziegler et al. controller towards target_kl
  double target_kl = 6.0;        // nats per sequence (lm-human-preferences)
  int64_t kl_horizon = 10000;
  double gamma = 1.0, lam = 0.95;
  double cliprange = 0.2, cliprange_value = 0.2;
  double vf_coef = 0.1;
  bool whiten_rewards = false;   // per-token rewards whitened before GAE (mean kept)
  SamplingOptions sampling;
  OptimConfig optim;             // policy and value model share its settings, each its own AdamW
  uint64_t seed = 1;
};

// One PPO run's state. step() is one iteration: a rollout batch, then ppo_epochs passes of
// minibatch updates of the policy and the value model.
class PPOTrainer {
 public:
  // value: a ScalarModel on the policy's tokens (initialised from the reward model by the caller).
  PPOTrainer(nn::GPT &policy, const nn::GPT &ref, nn::ScalarModel &value, RewardFn reward, const nn::Tokenizer &tok,
             PPOOptions opts);
  Metrics step(const std::vector<std::string> &prompts);
  double beta() const { return beta_; }
  const Rollout &last_rollout() const { return last_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  nn::ScalarModel &value_;
  RewardFn reward_;
  const nn::Tokenizer &tok_;
  PPOOptions o_;
  Optimization policy_opt_, value_opt_;
  double beta_;
  Optimization::Stats last_stats_;
  int64_t iter_ = 0, updates_ = 0;
  Rollout last_;
};

// The rows `idx` of a rollout (same P and N: a minibatch).
nn::GenerationOutput select_rows(const nn::GenerationOutput &gen, const std::vector<int64_t> &idx);
// V(s_t) for the state before each response token: values at positions P-1 .. P+N-2. [B, N]
Tensor response_values(const nn::ScalarModel &value, const nn::GenerationOutput &gen);

std::vector<ConfigKey> ppo_schema();
// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_ppo(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
