// RAFT, reward-ranked fine-tuning (lecture: "Further reading"; Dong et al. 2023, alg. 1): each
// iteration samples K responses per prompt, keeps the best by the learned reward, and fine-tunes on
// the kept responses with the SFT loss.
#pragma once
#include <string>
#include <vector>

#include "rlhf/trainers/reinforce.h"

namespace nanorlhf::rlhf {

struct RaftOptions {
  int64_t batch_size = 32;  // prompts per iteration
  int64_t k = 4;            // responses sampled per prompt; the best one is kept
  int64_t sft_epochs = 1;   // passes over the kept responses per iteration
  int64_t minibatch_size = 16;
  SamplingOptions sampling;
  OptimConfig optim;
  uint64_t seed = 1;
};

class RaftTrainer {
 public:
  RaftTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok, RaftOptions opts);
  // One iteration: sample K per prompt, rank by reward, SFT on the best. Metrics: objective/scores
  // (all samples), raft/kept_scores, objective/kl (of the kept responses, k1 to the reference), loss.
  Metrics step(const std::vector<std::string> &prompts);
  // The rows kept from the last rollout (the best of each group of K).
  const std::vector<int64_t> &kept() const { return kept_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  RewardFn reward_;
  const nn::Tokenizer &tok_;
  RaftOptions o_;
  Optimization opt_;
  int64_t iter_ = 0, updates_ = 0;
  std::vector<int64_t> kept_;
};

std::vector<ConfigKey> raft_schema();
Metrics run_raft(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
