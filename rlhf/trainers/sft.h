// Supervised fine-tuning (lecture: "Instruction tuning"): a pretrained GPT trained on chat
// demonstrations with the loss on assistant tokens only, written as a run directory like pretraining's.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/gpt.h"
#include "nn/optimization.h"
#include "rlhf/data.h"
#include "rlhf/options.h"
#include "rlhf/training_loop.h"

namespace nanorlhf::rlhf {

struct SFTConfig {
  std::string data = "data/sft.jsonl";
  std::string init = "runs/pretrain";  // the pretraining run directory
  std::string out = "runs/sft";
  bool overwrite = false;
  std::string resume = "";  // "" = a new run; latest or a checkpoint-N folder of out
  bool truncate = false;  // cut demonstrations longer than the context instead of failing
  int64_t samples = 6, sample_tokens = 48;
  uint64_t seed = 1;
  int64_t batch_size = 16;
  std::string device = "cpu";
  // Fine-tuning a pretrained model on a few hundred demonstrations: ~10 epochs at batch 16.
  LoopOptions loop{.steps = 200};
  optim::OptimConfig optim{.lr = 5e-4, .weight_decay = 0.0, .warmup = 10};
};
const OptionTable<SFTConfig> &sft_options();

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

struct SftResult {
  std::vector<double> losses;  // the SFT loss of every step
  int64_t examples = 0;        // demonstrations trained on
  std::string run_dir;
};

// Reads the demonstrations, fine-tunes the model of run directory `init`, logs `loss` (TRL's name),
// `lr`, `grad_norm`, writes greedy samples to samples.txt and saves model + tokenizer in `out`.
// quiet: no progress output (tests).
SftResult run_sft(const SFTConfig &cfg, bool quiet = false);

}  // namespace nanorlhf::rlhf
