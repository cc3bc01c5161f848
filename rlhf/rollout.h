// Shared by every trainer that samples: rollouts from a policy, log-probs of given responses under
// any model (policy, frozen reference), reward-model scores, and oracle scores for evaluation.
#pragma once
#include <string>
#include <vector>

#include "nn/generation.h"
#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/oracle.h"

namespace nanorlhf::rlhf {

struct Rollout {
  std::vector<std::string> prompts;    // the user turns
  nn::GenerationOutput gen;            // sequences [B, P+N], masks, sampled log-probs [B, N]
  std::vector<std::string> responses;  // decoded response text, special tokens removed
};

// Prompts are rendered with the chat template (<|bos|><|user|>prompt<|assistant|>) and sampled.
Rollout sample_responses(nn::GPT &policy, const nn::Tokenizer &tok, const std::vector<std::string> &prompts,
                         const nn::GenerationConfig &cfg);

// log pi(y_t | x, y_<t) of the response tokens of a rollout under `model` (logits / temperature):
// [B, N], 0 where response_mask is 0. Differentiable when grad mode is on. If `logits_out` is
// given it receives the response-position logits [B, N, V] (for entropy).
Tensor response_logprobs(const nn::GPT &model, const nn::GenerationOutput &gen, double temperature,
                         Tensor *logits_out = nullptr);

// Reward-model scores r(x, y) of the rollout's full sequences: [B] (read at the last real token).
Tensor reward_scores(const nn::ScalarModel &rm, const nn::GenerationOutput &gen);

// The oracle's HHH totals of the rollout (evaluation only; never a training signal).
std::vector<double> oracle_scores(const Oracle &oracle, const Rollout &r);

}  // namespace nanorlhf::rlhf
