// Iterative (online) DPO (lecture: "Further reading"; Xiong et al. 2023, RLHFlow recipe): each round
// samples K responses per prompt, scores them with the learned reward, pairs best against worst, and
// runs DPO from the previous round's model, which is also that round's reference. Built from DPO.
#pragma once
#include <string>
#include <vector>

#include "rlhf/trainers/dpo.h"

namespace nanorlhf::rlhf {

struct OnlineDPOConfig {
  int64_t k = 4;           // responses per prompt (best vs worst form one pair)
  int64_t dpo_epochs = 2;  // passes over each round's pairs
  DPOConfig dpo;           // loss_type, beta, label_smoothing, batch_size of each round's DPO
  PolicyRunOptions run{.out = "runs/online_dpo"};
  SamplingOptions sampling;
  uint64_t seed = 1;
  int64_t batch_size = 64;  // prompts per round
  std::string device = "cpu";
  LoopOptions loop{.steps = 4, .log_every = 1};  // steps = rounds
  optim::OptimConfig optim = policy_optim(3e-5);  // each round's DPO; its schedule spans the round
  void validate() const;
};
const OptionTable<OnlineDPOConfig> &online_dpo_options();

// Best-vs-worst pairs of a rollout of K consecutive responses per prompt, by its scores [n K];
// prompts whose best and worst tie give no pair. Responses keep their <|eos|> (or its absence).
std::vector<PreferencePair> best_worst_pairs(const Rollout &r, int64_t k, const nn::Tokenizer &tok);

// One round on `prompts`; the policy is updated in place. Metrics: objective/scores, the DPO
// metrics averaged over the round, online_dpo/pairs, objective/kl (to the round's reference).
Metrics online_dpo_round(nn::GPT &policy, const RewardFn &reward, const nn::Tokenizer &tok,
                         const std::vector<std::string> &prompts, const OnlineDPOConfig &o, int64_t round);

Metrics run_online_dpo(const OnlineDPOConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
