// Run-directory checkpoints of every model a trainer writes or reads (policy, reward and value
// models): model.safetensors, config.json with the model's config under "model", and the
// tokenizer (nanorlhf's tokenizer.json, or GPT-2's vocab.json + merges.txt).
#pragma once
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"
#include "nn/tokenizer.h"

namespace nanorlhf::rlhf {

template <class Model>  // nn::GPT (policies) or nn::ScalarModel (reward and value models)
struct LoadedRun {
  std::shared_ptr<Model> model;
  nn::Tokenizer tokenizer;
  nlohmann::json config;  // the run's config.json
};
using LoadedModel = LoadedRun<nn::GPT>;
using LoadedRewardModel = LoadedRun<nn::ScalarModel>;

// The one loader: reads run_dir/config.json ("model" section), the tokenizer
// (nn::Tokenizer::load_folder) and model.safetensors onto `device`. A ScalarModel comes back in
// eval mode. Errors name the folder. A policy may also come from a Hugging Face GPT-2 folder
// (nn::is_hf_gpt2_folder) with its tokenizer files; its config is then {"model": the GPTConfig
// read from the HF config}.
template <class Model>
LoadedRun<Model> load_run(const std::string &run_dir, Device device = Device::cpu());

// Writes model.safetensors, config.json (the model's actual config under "model") and the
// tokenizer's files, each atomically.
void save_run(const std::string &run_dir, const nn::GPT &model, const nn::Tokenizer &tok, nlohmann::json config,
              const nlohmann::json &metadata = nlohmann::json::object());
void save_run(const std::string &run_dir, const nn::ScalarModel &model, const nn::Tokenizer &tok,
              nlohmann::json config, const nlohmann::json &metadata = nlohmann::json::object());

// A frozen copy of `policy`: eval mode (dropout off), no gradients; the reference pi_ref.
std::shared_ptr<nn::GPT> frozen_copy(const nn::GPT &policy);

// Throws unless a reward (or value) model reads the policy's tokens: same vocabulary, a context
// that holds a rollout of rollout_len tokens. `what` names the file in the message.
void check_reward_model_fits(const nn::GPTConfig &policy, const nn::GPTConfig &rm, const std::string &what,
                             int64_t rollout_len);

}  // namespace nanorlhf::rlhf
