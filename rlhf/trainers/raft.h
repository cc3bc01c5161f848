// RAFT, reward-ranked fine-tuning (lecture: "Further reading"; Dong et al. 2023, alg. 1): each
// iteration samples K responses per prompt, keeps the best by the learned reward, and fine-tunes on
// the kept responses with the SFT loss.
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

struct RaftConfig {
  int64_t k = 4;               // responses sampled per prompt; the best one is kept
  int64_t sft_epochs = 1;      // passes over the kept responses per iteration
  int64_t minibatch_size = 16;
  PolicyRunOptions run{.out = "runs/raft"};
  SamplingOptions sampling;
  uint64_t seed = 1;
  int64_t batch_size = 32;     // prompts per iteration
  std::string device = "cpu";
  LoopOptions loop{.steps = 20, .log_every = 1};
  optim::OptimConfig optim = policy_optim(3e-5);
};
const OptionTable<RaftConfig> &raft_options();

class RaftTrainer {
 public:
  RaftTrainer(nn::GPT &policy, const nn::GPT &ref, RewardFn reward, const nn::Tokenizer &tok, RaftConfig opts);
  // One iteration: sample K per prompt, rank by reward, SFT on the best. Metrics: objective/scores
  // (all samples), raft/kept_scores, objective/kl (of the kept responses, k1 to the reference), loss.
  Metrics step(const std::vector<std::string> &prompts);
  // What its steps carry over (optimizer moments, counters), for checkpoints that resume.
  void register_state(TrainState &state);
  // The rows kept from the last rollout (the best of each group of K).
  const std::vector<int64_t> &kept() const { return kept_; }

 private:
  nn::GPT &policy_;
  const nn::GPT &ref_;
  RewardFn reward_;
  const nn::Tokenizer &tok_;
  RaftConfig o_;
  optim::Optimization opt_;
  int64_t iter_ = 0, updates_ = 0;
  std::vector<int64_t> kept_;
};

Metrics run_raft(const RaftConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
