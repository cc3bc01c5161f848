// Hugging Face GPT-2 checkpoints (a folder with config.json and model.safetensors, as transformers'
// GPT2LMHeadModel saves them) read into and written from nn::GPT, which has GPT-2's architecture.
#pragma once
#include <memory>
#include <string>

#include "nn/gpt.h"
#include "nn/hf_gpt2_config.h"

namespace nanorlhf::nn {

// Reads folder/config.json and folder/model.safetensors. Tensor names may carry a "transformer."
// prefix; the causal-mask buffers (h.N.attn.bias, h.N.attn.masked_bias) are skipped; F16, BF16 and
// F64 are widened or rounded to float32. A missing, unexpected or mis-shaped tensor is an error
// naming the file, the tensor and both shapes. The model comes back on the CPU in training mode.
std::shared_ptr<GPT> load_hf_gpt2(const std::string &folder);

// Writes folder/model.safetensors (HF names without prefix, Conv1D weights as (in, out), no
// lm_head.weight when tied, "__metadata__" {"format": "pt"}) and folder/config.json, atomically.
void save_hf_gpt2(const std::string &folder, const GPT &model);

}  // namespace nanorlhf::nn
