// GRPO on a tiny random GPT and the toy reward of rl_test_util.h: every loss_type raises the reward,
// the first step has KL 0 and no clipping, a group whose rewards tie teaches nothing, and bad
// settings are clear errors naming the key.
#include <gtest/gtest.h>

#include <string>

#include "rlhf/config.h"
#include "rlhf/rl_test_util.h"
#include "rlhf/stages.h"
#include "rlhf/trainers/grpo.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_rl_test;

namespace {

GRPOConfig fast(int64_t steps) {
  GRPOConfig o;
  o.num_generations = 4;
  o.batch_size = 4;
  o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
  o.optim = {.lr = 5e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
  o.loop.steps = steps;
  return o;
}

double mean_toy_reward(nn::GPT &policy, const nn::Tokenizer &tok) {
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = 99};
  return ascii_share(sample_responses(policy, tok, prompts(64), g)).mean().item();
}

TEST(GRPO, EveryLossTypeRaisesTheToyRewardFromKlZero) {
  struct Case { std::string loss_type, scale; int64_t iterations; double beta, eps_high; };
  for (const Case &c : {Case{"dapo", "group", 1, 0.0, 0.0}, Case{"grpo", "group", 1, 0.04, 0.0},
                        Case{"dr_grpo", "none", 1, 0.0, 0.0}, Case{"bnpo", "batch", 2, 0.0, 0.28}}) {
    SCOPED_TRACE(c.loss_type + " / " + c.scale);
    manual_seed(3);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    GRPOConfig o = fast(25);
    o.loss_type = c.loss_type, o.scale_rewards = c.scale, o.num_iterations = c.iterations, o.beta = c.beta;
    o.epsilon_high = c.eps_high;
    GRPOTrainer tr(policy, *ref, ascii_share, tok, o);
    const double before = mean_toy_reward(policy, tok);
    for (int it = 0; it < 25; ++it) {
      Metrics m = tr.step(prompts(4));
      if (it == 0) {
        EXPECT_NEAR(m["kl"], 0.0, 1e-7) << "policy == reference before the first update";
        if (c.iterations == 1) EXPECT_EQ(m["clip_ratio/region_mean"], 0.0) << "ratio 1: nothing to clip";
        EXPECT_NEAR(m["completions/mean_length"], m["val/response_len"], 1e-9);
      }
      EXPECT_TRUE(std::isfinite(m["loss"]));
      EXPECT_GE(m["kl"], -1e-7) << "k3 is never negative";
      EXPECT_GE(m["frac_reward_zero_std"], 0.0);
      EXPECT_LE(m["frac_reward_zero_std"], 1.0);
    }
    const double after = mean_toy_reward(policy, tok);
    EXPECT_GT(after, before + 0.1) << "toy reward " << before << " -> " << after;
  }
}

TEST(GRPO, GroupsWhoseRewardsTieTeachNothing) {
  manual_seed(4);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  auto before = policy.parameters()[0].detach().to_vector<double>();
  GRPOTrainer tr(policy, *ref, [](const Rollout &r) { return full({(int64_t)r.prompts.size()}, 0.5); }, tok, fast(2));
  Metrics m = tr.step(prompts(4));
  EXPECT_EQ(m["frac_reward_zero_std"], 1.0);
  EXPECT_EQ(m["reward_std"], 0.0);
  EXPECT_NEAR(m["reward"], 0.5, 1e-6);
  EXPECT_EQ(m["grad_norm"], 0.0) << "every advantage is 0 and beta is 0";
  EXPECT_EQ(policy.parameters()[0].detach().to_vector<double>(), before);
}

TEST(GRPO, MaskTruncatedCompletionsDropsResponsesThatNeverEnded) {
  manual_seed(5);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  GRPOConfig o = fast(2);
  o.sampling.max_new_tokens = 2;  // a random policy rarely ends within 2 tokens
  o.mask_truncated_completions = true;
  GRPOTrainer tr(policy, *ref, ascii_share, tok, o);
  Metrics m = tr.step(prompts(4));
  const Rollout &r = tr.last_rollout();
  const bool any_finished = std::count(r.gen.finished.begin(), r.gen.finished.end(), true) > 0;
  EXPECT_NEAR(m["completions/clipped_ratio"], 1.0 - m["val/eos_frac"], 1e-9);
  ASSERT_FALSE(any_finished) << "seeded: no response of this random policy ends within 2 tokens";
  EXPECT_EQ(m["completions/clipped_ratio"], 1.0);
  EXPECT_EQ(m["grad_norm"], 0.0) << "every response was cut: nothing left in the loss";
  EXPECT_EQ(m["loss"], 0.0);
  // The same batch without the mask trains on the cut responses.
  manual_seed(5);
  nn::GPT p2(tiny_config(tok));
  auto ref2 = frozen_copy(p2);
  o.mask_truncated_completions = false;
  GRPOTrainer unmasked(p2, *ref2, ascii_share, tok, o);
  EXPECT_GT(unmasked.step(prompts(4))["grad_norm"], 0.0);
}

TEST(GRPO, BadSettingsAreClearErrorsNamingTheKey) {
  auto run = [](nlohmann::json set) {
    Config c(find_stage("grpo").schema());
    c.merge(set);
    find_stage("grpo").run(c, true);
  };
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"num_generations", 1}}); }, "key 'num_generations' must be >= 2, got 1"));
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"epsilon", 0}}); }, "key 'epsilon' must be > 0, got 0"));
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"loss_type", "ppo"}}); }, "'loss_type' must be one of grpo, bnpo, dr_grpo, dapo, got \"ppo\""));
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"reward_funcs", "oracle"}}); },
                                   "unknown reward function 'oracle'; valid: reward_model, verifier"));
  // The trainer checks what it is given in code too.
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  GRPOConfig o = fast(1);
  o.num_generations = 1;
  EXPECT_TRUE(nr_test::throws_with([&] { GRPOTrainer(policy, *ref, ascii_share, tok, o); },
                                   "grpo: num_generations must be >= 2, got 1"));
}

}  // namespace
