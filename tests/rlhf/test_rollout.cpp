// Rollout contract: sampled responses decode as generated, response_logprobs reproduces the
// sampler's log-probs at its temperature, reward scores ignore padding, oracle scores match the oracle.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/rollout.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;

namespace {

nn::GPTConfig micro(const nn::Tokenizer &tok) {
  return {.vocab = tok.vocab_size(), .ctx = 48, .d_model = 32, .n_layer = 2, .n_head = 2};
}

const std::vector<std::string> kPrompts = {"What color is the zorb?", "Hi", "Count to 3."};

double max_abs(const Tensor &a, const Tensor &b) {
  auto x = a.to_vector<double>(), y = b.to_vector<double>();
  EXPECT_EQ(x.size(), y.size());
  double m = 0;
  for (size_t i = 0; i < x.size() && i < y.size(); ++i) m = std::max(m, std::abs(x[i] - y[i]));
  return m;
}

}  // namespace

TEST(Rollout, SampleDecodesResponsesAndIsSeeded) {
  manual_seed(1);
  nn::Tokenizer tok;
  nn::GPT policy(micro(tok));
  nn::GenerationConfig cfg{.max_new_tokens = 10, .temperature = 1.0, .seed = 7};
  rlhf::Rollout r = rlhf::sample_responses(policy, tok, kPrompts, cfg);
  ASSERT_EQ(r.responses.size(), kPrompts.size());
  EXPECT_EQ(r.prompts, kPrompts);
  const int64_t P = r.gen.prompt_len, N = r.gen.response_ids.shape()[1];
  EXPECT_EQ(P, (int64_t)tok.encode_prompt(kPrompts[0]).size());  // the longest prompt sets P
  auto ids = r.gen.response_ids.to_vector<int64_t>();
  auto mask = r.gen.response_mask.to_vector<float>();
  for (size_t b = 0; b < kPrompts.size(); ++b) {
    std::vector<int64_t> row;
    for (int64_t t = 0; t < N; ++t)
      if (mask[b * N + t] != 0) row.push_back(ids[b * N + t]);
    EXPECT_EQ(r.responses[b], tok.decode(row, true));
  }
  rlhf::Rollout again = rlhf::sample_responses(policy, tok, kPrompts, cfg);
  EXPECT_EQ(again.responses, r.responses);
  EXPECT_EQ(max_abs(again.gen.sequences, r.gen.sequences), 0.0);
}

// The log-probs a trainer recomputes must be the ones the sampler drew with (same temperature).
TEST(Rollout, ResponseLogprobsMatchGenerate) {
  manual_seed(2);
  nn::Tokenizer tok;
  nn::GPT policy(micro(tok));
  for (double temp : {1.0, 0.7}) {
    nn::GenerationConfig cfg{.max_new_tokens = 12, .temperature = temp, .seed = 3};
    rlhf::Rollout r = rlhf::sample_responses(policy, tok, kPrompts, cfg);
    NoGradGuard ng;
    Tensor logits;
    Tensor lp = rlhf::response_logprobs(policy, r.gen, temp, &logits);
    ASSERT_EQ(lp.shape(), r.gen.response_logprobs.shape());
    EXPECT_LT(max_abs(lp, r.gen.response_logprobs), 1e-4) << "temperature " << temp;
    EXPECT_EQ(logits.shape(), Shape({3, r.gen.response_ids.shape()[1], tok.vocab_size()}));
    // Masked positions (after EOS) are exactly 0.
    auto l = lp.to_vector<double>();
    auto m = r.gen.response_mask.to_vector<float>();
    for (size_t i = 0; i < l.size(); ++i)
      if (m[i] == 0) EXPECT_EQ(l[i], 0.0);
  }
}

