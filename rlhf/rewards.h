// The training reward of the sampling trainers (REINFORCE/RLOO, PPO, GRPO), chosen by name as in
// TRL: reward_funcs "reward_model" (the learned Bradley-Terry model), "verifier" (the rule-based
// check of rlhf/verifier.h: 1 right, 0 wrong or not checkable), or both with reward_weights.
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "rlhf/options.h"
#include "rlhf/rollout.h"

namespace nanorlhf::rlhf {

struct RewardOptions {
  std::string reward_funcs = "reward_model";  // comma-separated names
  std::string reward_weights;                 // comma-separated weights, one per function; empty = all 1
  void validate() const;                      // unknown names (listing the valid ones), weight count
  bool uses(const std::string &name) const;   // whether reward_funcs names this function
};
// reward_funcs, reward_weights.
const OptionTable<RewardOptions> &reward_funcs_options();
// "reward_model", "verifier".
const std::vector<std::string> &reward_func_names();

// The verifier as a reward function: [B], 1 for a right answer in the task's format, else 0
// (also for a prompt with no checkable task).
Tensor verifier_scores(const Rollout &r);

// The weighted sum the options name. rm is the loaded reward model (null when none was given:
// an error if "reward_model" is named). `who` prefixes errors ("grpo: ...").
Rewards make_rewards(const RewardOptions &o, const nn::ScalarModel *rm, const std::string &who);

}  // namespace nanorlhf::rlhf
