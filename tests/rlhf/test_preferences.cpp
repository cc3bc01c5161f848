// Regressions: `preferences` must never write an empty response (the preference readers reject "",
// so one empty sample made train.jsonl unreadable for the reward model and DPO), nor one whose text
// does not re-encode to the tokens that were sampled.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <set>

#include "rlhf/data.h"
#include "rlhf/trainers/preferences.h"
#include "rlhf/checkpoints.h"
#include "rlhf/rollout.h"
#include "rlhf/stages.h"
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

// A policy whose next-token distribution is the same everywhere: each of `tokens` has logit `logit`,
// every other token 0. (ln_f maps every state to its bias v; the LM head reads only `tokens` off v.)
static nn::GPT constant_policy(const nn::Tokenizer &tok, const std::vector<int64_t> &tokens, double logit) {
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 96, .d_model = 16, .n_layer = 1, .n_head = 2});
  NoGradGuard ng;
  gpt.ln_f->weight.fill_(0.0);
  gpt.ln_f->bias.fill_(1.0);
  gpt.lm_head->weight.fill_(0.0);
  for (int64_t t : tokens) gpt.lm_head->weight.select(0, t).fill_(logit / 16.0);
  return gpt;
}

TEST(Preferences, EmptyResponsesNeverReachTheFile) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_" + std::to_string(::getpid()));
  rlhf::Config c = small_world_config(dir, 30);
  // <|eos|> with p ~ 0.3, the rest uniform, so about a third of the responses are empty.
  manual_seed(1);
  nn::Tokenizer tok;
  rlhf::save_run((dir / "sft").string(), constant_policy(tok, {tok.eos_id()}, std::log(0.43 * (tok.vocab_size() - 1))),
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
  rlhf::save_run((dir / "sft").string(), constant_policy(tok, {a}, 50.0), tok, nlohmann::json::object());
  rlhf::save_run((dir / "other").string(), constant_policy(tok, {b}, 50.0), tok, nlohmann::json::object());
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

// Byte-level tokens can end mid-character: "\xC3" alone is not UTF-8 and JSON holds U+FFFD instead.
// Token 256 is "é" (C3 A9), so [C3, A9] decodes to valid text that BPE re-encodes as [256].
TEST(Preferences, RoundTripsIsWhatReEncodingTheWrittenTextGives) {
  const nn::Tokenizer tok = nn::Tokenizer::from_merges({{0xC3, 0xA9}});
  EXPECT_TRUE(rlhf::round_trips(tok, {256, 'a'}, "\xC3\xA9" "a"));
  EXPECT_TRUE(rlhf::round_trips(tok, {256, tok.eos_id()}, "\xC3\xA9"));  // <|eos|> ends it, is not text
  EXPECT_FALSE(rlhf::round_trips(tok, {'a', 0xC3}, "a\xC3"));             // a cut character
  EXPECT_FALSE(rlhf::round_trips(tok, {0xC3, 0xA9}, "\xC3\xA9"));         // not BPE's own split
  EXPECT_FALSE(rlhf::round_trips(tok, {'a', tok.bos_id(), 'a'}, "aa"));   // decode drops a special token
}

// The policy writes two tokens from {"é", "a"} (all four texts round-trip), the second policy
// "\xC3\xC3" (a cut character each): with K = 4 and mix_k = 1 the three pairs of every prompt that
// hold the second policy's response are dropped and counted, and every written response
// re-encodes to two tokens of the policy's.
TEST(Preferences, PairsWhoseTextDoesNotReEncodeAreDroppedAndCounted) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_utf8_" + std::to_string(::getpid()));
  const int n_prompts = 20;
  rlhf::Config c = small_world_config(dir, n_prompts);
  manual_seed(1);
  const nn::Tokenizer tok = nn::Tokenizer::from_merges({{0xC3, 0xA9}});
  const int64_t e_acute = 256, a = 'a';
  rlhf::save_run((dir / "sft").string(), constant_policy(tok, {e_acute, a}, 50.0), tok, nlohmann::json::object());
  rlhf::save_run((dir / "cut").string(), constant_policy(tok, {0xC3}, 50.0), tok, nlohmann::json::object());
  c.set("max_new_tokens=2");
  c.set("k=4");
  c.set("mix_policy=" + (dir / "cut").string());
  c.set("mix_k=1");
  rlhf::PreferencesResult r = rlhf::run_preferences(rlhf::preferences_options().read(c), /*quiet=*/true);
  EXPECT_EQ(r.dropped_not_round_trip, 3 * n_prompts);
  EXPECT_EQ(r.train_pairs + r.heldout_pairs + r.identical_skipped, 3 * n_prompts);
  ASSERT_GT(r.train_pairs, 0);
  for (const auto &path : {r.train_path, r.heldout_path})
    for (const auto &e : rlhf::read_preference_jsonl(path))
      for (const std::string &text : {e.chosen, e.rejected}) {
        const std::vector<int64_t> ids = tok.encode(text, /*allow_special=*/false);
        ASSERT_EQ(ids.size(), 2u) << e.source << ": " << text;
        for (int64_t id : ids) EXPECT_TRUE(id == e_acute || id == a) << e.source << ": " << text;
        EXPECT_EQ(tok.decode(ids), text) << e.source;
      }
  EXPECT_EQ((int64_t)rlhf::read_preference_pairs(r.train_path, tok, 96).size(), r.train_pairs);
  fs::remove_all(dir);
}

// A tiny pipeline (ctx 32, a barely trained model, so most samples cut a character and fill the
// context): before round_trips, a response re-read with U+FFFD outgrew ctx and the rm stage failed
// ("prompt + chosen response is 36 tokens, longer than the context ctx = 32").
TEST(Preferences, ATinyPipelineGetsThroughTheRewardModel) {
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_prefs_tiny_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  rlhf::Config c(rlhf::find_stage("pipeline").schema());
  for (const char *kv : {"stages=pretrain,sft,preferences,rm", "world.n_pretrain_docs=300", "world.n_prompts=100",
                         "world.n_eval_prompts=20", "pretrain.steps=60", "pretrain.model.ctx=32",
                         "pretrain.model.d_model=32", "pretrain.model.n_layer=1", "sft.steps=5", "sft.truncate=true",
                         "rm.steps=5"})
    c.set(kv);
  c.set("out=" + dir.string());
  ASSERT_NO_THROW(rlhf::find_stage("pipeline").run(c, /*quiet=*/true));
  const nlohmann::json m = rlhf::read_jsonl((dir / "preferences" / "metrics.jsonl").string()).at(0).second;
  EXPECT_GT(m["pairs/dropped_not_round_trip"].get<int64_t>(), 0);
  const nn::Tokenizer tok = nn::Tokenizer::load((dir / "sft" / "tokenizer.json").string());
  EXPECT_EQ((int64_t)rlhf::read_preference_pairs((dir / "preferences" / "train.jsonl").string(), tok, 32).size(),
            m["pairs/train"].get<int64_t>());
  EXPECT_TRUE(fs::exists(dir / "rm" / "model.safetensors"));
  fs::remove_all(dir);
}
