// A Hugging Face GPT-2 folder (config.json, model.safetensors, GPT-2's vocab.json + merges.txt)
// wherever a run directory goes: rlhf::load_run reads it with its own tokenizer, and SFT, the
// reward model, DPO, PPO and GRPO train from it through the `nanorlhf` program, writing runs that
// keep GPT-2's tokenizer; `nanorlhf export` writes a run back in the layout transformers opens.
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "nn/atomic_file.h"
#include "nn/hf_gpt2.h"
#include "nn/tiny_gpt2_tokenizer.h"
#include "rlhf/checkpoints.h"
#include "rlhf/data.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

fs::path scratch(const std::string &what) {
  fs::path p = fs::temp_directory_path() / ("nr_hfrun_" + std::to_string(::getpid()) + "_" + what);
  fs::remove_all(p);
  return p;
}

// A random micro GPT-2 in Hugging Face's layout; `tokenizer` says which tokenizer files go beside it.
struct HfFolder {
  enum Tok { kNone, kOurs, kGpt2 };
  fs::path path;
  nn::GPTConfig cfg;
  std::shared_ptr<nn::GPT> model;
  explicit HfFolder(Tok tok, const std::string &name) : path(scratch(name)) {
    manual_seed(3);
    cfg = {.vocab = tok == kGpt2 ? TinyGpt2Tokenizer::kVocab : nn::Tokenizer().vocab_size(), .ctx = 64, .d_model = 32,
           .n_layer = 2, .n_head = 2, .tie_weights = true};
    model = std::make_shared<nn::GPT>(cfg);
    nn::save_hf_gpt2(path.string(), *model);
    if (tok == kOurs) nn::Tokenizer().save((path / "tokenizer.json").string());
    if (tok == kGpt2) TinyGpt2Tokenizer().write_files(path);
  }
  ~HfFolder() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

struct Result {
  int rc = 0;
  std::string output;
};

Result shell(const std::string &cmd) {
  Result r;
  FILE *p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) return {-1, "popen failed"};
  char buf[4096];
  for (size_t n; (n = std::fread(buf, 1, sizeof buf, p)) > 0;) r.output.append(buf, n);
  const int status = ::pclose(p);
  r.rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128;
  return r;
}

// One metric of every logged step of a run.
std::vector<double> metric(const fs::path &run, const std::string &key) {
  std::vector<double> v;
  std::ifstream f(run / "metrics.jsonl");
  for (std::string line; std::getline(f, line);) {
    const json j = json::parse(line);
    if (j.contains(key) && j.contains("grad_norm")) v.push_back(j[key].get<double>());
  }
  return v;
}

double mean(const std::vector<double> &v, size_t from, size_t to) {
  double s = 0;
  for (size_t i = from; i < to; ++i) s += v[i];
  return s / double(to - from);
}

}  // namespace

TEST(HfRun, LoadsAPolicyWithANanorlhfTokenizer) {
  HfFolder hf(HfFolder::kOurs, "ours");
  rlhf::LoadedModel run = rlhf::load_run<nn::GPT>(hf.str());
  EXPECT_EQ(run.config["model"], hf.cfg.to_json());
  EXPECT_FALSE(run.tokenizer.is_gpt2());
  EXPECT_EQ(run.tokenizer.vocab_size(), nn::Tokenizer().vocab_size());
  EXPECT_EQ(run.model->wte->weight.to_vector<float>(), hf.model->wte->weight.to_vector<float>());
  EXPECT_EQ(run.model->blocks[0]->mlp->fc->weight.to_vector<float>(),
            hf.model->blocks[0]->mlp->fc->weight.to_vector<float>());
}

TEST(HfRun, LoadsAPolicyWithGpt2sTokenizer) {
  HfFolder hf(HfFolder::kGpt2, "gpt2");
  rlhf::LoadedModel run = rlhf::load_run<nn::GPT>(hf.str());
  ASSERT_TRUE(run.tokenizer.is_gpt2());
  EXPECT_EQ(run.tokenizer.vocab_size(), TinyGpt2Tokenizer::kVocab);
  EXPECT_EQ(run.tokenizer.eos_id(), 259);
  EXPECT_EQ(run.model->blocks[1]->attn->proj->weight.to_vector<float>(),
            hf.model->blocks[1]->attn->proj->weight.to_vector<float>());
}

TEST(HfRun, WithoutATokenizerSaysWhatItLooksFor) {
  HfFolder hf(HfFolder::kNone, "none");
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::GPT>(hf.str()); },
                          "no tokenizer (expected nanorlhf's tokenizer.json, or GPT-2's vocab.json + merges.txt, or a "
                          "Hugging Face tokenizer.json)"));
  // A Hugging Face tokenizer.json that is not a BPE model says so, naming the file.
  nn::write_file_atomic((hf.path / "tokenizer.json").string(), R"({"version": "1.0", "model": {"type": "WordPiece"}})");
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::GPT>(hf.str()); }, "tokenizer.json: model.type is \"WordPiece\""));
}

TEST(HfRun, IsNotARewardModel) {
  HfFolder hf(HfFolder::kOurs, "notrm");
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::ScalarModel>(hf.str()); }, "not a nanorlhf reward or value model"));
}

