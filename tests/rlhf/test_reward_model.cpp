// Reward model: pair scoring ignores padding, a short run ranks chosen above rejected on its pairs
// with a falling Bradley-Terry loss, rm_accuracy follows the oracle (not the file's labels), the
// head normalisation and the saved run, and the bad-input errors (file:line, context, shapes).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <numeric>
#include <random>

#include "nanorlhf/nanorlhf.h"
#include "nn/checkpoint.h"
#include "rlhf/checkpoints.h"
#include "rlhf/trainers/reward_model.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string temp_dir(const std::string &name) {
  fs::path p = fs::temp_directory_path() / ("nanorlhf_test_rm_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

nn::GPTConfig micro(int64_t vocab, int64_t ctx = 128) {
  return {.vocab = vocab, .ctx = ctx, .d_model = 32, .n_layer = 2, .n_head = 2};
}

// An "SFT" run directory: a random micro GPT with the byte-level tokenizer.
std::string micro_sft(const std::string &dir, int64_t ctx = 128) {
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT gpt(micro(tok.vocab_size(), ctx));
  rlhf::save_run(dir, gpt, tok, json::object());
  return dir;
}

rlhf::World small_world() {
  rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 10;
  wc.n_sft = 5;
  wc.n_prompts = 10;
  wc.n_eval_prompts = 5;
  return rlhf::make_world(wc);
}

// Ten pairs from the world: the good response chosen over a flawed one (as the noiseless oracle would).
std::vector<json> world_pairs(const rlhf::World &w, size_t n = 10) {
  std::vector<json> out;
  std::mt19937_64 rng(5);
  std::vector<rlhf::Prompt> prompts = rlhf::all_prompts(w.kb);
  for (size_t i = 0; out.size() < n; i += 7) {
    const rlhf::Prompt &p = prompts[i % prompts.size()];
    for (int b = 1; b < rlhf::kNumBehaviours; ++b) {
      auto beh = rlhf::Behaviour((b + int(i)) % (rlhf::kNumBehaviours - 1) + 1);
      if (!rlhf::applicable(beh, p.kind) || beh == rlhf::Behaviour::Unfinished) continue;
      rlhf::Response bad = rlhf::make_response(w.kb, p, beh, rng);
      rlhf::Response good = rlhf::good_response(w.kb, p);
      if (bad.text == good.text) continue;
      out.push_back({{"prompt", p.text}, {"chosen", good.text}, {"rejected", bad.text}});
      break;
    }
  }
  return out;
}

rlhf::Config rm_config(const std::string &dir, const std::string &sft, const std::string &data) {
  rlhf::Config c(rlhf::reward_options().schema());
  c.set("sft=" + sft);
  c.set("data=" + data);
  c.set("eval_data=");
  c.set("world=");
  c.set("out=" + dir + "/rm");
  c.set("steps=60");
  c.set("batch_size=10");
  c.set("lr=3e-3");
  c.set("warmup=3");
  c.set("log_every=10");
  return c;
}

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace

TEST(RewardModel, PairScoresIgnorePadding) {
  manual_seed(1);
  nn::Tokenizer tok;
  nn::ScalarModel rm(micro(tok.vocab_size()));
  rm.eval();
  std::vector<rlhf::PreferencePair> pairs(2);
  pairs[0] = {"Hi", "Hello!", "Go away, you idiot.", true, true};
  pairs[1] = {"Count to 3, please.", "1, 2, 3.", "1, 2", true, false};
  rlhf::tokenize_pairs(pairs, tok, 128);
  EXPECT_EQ(pairs[1].rejected_ids.back(), tok.encode("2", false).back());  // unfinished: no <|eos|>
  EXPECT_EQ(pairs[1].chosen_ids.back(), tok.eos_id());
  NoGradGuard ng;
  rlhf::PairScores both = rlhf::score_pairs(rm, pairs, {0, 1}, tok.pad_id());
  std::vector<double> chosen_alone, rejected_alone;  // each row scored in a batch of its own
  for (size_t r = 0; r < 2; ++r) {
    rlhf::PairScores one = rlhf::score_pairs(rm, pairs, {r}, tok.pad_id());
    chosen_alone.push_back(one.chosen.item());
    rejected_alone.push_back(one.rejected.item());
  }
  EXPECT_TRUE(nr_test::allclose(both.chosen, chosen_alone, {.atol = 1e-4, .rtol = 0}));
  EXPECT_TRUE(nr_test::allclose(both.rejected, rejected_alone, {.atol = 1e-4, .rtol = 0}));
}

TEST(RewardModel, LearnsItsPairsAndSavesANormalisedHead) {
  std::string dir = temp_dir("train");
  std::string sft = micro_sft(dir + "/sft");
  rlhf::World w = small_world();
  std::vector<json> recs = world_pairs(w);
  ASSERT_EQ(recs.size(), 10u);
  rlhf::write_jsonl(dir + "/pairs.jsonl", recs);
  rlhf::Config c = rm_config(dir, sft, dir + "/pairs.jsonl");
  rlhf::RewardModelResult r = rlhf::run_reward_model(rlhf::reward_options().read(c), /*quiet=*/true);
  ASSERT_EQ(r.losses.size(), 60u);
  EXPECT_LT(r.losses.back(), 0.5 * r.losses.front()) << r.losses.front() << " -> " << r.losses.back();
  EXPECT_EQ(r.accuracies.back(), 1.0);

  // The saved model ranks every pair, and its scores of the training responses are standardised.
  rlhf::LoadedRewardModel rm = rlhf::load_run<nn::ScalarModel>(dir + "/rm");
  std::vector<rlhf::PreferencePair> pairs = rlhf::read_preference_pairs(dir + "/pairs.jsonl", rm.tokenizer, 128);
  rlhf::PairEval e = rlhf::evaluate_pairs(*rm.model, pairs, rm.tokenizer.pad_id(), nullptr);
  EXPECT_EQ(e.accuracy, 1.0);
  EXPECT_GT(e.margin, 0.0);
  NoGradGuard ng;
  std::vector<size_t> all(pairs.size());
  std::iota(all.begin(), all.end(), 0);
  rlhf::PairScores s = rlhf::score_pairs(*rm.model, pairs, all, rm.tokenizer.pad_id());
  Tensor v = cat({s.chosen, s.rejected});
  EXPECT_NEAR(v.mean().item(), 0.0, 1e-3);
  EXPECT_NEAR(std::sqrt(var(v, {}, 0).item()), 1.0, 1e-3);
  for (auto f : {"config.json", "metrics.jsonl", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(dir + "/rm/" + f)) << f;

  // rm_accuracy follows the noiseless oracle, not the file's labels: swap chosen and rejected.
  rlhf::Oracle oracle(w.kb);
  std::vector<rlhf::PreferencePair> swapped = pairs;
  for (auto &p : swapped) std::swap(p.chosen, p.rejected), std::swap(p.chosen_ids, p.rejected_ids);
  rlhf::PairEval straight = rlhf::evaluate_pairs(*rm.model, pairs, rm.tokenizer.pad_id(), &oracle);
  rlhf::PairEval flipped = rlhf::evaluate_pairs(*rm.model, swapped, rm.tokenizer.pad_id(), &oracle);
  EXPECT_EQ(straight.oracle_pairs, 10);
  EXPECT_EQ(straight.rm_accuracy, 1.0);
  EXPECT_EQ(flipped.accuracy, 0.0);
  EXPECT_EQ(flipped.rm_accuracy, 1.0);
  EXPECT_GT(flipped.loss, straight.loss);
  fs::remove_all(dir);
}

TEST(RewardModel, BadInputErrorsNameTheLine) {
  std::string dir = temp_dir("bad");
  std::string sft = micro_sft(dir + "/sft", 48);
  nn::Tokenizer tok;
  auto write = [&](const std::string &name, const std::string &text) {
    std::ofstream(dir + "/" + name) << text;
    return dir + "/" + name;
  };
  std::string missing = write("missing.jsonl", "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\",\"rejected\":\"Go.\"}\n"
                                               "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\"}\n");
  std::string msg = error_of([&] { rlhf::read_preference_pairs(missing, tok, 48); });
  EXPECT_NE(msg.find("missing.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("rejected"), std::string::npos) << msg;

  std::string empty = write("empty.jsonl", "{\"prompt\":\"Hi\",\"chosen\":\"\",\"rejected\":\"Go.\"}\n");
  msg = error_of([&] { rlhf::read_preference_pairs(empty, tok, 48); });
  EXPECT_NE(msg.find("empty.jsonl:1"), std::string::npos) << msg;

  std::string long_prompt = write("long.jsonl", "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\",\"rejected\":\"Go.\"}\n"
                                                "{\"prompt\":\"" + std::string(60, 'x') +
                                                    "\",\"chosen\":\"Hello!\",\"rejected\":\"Go.\"}\n");
  msg = error_of([&] { rlhf::run_reward_model(rlhf::reward_options().read(rm_config(dir, sft, long_prompt)), true); });
  EXPECT_NE(msg.find("long.jsonl:2"), std::string::npos) << msg;
  EXPECT_NE(msg.find("context"), std::string::npos) << msg;

  std::string bad_flag = write("flag.jsonl", "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\",\"rejected\":\"Go.\","
                                             "\"rejected_finished\":\"no\"}\n");
  msg = error_of([&] { rlhf::read_preference_pairs(bad_flag, tok, 48); });
  EXPECT_NE(msg.find("flag.jsonl:1"), std::string::npos) << msg;

  // An SFT checkpoint whose config does not match its weights (d_model 32 saved, 64 claimed).
  json cfg = nn::load_checkpoint_config(sft);
  cfg["model"]["d_model"] = 64;
  write("sft/config.json", cfg.dump());
  std::string good = write("good.jsonl", "{\"prompt\":\"Hi\",\"chosen\":\"Hello!\",\"rejected\":\"Go.\"}\n");
  msg = error_of([&] { rlhf::run_reward_model(rlhf::reward_options().read(rm_config(dir, sft, good)), true); });
  EXPECT_NE(msg.find("model.safetensors"), std::string::npos) << msg;
  EXPECT_NE(msg.find("shape"), std::string::npos) << msg;
  fs::remove_all(dir);
}
