// Regression: `preferences` must never write an empty response (the preference readers reject "",
// so one empty sample made train.jsonl unreadable for the reward model and DPO).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "rlhf/data.h"
#include "rlhf/trainers/preferences.h"
#include "rlhf/checkpoints.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;
namespace fs = std::filesystem;

// A fresh folder with a small world in dir/world, and a preferences config reading it with the
// policy in dir/sft and writing dir/prefs.
static rlhf::Config small_world_config(const fs::path &dir, int n_prompts) {
  fs::remove_all(dir);
  rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 10;
  wc.n_sft = 5;
  wc.n_prompts = n_prompts;
  wc.n_eval_prompts = 5;
  rlhf::write_world(rlhf::make_world(wc), (dir / "world").string());
  rlhf::Config c(rlhf::preferences_options().schema());
  c.set("policy=" + (dir / "sft").string());
  c.set("prompts=" + (dir / "world" / "prompts.jsonl").string());
  c.set("world=" + (dir / "world").string());
  c.set("out=" + (dir / "prefs").string());
  return c;
}

// A policy whose next-token distribution is the same everywhere: `token` has logit `logit`, every
// other token 0. (ln_f maps every state to its bias v; the LM head reads only `token` off v.)
static nn::GPT constant_policy(const nn::Tokenizer &tok, int64_t token, double logit) {
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 96, .d_model = 16, .n_layer = 1, .n_head = 2});
  NoGradGuard ng;
  gpt.ln_f->weight.fill_(0.0);
  gpt.ln_f->bias.fill_(1.0);
  gpt.lm_head->weight.fill_(0.0);
  gpt.lm_head->weight.select(0, token).fill_(logit / 16.0);
  return gpt;
}

TEST(Preferences, EmptyResponsesNeverReachTheFile) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_" + std::to_string(::getpid()));
  rlhf::Config c = small_world_config(dir, 30);
  // <|eos|> with p ~ 0.3, the rest uniform, so about a third of the responses are empty.
  manual_seed(1);
  nn::Tokenizer tok;
  rlhf::save_run((dir / "sft").string(), constant_policy(tok, tok.eos_id(), std::log(0.43 * (tok.vocab_size() - 1))),
                     tok, nlohmann::json::object());
  c.set("max_new_tokens=6");
  rlhf::PreferencesResult r = rlhf::run_preferences(rlhf::preferences_options().read(c), /*quiet=*/true);
  ASSERT_GT(r.train_pairs, 0);
  std::vector<rlhf::PreferencePair> ex;
  ASSERT_NO_THROW(ex = rlhf::read_preference_jsonl(r.train_path));
  ASSERT_NO_THROW(rlhf::read_preference_jsonl(r.heldout_path));
  for (const auto &e : ex) EXPECT_TRUE(!e.chosen.empty() && !e.rejected.empty()) << e.source;
  fs::remove_all(dir);
}

// mix_policy writes mix_k of the K responses of every prompt: with K = 3 and mix_k = 1, two equal
// responses from the policy (skipped as identical) and one from the second policy, so every pair
// sets one model's answer against the other's, two pairs per prompt.
TEST(Preferences, MixPolicyWritesItsShareOfEveryPromptsResponses) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_mix_" + std::to_string(::getpid()));
  rlhf::Config c = small_world_config(dir, 20);
  manual_seed(1);
  nn::Tokenizer tok;  // two policies that write one token over and over: "aaaa" and "bbbb"
  const int64_t a = tok.encode_completion("a").at(0), b = tok.encode_completion("b").at(0);
  rlhf::save_run((dir / "sft").string(), constant_policy(tok, a, 50.0), tok, nlohmann::json::object());
  rlhf::save_run((dir / "other").string(), constant_policy(tok, b, 50.0), tok, nlohmann::json::object());
  c.set("max_new_tokens=4");
  c.set("k=3");
  c.set("mix_policy=" + (dir / "other").string());
  c.set("mix_k=1");
  rlhf::PreferencesResult r = rlhf::run_preferences(rlhf::preferences_options().read(c), /*quiet=*/true);
  EXPECT_EQ(r.train_pairs + r.heldout_pairs, 2 * 20);
  EXPECT_EQ(r.identical_skipped, 20);
  for (const auto &path : {r.train_path, r.heldout_path})
    for (const auto &e : rlhf::read_preference_jsonl(path)) {
      std::set<std::string> both = {e.chosen, e.rejected};
      EXPECT_EQ(both, (std::set<std::string>{"aaaa", "bbbb"})) << e.source;
    }
  // The two keys go together, and the second policy cannot write all K.
  c.set("mix_k=3");
  EXPECT_THROW(rlhf::run_preferences(rlhf::preferences_options().read(c), true), std::exception);
  c.set("mix_k=0");
  EXPECT_TRUE(nr_test::throws_with([&] { rlhf::run_preferences(rlhf::preferences_options().read(c), true); }, "mix_policy and mix_k > 0 go together"));
  fs::remove_all(dir);
}
