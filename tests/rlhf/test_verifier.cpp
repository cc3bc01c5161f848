// The verifier (the rule-based reward of RLVR) against the world it checks: every count, repeat and
// arithmetic prompt parses to its task, the good answers score 1 and every wrong or ill-formed one
// 0; and the weighted sum of reward functions (reward_funcs / reward_weights).
#include <gtest/gtest.h>

#include <random>

#include "rlhf/oracle.h"
#include "rlhf/rewards.h"
#include "rlhf/verifier.h"
#include "rlhf/world.h"
#include "test_util.h"

namespace nanorlhf::rlhf {
namespace {

using nr_test::throws_with;

const World& world() {
  static const World w = [] {
    WorldConfig cfg;
    cfg.n_pretrain_docs = 200, cfg.max_operand = 15;
    return make_world(cfg);
  }();
  return w;
}

TEST(Verifier, EveryCheckablePromptParsesToItsTaskAndNoOtherDoes) {
  int checked = 0;
  for (const Prompt& p : all_prompts(world().kb)) {
    auto t = parse_verifiable_task(p.text);
    ASSERT_EQ(t.has_value(), verifiable(p.kind)) << p.text;
    if (!t) continue;
    ++checked;
    switch (p.kind) {
      case PromptKind::Count: EXPECT_EQ(t->kind, VerifiableTask::Count); EXPECT_EQ(t->count, p.count); break;
      case PromptKind::Repeat: EXPECT_EQ(t->kind, VerifiableTask::Repeat); EXPECT_EQ(t->phrase, p.phrase); break;
      default:
        EXPECT_EQ(t->kind, VerifiableTask::Arithmetic);
        EXPECT_EQ(t->a, p.a) << p.text;
        EXPECT_EQ(t->b, p.b) << p.text;
    }
  }
  EXPECT_GT(checked, 15 * 15 * 3);
}

TEST(Verifier, GoodAnswersScoreOneAndEveryBadBehaviourZero) {
  std::mt19937_64 rng(5);
  int bad = 0;
  for (const Prompt& p : all_prompts(world().kb)) {
    if (!verifiable(p.kind)) continue;
    for (int v = 0; v < 2; ++v) EXPECT_EQ(verifier_reward(p.text, good_response(world().kb, p, v).text, true), 1.0) << p.text;
    EXPECT_EQ(verifier_reward(p.text, good_response(world().kb, p).text, false), 0.0) << "unfinished: no answer";
    for (Behaviour b : {Behaviour::Wrong, Behaviour::Rude, Behaviour::Ramble, Behaviour::Unfinished, Behaviour::OffTopic}) {
      Response r = make_response(world().kb, p, b, rng);
      EXPECT_EQ(verifier_reward(p.text, r.text, r.finished), 0.0) << behaviour_name(b) << ": " << p.text << " -> " << r.text;
      ++bad;
    }
  }
  EXPECT_GT(bad, 1000);
}

TEST(Verifier, TheFormatIsChecked) {
  const std::string q = "What is 17 + 25?";
  EXPECT_EQ(verifier_reward(q, "17 + 25 = 42.", true), 1.0);
  EXPECT_EQ(verifier_reward(q, "  The answer is 42. ", true), 1.0);  // surrounding spaces are not the format
  EXPECT_EQ(verifier_reward(q, "17 + 25 = 43.", true), 0.0);         // wrong sum
  EXPECT_EQ(verifier_reward(q, "18 + 24 = 42.", true), 0.0);         // right sum of the wrong numbers
  EXPECT_EQ(verifier_reward(q, "42.", true), 0.0);                   // no format
  EXPECT_EQ(verifier_reward(q, "The answer is 42", true), 0.0);      // no final period
  EXPECT_EQ(verifier_reward(q, "The answer is 42. I hope this helps.", true), 0.0);  // extra sentence
  EXPECT_EQ(verifier_reward("Add 17 and 25.", "The answer is 42.", true), 1.0);
  EXPECT_EQ(verifier_reward("What is 17 plus 25?", "17 + 25 = 42.", true), 1.0);
  EXPECT_EQ(verifier_reward("Count to 3.", "1, 2, 3.", true), 1.0);
  EXPECT_EQ(verifier_reward("Count to 3.", "1, 2, 3, 4.", true), 0.0);
  EXPECT_EQ(verifier_reward("Count to 3.", "1,2,3.", true), 0.0);
  EXPECT_EQ(verifier_reward("Count to 3.", "1, 3, 2.", true), 0.0);
  EXPECT_EQ(verifier_reward("Repeat after me: big fish.", "Big fish.", true), 1.0);
  EXPECT_EQ(verifier_reward("Repeat after me: big fish.", "big fish.", true), 1.0);  // case is not the answer
  EXPECT_EQ(verifier_reward("Repeat after me: big fish.", "Big fish!", true), 0.0);
  EXPECT_FALSE(verifier_reward("What color is the zorb?", "The zorb is blue.", true).has_value());
  EXPECT_FALSE(verifier_reward("What is 1234 + 1?", "1235.", true).has_value());  // no task of this world
}

Rollout text_rollout(std::vector<std::string> prompts, std::vector<std::string> responses) {
  Rollout r;
  r.prompts = std::move(prompts), r.responses = std::move(responses);
  r.gen.finished.assign(r.prompts.size(), true);
  r.gen.sequences = zeros({(int64_t)r.prompts.size(), 1});
  return r;
}

TEST(Rewards, TheWeightedSumAndItsMetrics) {
  Rollout r = text_rollout({"Count to 2.", "Count to 2.", "Say hello to Ann."}, {"1, 2.", "1, 3.", "Hello, Ann!"});
  EXPECT_TRUE(nr_test::allclose(verifier_scores(r), {1, 0, 0}));  // not checkable: 0
  Rewards two({{"a", 2.0, [](const Rollout&) { return tensor({1, 2, 3}); }},
               {"b", -1.0, [](const Rollout&) { return tensor({3, 0, 1}); }}});
  std::map<std::string, double> m;
  EXPECT_TRUE(nr_test::allclose(two(r, &m), {2 - 3, 4 - 0, 6 - 1}));
  EXPECT_NEAR(m["rewards/a/mean"], 2.0, 1e-9);  // unweighted, as TRL logs them
  EXPECT_NEAR(m["rewards/a/std"], 1.0, 1e-9);   // unbiased
  EXPECT_NEAR(m["rewards/b/mean"], 4.0 / 3, 1e-9);
  RewardOptions both{.reward_funcs = "verifier, verifier", .reward_weights = "1, 0.5"};
  EXPECT_TRUE(nr_test::allclose(make_rewards(both, nullptr, "grpo")(r), {1.5, 0, 0}));
}

TEST(Rewards, BadNamesAndWeightsAreClearErrors) {
  EXPECT_TRUE(throws_with([] { make_rewards({.reward_funcs = "oracle"}, nullptr, "grpo"); },
                          "grpo: reward_funcs: unknown reward function 'oracle'; valid: reward_model, verifier"));
  EXPECT_TRUE(throws_with([] { make_rewards({.reward_funcs = ""}, nullptr, "ppo"); }, "ppo: reward_funcs is empty"));
  EXPECT_TRUE(throws_with([] { make_rewards({.reward_funcs = "reward_model"}, nullptr, "grpo"); },
                          "grpo: reward_funcs names reward_model but reward_model is empty"));
  EXPECT_TRUE(throws_with([] { make_rewards({.reward_funcs = "verifier", .reward_weights = "1,2"}, nullptr, "grpo"); },
                          "reward_weights: 2 weights '1,2' for 1 reward_funcs 'verifier'"));
  EXPECT_TRUE(throws_with([] { make_rewards({.reward_funcs = "verifier", .reward_weights = "x"}, nullptr, "grpo"); },
                          "reward_weights: 'x' is not a number"));
}

}  // namespace
}  // namespace nanorlhf::rlhf
