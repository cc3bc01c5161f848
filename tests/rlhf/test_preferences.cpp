// Regression: `preferences` must never write an empty response (the preference readers reject "",
// so one empty sample made train.jsonl unreadable for the reward model and DPO).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>

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
