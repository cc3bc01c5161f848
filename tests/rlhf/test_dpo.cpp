// DPO and kin on a handful of pairs with a tiny random GPT: implicit rewards start at 0 (policy ==
// reference), the chosen reward rises above the rejected one and rewards/accuracies reaches 1 for
// every loss type; bad inputs are clear errors.
#include <gtest/gtest.h>

#include <cmath>

#include "rlhf/trainers/dpo.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

namespace {

nn::GPTConfig tiny_config(const nn::Tokenizer &tok) {
  return nn::GPTConfig{.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2};
}

std::vector<PreferenceExample> toy_pairs() {
  return {{"What color is the zorb?", "The zorb is blue.", "The zorb is red, idiot.", "toy:1"},
          {"Say hello to Ann.", "Hello, Ann!", "Whatever.", "toy:2"},
          {"Count to 3.", "1, 2, 3.", "1, 2, 3, 4, 5, 6", "toy:3"},
          {"Repeat after me: big fish", "big fish", "small dog", "toy:4"}};
}

OptimConfig fast_optim(int64_t steps) {
  OptimConfig o;
  o.lr = 2e-3;
  o.weight_decay = 0;
  o.warmup = 0;
  o.schedule = "constant";
  o.steps = steps;
  return o;
}

TEST(DPO, EveryLossTypeLearnsTheToyPreferences) {
  for (const std::string &type : dpo_loss_types()) {
    manual_seed(11);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    DPOOptions o;
    o.loss_type = type;
    o.batch_size = 4;
    o.optim = fast_optim(25);
    DPOTrainer tr(policy, type == "simpo" ? nullptr : ref.get(), tokenize_preferences(tok, toy_pairs(), 64),
                  tok.pad_id(), o);
    std::vector<size_t> all = {0, 1, 2, 3};
    Metrics first = tr.evaluate(all);
    if (type != "simpo") {  // policy == reference: every implicit reward is exactly 0
      EXPECT_EQ(first["rewards/chosen"], 0.0) << type;
      EXPECT_EQ(first["rewards/rejected"], 0.0) << type;
    }
    if (type == "sigmoid") EXPECT_NEAR(first["loss"], std::log(2.0), 1e-6);
    for (int s = 0; s < 25; ++s) tr.step(all);
    Metrics last = tr.evaluate(all);
    EXPECT_EQ(last["rewards/accuracies"], 1.0) << type;
    EXPECT_GT(last["rewards/chosen"], last["rewards/rejected"]) << type;
    EXPECT_GT(last["rewards/margins"], first["rewards/margins"]) << type;
    EXPECT_LT(last["loss"], first["loss"]) << type;
    EXPECT_GT(last["logps/chosen"], last["logps/rejected"]) << type;
  }
}

TEST(DPO, LabelSmoothingKeepsTheMarginFinite) {
  // cDPO: with eps > 0 the loss has a minimum at a finite margin, so it stays above the eps-entropy.
  manual_seed(12);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  DPOOptions o;
  o.label_smoothing = 0.2;
  o.batch_size = 4;
  o.optim = fast_optim(15);
  DPOTrainer tr(policy, ref.get(), tokenize_preferences(tok, toy_pairs(), 64), tok.pad_id(), o);
  for (int s = 0; s < 15; ++s) tr.step({0, 1, 2, 3});
  Metrics m = tr.evaluate({0, 1, 2, 3});
  double h = -(0.2 * std::log(0.2) + 0.8 * std::log(0.8));  // the loss floor: the binary entropy of eps
  EXPECT_GE(m["loss"], h - 1e-6);
  EXPECT_EQ(m["rewards/accuracies"], 1.0);
}

TEST(DPO, BadInputsAreClearErrors) {
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  auto pairs = tokenize_preferences(tok, toy_pairs(), 64);
  auto expect_error = [&](DPOOptions o, const nn::GPT *r, const std::string &needle) {
    o.optim = fast_optim(1);
    try {
      DPOTrainer tr(policy, r, pairs, tok.pad_id(), o);
      ADD_FAILURE() << "accepted; expected: " << needle;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DPOOptions o;
  o.loss_type = "kto";
  expect_error(o, ref.get(), "unknown loss_type 'kto'");
  o = DPOOptions{};
  o.beta = -0.1;
  expect_error(o, ref.get(), "beta must be > 0");
  o = DPOOptions{};
  expect_error(o, nullptr, "needs a reference model");
  o.loss_type = "ipo";
  o.label_smoothing = 0.1;
  expect_error(o, ref.get(), "label_smoothing (cDPO) applies to loss_type sigmoid only");
  // A record that does not fit the context names its source.
  try {
    tokenize_preferences(tok, toy_pairs(), 20);
    FAIL() << "too long accepted";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("toy:1"), std::string::npos) << e.what();
  }
}

}  // namespace
