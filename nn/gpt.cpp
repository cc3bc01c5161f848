// The GPT model and its config, position ids from the attention mask, and the scalar-head model
// (reward model / value function) on the same backbone.
#include "nn/gpt.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>

namespace nanorlhf::nn {

// ---- GPTConfig ------------------------------------------------------------------------------------

nlohmann::json GPTConfig::to_json() const {
  nlohmann::json j = {{"vocab", vocab},   {"ctx", ctx},         {"d_model", d_model},        {"n_layer", n_layer},
                      {"n_head", n_head}, {"dropout", dropout}, {"tie_weights", tie_weights}};
  // Only when not the default, so run configs written before the key existed read back the same.
  if (layer_norm_eps != GPTConfig{}.layer_norm_eps) j["layer_norm_eps"] = layer_norm_eps;
  return j;
}

GPTConfig GPTConfig::from_json(const nlohmann::json &j) {
  NR_CHECK(j.is_object(), "GPTConfig: expected a JSON object, got {}", j.dump());
  GPTConfig c;
  const std::vector<std::string> keys = {"vocab",   "ctx",         "d_model",       "n_layer",
                                         "n_head",  "dropout",     "tie_weights",   "layer_norm_eps"};
  for (auto it = j.begin(); it != j.end(); ++it)
    NR_CHECK(std::find(keys.begin(), keys.end(), it.key()) != keys.end(), "GPTConfig: unknown key '{}'; valid keys: {}",
             it.key(), fmt::join(keys, ", "));
  auto get_int = [&](const char *k, int64_t &dst) {
    if (!j.contains(k)) return;
    NR_CHECK(j[k].is_number_integer(), "GPTConfig: '{}' must be an integer, got {}", k, j[k].dump());
    dst = j[k].get<int64_t>();
    NR_CHECK(dst > 0, "GPTConfig: '{}' must be positive, got {}", k, dst);
  };
  get_int("vocab", c.vocab);
  get_int("ctx", c.ctx);
  get_int("d_model", c.d_model);
  get_int("n_layer", c.n_layer);
  get_int("n_head", c.n_head);
  if (j.contains("dropout")) {
    NR_CHECK(j["dropout"].is_number(), "GPTConfig: 'dropout' must be a number, got {}", j["dropout"].dump());
    c.dropout = j["dropout"].get<double>();
    NR_CHECK(c.dropout >= 0 && c.dropout < 1, "GPTConfig: 'dropout' must be in [0, 1), got {}", c.dropout);
  }
  if (j.contains("tie_weights")) {
    NR_CHECK(j["tie_weights"].is_boolean(), "GPTConfig: 'tie_weights' must be true or false, got {}",
             j["tie_weights"].dump());
    c.tie_weights = j["tie_weights"].get<bool>();
  }
  if (j.contains("layer_norm_eps")) {
    NR_CHECK(j["layer_norm_eps"].is_number(), "GPTConfig: 'layer_norm_eps' must be a number, got {}",
             j["layer_norm_eps"].dump());
    c.layer_norm_eps = j["layer_norm_eps"].get<double>();
    NR_CHECK(c.layer_norm_eps > 0 && c.layer_norm_eps < 1, "GPTConfig: 'layer_norm_eps' must be in (0, 1), got {}",
             c.layer_norm_eps);
  }
  NR_CHECK(c.d_model % c.n_head == 0, "GPTConfig: d_model {} must be divisible by n_head {}", c.d_model, c.n_head);
  return c;
}

// ---- position ids ---------------------------------------------------------------------------------

// pos[b, t] = max(0, sum_{s<=t} mask[b, s] - 1) + offset: real tokens count 0, 1, 2, ... whatever
// the left padding; pads take 0 (they are masked out as keys anyway). Tiny, so computed on the host.
Tensor position_ids_from_mask(const Tensor &attention_mask, int64_t offset) {
  NR_CHECK(attention_mask.dim() == 2, "position_ids_from_mask: expected a [B, T] mask, got {}",
           shape_str(attention_mask.shape()));
  int64_t B = attention_mask.shape()[0], T = attention_mask.shape()[1];
  std::vector<double> m = attention_mask.to_vector<double>();
  std::vector<int64_t> pos((size_t)(B * T));
  for (int64_t b = 0; b < B; ++b) {
    int64_t c = 0;
    for (int64_t t = 0; t < T; ++t) {
      c += m[b * T + t] != 0;
      pos[b * T + t] = std::max<int64_t>(c - 1, 0) + offset;
    }
  }
  return from_vector<int64_t>(pos, {B, T}).to(attention_mask.device());
}

// ---- GPT ------------------------------------------------------------------------------------------

double parameter_count(const GPTConfig &c) {
  const double d = double(c.d_model);
  // embeddings, per block 12 d^2 + 13 d (attention, MLP, two layer norms), final norm, untied head
  return double(c.vocab) * d + double(c.ctx) * d + double(c.n_layer) * (12 * d * d + 13 * d) + 2 * d +
         (c.tie_weights ? 0.0 : double(c.vocab) * d);
}

double training_step_bytes(const GPTConfig &c, int64_t batch, int64_t tokens) {
  const double bt = double(batch) * double(tokens), d = double(c.d_model);
  // per block and token: ~34 d floats (qkv, attention output, MLP 4d in and out, norms, residuals)
  // and the attention probabilities of every head; then the logits and their softmax.
  const double activations = bt * (double(c.n_layer) * (34 * d + 2.0 * double(c.n_head) * double(tokens)) +
                                   3.0 * double(c.vocab));
  return 4.0 * (4 * parameter_count(c) + activations);
}

void check_fits_in_memory(double bytes, const std::string &what) {
  const double ram = double(::sysconf(_SC_PHYS_PAGES)) * double(::sysconf(_SC_PAGESIZE));
  NR_CHECK(!(ram > 0) || bytes <= ram, "{} would take {:.1f} GB, more than this machine's {:.1f} GB of memory", what,
           bytes / 1e9, ram / 1e9);
}

GPT::GPT(const GPTConfig &cfg) : config(cfg) {
  NR_CHECK(cfg.vocab > 0 && cfg.ctx > 0 && cfg.d_model > 0 && cfg.n_layer > 0 && cfg.n_head > 0,
           "GPT: sizes must be positive (vocab {}, ctx {}, d_model {}, n_layer {}, n_head {})", cfg.vocab, cfg.ctx,
           cfg.d_model, cfg.n_layer, cfg.n_head);
  check_fits_in_memory(4.0 * parameter_count(cfg),
                       fmt::format("a GPT of vocab {}, ctx {}, d_model {}, n_layer {} ({:.3g} parameters)", cfg.vocab,
                                   cfg.ctx, cfg.d_model, cfg.n_layer, parameter_count(cfg)));
  NR_CHECK(cfg.d_model % cfg.n_head == 0, "GPT: d_model {} must be divisible by n_head {}", cfg.d_model, cfg.n_head);
  wte = register_module("wte", std::make_shared<Embedding>(cfg.vocab, cfg.d_model));
  wpe = register_module("wpe", std::make_shared<Embedding>(cfg.ctx, cfg.d_model));
  drop = register_module("drop", std::make_shared<Dropout>(cfg.dropout));
  for (int64_t i = 0; i < cfg.n_layer; ++i)
    blocks.push_back(register_module("blocks." + std::to_string(i),
                                     std::make_shared<Block>(cfg.d_model, cfg.n_head, cfg.dropout, cfg.layer_norm_eps)));
  ln_f = register_module("ln_f", std::make_shared<LayerNorm>(cfg.d_model, cfg.layer_norm_eps));
  if (!cfg.tie_weights) lm_head = register_module("lm_head", std::make_shared<Linear>(cfg.d_model, cfg.vocab, false));
  // GPT-2: projections into the residual stream get std 0.02 / sqrt(2 n_layer), so the stream's
  // variance does not grow with depth (two residual adds per block).
  NoGradGuard ng;
  double std = 0.02 / std::sqrt(2.0 * cfg.n_layer);
  for (auto &b : blocks)
    for (Tensor *w : {&b->attn->proj->weight, &b->mlp->proj->weight}) w->copy_(randn(w->shape()) * std);
}

// idx [B, T] -> hidden [B, T, C]; attention_mask [B, T_past + T]
Tensor GPT::hidden(const Tensor &idx, const Tensor &attention_mask, KVCache *cache) const {
  NR_CHECK(idx.dim() == 2 && idx.dtype() == kInt64, "GPT: expected int64 token ids [B, T], got {} {}",
           dtype_name(idx.dtype()), shape_str(idx.shape()));
  int64_t B = idx.shape()[0], T = idx.shape()[1];
  int64_t past = cache ? cache->length() : 0;
  NR_CHECK(T > 0, "GPT: empty input");
  NR_CHECK(past + T <= config.ctx, "GPT: sequence of {} tokens (T = {} new + {} cached) exceeds the context ctx = {}",
           past + T, T, past, config.ctx);
  if (cache) {
    NR_CHECK((int64_t)cache->layers.size() == config.n_layer, "GPT: the cache has {} layers, the model {} (use make_cache())",
             cache->layers.size(), config.n_layer);
  }
  Tensor pos;
  if (attention_mask.defined()) {
    NR_CHECK(attention_mask.dim() == 2 && attention_mask.shape()[0] == B && attention_mask.shape()[1] == past + T,
             "GPT: attention_mask must be [{}, {}] (batch, cached + new positions), got {}", B, past + T,
             shape_str(attention_mask.shape()));
    pos = position_ids_from_mask(attention_mask).narrow(1, past, T);
  } else {
    pos = (arange((double)past, (double)(past + T), 1, {kInt64}).view({1, T}).expand({B, T})).to(idx.device());
  }
  // x [B, T, C]
  Tensor x = (*drop)((*wte)(idx) + (*wpe)(pos));
  for (size_t i = 0; i < blocks.size(); ++i) x = blocks[i]->forward(x, attention_mask, cache ? &cache->layers[i] : nullptr);
  return (*ln_f)(x);
}

Tensor GPT::forward(const Tensor &idx, const Tensor &attention_mask, KVCache *cache) const {
  return lm_logits(hidden(idx, attention_mask, cache));
}

// [..., C] -> [..., vocab]
const Tensor &GPT::head_weight() const { return lm_head ? lm_head->weight : wte->weight; }

Tensor GPT::lm_logits(const Tensor &h) const {
  if (lm_head) return (*lm_head)(h);
  // Tied: logits = h E^T, E the token embedding [vocab, C] read through a transposed view.
  int64_t C = config.d_model;
  Tensor h2 = h.dim() == 2 ? h : h.reshape({-1, C});
  Tensor y = h2.matmul(wte->weight.t());
  Shape out = h.shape();
  out.back() = config.vocab;
  return y.view(out);
}

KVCache GPT::make_cache() const {
  KVCache c;
  c.layers.resize(blocks.size());
  return c;
}

// ---- ScalarModel ----------------------------------------------------------------------------------

// The backbone ties its (unused) LM head to the embedding so no dead parameter is trained or decayed.
ScalarModel::ScalarModel(const GPTConfig &cfg) {
  GPTConfig bc = cfg;
  bc.tie_weights = true;
  backbone = register_module("backbone", std::make_shared<GPT>(bc));
  head = register_module("head", std::make_shared<Linear>(cfg.d_model, 1));
  NoGradGuard ng;
  // openai/lm-human-preferences: W ~ N(0, 1/sqrt(d + 1)), b = 0.
  head->weight.copy_(randn(head->weight.shape()) * (1.0 / std::sqrt((double)cfg.d_model + 1)));
}

// r [B]: the head at the last real token of each row (index of the last 1 in the mask), so the
// same code reads right-padded (RM) and left-padded (prompt + response) rows.
Tensor ScalarModel::score(const Tensor &idx, const Tensor &attention_mask) const {
  NR_CHECK(attention_mask.defined() && attention_mask.dim() == 2 && attention_mask.shape() == idx.shape(),
           "ScalarModel::score: attention_mask must be [B, T] like the ids {}, got {}", shape_str(idx.shape()),
           attention_mask.defined() ? shape_str(attention_mask.shape()) : std::string("undefined"));
  int64_t B = idx.shape()[0], T = idx.shape()[1], C = backbone->config.d_model;
  std::vector<double> m = attention_mask.to_vector<double>();
  std::vector<int64_t> rows((size_t)B);
  for (int64_t b = 0; b < B; ++b) {
    int64_t last = -1;
    for (int64_t t = 0; t < T; ++t)
      if (m[b * T + t] != 0) last = t;
    NR_CHECK(last >= 0, "ScalarModel::score: row {} of the attention mask has no real token", b);
    rows[b] = b * T + last;  // row index into hidden viewed as [B*T, C]
  }
  Tensor h = backbone->hidden(idx, attention_mask).reshape({B * T, C});
  Tensor last = index_select(h, 0, from_vector<int64_t>(rows, {B}).to(h.device()));  // [B, C]
  return (*head)(last).view({B});
}

// V [B, T]
Tensor ScalarModel::values(const Tensor &idx, const Tensor &attention_mask) const {
  Tensor h = backbone->hidden(idx, attention_mask);
  return (*head)(h).view({idx.shape()[0], idx.shape()[1]});
}

void ScalarModel::init_backbone_from(const GPT &gpt) {
  const GPTConfig &a = backbone->config, &b = gpt.config;
  NR_CHECK(a.vocab == b.vocab && a.ctx == b.ctx && a.d_model == b.d_model && a.n_layer == b.n_layer && a.n_head == b.n_head &&
               a.layer_norm_eps == b.layer_norm_eps,
           "ScalarModel::init_backbone_from: backbone {} differs from the GPT {}", a.to_json().dump(), b.to_json().dump());
  NoGradGuard ng;
  backbone->wte->copy_from(*gpt.wte);
  backbone->wpe->copy_from(*gpt.wpe);
  for (size_t i = 0; i < backbone->blocks.size(); ++i) backbone->blocks[i]->copy_from(*gpt.blocks[i]);
  backbone->ln_f->copy_from(*gpt.ln_f);
}

}  // namespace nanorlhf::nn
