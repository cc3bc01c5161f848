// The layers of a GPT: Linear, Embedding, LayerNorm, Dropout, the GELU MLP, causal multi-head
// self-attention with a KV cache, and the pre-LayerNorm transformer Block. Shapes in comments.
#pragma once
#include "nn/module.h"

namespace nanorlhf::nn {

// y = x W^T + b      x [..., in], W [out, in], b [out]
class Linear : public Module {
 public:
  Linear(int64_t in_features, int64_t out_features, bool bias = true);
  Tensor forward(const Tensor &x) const;
  Tensor operator()(const Tensor &x) const { return forward(x); }
  Tensor weight, bias;  // bias undefined when bias = false
};

// out = weight[idx]  idx int64 [...], weight [num, dim] -> [..., dim]
class Embedding : public Module {
 public:
  Embedding(int64_t num_embeddings, int64_t embedding_dim);
  Tensor forward(const Tensor &idx) const;
  Tensor operator()(const Tensor &idx) const { return forward(idx); }
  Tensor weight;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t dim, double eps = 1e-5);
  Tensor forward(const Tensor &x) const;
  Tensor operator()(const Tensor &x) const { return forward(x); }
  Tensor weight, bias;
  double eps;
};

class Dropout : public Module {
 public:
  explicit Dropout(double p) : p(p) {}
  Tensor forward(const Tensor &x) const { return dropout(x, p, is_training()); }
  Tensor operator()(const Tensor &x) const { return forward(x); }
  double p;
};

// fc (d -> 4d), GELU (tanh approximation), proj (4d -> d), dropout
class MLP : public Module {
 public:
  MLP(int64_t d_model, double dropout_p);
  Tensor forward(const Tensor &x) const;
  std::shared_ptr<Linear> fc, proj;
  std::shared_ptr<Dropout> drop;
};

// Keys and values of past positions for one attention layer, grown as tokens are decoded.
struct LayerKV {
  Tensor k, v;  // [B, H, T_past, D] (undefined before the first step)
};
struct KVCache {
  std::vector<LayerKV> layers;
  int64_t length() const { return layers.empty() || !layers[0].k.defined() ? 0 : layers[0].k.shape()[2]; }
};

// Causal multi-head self-attention with a fused QKV projection.
// x [B, T, C]; key_mask [B, T_total] float (1 = real token, 0 = padding; may be undefined);
// with a cache, x holds only the new positions and attends to the cached ones too.
class CausalSelfAttention : public Module {
 public:
  CausalSelfAttention(int64_t d_model, int64_t n_head, double dropout_p);
  Tensor forward(const Tensor &x, const Tensor &key_mask = Tensor(), LayerKV *cache = nullptr) const;
  std::shared_ptr<Linear> qkv, proj;
  std::shared_ptr<Dropout> attn_drop, resid_drop;
  int64_t n_head, d_model;
};

// x = x + attn(ln1(x)); x = x + mlp(ln2(x))
class Block : public Module {
 public:
  Block(int64_t d_model, int64_t n_head, double dropout_p, double ln_eps = 1e-5);
  Tensor forward(const Tensor &x, const Tensor &key_mask = Tensor(), LayerKV *cache = nullptr) const;
  std::shared_ptr<LayerNorm> ln1, ln2;
  std::shared_ptr<CausalSelfAttention> attn;
  std::shared_ptr<MLP> mlp;
};

}  // namespace nanorlhf::nn
