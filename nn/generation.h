// Batched sampling with a KV cache: temperature, top-k, top-p, greedy, stop at EOS, seeded.
#pragma once
#include <vector>

#include "nn/gpt.h"

namespace nanorlhf::nn {

struct GenerationConfig {
  int64_t max_new_tokens = 32;
  double temperature = 1.0;  // the log-probs returned are under this temperature
  int64_t top_k = 0;         // 0 = off
  double top_p = 1.0;        // 1 = off
  bool greedy = false;
  bool use_cache = true;     // false recomputes the whole sequence each step (for tests/benchmarks)
  uint64_t seed = 0;
  // Data parallelism (nn/distributed.h): under mpirun each rank samples its share of the rows and
  // every rank gets all of them, the samples one process would draw. false: this process alone.
  bool split_across_ranks = true;
  // A shard of a larger batch: rows row_offset.. of total_rows (0 = this batch), prompts padded
  // to at least prompt_len; the draws are those of the whole batch's rows.
  int64_t row_offset = 0, total_rows = 0, prompt_len = 0;
};

struct GenerationOutput {
  // Prompts left-padded to P, responses right-padded to N (pad after EOS).
  Tensor sequences;           // int64 [B, P + N]
  Tensor attention_mask;      // float [B, P + N]: 1 on real prompt tokens and on response tokens up to and incl. EOS
  Tensor response_ids;        // int64 [B, N]
  Tensor response_mask;       // float [B, N]: 1 up to and including EOS
  Tensor response_logprobs;   // float [B, N]: log pi(y_t | ...) under the sampling distribution (0 where masked)
  std::vector<bool> finished; // the row produced EOS
  int64_t prompt_len = 0;     // P
};

// Runs in eval mode under NoGradGuard; restores the model's mode afterwards. Prompts must fit
// ctx - max_new_tokens (clear error otherwise). Same seed -> same samples.
GenerationOutput generate(GPT &model, const std::vector<std::vector<int64_t>> &prompts, const GenerationConfig &cfg,
                          int64_t eos_id, int64_t pad_id);

}  // namespace nanorlhf::nn
