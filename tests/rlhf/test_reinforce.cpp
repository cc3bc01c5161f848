// REINFORCE on a tiny random GPT and the toy reward of rl_test_util.h: the reward rises in a few iterations,
// KL to the frozen reference is 0 before the first update (and never negative with kl_estimator k3), and bad
// settings are clear errors.
#include <gtest/gtest.h>

#include <string>

#include "rlhf/rl_test_util.h"
#include "rlhf/objectives.h"
#include "rlhf/trainers/reinforce.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_rl_test;

namespace {

optim::OptimConfig fast_optim() { return {.lr = 5e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"}; }

double mean_toy_reward(nn::GPT &policy, const nn::Tokenizer &tok, uint64_t seed) {
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = seed};
  Rollout r = sample_responses(policy, tok, prompts(64), g);
  return ascii_share(r).mean().item();
}

TEST(Reinforce, KlIsZeroBeforeTheFirstUpdateAndTheToyRewardRises) {
  // moving-average baseline, then RLOO; then RLOO with TRL's kl_estimator k3 (KL summed over tokens)
  struct Case {
    int64_t k;
    std::string kl_estimator;
  };
  for (const Case &c : {Case{1, "k1"}, Case{4, "k1"}, Case{4, "k3"}}) {
    const int64_t k = c.k;
    manual_seed(3);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    ReinforceConfig o;
    o.batch_size = 16 / k;
    o.rloo_k = k;
    o.beta = 0.01;
    o.kl_estimator = c.kl_estimator;
    o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
    o.optim = fast_optim();
    o.loop.steps = 30;
    ReinforceTrainer tr(policy, *ref, ascii_share, tok, o);
    double before = mean_toy_reward(policy, tok, 99);
    for (int it = 0; it < 30; ++it) {
      Metrics m = tr.step(prompts((int)o.batch_size));
      if (it == 0) {
        EXPECT_EQ(m["objective/kl"], 0.0) << "policy == reference before the first update";
        EXPECT_NEAR(m["objective/rlhf_reward"], m["objective/scores"], 1e-6);
      }
      EXPECT_TRUE(std::isfinite(m["loss"]));
      // k3 = r - 1 - log r >= 0 for every token, so its sum is too (k1's can be negative).
      if (c.kl_estimator == "k3") EXPECT_GE(m["objective/kl"], 0.0) << "iteration " << it;
    }
    double after = mean_toy_reward(policy, tok, 99);
    EXPECT_GT(after, before + 0.1) << "k = " << k << ", " << c.kl_estimator << ": toy reward " << before << " -> "
                                   << after;
    // The reference stayed frozen.
    for (auto &p : ref->parameters()) EXPECT_FALSE(p.requires_grad());
  }
}

TEST(Reinforce, BadSettingsAreClearErrors) {
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  ReinforceConfig o;
  o.optim = fast_optim();
    o.loop.steps = 1;
  o.beta = -0.1;
  try {
    ReinforceTrainer tr(policy, *ref, ascii_share, tok, o);
    FAIL() << "negative beta accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("beta must be >= 0"), std::string::npos) << e.what();
  }
  o.beta = 0.05;
  o.kl_estimator = "k2";  // TRL offers k1 and k3 only
  try {
    ReinforceTrainer tr(policy, *ref, ascii_share, tok, o);
    FAIL() << "kl_estimator k2 accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("unknown kl_estimator 'k2'"), std::string::npos) << e.what();
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
