// Log-likelihood quantities of the lecture: per-token and per-sequence log-probs under a temperature.
#include "nn/losses.h"

#include <algorithm>

namespace nanorlhf::nn {

namespace {

void check_lm_inputs(const Tensor &logits, const Tensor &input_ids, const Tensor &mask, const char *fn) {
  NR_CHECK(logits.dim() == 3, "{}: logits must be [B, T, V], got {}", fn, shape_str(logits.shape()));
  Shape bt = {logits.shape()[0], logits.shape()[1]};
  NR_CHECK(input_ids.shape() == bt, "{}: logits {} need input_ids {}, got {}", fn, shape_str(logits.shape()), shape_str(bt),
           shape_str(input_ids.shape()));
  NR_CHECK(mask.shape() == bt, "{}: logits {} need a mask {}, got {}", fn, shape_str(logits.shape()), shape_str(bt),
           shape_str(mask.shape()));
  NR_CHECK(bt[1] >= 2, "{}: need at least 2 positions to predict a next token, got T = {}", fn, bt[1]);
}

// Targets aligned with the logits: target[b, t] = ids[b, t+1]; the last position, which predicts
// nothing, gets a dummy 0. Tiny, so built on the host. [B, T]
Tensor next_token_targets(const Tensor &input_ids) {
  int64_t B = input_ids.shape()[0], T = input_ids.shape()[1];
  std::vector<int64_t> ids = input_ids.to_vector<int64_t>(), tgt((size_t)(B * T), 0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) tgt[b * T + t] = ids[b * T + t + 1];
  return from_vector<int64_t>(tgt, {B, T}).to(input_ids.device());
}

Tensor scaled(const Tensor &logits, double temperature) {
  NR_CHECK(temperature > 0, "temperature must be positive, got {}", temperature);
  return temperature == 1.0 ? logits : logits * (1.0 / temperature);
}

}  // namespace

// Per-token log-probs under temperature \tau (N implementation details: divide logits by the
// sampling temperature wherever log-probs are computed):
// \log \pi(y_{t+1} \mid y_{\le t}) = \log\mathrm{softmax}(z_t / \tau)_{y_{t+1}}, times m_{t+1}.   [B, T-1]
Tensor token_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature) {
  check_lm_inputs(logits, input_ids, loss_mask, "token_logprobs");
  int64_t B = logits.shape()[0], T = logits.shape()[1];
  Tensor lp = log_softmax(scaled(logits, temperature), -1);              // [B, T, V]
  Tensor next = next_token_targets(input_ids).view({B, T, 1});
  Tensor tok = gather(lp, -1, next).view({B, T}).narrow(1, 0, T - 1);     // [B, T-1]
  return tok * loss_mask.narrow(1, 1, T - 1).to(tok.dtype());
}

// \log \pi(y \mid x) = \sum_t m_{t+1} \log \pi(y_{t+1} \mid y_{\le t})   [B]
Tensor sequence_logprobs(const Tensor &logits, const Tensor &input_ids, const Tensor &loss_mask, double temperature) {
  return token_logprobs(logits, input_ids, loss_mask, temperature).sum({1});
}

// token_logprobs above with the head applied to the target positions alone, chunk by chunk.
Tensor token_logprobs(const GPT &model, const Tensor &input_ids, const Tensor &attention_mask, const Tensor &loss_mask,
                      double temperature, int64_t chunk) {
  NR_CHECK(input_ids.dim() == 2 && loss_mask.shape() == input_ids.shape(),
           "token_logprobs: input_ids {} need a loss mask of the same shape, got {}", shape_str(input_ids.shape()),
           shape_str(loss_mask.shape()));
  const int64_t B = input_ids.shape()[0], T = input_ids.shape()[1], C = model.config.d_model;
  NR_CHECK(T >= 2, "token_logprobs: need at least 2 positions to predict a next token, got T = {}", T);
  NR_CHECK(temperature > 0, "temperature must be positive, got {}", temperature);
  const std::vector<int64_t> ids = input_ids.to_vector<int64_t>();
  const std::vector<float> mask = loss_mask.to(kFloat32).to_vector<float>();
  // rows: flat positions b*T + t whose target t+1 counts; slot[b*(T-1) + t]: its row in the
  // results, or M (a zero) where it does not count.
  std::vector<int64_t> rows, targets, slot(size_t(B * (T - 1)));
  for (int64_t b = 0; b < B; ++b)
    for (int64_t t = 0; t + 1 < T; ++t) {
      const bool counts = mask[b * T + t + 1] != 0.0f;
      slot[b * (T - 1) + t] = counts ? int64_t(rows.size()) : -1;
      if (counts) rows.push_back(b * T + t), targets.push_back(ids[b * T + t + 1]);
    }
  const int64_t M = int64_t(rows.size());
  for (int64_t &s : slot) s = s < 0 ? M : s;
  const Device dev = input_ids.device();
  Tensor h = model.hidden(input_ids, attention_mask);                                    // [B, T, C]
  if (M == 0) return h.narrow(1, 0, T - 1).sum({2}) * 0.0;                               // still on the graph
  Tensor hs = index_select(h.reshape({B * T, C}), 0, from_vector<int64_t>(rows, {M}).to(dev));  // [M, C]
  if (temperature != 1.0) hs = hs * (1.0 / temperature);
  Tensor lp = -linear_cross_entropy(hs, model.head_weight(), from_vector<int64_t>(targets, {M}).to(dev), chunk);
  Tensor with_zero = cat({lp, zeros({1}, {.dtype = lp.dtype(), .device = dev})}, 0).view({M + 1, 1});
  Tensor tok = index_select(with_zero, 0, from_vector<int64_t>(slot, {B * (T - 1)}).to(dev)).view({B, T - 1});
  return tok * loss_mask.narrow(1, 1, T - 1).to(tok.dtype());
}

Tensor sequence_logprobs(const GPT &model, const Tensor &input_ids, const Tensor &attention_mask,
                         const Tensor &loss_mask, double temperature, int64_t chunk) {
  return token_logprobs(model, input_ids, attention_mask, loss_mask, temperature, chunk).sum({1});
}

// Next-token cross-entropy of a causal LM on full windows: every position has a target.
// \mathcal{L} = -\frac{1}{BT} \sum_{b,t} \log p_\theta(x_{b,t+1} \mid x_{b,\le t})
// Every position counts, so the fused head only saves memory, at ~5% of a small model's step (its
// backward recomputes the logits): it is taken where the logits would be large.
Tensor lm_loss(const GPT &model, const Tensor &x, const Tensor &y) {
  const int64_t V = model.config.vocab;
  if (x.numel() * V > kFusedHeadAbove) return linear_cross_entropy(model.hidden(x), model.head_weight(), y).mean();
  return cross_entropy(model.forward(x).reshape({-1, V}), y.reshape({-1}));
}

}  // namespace nanorlhf::nn
