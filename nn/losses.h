// The log-likelihood quantities every trainer of the lecture needs.
#pragma once
#include "nanorlhf/nanorlhf.h"

namespace nanorlhf::nn {

// logits [B, T, V] predict input_ids shifted by one: position t predicts token t+1; loss_mask [B, T]
// marks the *target* tokens that count (e.g. response tokens only).
// Per-token log p(y_t | y_<t) of the tokens in input_ids, with logits divided by `temperature`:
// returns [B, T-1] for targets input_ids[:, 1:], multiplied by loss_mask[:, 1:].
Tensor token_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature = 1.0);

// log p(y|x) = sum over response tokens of token_logprobs: [B]. (average = sum / count, for SimPO)
Tensor sequence_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature = 1.0);

}  // namespace nanorlhf::nn
