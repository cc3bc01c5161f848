// DPO and kin on a handful of pairs with a tiny random GPT: implicit rewards start at 0 (policy ==
// reference), the chosen reward rises above the rejected one and rewards/accuracies reaches 1 for
// every loss type; bad inputs are clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "rlhf/trainers/dpo.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;

namespace {

nn::GPTConfig tiny_config(const nn::Tokenizer &tok) {
  return nn::GPTConfig{.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2};
}

// Four toy pairs as a TRL preference file, read the way `nanorlhf dpo` reads its data.
std::string toy_file() {
  static const std::string path = [] {
    auto p = std::filesystem::temp_directory_path() / ("nanorlhf_test_dpo_" + std::to_string(::getpid()) + ".jsonl");
    std::ofstream(p) << R"({"prompt": "What color is the zorb?", "chosen": "The zorb is blue.", "rejected": "The zorb is red, idiot."})" "\n"
                     << R"({"prompt": "Say hello to Ann.", "chosen": "Hello, Ann!", "rejected": "Whatever."})" "\n"
                     << R"({"prompt": "Count to 3.", "chosen": "1, 2, 3.", "rejected": "1, 2, 3, 4, 5, 6"})" "\n"
                     << R"({"prompt": "Repeat after me: big fish", "chosen": "big fish", "rejected": "small dog"})" "\n";
    return p.string();
  }();
  return path;
}
std::vector<PreferencePair> toy_pairs(const nn::Tokenizer &tok, int64_t ctx = 64) {
  return read_preference_pairs(toy_file(), tok, ctx);
}

// A constant lr over `steps` optimizer steps.
DPOConfig fast(int64_t steps) {
  DPOConfig o;
  o.batch_size = 4;
  o.optim = {.lr = 2e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
  o.loop.steps = steps;
  return o;
}

TEST(DPO, EveryLossTypeLearnsTheToyPreferences) {
  for (const std::string &type : dpo_loss_types()) {
    manual_seed(11);
    nn::Tokenizer tok;
    nn::GPT policy(tiny_config(tok));
    auto ref = frozen_copy(policy);
    DPOConfig o = fast(25);
    o.loss_type = type;
    DPOTrainer tr(policy, type == "simpo" ? nullptr : ref.get(), toy_pairs(tok), tok.pad_id(), o);
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
  DPOConfig o = fast(15);
  o.label_smoothing = 0.2;
  DPOTrainer tr(policy, ref.get(), toy_pairs(tok), tok.pad_id(), o);
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
  auto pairs = toy_pairs(tok);
  auto expect_error = [&](DPOConfig o, const nn::GPT *r, const std::string &needle) {
    o.loop.steps = 1;
    try {
      DPOTrainer tr(policy, r, pairs, tok.pad_id(), o);
      ADD_FAILURE() << "accepted; expected: " << needle;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  };
  DPOConfig o;
  o.loss_type = "kto";
  expect_error(o, ref.get(), "unknown loss_type 'kto'");
  o = DPOConfig{};
  o.beta = -0.1;
  expect_error(o, ref.get(), "beta must be > 0");
  o = DPOConfig{};
  expect_error(o, nullptr, "needs a reference model");
  o.loss_type = "ipo";
  o.label_smoothing = 0.1;
  expect_error(o, ref.get(), "label_smoothing (cDPO) applies to loss_type sigmoid only");
  // A record that does not fit the context names its source.
  try {
    toy_pairs(tok, 20);
    FAIL() << "too long accepted";
  } catch (const std::exception &e) {
    EXPECT_NE(std::string(e.what()).find(".jsonl:1"), std::string::npos) << e.what();
  }
}

}  // namespace
