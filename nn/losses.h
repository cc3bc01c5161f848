// The log-likelihood quantities every trainer of the lecture needs.
#pragma once
#include "nanorlhf/nanorlhf.h"
#include "nn/gpt.h"

namespace nanorlhf::nn {

// logits [B, T, V] predict input_ids shifted by one: position t predicts token t+1; loss_mask [B, T]
// marks the *target* tokens that count (e.g. response tokens only).
// Per-token log p(y_t | y_<t) of the tokens in input_ids, with logits divided by `temperature`:
// returns [B, T-1] for targets input_ids[:, 1:], multiplied by loss_mask[:, 1:].
Tensor token_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature = 1.0);

// log p(y|x) = sum over response tokens of token_logprobs: [B]. (average = sum / count, for SimPO)
Tensor sequence_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature = 1.0);

// The same two, from the model and its input, without the [B, T, V] logits in memory: only the
// hidden states of positions whose next token counts go through the LM head, `chunk` rows at a
// time, by the fused linear_cross_entropy (its backward recomputes each chunk's logits). With
// GPT-2's V = 50257, a DPO batch of 8 x 512 tokens would hold 0.8 GB of logits the other way.
Tensor token_logprobs(const GPT &model, const Tensor &input_ids, const Tensor &attention_mask, const Tensor &loss_mask,
                      double temperature = 1.0, int64_t chunk = 1024);
// Logits of more elements than this (64 Mi, 256 MB of float32) go through the fused head where
// every position counts (lm_loss), which costs a recomputation of the logits in the backward.
constexpr int64_t kFusedHeadAbove = int64_t(1) << 26;

// Pretraining's loss: the mean next-token cross-entropy of windows x [B, T] against targets y [B, T].
Tensor lm_loss(const GPT &model, const Tensor &x, const Tensor &y);
Tensor sequence_logprobs(const GPT &model, const Tensor &input_ids, const Tensor &attention_mask,
                         const Tensor &loss_mask, double temperature = 1.0, int64_t chunk = 1024);

}  // namespace nanorlhf::nn
