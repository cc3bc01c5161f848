// The GPT model (token + learned position embeddings, pre-LayerNorm blocks, final LayerNorm, LM
// head) and the scalar head that turns the same backbone into a reward model or a value function.
#pragma once
#include <nlohmann/json.hpp>

#include "nn/layers.h"

namespace nanorlhf::nn {

struct GPTConfig {
  int64_t vocab = 512, ctx = 128, d_model = 128, n_layer = 4, n_head = 4;
  double dropout = 0.0;
  bool tie_weights = false;  // LM head shares the token embedding
  double layer_norm_eps = 1e-5;  // every LayerNorm's epsilon (GPT-2's config names it layer_norm_epsilon)
  nlohmann::json to_json() const;
  static GPTConfig from_json(const nlohmann::json &j);  // unknown keys are an error listing the valid ones
};

// Sizes checked before anything is allocated, so a typo in a size key ("d_model=1e7",
// "batch_size=1e12") is an error naming the key and the memory it would take, not a bad_alloc.
// Parameters of a config; bytes of one training step (weights, gradients and AdamW's two
// moments, plus the activations the backward keeps for `batch` sequences of `tokens`).
double parameter_count(const GPTConfig &cfg);
double training_step_bytes(const GPTConfig &cfg, int64_t batch, int64_t tokens);
// Throws nanorlhf::Error "<what> would take X GB, more than this machine's Y GB" when bytes exceed
// the physical memory.
void check_fits_in_memory(double bytes, const std::string &what);

class GPT : public Module {
 public:
  explicit GPT(const GPTConfig &cfg);
  // idx int64 [B, T]; attention_mask float [B, T_total] (1 real, 0 pad; undefined = all real);
  // positions count real tokens only, so left-padded prompts start at position 0.
  // With a cache, idx holds only the new tokens and T_total = cache length + T.
  // Returns the final hidden states after ln_f: [B, T, d_model].
  Tensor hidden(const Tensor &idx, const Tensor &attention_mask = Tensor(), KVCache *cache = nullptr) const;
  // logits [B, T, vocab]
  Tensor forward(const Tensor &idx, const Tensor &attention_mask = Tensor(), KVCache *cache = nullptr) const;
  Tensor operator()(const Tensor &idx) const { return forward(idx); }
  Tensor lm_logits(const Tensor &hidden) const;  // [.., d] -> [.., vocab]
  const Tensor &head_weight() const;             // the LM head's [vocab, d] (wte's when tied)
  KVCache make_cache() const;

  GPTConfig config;
  std::shared_ptr<Embedding> wte, wpe;
  std::vector<std::shared_ptr<Block>> blocks;
  std::shared_ptr<LayerNorm> ln_f;
  std::shared_ptr<Linear> lm_head;  // null when tie_weights
  std::shared_ptr<Dropout> drop;
};

// Position ids from a [B, T] attention mask: cumsum(mask) - 1, clamped at 0 (pads get 0).
Tensor position_ids_from_mask(const Tensor &attention_mask, int64_t offset = 0);

// A GPT backbone with a scalar linear head: the reward model (score at the last real token) and
// the value function (a value at every position). W ~ N(0, 1/sqrt(d+1)), b = 0.
class ScalarModel : public Module {
 public:
  explicit ScalarModel(const GPTConfig &cfg);
  // r(x, y): [B] scores read at the last real token of each row (right-padded or left-padded).
  Tensor score(const Tensor &idx, const Tensor &attention_mask) const;
  // V(s_t): [B, T] one value per position.
  Tensor values(const Tensor &idx, const Tensor &attention_mask) const;
  // Copy the backbone (all but the LM head) from a GPT, e.g. the SFT model.
  void init_backbone_from(const GPT &gpt);

  std::shared_ptr<GPT> backbone;
  std::shared_ptr<Linear> head;  // d_model -> 1
};

}  // namespace nanorlhf::nn
