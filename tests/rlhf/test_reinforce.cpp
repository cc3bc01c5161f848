// REINFORCE on a tiny random GPT and a toy reward built here: the reward rises in a few iterations,
// KL to the frozen reference is 0 before the first update, and bad settings are clear errors.
#include <gtest/gtest.h>

#include "rlhf/objectives.h"
#include "rlhf/trainers/reinforce.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

namespace {

nn::GPTConfig tiny_config(const nn::Tokenizer &tok) {
  return nn::GPTConfig{.vocab = tok.vocab_size(), .ctx = 48, .d_model = 32, .n_layer = 2, .n_head = 2};
}

// The toy reward: the share of response tokens that are ASCII bytes (< 128) among the real ones.
// A random policy gets ~0.47; the gradient must push the mass below 128.
Tensor ascii_share(const Rollout &r) {
  auto ids = r.gen.response_ids.to_vector<int64_t>();
  auto m = r.gen.response_mask.to_vector<float>();
  int64_t B = r.gen.response_ids.shape()[0], N = r.gen.response_ids.shape()[1];
  std::vector<double> s(B, 0.0);
  for (int64_t b = 0; b < B; ++b) {
    double n = 0, hit = 0;
    for (int64_t t = 0; t < N; ++t)
      if (m[b * N + t] != 0) {
        n += 1;
        hit += ids[b * N + t] < 128;
      }
    s[b] = n > 0 ? hit / n : 0;
  }
  return from_vector<double>(s, {B}).to(kFloat32);
}

std::vector<std::string> prompts(int n) {
  std::vector<std::string> p;
  for (int i = 0; i < n; ++i) p.push_back("q" + std::to_string(i % 5));
  return p;
}

OptimConfig fast_optim(int64_t steps) {
  OptimConfig o;
  o.lr = 5e-3;
  o.weight_decay = 0;
  o.warmup = 0;
  o.schedule = "constant";
  o.steps = steps;
  return o;
}

double mean_toy_reward(nn::GPT &policy, const nn::Tokenizer &tok, uint64_t seed) {
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = seed};
  Rollout r = sample_responses(policy, tok, prompts(64), g);
  return ascii_share(r).mean().item();
}

TEST(Reinforce, KlIsZeroBeforeTheFirstUpdateAndTheToyRewardRises) {
  for (int64_t k : {1, 4}) {  // moving-average baseline, then RLOO
    manual_seed(3);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    ReinforceOptions o;
    o.batch_size = 16 / k;
    o.rloo_k = k;
    o.beta = 0.01;
    o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
    o.optim = fast_optim(30);
    ReinforceTrainer tr(policy, *ref, ascii_share, tok, o);
    double before = mean_toy_reward(policy, tok, 99);
    for (int it = 0; it < 30; ++it) {
      Metrics m = tr.step(prompts((int)o.batch_size));
      if (it == 0) {
        EXPECT_EQ(m["objective/kl"], 0.0) << "policy == reference before the first update";
        EXPECT_NEAR(m["objective/rlhf_reward"], m["objective/scores"], 1e-6);
      }
      EXPECT_TRUE(std::isfinite(m["loss"]));
    }
    double after = mean_toy_reward(policy, tok, 99);
    EXPECT_GT(after, before + 0.1) << "k = " << k << ": toy reward " << before << " -> " << after;
    // The reference stayed frozen.
    for (auto &p : ref->parameters()) EXPECT_FALSE(p.requires_grad());
  }
}

TEST(Reinforce, BadSettingsAreClearErrors) {
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  ReinforceOptions o;
  o.optim = fast_optim(1);
  o.beta = -0.1;
  try {
    ReinforceTrainer tr(policy, *ref, ascii_share, tok, o);
    FAIL() << "negative beta accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("beta must be >= 0"), std::string::npos) << e.what();
  }
  // A reward model on another vocabulary: both shapes and the file in the message.
  nn::GPTConfig rm = tiny_config(tok);
  rm.vocab = 300;
  try {
    check_reward_model_fits(tiny_config(tok), rm, "runs/rm", 40);
    FAIL() << "vocab mismatch accepted";
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("runs/rm"), std::string::npos) << msg;
    EXPECT_NE(msg.find("300"), std::string::npos) << msg;
    EXPECT_NE(msg.find(std::to_string(tok.vocab_size())), std::string::npos) << msg;
  }
}

}  // namespace
