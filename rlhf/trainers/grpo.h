// GRPO (Shao et al. 2024, DeepSeekMath; the method behind DeepSeek-R1; TRL's GRPOTrainer): no value
// model. Each prompt is sampled G times, and a sample's advantage is its reward against the
// group's: the group is its own baseline. Trained on the reward model, the verifier, or both.
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "nn/tokenizer.h"
#include "rlhf/policy_run.h"
#include "rlhf/rewards.h"
#include "rlhf/rollout.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

struct GRPOConfig {
  int64_t num_generations = 8;         // G: samples per prompt (TRL's name and default)
  // KL weight of the k3 term. TRL's default 0.0: with a verifier the reward cannot be gamed. Against a
  // learned reward model the pipeline and `nanorlhf compare` set 0.04 (DeepSeekMath's value).
  double beta = 0.0;
  double epsilon = 0.2;                // lower clip: ratio >= 1 - epsilon
  double epsilon_high = 0.0;           // upper clip (DAPO's clip-higher: 0.28); 0 = epsilon
  int64_t num_iterations = 1;          // gradient steps per generation batch (mu in DeepSeekMath)
  std::string loss_type = "dapo";      // grpo | bnpo | dr_grpo | dapo (TRL's default)
  std::string scale_rewards = "group"; // group | batch | none (Dr. GRPO)
  bool mask_truncated_completions = false;  // responses without <|eos|> leave the loss (DAPO)
  PolicyRunOptions run{.out = "runs/grpo"};
  SamplingOptions sampling;
  RewardOptions rewards;
  uint64_t seed = 1;
  int64_t batch_size = 8;              // prompts per iteration (x num_generations completions)
  std::string device = "cpu";
  LoopOptions loop{.steps = 40, .log_every = 1};
  optim::OptimConfig optim = policy_optim(3e-5);
  void validate() const;
};
const OptionTable<GRPOConfig> &grpo_options();

// One GRPO run's state: the policy, the frozen reference (for the KL term and the kl metric), the
// reward and the optimiser. step() is one iteration: sample G per prompt, score, advantages, then
// num_iterations gradient steps on that batch.
class GRPOTrainer {
 public:
  GRPOTrainer(nn::GPT &policy, const nn::GPT &ref, Rewards reward, const nn::Tokenizer &tok, GRPOConfig opts);
  // prompts: batch_size user turns. Returns TRL's GRPO metric names.
  Metrics step(const std::vector<std::string> &prompts);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  const Rollout &last_rollout() const { return last_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  Rewards reward_;
  const nn::Tokenizer &tok_;
  GRPOConfig o_;
  optim::Optimization opt_;
  int64_t iter_ = 0, opt_steps_ = 0;
  Rollout last_;
};

// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_grpo(const GRPOConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
