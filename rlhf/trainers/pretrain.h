// Pretraining a GPT on a {"text"} corpus (next-token prediction on random windows of the packed
// token stream), and the pieces later trainers reuse: model/optimizer config keys, the AdamW +
// schedule + clipping step, tokenizer set-up, checkpoint loading of a run directory.
#pragma once
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "nn/optim.h"
#include "nn/tokenizer.h"
#include "rlhf/config.h"

namespace nanorlhf::rlhf {

// ---- shared config keys -------------------------------------------------------------------------

// model.vocab (0 = the tokenizer's size), model.ctx, model.d_model, model.n_layer, model.n_head,
// model.dropout, model.tie_weights.
std::vector<ConfigKey> model_config_keys();
// seed, steps, batch_size, lr, min_lr_ratio, warmup, schedule, weight_decay, beta1, beta2, grad_clip,
// log_every, device. Defaults are those of pretraining; a trainer may override a default.
std::vector<ConfigKey> train_config_keys();
// Replaces the default of `key` in a schema (throws if absent), e.g. a smaller lr for SFT.
void set_default(std::vector<ConfigKey> &schema, const std::string &key, nlohmann::json value);

// The "model" section of a resolved config as a GPTConfig; vocab 0 takes the tokenizer's size, and a
// vocab smaller than the tokenizer's is an error.
nn::GPTConfig gpt_config_from(const nlohmann::json &model_section, int64_t tokenizer_vocab);

struct OptimConfig {
  double lr = 1e-3, min_lr_ratio = 0.1, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, grad_clip = 1.0;
  int64_t warmup = 50, steps = 1000;
  std::string schedule = "cosine";
  static OptimConfig from(const Config &c);
};

// AdamW over a model, weight decay on matrices only (embeddings and Linear weights, dim >= 2; not on
// biases and LayerNorm gains, as in GPT-2/nanoGPT), with the lr schedule and global-norm clipping.
class Optimization {
 public:
  Optimization(const nn::Module &model, const OptimConfig &cfg);
  struct Stats { double lr = 0, grad_norm = 0; };
  // After backward: sets the scheduled lr for `step` (0-based), clips, steps AdamW, zeroes grads.
  // A non-finite gradient norm is an error naming the step (the run diverged).
  Stats step(int64_t step);
  void zero_grad();
  const OptimConfig &config() const { return cfg_; }

 private:
  OptimConfig cfg_;
  std::vector<Tensor> params_;
  std::unique_ptr<optim::AdamW> decay_, no_decay_;
};

// ---- tokenizer and corpus -------------------------------------------------------------------

// Loads the tokenizer at `path`, or (path empty) trains one of `vocab_size` on `texts`.
nn::Tokenizer load_or_train_tokenizer(const std::string &path, int64_t vocab_size, const std::vector<std::string> &texts);
// The documents as one token stream, each starting with <|bos|> (added when the text lacks it).
std::vector<int64_t> pack_documents(const nn::Tokenizer &tok, const std::vector<std::string> &texts);

// ---- checkpoints of a run directory --------------------------------------------------------------

struct LoadedModel {
  std::shared_ptr<nn::GPT> model;
  nn::Tokenizer tokenizer;
  nlohmann::json config;  // the run's config.json
};
// Reads run_dir/config.json ("model" section), tokenizer.json and model.safetensors.
LoadedModel load_gpt_run(const std::string &run_dir, Device device = Device::cpu());
// Writes model.safetensors + config.json (with the model's actual config under "model") + tokenizer.json.
void save_gpt_run(const std::string &run_dir, const nn::GPT &model, const nn::Tokenizer &tok, nlohmann::json config,
                  const nlohmann::json &metadata = nlohmann::json::object());

// ---- pretraining ------------------------------------------------------------------------------

std::vector<ConfigKey> pretrain_schema();

struct PretrainConfig {
  std::string data, out, tokenizer;
  int64_t vocab_size = 512;  // of the tokenizer trained when `tokenizer` is empty
  uint64_t seed = 1;
  int64_t batch_size = 16, log_every = 10, eval_every = 0, sample_every = 0, eval_batches = 8;
  int64_t samples = 4, sample_tokens = 64;
  double eval_fraction = 0.05;
  std::string device = "cpu";
  OptimConfig optim;
  nlohmann::json model;     // the "model" section (vocab 0 = the tokenizer's size)
  nlohmann::json resolved;  // the full config, as written to config.json
  static PretrainConfig from(const Config &c);
};

struct PretrainResult {
  std::vector<double> losses;   // training loss of every step
  double eval_loss = std::numeric_limits<double>::quiet_NaN();  // held-out documents (NaN without any)
  int64_t tokens = 0;           // corpus tokens
  std::string run_dir;
};

// quiet: no progress output (tests).
PretrainResult pretrain(const PretrainConfig &cfg, bool quiet = false);
inline PretrainResult pretrain(const Config &c, bool quiet = false) { return pretrain(PretrainConfig::from(c), quiet); }

}  // namespace nanorlhf::rlhf