// Rows that finish early (EOS then padding) keep the contract: force EOS by biasing the LM head.
TEST(Rollout, ResponseLogprobsWithEarlyEos) {
  manual_seed(4);
  nn::Tokenizer tok;
  nn::GPT policy(micro(tok));
  {
    // ln_f's bias shifts hidden unit 0 by +4 and only the EOS row of the head reads it: EOS gets
    // a logit near 4, about a sixth of the mass at every step.
    NoGradGuard ng;
    const int64_t V = tok.vocab_size(), C = policy.config.d_model;
    std::vector<float> bias(C, 0.f), w(V * C, 0.f);
    bias[0] = 4.f;
    w[tok.eos_id() * C] = 1.f;
    policy.ln_f->bias.copy_(from_vector<float>(bias, {C}));
    policy.lm_head->weight.copy_(policy.lm_head->weight * 0.1 + from_vector<float>(w, {V, C}));
  }
  nn::GenerationConfig cfg{.max_new_tokens = 12, .temperature = 1.0, .seed = 11};
  std::vector<std::string> prompts(8, "Say hello to Ann.");
  prompts[3] = "What does the zorb eat?";
  rlhf::Rollout r = rlhf::sample_responses(policy, tok, prompts, cfg);
  int n_finished = 0;
  for (bool f : r.gen.finished) n_finished += f;
  ASSERT_GT(n_finished, 0);
  auto m = r.gen.response_mask.to_vector<float>();
  ASSERT_LT(*std::min_element(m.begin(), m.end()), 1.f) << "no row ended before the others";
  NoGradGuard ng;
  EXPECT_LT(max_abs(rlhf::response_logprobs(policy, r.gen, 1.0), r.gen.response_logprobs), 1e-4);
}

TEST(Rollout, ResponseLogprobsAreDifferentiable) {
  manual_seed(5);
  nn::Tokenizer tok;
  nn::GPT policy(micro(tok));
  rlhf::Rollout r = rlhf::sample_responses(policy, tok, kPrompts, {.max_new_tokens = 6, .seed = 1});
  Tensor lp = rlhf::response_logprobs(policy, r.gen, 1.0);
  ASSERT_TRUE(lp.requires_grad());
  lp.sum().backward();
  ASSERT_TRUE(policy.wte->weight.grad().defined());
  EXPECT_GT(policy.wte->weight.grad().abs().sum().item(), 0.0);
}

// A left-padded row scores the same as the row alone: the score is read at the last real token.
TEST(Rollout, RewardScoresIgnorePadding) {
  manual_seed(6);
  nn::Tokenizer tok;
  nn::GPT policy(micro(tok));
  nn::ScalarModel rm(micro(tok));
  rlhf::Rollout r = rlhf::sample_responses(policy, tok, kPrompts, {.max_new_tokens = 8, .seed = 2});
  NoGradGuard ng;
  Tensor s = rlhf::reward_scores(rm, r.gen);
  ASSERT_EQ(s.shape(), Shape({3}));
  auto seq = r.gen.sequences.to_vector<int64_t>();
  auto mask = r.gen.attention_mask.to_vector<float>();
  const int64_t T = r.gen.sequences.shape()[1];
  std::vector<double> alone;  // each row's real tokens scored on their own
  for (int64_t b = 0; b < 3; ++b) {
    std::vector<int64_t> row;
    for (int64_t t = 0; t < T; ++t)
      if (mask[b * T + t] != 0) row.push_back(seq[b * T + t]);
    const int64_t L = (int64_t)row.size();
    alone.push_back(rm.score(from_vector<int64_t>(row, {1, L}), ones({1, L})).item());
  }
  EXPECT_TRUE(nr_test::allclose(s, alone, {.atol = 1e-4, .rtol = 0}));
}

TEST(Rollout, OracleScoresUseTheFinishedFlag) {
  rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 10;
  wc.n_sft = 5;
  wc.n_prompts = 10;
  wc.n_eval_prompts = 5;
  rlhf::World w = rlhf::make_world(wc);
  rlhf::Oracle oracle(w.kb);
  rlhf::Prompt p = rlhf::all_prompts(w.kb)[0];
  rlhf::Response good = rlhf::good_response(w.kb, p);
  rlhf::Rollout r;
  r.prompts = {p.text, p.text};
  r.responses = {good.text, good.text};
  r.gen.finished = {true, false};
  auto s = rlhf::oracle_scores(oracle, r);
  ASSERT_EQ(s.size(), 2u);
  EXPECT_DOUBLE_EQ(s[0], oracle.score(p.text, good.text, true).total);
  EXPECT_DOUBLE_EQ(s[1], oracle.score(p.text, good.text, false).total);
  EXPECT_DOUBLE_EQ(s[0], 3.0);
  EXPECT_LT(s[1], s[0]);
}
