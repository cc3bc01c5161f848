// The layers of a GPT: Linear, Embedding, LayerNorm, MLP, causal self-attention (with a KV cache)
// and the pre-LN Block. GPT-2 initialisation: weights N(0, 0.02), biases 0.
#include "nn/layers.h"

#include <cmath>
#include <limits>

namespace nanorlhf::nn {

namespace {

// A leaf tensor drawn from N(0, std^2) (from the global Philox stream: same seed, same model).
Tensor normal_init(const Shape &shape, double std) { return (randn(shape) * std).detach(); }

}  // namespace

Linear::Linear(int64_t in_features, int64_t out_features, bool has_bias) {
  NR_CHECK(in_features > 0 && out_features > 0, "Linear: features must be positive, got in={} out={}", in_features,
           out_features);
  weight = register_parameter("weight", normal_init({out_features, in_features}, 0.02));
  if (has_bias) bias = register_parameter("bias", zeros({out_features}));
}

// y = x W^T + b   x [..., in] -> [..., out]
Tensor Linear::forward(const Tensor &x) const {
  int64_t in = weight.shape()[1];
  NR_CHECK(x.dim() >= 1 && x.shape().back() == in, "Linear: expected input [..., {}], got {}", in, shape_str(x.shape()));
  // Flatten the leading dims into one GEMM (a view when x is contiguous); W^T is a transposed view
  // the GEMM reads through its trans flag, never a copy.
  Tensor x2 = x.dim() == 2 ? x : x.reshape({-1, in});
  Tensor y = x2.matmul(weight.t());
  if (bias.defined()) y = y + bias;
  if (x.dim() == 2) return y;
  Shape out = x.shape();
  out.back() = weight.shape()[0];
  return y.view(out);
}

Embedding::Embedding(int64_t num_embeddings, int64_t embedding_dim) {
  NR_CHECK(num_embeddings > 0 && embedding_dim > 0, "Embedding: sizes must be positive, got {} x {}", num_embeddings,
           embedding_dim);
  weight = register_parameter("weight", normal_init({num_embeddings, embedding_dim}, 0.02));
}

// idx int64 [...] -> [..., dim]
Tensor Embedding::forward(const Tensor &idx) const { return embedding(weight, idx); }

LayerNorm::LayerNorm(int64_t dim, double eps) : eps(eps) {
  weight = register_parameter("weight", ones({dim}));
  bias = register_parameter("bias", zeros({dim}));
}

Tensor LayerNorm::forward(const Tensor &x) const { return layer_norm(x, weight, bias, eps); }

MLP::MLP(int64_t d_model, double dropout_p) {
  fc = register_module("fc", std::make_shared<Linear>(d_model, 4 * d_model));
  proj = register_module("proj", std::make_shared<Linear>(4 * d_model, d_model));
  drop = register_module("drop", std::make_shared<Dropout>(dropout_p));
}

// x [B, T, C] -> [B, T, C]
Tensor MLP::forward(const Tensor &x) const { return (*drop)((*proj)(gelu((*fc)(x)))); }

CausalSelfAttention::CausalSelfAttention(int64_t d_model, int64_t n_head, double dropout_p)
    : n_head(n_head), d_model(d_model) {
  NR_CHECK(n_head > 0 && d_model % n_head == 0, "CausalSelfAttention: d_model {} must be divisible by n_head {}", d_model,
           n_head);
  qkv = register_module("qkv", std::make_shared<Linear>(d_model, 3 * d_model));
  proj = register_module("proj", std::make_shared<Linear>(d_model, d_model));
  attn_drop = register_module("attn_drop", std::make_shared<Dropout>(dropout_p));
  resid_drop = register_module("resid_drop", std::make_shared<Dropout>(dropout_p));
}

// Additive attention bias [B or 1, 1, Tq, Tk]: -inf above the causal diagonal (offset by the cache
// length), -1e9 on padded keys. The diagonal is never causally masked, so every row keeps a finite
// maximum; a row whose allowed keys are all pads (a left-pad query) softmaxes over them, a finite
// garbage value nobody reads. Returns an undefined tensor when nothing is masked.
static Tensor attention_bias(int64_t Tq, int64_t Tk, const Tensor &key_mask, DType dtype, Device device) {
  int64_t past = Tk - Tq;
  Tensor bias;
  if (Tq > 1) {  // one new query sees every key: no causal mask needed
    std::vector<double> c((size_t)(Tq * Tk), 0.0);
    for (int64_t i = 0; i < Tq; ++i)
      for (int64_t j = past + i + 1; j < Tk; ++j) c[i * Tk + j] = -std::numeric_limits<double>::infinity();
    bias = from_vector<double>(c, {1, 1, Tq, Tk}).to(dtype).to(device);
  }
  if (key_mask.defined()) {
    int64_t B = key_mask.shape()[0];
    // (mask - 1) * 1e9: 0 on real keys, -1e9 on pads. [B, 1, 1, Tk]
    Tensor pad = ((key_mask.detach().to(dtype) - 1.0) * 1e9).view({B, 1, 1, Tk});
    bias = bias.defined() ? bias + pad : pad;
  }
  return bias;
}

// [B, H, L, D] ++ [B, H, T, D] along positions. The cache lives positions-first in memory
// ([L, B, H, D] contiguous, seen through a permuted view), so appending is a cat along dim 0: one
// memcpy of the past, where a cat along an inner dim would transpose-copy it three times.
static Tensor append_positions(const Tensor &past, const Tensor &now) {
  return cat({past.permute({2, 0, 1, 3}), now.permute({2, 0, 1, 3})}, 0).permute({1, 2, 0, 3});
}

// x [B, T, C]; key_mask [B, T_past + T]; cache->k, v [B, H, T_past, D]
Tensor CausalSelfAttention::forward(const Tensor &x, const Tensor &key_mask, LayerKV *cache) const {
  NR_CHECK(x.dim() == 3 && x.shape()[2] == d_model, "CausalSelfAttention: expected x [B, T, {}], got {}", d_model,
           shape_str(x.shape()));
  int64_t B = x.shape()[0], T = x.shape()[1], H = n_head, D = d_model / n_head;
  // The fused projection's parameters (weight [3C, C] = Wq | Wk | Wv by rows, bias [3C]) applied as
  // three GEMMs on row slices of the weight (views, no copies): q, k, v [B*T, C] -> [B, H, T, D]
  // (strided views). Slicing the [B*T, 3C] output instead would make each slice's backward pad its
  // gradient to [B*T, 3C] with zeros and the engine add the three; here the padding happens on the
  // small weight and bias gradients, and the activations' gradients are three [B*T, C] GEMMs.
  // The 1/sqrt(D) of the scores is folded into q's weight and bias slices ([C, C] and [C] scaled
  // instead of the [B, H, T, D] queries).
  const Tensor x2 = x.reshape({B * T, d_model});
  auto project = [&](int64_t i, double scale) {
    Tensor w = qkv->weight.narrow(0, i * d_model, d_model);
    if (scale != 1.0) w = w * scale;
    Tensor y = x2.matmul(w.t());
    if (qkv->bias.defined()) {
      Tensor b = qkv->bias.narrow(0, i * d_model, d_model);
      y = y + (scale != 1.0 ? b * scale : b);
    }
    return y.view({B, T, H, D}).permute({0, 2, 1, 3});
  };
  Tensor q = project(0, 1.0 / std::sqrt((double)D)), k = project(1, 1.0), v = project(2, 1.0);
  if (cache) {
    if (cache->k.defined()) {
      NR_CHECK(cache->k.shape()[0] == B && cache->k.shape()[1] == H && cache->k.shape()[3] == D,
               "CausalSelfAttention: cache holds {} but the input needs [{}, {}, T, {}]", shape_str(cache->k.shape()), B, H, D);
      k = append_positions(cache->k, k);
      v = append_positions(cache->v, v);
    }
    // Stored detached: the cache carries values across steps, never a graph.
    cache->k = k.detach();
    cache->v = v.detach();
  }
  int64_t Tk = k.shape()[2];
  if (key_mask.defined())
    NR_CHECK(key_mask.dim() == 2 && key_mask.shape()[0] == B && key_mask.shape()[1] == Tk,
             "CausalSelfAttention: key_mask must be [{}, {}] (batch, cached + new positions), got {}", B, Tk,
             shape_str(key_mask.shape()));
  // att = softmax(q k^T / sqrt(D) + bias)   [B, H, T, Tk] (q is already scaled).
  Tensor att = q.matmul(k.transpose(-1, -2));
  Tensor bias = attention_bias(T, Tk, key_mask, x.dtype(), x.device());
  if (bias.defined()) att = att + bias;
  att = (*attn_drop)(softmax(att, -1));
  // [B, H, T, D] -> [B, T, H, D] -> [B, T, C]
  Tensor y = att.matmul(v).permute({0, 2, 1, 3}).reshape({B, T, d_model});
  return (*resid_drop)((*proj)(y));
}

Block::Block(int64_t d_model, int64_t n_head, double dropout_p, double ln_eps) {
  ln1 = register_module("ln1", std::make_shared<LayerNorm>(d_model, ln_eps));
  attn = register_module("attn", std::make_shared<CausalSelfAttention>(d_model, n_head, dropout_p));
  ln2 = register_module("ln2", std::make_shared<LayerNorm>(d_model, ln_eps));
  mlp = register_module("mlp", std::make_shared<MLP>(d_model, dropout_p));
}

// Pre-LN residual block. x [B, T, C]
Tensor Block::forward(const Tensor &x, const Tensor &key_mask, LayerKV *cache) const {
  Tensor h = x + attn->forward((*ln1)(x), key_mask, cache);
  return h + mlp->forward((*ln2)(h));
}

}  // namespace nanorlhf::nn
