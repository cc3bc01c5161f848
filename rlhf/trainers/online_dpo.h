// Iterative (online) DPO (lecture: "Further reading"; Xiong et al. 2023, RLHFlow recipe): each round
// samples K responses per prompt, scores them with the learned reward, pairs best against worst, and
// runs DPO from the previous round's model, which is also that round's reference.
#pragma once
#include <string>
#include <vector>

#include "rlhf/trainers/dpo.h"
#include "rlhf/trainers/reinforce.h"

namespace nanorlhf::rlhf {

struct OnlineDPOOptions {
  int64_t prompts_per_round = 64;
  int64_t k = 4;           // responses per prompt (best vs worst form one pair)
  int64_t dpo_epochs = 2;  // passes over each round's pairs
  DPOOptions dpo;          // loss type, beta, batch size, optimiser (optim.steps: per round)
  SamplingOptions sampling;
  uint64_t seed = 1;
};

// Best-vs-worst pairs of a rollout of K consecutive responses per prompt, by score [n K]; prompts
// whose best and worst tie give no pair. Responses keep their <|eos|> (or its absence).
std::vector<TokenizedPair> best_worst_pairs(const Rollout &r, const Tensor &score, int64_t k, const nn::Tokenizer &tok);

// One round on `prompts`; the policy is updated in place. Metrics: objective/scores, the DPO
// metrics averaged over the round, online_dpo/pairs, objective/kl (to the round's reference).
Metrics online_dpo_round(nn::GPT &policy, const RewardFn &reward, const nn::Tokenizer &tok,
                         const std::vector<std::string> &prompts, const OnlineDPOOptions &o, int64_t round);

std::vector<ConfigKey> online_dpo_schema();
Metrics run_online_dpo(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
