// Pretraining end to end on a tiny generated corpus: the loss must fall well below chance, the same
// seed must give the same losses, and the run directory must hold a loadable checkpoint. Plus the
// run directory's metrics log and the progress log format.
#include <gtest/gtest.h>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>

#include "nn/atomic_file.h"
#include "rlhf/data.h"
#include "rlhf/checkpoints.h"
#include "rlhf/run_dir.h"
#include "rlhf/trainers/pretrain.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
namespace fs = std::filesystem;

namespace {

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("nr_pretrain_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string &s) const { return (path / s).string(); }
};

// A small slice of the default world's web text: 400 documents.
std::string make_corpus(const TempDir &tmp) {
  WorldConfig wc;
  wc.n_pretrain_docs = 400;
  wc.n_sft = 10;
  wc.n_prompts = 10;
  wc.n_eval_prompts = 10;
  World w = make_world(wc);
  std::vector<nlohmann::json> rows;
  for (const auto &t : w.pretrain) rows.push_back({{"text", t}});
  const std::string path = tmp / "pretrain.jsonl";
  write_jsonl(path, rows);
  return path;
}

Config micro_config(const std::string &data, const std::string &out, int seed) {
  Config c(pretrain_options().schema());
  c.merge({{"data", data}, {"out", out}, {"seed", seed}, {"steps", 80}, {"batch_size", 8}, {"lr", 1e-2},
           {"warmup", 8}, {"vocab_size", 300}, {"log_every", 20}, {"samples", 2}, {"sample_tokens", 8},
           {"eval_batches", 2}, {"eval_fraction", 0.1},
           {"model", {{"ctx", 32}, {"d_model", 32}, {"n_layer", 2}, {"n_head", 2}}}});
  return c;
}

double mean_tail(const std::vector<double> &v, size_t n) {
  double s = 0;
  for (size_t i = v.size() - n; i < v.size(); ++i) s += v[i];
  return s / double(n);
}

TEST(Pretrain, LossFallsAndTheSameSeedGivesTheSameLosses) {
  TempDir tmp;
  const std::string data = make_corpus(tmp);
  PretrainResult a = run_pretrain(pretrain_options().read(micro_config(data, tmp / "a", 7)), /*quiet=*/true);
  ASSERT_EQ(a.losses.size(), 80u);
  EXPECT_NEAR(a.losses[0], std::log(300.0), 0.5);  // a fresh model predicts ~uniformly

  // The bound: the entropy of the corpus's unigram distribution (~4.1 nats here), the best loss
  // without context. Beating it by a nat shows the model reads its context (measured: ~2.4).
  std::vector<std::string> texts;
  for (auto &d : read_text_jsonl(data)) texts.push_back(d.text);
  auto stream = pack_documents(nn::Tokenizer::load(tmp / "a/tokenizer.json"), texts);
  std::map<int64_t, double> counts;
  for (int64_t t : stream) counts[t] += 1;
  double unigram = 0;
  for (auto &[t, n] : counts) unigram -= n / double(stream.size()) * std::log(n / double(stream.size()));
  EXPECT_LT(mean_tail(a.losses, 10), unigram - 1.0) << "unigram " << unigram << ", first " << a.losses[0];
  EXPECT_TRUE(std::isfinite(a.eval_loss));
  EXPECT_LT(a.eval_loss, unigram - 1.0);

  PretrainResult b = run_pretrain(pretrain_options().read(micro_config(data, tmp / "b", 7)), true);
  EXPECT_EQ(a.losses, b.losses);  // bit-identical on the same machine
  Config other = micro_config(data, tmp / "c", 8);
  other.set("steps=3");
  PretrainResult c = run_pretrain(pretrain_options().read(other), true);
  EXPECT_NE(c.losses[0], a.losses[0]);  // another seed, another model

  // The run directory: config, metrics every 20 steps + evaluation, samples, a loadable checkpoint.
  for (const char *f : {"config.json", "metrics.jsonl", "samples.txt", "model.safetensors", "tokenizer.json"})
    EXPECT_TRUE(fs::exists(tmp / ("a/" + std::string(f)))) << f;
  auto metrics = read_jsonl(tmp / "a/metrics.jsonl");
  ASSERT_EQ(metrics.size(), 5u);  // steps 20, 40, 60, 80 and eval/loss at 80
  EXPECT_EQ(metrics[0].second["step"], 20);
  for (const char *k : {"loss", "lr", "grad_norm", "tokens_per_s"}) EXPECT_TRUE(metrics[0].second.contains(k)) << k;
  EXPECT_EQ(metrics[4].second["step"], 80);
  EXPECT_NEAR(metrics[4].second["eval/loss"].get<double>(), a.eval_loss, 1e-9);
  EXPECT_NE(nn::read_file(tmp / "a/samples.txt").find("# step 80"), std::string::npos);

  LoadedModel m = load_run<nn::GPT>(tmp / "a");
  EXPECT_EQ(m.model->config.vocab, 300);
  EXPECT_EQ(m.model->config.ctx, 32);
  EXPECT_EQ(m.tokenizer.vocab_size(), 300);
  EXPECT_EQ(m.config["steps"], 80);
}

TEST(Pretrain, ConfigErrorsAreClear) {
  Config c(pretrain_options().schema());
  EXPECT_TRUE(nr_test::throws_with([&] { c.set("model.d_modle=64"); }, "model.d_model"));
  c.merge({{"model", {{"d_model", 30}, {"n_head", 4}}}, {"data", "/nonexistent/x.jsonl"}});
  EXPECT_THROW(run_pretrain(pretrain_options().read(c), true), std::exception);  // no corpus
  nn::GPTConfig m{.vocab = 0, .ctx = 8, .d_model = 30, .n_layer = 1, .n_head = 4};
  EXPECT_TRUE(nr_test::throws_with([&] { gpt_config_from(m, 300); }, "divisible"));
  m.d_model = 32;
  m.vocab = 100;
  EXPECT_THROW(gpt_config_from(m, 300), std::exception);
  m.vocab = 0;
  EXPECT_EQ(gpt_config_from(m, 300).vocab, 300);
}

TEST(RunDir, MetricsAreOneObjectPerLineWithAStep) {
  TempDir tmp;
  {
    RunDir run(tmp / "r");
    run.write_config({{"lr", 0.1}});
    run.log_metrics({{"step", 1}, {"loss", 2.5}});
    run.log_metrics({{"step", 2}, {"loss", NAN}});  // stays valid JSON (null)
    EXPECT_THROW(run.log_metrics({{"loss", 1.0}}), std::invalid_argument);
    auto rows = read_jsonl(run.path("metrics.jsonl"));  // flushed: readable while the run is open
    ASSERT_EQ(rows.size(), 2u);
    EXPECT_EQ(rows[0].second["loss"], 2.5);
    EXPECT_TRUE(rows[1].second["loss"].is_null());
  }
  // A folder holding a run is refused; with overwrite the new run is staged and replaces the old
  // one only at commit().
  EXPECT_THROW(RunDir(tmp / "r"), std::runtime_error);
  RunDir again(tmp / "r", /*overwrite=*/true);
  EXPECT_NE(again.root(), again.out());
  EXPECT_TRUE(read_jsonl(again.path("metrics.jsonl")).empty());  // a fresh log
  again.write_config({{"lr", 0.2}});
  EXPECT_EQ(nlohmann::json::parse(nn::read_file(again.out() + "/config.json"))["lr"], 0.1) << "replaced before commit";
  EXPECT_EQ(read_jsonl(again.out() + "/metrics.jsonl").size(), 2u);
  again.commit();
  EXPECT_EQ(nlohmann::json::parse(nn::read_file(again.out() + "/config.json"))["lr"], 0.2);
  EXPECT_TRUE(read_jsonl(again.out() + "/metrics.jsonl").empty());
  EXPECT_FALSE(std::filesystem::exists(again.out() + "/.staging-" + std::to_string(::getpid())));
}

TEST(Progress, PlainLogLinesWhenNotATerminal) {
  std::FILE *f = std::tmpfile();
  {
    Progress p("pretrain", 100, f);
    EXPECT_FALSE(p.is_terminal());
    for (int s = 1; s <= 100; ++s) p.update(s, {{"loss", 5.0 - s * 0.01}, {"lr", 1e-3}}, 1234);
  }
  std::rewind(f);
  std::string out;
  char buf[4096];
  while (size_t n = std::fread(buf, 1, sizeof buf, f)) out.append(buf, n);
  std::fclose(f);
  EXPECT_EQ(std::count(out.begin(), out.end(), '\n'), 10) << out;  // every 10%
  EXPECT_EQ(out.find('\r'), std::string::npos);
  EXPECT_NE(out.find("pretrain  10/100  10% | loss 4.9 | lr 1.00e-03 | 1234 tok/s | ETA"), std::string::npos) << out;
  EXPECT_NE(out.find("pretrain 100/100 100%"), std::string::npos) << out;
  EXPECT_EQ(format_duration(125), "2m05s");
  EXPECT_EQ(format_duration(12.34), "12.3s");
}

}  // namespace
