// Shared by the policy-optimisation tests: a tiny GPT config, a toy reward (the share of ASCII
// response tokens; a random policy gets ~0.47) and a handful of prompts.
#pragma once
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/tokenizer.h"
#include "rlhf/rollout.h"

namespace nr_rl_test {

using namespace nanorlhf;

inline nn::GPTConfig tiny_config(const nn::Tokenizer &tok) {
  return nn::GPTConfig{.vocab = tok.vocab_size(), .ctx = 48, .d_model = 32, .n_layer = 2, .n_head = 2};
}

// The toy reward: the share of real response tokens that are ASCII bytes (< 128). The gradient must
// push the policy's mass below 128.
inline Tensor ascii_share(const rlhf::Rollout &r) {
  auto ids = r.gen.response_ids.to_vector<int64_t>();
  auto m = r.gen.response_mask.to_vector<float>();
  int64_t B = r.gen.response_ids.shape()[0], N = r.gen.response_ids.shape()[1];
  std::vector<double> s(B, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double n = 0, hit = 0;
    for (int64_t t = 0; t < N; ++t)
      if (m[b * N + t] != 0) n += 1, hit += ids[b * N + t] < 128;
    s[b] = n > 0 ? hit / n : 0;
  }
  return from_vector<double>(s, {B}).to(kFloat32);
}

inline std::vector<std::string> prompts(int n) {
  std::vector<std::string> p;
  for (int i = 0; i < n; ++i) p.push_back("q" + std::to_string(i % 5));
  return p;
}

}  // namespace nr_rl_test
