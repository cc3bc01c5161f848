// Hugging Face GPT-2's config.json (transformers' GPT2Config) <-> GPTConfig, and telling a Hugging
// Face folder from a nanorlhf run directory.
#pragma once
#include <string>

#include <nlohmann/json.hpp>

#include "nn/gpt.h"

namespace nanorlhf::nn {

// True when folder/config.json is a GPT-2 config ("model_type": "gpt2", or "n_embd" without our
// "model" section); false for a run directory, a missing or unreadable config.
bool is_hf_gpt2_folder(const std::string &folder);

// Reads n_embd, n_layer, n_head, n_positions (or n_ctx), vocab_size, layer_norm_epsilon,
// activation_function (gelu_new or gelu_pytorch_tanh), tie_word_embeddings (default true) and the
// dropouts. Keys GPT-2 defines but nn::GPT cannot honour (another activation, n_inner other than
// 4 n_embd, unscaled attention, ...) are errors naming `file` and the key; other keys are ignored.
GPTConfig gpt_config_from_hf(const nlohmann::json &j, const std::string &file);

// A config.json that transformers' GPT2LMHeadModel loads.
nlohmann::json hf_config_from_gpt(const GPTConfig &c);

}  // namespace nanorlhf::nn
