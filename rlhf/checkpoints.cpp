// Loading and saving run directories; the frozen reference.
#include "rlhf/checkpoints.h"

#include <filesystem>

#include <fmt/format.h>

#include "nn/checkpoint.h"
#include "nn/hf_gpt2.h"
#include "rlhf/kill_point.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {
const nn::GPTConfig &config_of(const nn::GPT &m) { return m.config; }
const nn::GPTConfig &config_of(const nn::ScalarModel &m) { return m.backbone->config; }

// A Hugging Face GPT-2 folder as a policy: the model from load_hf_gpt2, a "model" config section
// made from it, and its tokenizer (GPT-2's vocab.json + merges.txt or tokenizer.json, or a nanorlhf
// tokenizer.json put beside it).
LoadedModel load_hf_run(const std::string &dir, Device device) {
  LoadedModel out;
  out.tokenizer = nn::Tokenizer::load_folder(dir);
  out.model = nn::load_hf_gpt2(dir);
  NR_CHECK(out.tokenizer.vocab_size() <= out.model->config.vocab, "{}: the tokenizer has {} tokens but the model only {}",
           dir, out.tokenizer.vocab_size(), out.model->config.vocab);
  out.config = {{"model", out.model->config.to_json()}};
  out.model->to(device);
  return out;
}
}  // namespace

template <class Model>
LoadedRun<Model> load_run(const std::string &run_dir, Device device) {
  NR_CHECK(fs::is_directory(run_dir), "checkpoint '{}' is not a folder (expected a run directory holding config.json, "
           "tokenizer.json and model.safetensors)", run_dir);
  if (nn::is_hf_gpt2_folder(run_dir)) {
    if constexpr (std::is_same_v<Model, nn::GPT>) return load_hf_run(run_dir, device);
    else throw Error(fmt::format("{} is a Hugging Face GPT-2 language model, not a nanorlhf reward or value model "
                                 "(a run directory of `nanorlhf rm`)", run_dir));
  }
  LoadedRun<Model> out;
  out.config = nn::load_checkpoint_config(run_dir);
  NR_CHECK(out.config.is_object() && out.config.contains("model"), "{}/config.json has no \"model\" section", run_dir);
  nn::GPTConfig g;
  try {
    g = nn::GPTConfig::from_json(out.config["model"]);
  } catch (const std::exception &e) {
    throw Error(fmt::format("{}/config.json: {}", run_dir, e.what()));
  }
  out.tokenizer = nn::Tokenizer::load_folder(run_dir);
  NR_CHECK(out.tokenizer.vocab_size() <= g.vocab, "{}: the tokenizer has {} tokens but the model only {}", run_dir,
           out.tokenizer.vocab_size(), g.vocab);
  out.model = std::make_shared<Model>(g);
  nn::load_checkpoint(run_dir, *out.model);
  out.model->to(device);
  if constexpr (std::is_same_v<Model, nn::ScalarModel>) out.model->eval();
  return out;
}
template LoadedRun<nn::GPT> load_run<nn::GPT>(const std::string &, Device);
template LoadedRun<nn::ScalarModel> load_run<nn::ScalarModel>(const std::string &, Device);

namespace {
template <class Model>
void save_any(const std::string &run_dir, const Model &model, const nn::Tokenizer &tok, json config,
              const json &metadata) {
  config["model"] = config_of(model).to_json();  // the actual vocab, not "0 = the tokenizer's"
  // The tokenizer first: a run folder whose model.safetensors exists is complete (its config.json
  // was written when the run began).
  fs::create_directories(run_dir);
  tok.save_folder(run_dir);
  kill_point("final", 0);
  nn::save_checkpoint(run_dir, model, config, metadata);
}
}  // namespace

void save_run(const std::string &run_dir, const nn::GPT &model, const nn::Tokenizer &tok, json config,
              const json &metadata) {
  save_any(run_dir, model, tok, std::move(config), metadata);
}
void save_run(const std::string &run_dir, const nn::ScalarModel &model, const nn::Tokenizer &tok, json config,
              const json &metadata) {
  save_any(run_dir, model, tok, std::move(config), metadata);
}

std::shared_ptr<nn::GPT> frozen_copy(const nn::GPT &policy) {
  auto ref = std::make_shared<nn::GPT>(policy.config);
  ref->to(policy.wte->weight.device());
  ref->copy_from(policy);
  ref->eval();
  ref->requires_grad_(false);
  return ref;
}

void check_reward_model_fits(const nn::GPTConfig &policy, const nn::GPTConfig &rm, const std::string &what,
                             int64_t rollout_len) {
  NR_CHECK(rm.vocab == policy.vocab,
           "reward model {}: its vocabulary ({} tokens, model {}) does not match the policy's ({} tokens, model {}); "
           "train both from the same tokenizer",
           what, rm.vocab, rm.to_json().dump(), policy.vocab, policy.to_json().dump());
  NR_CHECK(rm.ctx >= rollout_len,
           "reward model {}: its context ctx = {} cannot hold a rollout of up to {} tokens (policy model {})", what,
           rm.ctx, rollout_len, policy.to_json().dump());
}

}  // namespace nanorlhf::rlhf
