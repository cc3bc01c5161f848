// Supervised fine-tuning (lecture: "Instruction tuning"): a pretrained GPT trained on chat
// demonstrations with the loss on assistant tokens only, written as a run directory like pretraining's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "rlhf/config.h"
#include "rlhf/data.h"
#include "rlhf/trainers/pretrain.h"

namespace nanorlhf::rlhf {

// data, init (a pretraining run directory), out, truncate, samples, sample_tokens, and the training
// keys of pretraining with SFT defaults (smaller lr, fewer steps, no weight decay).
std::vector<ConfigKey> sft_schema();

struct SftResult {
  std::vector<double> losses;  // the SFT loss of every step
  int64_t examples = 0;        // demonstrations trained on
  std::string run_dir;
};

// One padded batch of demonstrations, right-padded (ids, attention mask, assistant-token loss mask).
struct SftBatch {
  Tensor input_ids;       // int64 [B, T]
  Tensor attention_mask;  // float [B, T]
  Tensor loss_mask;       // float [B, T]: 1 on assistant tokens (targets)
};
SftBatch make_sft_batch(const std::vector<SftTokens> &examples, const std::vector<size_t> &rows, int64_t pad_id,
                        Device device);

// The SFT loss of a batch: rlhf::sft_loss of the next-token log-probs on the assistant tokens.
Tensor sft_batch_loss(const nn::GPT &model, const SftBatch &batch);

// Reads the demonstrations, fine-tunes the model of run directory `init`, logs `loss` (TRL's name),
// `lr`, `grad_norm`, writes greedy samples to samples.txt and saves model + tokenizer in `out`.
// quiet: no progress output (tests).
SftResult run_sft(const Config &c, bool quiet = false);

}  // namespace nanorlhf::rlhf
