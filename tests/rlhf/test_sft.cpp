// SFT: the batch loss is the masked next-token loss on assistant tokens only, padding changes
// nothing, and a short run from a "pretrained" micro model drives the loss down and saves a run.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>

#include "nanorlhf/nanorlhf.h"
#include "rlhf/checkpoints.h"
#include "rlhf/trainers/sft.h"
#include "test_util.h"

using namespace nanorlhf;
namespace fs = std::filesystem;

namespace {

std::string temp_dir(const std::string &name) {
  fs::path p = fs::temp_directory_path() / ("nanorlhf_test_sft_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(p);
  fs::create_directories(p);
  return p.string();
}

// A "pretrained" run directory: a random micro GPT with the byte-level tokenizer.
std::string micro_pretrained(const std::string &dir) {
  manual_seed(3);
  nn::Tokenizer tok;
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2});
  rlhf::save_run(dir, gpt, tok, nlohmann::json::object());
  return dir;
}

std::string write_demos(const std::string &dir) {
  std::vector<nlohmann::json> recs = {
      {{"prompt", "Hi"}, {"completion", "Hello!"}},
      {{"prompt", "Count to 3."}, {"completion", "1 2 3."}},
      {{"prompt", "Say yes."}, {"completion", "Yes."}},
      {{"messages",
        {{{"role", "user"}, {"content", "Hi"}},
         {{"role", "assistant"}, {"content", "Hello!"}},
         {{"role", "user"}, {"content", "Say no."}},
         {{"role", "assistant"}, {"content", "No."}}}}},
  };
  std::string path = dir + "/sft.jsonl";
  rlhf::write_jsonl(path, recs);
  return path;
}

}  // namespace

// -(1/sum m) sum_{b,t} m[b,t+1] log softmax(logits[b,t])[ids[b,t+1]], written out on host vectors:
// the reference for sft_batch_loss, independent of nn's log-prob helpers.
double host_masked_next_token_nll(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask) {
  const int64_t B = logits.shape()[0], T = logits.shape()[1], V = logits.shape()[2];
  std::vector<double> l = logits.to_vector<double>(), m = loss_mask.to_vector<double>();
  std::vector<int64_t> ids = input_ids.to_vector<int64_t>();
  double nll = 0, count = 0;
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) {
      if (m[b * T + t + 1] == 0) continue;
      const double *z = &l[(b * T + t) * V];
      double zmax = -INFINITY, sum = 0;
      for (int64_t v = 0; v < V; ++v) zmax = std::max(zmax, z[v]);
      for (int64_t v = 0; v < V; ++v) sum += std::exp(z[v] - zmax);
      nll -= z[ids[b * T + t + 1]] - zmax - std::log(sum);
      count += 1;
    }
  return nll / count;
}

// The loss is the masked next-token cross-entropy, against the host formula above.
TEST(Sft, BatchLossIsAssistantOnlyCrossEntropy) {
  manual_seed(1);
  nn::Tokenizer tok;
  nn::GPT gpt({.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2});
  rlhf::SftExample a{{{"user", "Hi"}, {"assistant", "Hello!"}}, "a"};
  rlhf::SftExample b{{{"user", "Count to 3, please."}, {"assistant", "1 2 3."}}, "b"};
  std::vector<rlhf::SftTokens> ex = {rlhf::encode_sft(tok, a, 64), rlhf::encode_sft(tok, b, 64)};
  rlhf::SftBatch batch = rlhf::make_sft_batch(ex, {0, 1}, tok.pad_id(), Device::cpu());
  ASSERT_EQ(batch.input_ids.shape(), Shape({2, (int64_t)ex[1].ids.size()}));
  NoGradGuard ng;
  double got = rlhf::sft_batch_loss(gpt, batch).item();
  double ref = host_masked_next_token_nll(gpt.forward(batch.input_ids), batch.input_ids, batch.loss_mask);
  EXPECT_NEAR(got, ref, 1e-5);
  // Token-weighted mean: per-row sums over the two rows alone give the same number.
  double sum = 0, count = 0;
  for (size_t r = 0; r < 2; ++r) {
    rlhf::SftBatch one = rlhf::make_sft_batch(ex, {r}, tok.pad_id(), Device::cpu());
    double n = std::accumulate(ex[r].loss_mask.begin() + 1, ex[r].loss_mask.end(), 0.0);
    sum += rlhf::sft_batch_loss(gpt, one).item() * n;
    count += n;
  }
  EXPECT_NEAR(got, sum / count, 1e-5);
}

TEST(Sft, LossFallsAndTheRunIsSaved) {
  std::string dir = temp_dir("run");
  std::string init = micro_pretrained(dir + "/pretrain");
  std::string data = write_demos(dir);
  rlhf::Config c(rlhf::sft_options().schema());
  c.set("data=" + data);
  c.set("init=" + init);
  c.set("out=" + dir + "/sft");
  c.set("steps=150");
  c.set("batch_size=4");
  c.set("lr=5e-3");
  c.set("warmup=2");
  c.set("log_every=10");
  c.set("samples=2");
  c.set("sample_tokens=8");
  rlhf::SftResult r = rlhf::run_sft(rlhf::sft_options().read(c), /*quiet=*/true);
  ASSERT_EQ(r.losses.size(), 150u);
  EXPECT_EQ(r.examples, 4);
  double first = (r.losses[0] + r.losses[1]) / 2, last = (r.losses[148] + r.losses[149]) / 2;
  EXPECT_LT(last, 0.1 * first) << "first " << first << " last " << last;
  for (auto f : {"config.json", "metrics.jsonl", "model.safetensors", "tokenizer.json", "samples.txt"})
    EXPECT_TRUE(fs::exists(dir + "/sft/" + f)) << f;
  rlhf::LoadedModel back = rlhf::load_run<nn::GPT>(dir + "/sft");
  EXPECT_EQ(back.model->config.d_model, 32);
  // Memorised demonstrations come back greedily.
  std::string samples = [&] {
    std::ifstream f(dir + "/sft/samples.txt");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }();
  EXPECT_NE(samples.find("assistant: Hello!"), std::string::npos) << samples;
  fs::remove_all(dir);
}

TEST(Sft, TooLongDemonstrationNamesTheLine) {
  std::string dir = temp_dir("long");
  std::string init = micro_pretrained(dir + "/pretrain");
  rlhf::write_jsonl(dir + "/sft.jsonl", {{{"prompt", "Hi"}, {"completion", "ok"}},
                                         {{"prompt", "Hi"}, {"completion", std::string(100, 'a')}}});
  rlhf::Config c(rlhf::sft_options().schema());
  c.set("data=" + dir + "/sft.jsonl");
  c.set("init=" + init);
  c.set("out=" + dir + "/sft");
  EXPECT_TRUE(nr_test::throws_with([&] { rlhf::run_sft(rlhf::sft_options().read(c), true); }, "sft.jsonl:2"));
  fs::remove_all(dir);
}
