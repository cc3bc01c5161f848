// Pretraining a GPT on a {"text"} corpus (lecture: "Pretraining"): next-token prediction on seeded
// random windows of the packed token stream, with the tokenizer trained on the corpus.
#pragma once
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "nn/tokenizer.h"
#include "rlhf/options.h"
#include "rlhf/training_loop.h"

namespace nanorlhf::rlhf {

struct PretrainConfig {
  std::string data = "data/pretrain.jsonl";
  std::string out = "runs/pretrain";
  bool overwrite = false;
  std::string resume = "";  // "" = a new run; latest or a checkpoint-N folder of out
  std::string tokenizer;       // tokenizer.json or a folder with a tokenizer; empty = train one on the corpus
  int64_t vocab_size = 512;    // of the tokenizer trained when `tokenizer` is empty
  double eval_fraction = 0.05;
  int64_t eval_batches = 8;
  int64_t sample_every = 0;    // 0 = at the end only
  int64_t samples = 4, sample_tokens = 64;
  uint64_t seed = 1;
  int64_t batch_size = 16;
  std::string device = "cpu";
  LoopOptions loop{.steps = 1000, .log_every = 10, .eval_every = 0};
  optim::OptimConfig optim;    // AdamW 1e-3, cosine to 10%, 50 warm-up steps, weight decay 0.1
  nn::GPTConfig model{.vocab = 0};  // vocab 0 = the tokenizer's size
};
const OptionTable<PretrainConfig> &pretrain_options();

// The model config with vocab 0 resolved to the tokenizer's size; a vocab smaller than the
// tokenizer's, or d_model not divisible by n_head, is an error.
nn::GPTConfig gpt_config_from(nn::GPTConfig model, int64_t tokenizer_vocab);
// Loads the tokenizer at `path`, or (path empty) trains one of `vocab_size` on `texts`.
nn::Tokenizer load_or_train_tokenizer(const std::string &path, int64_t vocab_size, const std::vector<std::string> &texts);
// The documents as one token stream, each starting with <|bos|> (added when the text lacks it).
std::vector<int64_t> pack_documents(const nn::Tokenizer &tok, const std::vector<std::string> &texts);

struct PretrainResult {
  std::vector<double> losses;   // training loss of every step
  double eval_loss = std::numeric_limits<double>::quiet_NaN();  // held-out documents (NaN without any)
  int64_t tokens = 0;           // corpus tokens
  std::string run_dir;
};

// quiet: no progress output (tests).
PretrainResult run_pretrain(const PretrainConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
