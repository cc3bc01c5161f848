// Regression: `preferences` must never write an empty response (the preference readers reject "",
// so one empty sample made train.jsonl unreadable for the reward model and DPO).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "rlhf/data.h"
#include "rlhf/trainers/preferences.h"
#include "rlhf/trainers/pretrain.h"
#include "rlhf/world.h"

using namespace nanorlhf;
namespace fs = std::filesystem;

TEST(Preferences, EmptyResponsesNeverReachTheFile) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 10;
  wc.n_sft = 5;
  wc.n_prompts = 30;
  wc.n_eval_prompts = 5;
  rlhf::write_world(rlhf::make_world(wc), (dir / "world").string());

  // A policy whose next-token distribution is the same everywhere: <|eos|> with p ~ 0.3, the rest
  // uniform, so about a third of the responses are empty. (ln_f maps every state to its bias v; the
  // LM head reads only <|eos|> off v.)
  manual_seed(1);
  nn::Tokenizer tok;
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 96, .d_model = 16, .n_layer = 1, .n_head = 2});
  {
    NoGradGuard ng;
    gpt.ln_f->weight.fill_(0.0);
    gpt.ln_f->bias.fill_(1.0);
    gpt.lm_head->weight.fill_(0.0);
    gpt.lm_head->weight.select(0, tok.eos_id()).fill_(std::log(0.43 * (tok.vocab_size() - 1)) / 16.0);
  }
  rlhf::save_gpt_run((dir / "sft").string(), gpt, tok, nlohmann::json::object());

  rlhf::Config c(rlhf::preferences_schema());
  c.set("policy=" + (dir / "sft").string());
  c.set("prompts=" + (dir / "world" / "prompts.jsonl").string());
  c.set("world=" + (dir / "world").string());
  c.set("out=" + (dir / "prefs").string());
  c.set("max_new_tokens=6");
  rlhf::PreferencesResult r = rlhf::run_preferences(c, /*quiet=*/true);
  ASSERT_GT(r.train_pairs, 0);
  std::vector<rlhf::PreferenceExample> ex;
  ASSERT_NO_THROW(ex = rlhf::read_preference_jsonl(r.train_path));
  ASSERT_NO_THROW(rlhf::read_preference_jsonl(r.heldout_path));
  for (const auto &e : ex) EXPECT_TRUE(!e.chosen.empty() && !e.rejected.empty()) << e.source;
  fs::remove_all(dir);
}

// A policy that writes one token over and over (logit 50 for it, 0 for the rest).
static nn::GPT one_token_policy(const nn::Tokenizer &tok, int64_t token) {
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 96, .d_model = 16, .n_layer = 1, .n_head = 2});
  NoGradGuard ng;
  gpt.ln_f->weight.fill_(0.0);
  gpt.ln_f->bias.fill_(1.0);
  gpt.lm_head->weight.fill_(0.0);
  gpt.lm_head->weight.select(0, token).fill_(50.0 / 16.0);
  return gpt;
}

// mix_policy writes mix_k of the K responses of every prompt: with K = 3 and mix_k = 1, two equal
// responses from the policy (skipped as identical) and one from the second policy, so every pair
// sets one model's answer against the other's, two pairs per prompt.
TEST(Preferences, MixPolicyWritesItsShareOfEveryPromptsResponses) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_mix_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 10;
  wc.n_sft = 5;
  wc.n_prompts = 20;
  wc.n_eval_prompts = 5;
  rlhf::write_world(rlhf::make_world(wc), (dir / "world").string());
  manual_seed(1);
  nn::Tokenizer tok;
  const int64_t a = tok.encode_completion("a").at(0), b = tok.encode_completion("b").at(0);
  rlhf::save_gpt_run((dir / "sft").string(), one_token_policy(tok, a), tok, nlohmann::json::object());
  rlhf::save_gpt_run((dir / "other").string(), one_token_policy(tok, b), tok, nlohmann::json::object());

  rlhf::Config c(rlhf::preferences_schema());
  c.set("policy=" + (dir / "sft").string());
  c.set("prompts=" + (dir / "world" / "prompts.jsonl").string());
  c.set("world=" + (dir / "world").string());
  c.set("out=" + (dir / "prefs").string());
  c.set("max_new_tokens=4");
  c.set("k=3");
  c.set("mix_policy=" + (dir / "other").string());
  c.set("mix_k=1");
  rlhf::PreferencesResult r = rlhf::run_preferences(c, /*quiet=*/true);
  EXPECT_EQ(r.train_pairs + r.heldout_pairs, 2 * 20);
  EXPECT_EQ(r.identical_skipped, 20);
  for (const auto &path : {r.train_path, r.heldout_path})
    for (const auto &e : rlhf::read_preference_jsonl(path)) {
      std::set<std::string> both = {e.chosen, e.rejected};
      EXPECT_EQ(both, (std::set<std::string>{"aaaa", "bbbb"})) << e.source;
    }
  // The two keys go together, and the second policy cannot write all K.
  c.set("mix_k=3");
  EXPECT_THROW(rlhf::run_preferences(c, true), std::exception);
  c.set("mix_k=0");
  try {
    rlhf::run_preferences(c, true);
    FAIL() << "mix_policy without mix_k accepted";
  } catch (const std::exception &e) {
    EXPECT_NE(std::string(e.what()).find("mix_policy and mix_k > 0 go together"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}
