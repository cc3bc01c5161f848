// PPO for RLHF (lecture: "PPO"; Schulman et al. 2017; InstructGPT; "The N Implementation Details of
// RLHF with PPO"): rollouts, per-token KL-shaped rewards, GAE, clipped policy and value losses.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "nn/tokenizer.h"
#include "rlhf/policy_run.h"
#include "rlhf/rollout.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

struct PPOConfig {
  // TRL's default: the whole rollout batch is one minibatch, so ppo_epochs gradient steps per batch.
  // With 4 minibatches (16 steps) PPO over-optimised the reward model on 3 of 6 measured runs and
  // refused harmless requests (bench/RESULTS.md, "PPO: one minibatch per rollout batch").
  int64_t num_mini_batches = 1;  // minibatches per rollout batch per epoch (TRL's name)
  int64_t ppo_epochs = 4;        // passes over each rollout batch
  double beta = 0.05;            // initial KL coefficient
  std::string kl_estimator = "k1";  // per-token KL of the reward and objective/kl: "k1" or "k3" (TRL's name)
  bool adaptive_kl = false;      // Ziegler et al. controller towards target_kl
  double target_kl = 6.0;        // nats per sequence (lm-human-preferences)
  int64_t kl_horizon = 10000;
  double gamma = 1.0, lam = 0.95;
  double cliprange = 0.2, cliprange_value = 0.2;
  double vf_coef = 0.1;
  bool whiten_rewards = false;   // per-token rewards whitened before GAE (mean kept)
  PolicyRunOptions run{.out = "runs/ppo"};
  SamplingOptions sampling;
  RewardOptions rewards;
  uint64_t seed = 1;
  int64_t batch_size = 32;       // prompts (= rollouts) per iteration
  std::string device = "cpu";
  LoopOptions loop{.steps = 30, .log_every = 1};
  // lr 1e-5: on an early world 3e-5 and 1e-4 drifted to KL 5-8 nats and gamed the reward model.
  optim::OptimConfig optim = policy_optim(1e-5);  // policy and value model: the same settings, each its own AdamW
  void validate() const;
  int64_t minibatch_size() const { return (batch_size + num_mini_batches - 1) / num_mini_batches; }
};
const OptionTable<PPOConfig> &ppo_options();

// One PPO run's state. step() is one iteration: a rollout batch, then ppo_epochs passes of
// minibatch updates of the policy and the value model.
class PPOTrainer {
 public:
  // value: a ScalarModel on the policy's tokens (initialised from the reward model by the caller).
  PPOTrainer(nn::GPT &policy, const nn::GPT &ref, nn::ScalarModel &value, Rewards reward, const nn::Tokenizer &tok,
             PPOConfig opts);
  Metrics step(const std::vector<std::string> &prompts);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  double beta() const { return beta_; }
  const Rollout &last_rollout() const { return last_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  nn::ScalarModel &value_;
  Rewards reward_;
  const nn::Tokenizer &tok_;
  PPOConfig o_;
  optim::Optimization policy_opt_, value_opt_;
  double beta_;
  optim::Optimization::Stats last_stats_;
  int64_t iter_ = 0, updates_ = 0;
  Rollout last_;
};

// V(s_t) for the state before each response token: values at positions P-1 .. P+N-2. [B, N]
Tensor response_values(const nn::ScalarModel &value, const nn::GenerationOutput &gen);

// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_ppo(const PPOConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
