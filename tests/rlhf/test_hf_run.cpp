// rlhf::load_run on a Hugging Face GPT-2 folder: the policy loads from it when a nanorlhf
// tokenizer.json sits beside it; without one, the error says the GPT-2 tokenizer is not yet wired.
#include <filesystem>

#include <unistd.h>

#include "nn/atomic_file.h"
#include "nn/hf_gpt2.h"
#include "rlhf/checkpoints.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;
namespace fs = std::filesystem;

namespace {

struct HfFolder {
  fs::path path;
  nn::GPTConfig cfg;
  std::shared_ptr<nn::GPT> model;
  HfFolder() {
    path = fs::temp_directory_path() / ("nr_hfrun_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    manual_seed(3);
    cfg = {.vocab = nn::Tokenizer().vocab_size(), .ctx = 16, .d_model = 16, .n_layer = 1, .n_head = 2,
           .tie_weights = true};
    model = std::make_shared<nn::GPT>(cfg);
    nn::save_hf_gpt2(path.string(), *model);
  }
  ~HfFolder() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

}  // namespace

TEST(HfRun, LoadsAPolicyWithANanorlhfTokenizer) {
  HfFolder hf;
  nn::Tokenizer().save((hf.path / "tokenizer.json").string());
  rlhf::LoadedModel run = rlhf::load_run<nn::GPT>(hf.str());
  EXPECT_EQ(run.config["model"], hf.cfg.to_json());
  EXPECT_EQ(run.tokenizer.vocab_size(), nn::Tokenizer().vocab_size());
  EXPECT_EQ(run.model->wte->weight.to_vector<float>(), hf.model->wte->weight.to_vector<float>());
  EXPECT_EQ(run.model->blocks[0]->mlp->fc->weight.to_vector<float>(),
            hf.model->blocks[0]->mlp->fc->weight.to_vector<float>());
}

TEST(HfRun, WithoutOurTokenizerSaysTheGpt2TokenizerIsNotYetWired) {
  HfFolder hf;
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::GPT>(hf.str()); }, "GPT-2 tokenizer is not yet wired"));
  // Hugging Face's own tokenizer.json is another format.
  nn::write_file_atomic((hf.path / "tokenizer.json").string(), R"({"version": "1.0", "model": {"type": "BPE"}})");
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::GPT>(hf.str()); }, "GPT-2 tokenizer is not yet wired"));
}

TEST(HfRun, IsNotARewardModel) {
  HfFolder hf;
  nn::Tokenizer().save((hf.path / "tokenizer.json").string());
  EXPECT_TRUE(throws_with([&] { rlhf::load_run<nn::ScalarModel>(hf.str()); }, "not a nanorlhf reward or value model"));
}
