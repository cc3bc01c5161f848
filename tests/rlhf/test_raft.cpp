// RAFT and iterative DPO on a tiny random GPT with the toy reward of rl_test_util.h: the kept (best-of-K)
// responses score at least the batch mean, best-vs-worst pairs are well formed, and both raise the reward.
#include <gtest/gtest.h>

#include "rlhf/rl_test_util.h"
#include "rlhf/trainers/online_dpo.h"
#include "rlhf/trainers/raft.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using namespace nr_rl_test;

namespace {

optim::OptimConfig fast_optim(double lr) { return {.lr = lr, .weight_decay = 0, .warmup = 0, .schedule = "constant"}; }

double mean_toy_reward(nn::GPT &policy, const nn::Tokenizer &tok) {
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = 99};
  return ascii_share(sample_responses(policy, tok, prompts(64), g)).mean().item();
}

TEST(Raft, KeepsTheBestOfKAndRaisesTheReward) {
  manual_seed(7);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  RaftConfig o;
  o.batch_size = 8;
  o.k = 4;
  o.minibatch_size = 8;
  o.sft_epochs = 2;
  o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};
  o.optim = fast_optim(3e-3);
  o.loop.steps = 40;
  RaftTrainer tr(policy, *ref, ascii_share, tok, o);
  double before = mean_toy_reward(policy, tok);
  for (int it = 0; it < 20; ++it) {
    Metrics m = tr.step(prompts(8));
    EXPECT_GE(m["raft/kept_scores"], m["objective/scores"] - 1e-9) << "the best of K is at least the mean";
    ASSERT_EQ(tr.kept().size(), 8u);
    for (size_t i = 0; i < tr.kept().size(); ++i) EXPECT_EQ(tr.kept()[i] / 4, (int64_t)i) << "one kept per prompt";
  }
  double after = mean_toy_reward(policy, tok);
  EXPECT_GT(after, before + 0.1) << "toy reward " << before << " -> " << after;
}

TEST(OnlineDPO, BestWorstPairsAndRoundsRaiseTheReward) {
  manual_seed(8);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  OnlineDPOConfig o;
  o.k = 4;
  o.dpo_epochs = 2;
  o.dpo.beta = 0.1;
  o.dpo.batch_size = 8;
  o.optim = fast_optim(2e-3);
  o.sampling = {.max_new_tokens = 8, .temperature = 1.0, .missing_eos_penalty = 0.0};

  // Pairs: from a rollout, chosen scores above rejected under the reward that ranked them.
  nn::GenerationConfig g{.max_new_tokens = 8, .temperature = 1.0, .seed = 3};
  std::vector<std::string> batch;
  for (const auto &p : prompts(6))
    for (int j = 0; j < 4; ++j) batch.push_back(p);
  Rollout r = sample_responses(policy, tok, batch, g);
  r.scores = ascii_share(r);
  auto pairs = best_worst_pairs(r, 4, tok);
  EXPECT_GT(pairs.size(), 0u);
  for (const auto &p : pairs) {
    EXPECT_FALSE(p.chosen_ids.empty());
    EXPECT_FALSE(p.rejected_ids.empty());
    EXPECT_EQ(p.prompt_ids.back(), tok.special_id("<|assistant|>"));
  }

  double before = mean_toy_reward(policy, tok);
  for (int round = 0; round < 8; ++round) {
    Metrics m = online_dpo_round(policy, ascii_share, tok, prompts(16), o, round);
    EXPECT_GT(m["online_dpo/pairs"], 0);
  }
  double after = mean_toy_reward(policy, tok);
  EXPECT_GT(after, before + 0.1) << "toy reward " << before << " -> " << after;
}

}  // namespace