// Each trainer from the HF folder, as a user runs it: SFT, the reward model and DPO must lower their
// loss on eight examples; PPO and GRPO start at KL 0 from the HF reference and move the policy.
// Every run keeps GPT-2's tokenizer, and an exported run reads back as the same model.
TEST(HfRun, TrainersRunFromAHuggingFaceFolder) {
  HfFolder hf(HfFolder::kGpt2, "trainers");
  const fs::path dir = scratch("trainers_data");
  fs::create_directories(dir);
  const char *answers[] = {"Yes.", "No, not today.", "The abc is blue.", "1 2 3", "Hello there, Ann!", "ok",
                           "Big fish swim deep.", "Red ab."};
  std::vector<json> pairs, demos, prompts;
  for (int i = 0; i < 8; ++i) {
    const std::string q = "Question " + std::to_string(i) + "?";
    pairs.push_back({{"prompt", q}, {"chosen", answers[i]}, {"rejected", answers[(i + 3) % 8]}});
    demos.push_back({{"prompt", q}, {"completion", answers[i]}});
    prompts.push_back({{"prompt", q}});
  }
  rlhf::write_jsonl((dir / "pairs.jsonl").string(), pairs);
  rlhf::write_jsonl((dir / "sft.jsonl").string(), demos);
  rlhf::write_jsonl((dir / "prompts.jsonl").string(), prompts);
  const std::string cli = std::string(NANORLHF_CLI) + " ";
  const std::string common = " --log_every 1 --overwrite --out ";
  const fs::path sft = dir / "sft", rm = dir / "rm", dpo = dir / "dpo", ppo = dir / "ppo", grpo = dir / "grpo";
  auto run = [&](const std::string &args) {
    const Result r = shell(cli + args);
    EXPECT_EQ(r.rc, 0) << args << "\n" << r.output;
    return r.rc == 0;
  };

  ASSERT_TRUE(run("sft --init " + hf.str() + " --data " + (dir / "sft.jsonl").string() +
                  " --steps 30 --batch_size 8 --lr 3e-3 --samples 0" + common + sft.string()));
  const auto sft_loss = metric(sft, "loss");
  ASSERT_EQ(sft_loss.size(), 30u);
  EXPECT_LT(mean(sft_loss, 25, 30), 0.7 * mean(sft_loss, 0, 5));
  ASSERT_TRUE(run("rm --sft " + hf.str() + " --data " + (dir / "pairs.jsonl").string() +
                  " --eval_data= --world= --steps 30 --batch_size 8 --lr 1e-3" + common + rm.string()));
  const auto rm_loss = metric(rm, "loss");
  ASSERT_EQ(rm_loss.size(), 30u);
  EXPECT_LT(mean(rm_loss, 25, 30), mean(rm_loss, 0, 5) - 0.1);
  ASSERT_TRUE(run("dpo --policy " + hf.str() + " --data " + (dir / "pairs.jsonl").string() +
                  " --world= --eval_prompts= --steps 30 --batch_size 8 --lr 5e-4" + common + dpo.string()));
  const auto dpo_loss = metric(dpo, "loss");
  ASSERT_EQ(dpo_loss.size(), 30u);
  EXPECT_NEAR(dpo_loss[0], std::log(2.0), 1e-4);  // the policy starts as its reference
  EXPECT_LT(mean(dpo_loss, 25, 30), 0.65);
  const std::string rl = " --policy " + hf.str() + " --reward_model " + rm.string() + " --prompts " +
                         (dir / "prompts.jsonl").string() + " --world= --eval_prompts= --max_new_tokens 8 --steps 5" +
                         " --lr 5e-3";
  ASSERT_TRUE(run("ppo" + rl + " --batch_size 8" + common + ppo.string()));
  ASSERT_TRUE(run("grpo" + rl + " --batch_size 2 --num_generations 4 --beta 0.04" + common + grpo.string()));
  for (const auto &[r, key] : {std::pair{ppo, "objective/kl"}, std::pair{grpo, "kl"}}) {
    const auto kl = metric(r, key);
    ASSERT_EQ(kl.size(), 5u) << r;
    EXPECT_NEAR(kl[0], 0.0, 1e-5) << r;
  }

  const rlhf::LoadedModel start = rlhf::load_run<nn::GPT>(hf.str());
  for (const fs::path &r : {sft, dpo, ppo, grpo}) {
    SCOPED_TRACE(r.string());
    EXPECT_TRUE(fs::exists(r / "vocab.json") && fs::exists(r / "merges.txt"));
    EXPECT_FALSE(fs::exists(r / "tokenizer.json"));
    const rlhf::LoadedModel out = rlhf::load_run<nn::GPT>(r.string());
    EXPECT_TRUE(out.tokenizer == start.tokenizer);
    EXPECT_NE(out.model->wte->weight.to_vector<float>(), start.model->wte->weight.to_vector<float>());
  }
  EXPECT_TRUE(rlhf::load_run<nn::ScalarModel>(rm.string()).tokenizer == start.tokenizer);

  // Export: the layout transformers opens, the same weights and tokenizer; no silent overwrite.
  const fs::path hf_out = dir / "dpo-hf";
  ASSERT_TRUE(run("export --checkpoint " + dpo.string() + " --out " + hf_out.string()));
  const rlhf::LoadedModel trained = rlhf::load_run<nn::GPT>(dpo.string());
  const auto exported = nn::load_hf_gpt2(hf_out.string());
  const auto a = trained.model->parameters(), b = exported->parameters();
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_EQ(a[i].to_vector<float>(), b[i].to_vector<float>()) << i;
  EXPECT_TRUE(nn::Tokenizer::load_folder(hf_out.string()) == start.tokenizer);
  const Result again = shell(cli + "export --checkpoint " + dpo.string() + " --out " + hf_out.string());
  EXPECT_NE(again.rc, 0);
  EXPECT_NE(again.output.find("already holds a checkpoint; pass --overwrite"), std::string::npos) << again.output;
  if (!::testing::Test::HasFailure()) fs::remove_all(dir);  // kept for a look when it fails
}
