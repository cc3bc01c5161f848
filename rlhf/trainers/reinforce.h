// REINFORCE for language models (lecture: "RL"; Ahmadian et al. 2024): the whole response is one
// action, R = r(x, y) - beta log(pi/pi_ref) at sequence level, with a moving-average or RLOO baseline.
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "nn/tokenizer.h"
#include "rlhf/policy_run.h"
#include "rlhf/rollout.h"
#include "rlhf/train_state.h"

namespace nanorlhf::rlhf {

struct ReinforceConfig {
  double beta = 0.05;            // KL coefficient
  std::string kl_estimator = "k1";  // the sequence KL of R and objective/kl: "k1" or "k3" summed over tokens (TRL's name)
  int64_t rloo_k = 1;            // samples per prompt; >= 2 replaces the moving average by the RLOO baseline
  double baseline_decay = 0.9;   // moving-average baseline (rloo_k = 1)
  PolicyRunOptions run{.out = "runs/reinforce"};
  SamplingOptions sampling;
  RewardOptions rewards;
  uint64_t seed = 1;
  int64_t batch_size = 32;       // prompts per iteration
  std::string device = "cpu";
  LoopOptions loop{.steps = 40, .log_every = 1};
  optim::OptimConfig optim = policy_optim(3e-5);
};
const OptionTable<ReinforceConfig> &reinforce_options();

// One REINFORCE run's state: the policy it trains, the frozen reference, the reward, the optimiser
// and the baseline. step() is one iteration: sample, score, one gradient step.
class ReinforceTrainer {
 public:
  ReinforceTrainer(nn::GPT &policy, const nn::GPT &ref, Rewards reward, const nn::Tokenizer &tok,
                   ReinforceConfig opts);
  // prompts: batch_size user turns (each sampled rloo_k times). Returns TRL-named metrics.
  Metrics step(const std::vector<std::string> &prompts);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  const Rollout &last_rollout() const { return last_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  Rewards reward_;
  const nn::Tokenizer &tok_;
  ReinforceConfig o_;
  optim::Optimization opt_;
  double baseline_ = 0;
  bool have_baseline_ = false;
  int64_t iter_ = 0;
  Rollout last_;
};

// quiet: no progress output (tests). Returns the final evaluation's metrics (empty without an oracle).
Metrics run_reinforce(const ReinforceConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
