// PPO on a tiny random GPT and the toy reward of rl_test_util.h: the first minibatch's ratio is exactly 1 with
// no clipping, KL to the reference starts at 0, the reward rises, and bad settings are clear errors.
#include <gtest/gtest.h>

#include "rlhf/rl_test_util.h"
#include "rlhf/trainers/ppo.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_rl_test;

namespace {

PPOConfig toy_options(int64_t iterations) {
  PPOConfig o;
  o.batch_size = 16;
  o.num_mini_batches = 2;
  o.ppo_epochs = 4;
  o.beta = 0.01;
  o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
  o.optim.lr = 5e-3;
  o.optim.weight_decay = 0;
  o.optim.warmup = 0;
  o.optim.schedule = "constant";
  o.loop.steps = iterations;
  return o;
}

// A tiny random policy, its frozen reference and a value model, after manual_seed(seed); the value
// backbone starts from the policy's when asked.
struct Toy {
  explicit Toy(uint64_t seed, bool value_from_policy = true) : policy((manual_seed(seed), tiny_config(tok))),
        ref(frozen_copy(policy)), value(tiny_config(tok)) {
    if (value_from_policy) value.init_backbone_from(policy);
  }
  nn::Tokenizer tok;
  nn::GPT policy;
  std::shared_ptr<nn::GPT> ref;
  nn::ScalarModel value;
};

double mean_toy_reward(nn::GPT &policy, const nn::Tokenizer &tok) {
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = 99};
  return ascii_share(sample_responses(policy, tok, prompts(64), g)).mean().item();
}

TEST(PPO, FirstMinibatchRatioIsExactlyOneAndTheToyRewardRises) {
  Toy t(5);
  auto &[tok, policy, ref, value] = t;
  const int iters = 10;
  PPOTrainer tr(policy, *ref, value, ascii_share, tok, toy_options(iters));
  double before = mean_toy_reward(policy, tok);
  double first_value_loss = 0, last_value_loss = 0;
  for (int it = 0; it < iters; ++it) {
    Metrics m = tr.step(prompts(16));
    if (it == 0) {
      // pi_theta = pi_old on the first minibatch: rho = 1 exactly, nothing clipped (FORMULAS 4).
      EXPECT_EQ(m["val/ratio_first_minibatch"], 1.0);
      EXPECT_EQ(m["val/clipfrac_first_minibatch"], 0.0);
      EXPECT_EQ(m["objective/kl"], 0.0) << "policy == reference before the first update";
      first_value_loss = m["loss/value_avg"];
    }
    last_value_loss = m["loss/value_avg"];
    for (const char *k : {"objective/kl", "objective/entropy", "objective/scores", "objective/rlhf_reward",
                          "policy/clipfrac_avg", "policy/approxkl_avg", "loss/policy_avg", "loss/value_avg", "val/ratio"})
      EXPECT_TRUE(m.count(k) && std::isfinite(m[k])) << k;
  }
  double after = mean_toy_reward(policy, tok);
  EXPECT_GT(after, before + 0.1) << "toy reward " << before << " -> " << after;
  EXPECT_LT(last_value_loss, first_value_loss) << "the value model learns the returns";
}

// TRL's kl_estimator k3: the per-token KL r - 1 - log r (r = pi_ref/pi) is >= 0, so the logged
// sequence KL is never negative, and 0 while the policy is the reference.
TEST(PPO, KlEstimatorK3LogsANonNegativeKl) {
  Toy t(5);
  auto &[tok, policy, ref, value] = t;
  PPOConfig o = toy_options(3);
  o.kl_estimator = "k3";
  PPOTrainer tr(policy, *ref, value, ascii_share, tok, o);
  for (int it = 0; it < 3; ++it) {
    Metrics m = tr.step(prompts(16));
    if (it == 0) EXPECT_EQ(m["objective/kl"], 0.0) << "policy == reference before the first update";
    EXPECT_GE(m["objective/kl"], 0.0) << "iteration " << it;
    EXPECT_TRUE(nr_test::isclose(m["objective/rlhf_reward"], m["objective/scores"] - o.beta * m["objective/kl"]));
  }
}

TEST(PPO, AdaptiveKlMovesBeta) {
  Toy t(6, /*value_from_policy=*/false);
  auto &[tok, policy, ref, value] = t;
  PPOConfig o = toy_options(3);
  o.adaptive_kl = true;
  o.target_kl = 1.0;
  o.kl_horizon = 100;
  PPOTrainer tr(policy, *ref, value, ascii_share, tok, o);
  tr.step(prompts(16));  // KL 0 < target: beta shrinks by (1 - 0.2 * 16/100)
  EXPECT_NEAR(tr.beta(), 0.01 * (1 - 0.2 * 0.16), 1e-12);
}

TEST(PPO, BadSettingsAreClearErrors) {
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  nn::ScalarModel value(tiny_config(tok));
  auto expect_error = [&](PPOConfig o, const std::string &needle) {
    try {
      PPOTrainer tr(policy, *ref, value, ascii_share, tok, o);
      ADD_FAILURE() << "accepted; expected: " << needle;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  PPOConfig o = toy_options(1);
  o.cliprange = 0;
  expect_error(o, "cliprange must be > 0");
  o = toy_options(1);
  o.beta = -1;
  expect_error(o, "beta must be >= 0");
  o = toy_options(1);
  o.kl_estimator = "k2";  // TRL offers k1 and k3 only
  expect_error(o, "unknown kl_estimator 'k2'");
  // A value model on another vocabulary.
  nn::GPTConfig other = tiny_config(tok);
  other.vocab = 300;
  nn::ScalarModel wrong(other);
  EXPECT_THROW(PPOTrainer(policy, *ref, wrong, ascii_share, tok, toy_options(1)), Error);
  // More minibatches than rollouts, named before any run directory is read.
  Config c(ppo_options().schema());
  c.set("num_mini_batches=64");
  EXPECT_TRUE(nr_test::throws_with([&] { run_ppo(ppo_options().read(c), true); }, "num_mini_batches (64) must be <= batch_size (32)"));
}

}  // namespace
