// The GPT layers: forward against naive host references (loops), backward by float64 gradcheck of
// parameters and inputs, causality, padding masks and the KV cache of attention.
#include <cmath>

#include "nn/layers.h"
#include "nn_test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::nn;
using namespace nr_test;

namespace {

// y[r, o] = sum_i x[r, i] W[o, i] + b[o]
std::vector<double> ref_linear(const std::vector<double> &x, int64_t rows, const Linear &l) {
  auto W = l.weight.to_vector<double>();
  std::vector<double> b = l.bias.defined() ? l.bias.to_vector<double>() : std::vector<double>();
  int64_t out = l.weight.shape()[0], in = l.weight.shape()[1];
  std::vector<double> y((size_t)(rows * out));
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t o = 0; o < out; ++o) {
      double s = b.empty() ? 0.0 : b[o];
      for (int64_t i = 0; i < in; ++i) s += x[r * in + i] * W[o * in + i];
      y[r * out + o] = s;
    }
  return y;
}

// Naive multi-head causal attention, one (b, h, i) at a time. Keys j <= i with key_mask[b, j] = 1.
// x [B, T, C] -> [B, T, C]
std::vector<double> ref_attention(const CausalSelfAttention &a, const std::vector<double> &x, int64_t B, int64_t T,
                                  const std::vector<double> &key_mask) {
  int64_t C = a.d_model, H = a.n_head, D = C / H;
  auto qkv = ref_linear(x, B * T, *a.qkv);  // [B*T, 3C]: q | k | v, each split into heads
  std::vector<double> y((size_t)(B * T * C), 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t h = 0; h < H; ++h)
      for (int64_t i = 0; i < T; ++i) {
        std::vector<double> s(T, -INFINITY);
        double m = -INFINITY;
        for (int64_t j = 0; j <= i; ++j) {
          if (!key_mask.empty() && key_mask[b * T + j] == 0) continue;
          double dot = 0;
          for (int64_t d = 0; d < D; ++d) dot += qkv[(b * T + i) * 3 * C + h * D + d] * qkv[(b * T + j) * 3 * C + C + h * D + d];
          s[j] = dot / std::sqrt((double)D);
          m = std::max(m, s[j]);
        }
        double z = 0;
        for (int64_t j = 0; j <= i; ++j) z += std::isinf(s[j]) ? 0 : std::exp(s[j] - m);
        for (int64_t j = 0; j <= i; ++j) {
          if (std::isinf(s[j])) continue;
          double p = std::exp(s[j] - m) / z;
          for (int64_t d = 0; d < D; ++d) y[(b * T + i) * C + h * D + d] += p * qkv[(b * T + j) * 3 * C + 2 * C + h * D + d];
        }
      }
  return ref_linear(y, B * T, *a.proj);
}

std::vector<double> ref_layer_norm(const std::vector<double> &x, int64_t rows, const LayerNorm &ln) {
  auto w = ln.weight.to_vector<double>(), b = ln.bias.to_vector<double>();
  int64_t C = (int64_t)w.size();
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    double mu = 0, var = 0;
    for (int64_t c = 0; c < C; ++c) mu += x[r * C + c] / C;
    for (int64_t c = 0; c < C; ++c) var += (x[r * C + c] - mu) * (x[r * C + c] - mu) / C;
    for (int64_t c = 0; c < C; ++c) y[r * C + c] = (x[r * C + c] - mu) / std::sqrt(var + ln.eps) * w[c] + b[c];
  }
  return y;
}

double ref_gelu(double u) { return 0.5 * u * (1 + std::tanh(std::sqrt(2 / M_PI) * (u + 0.044715 * u * u * u))); }

std::vector<double> ref_mlp(const MLP &m, const std::vector<double> &x, int64_t rows) {
  auto h = ref_linear(x, rows, *m.fc);
  for (auto &v : h) v = ref_gelu(v);
  return ref_linear(h, rows, *m.proj);
}

// Gives LayerNorm parameters values away from (1, 0), so a swapped weight/bias would show.
void perturb_norms(Module &m) {
  NoGradGuard ng;
  for (auto &[name, p] : m.named_parameters())
    if (name.find("ln") != std::string::npos) p.copy_((p + rand(p.shape(), {p.dtype()}) * 0.5 - 0.25).detach());
}

TEST(Linear, InitAndForwardAgainstLoop) {
  manual_seed(1);
  Linear l(64, 48);
  auto w = l.weight.to_vector<double>();
  double s2 = 0;
  for (double v : w) s2 += v * v;
  EXPECT_NEAR(std::sqrt(s2 / w.size()), 0.02, 0.002);  // GPT-2 init N(0, 0.02)
  EXPECT_TRUE(allclose(l.bias, std::vector<double>(48, 0.0), {.atol = 0, .rtol = 0}));
  { NoGradGuard ng; l.bias.copy_(randn({48})); }
  Tensor x = randn({2, 3, 64});
  Tensor y = l(x);
  ASSERT_EQ(y.shape(), Shape({2, 3, 48}));
  EXPECT_TRUE(allclose(y, ref_linear(x.to_vector<double>(), 6, l), {.atol = 1e-5, .rtol = 1e-4}));
  Linear nb(5, 4, false);
  EXPECT_FALSE(nb.bias.defined());
  EXPECT_EQ(nb.parameters().size(), 1u);
  Tensor x2 = randn({7, 5});
  EXPECT_TRUE(allclose(nb(x2), ref_linear(x2.to_vector<double>(), 7, nb), {.atol = 1e-5, .rtol = 1e-4}));
  EXPECT_THROW(l(randn({2, 63})), Error);
}

TEST(Linear, GradcheckParamsAndInput) {
  manual_seed(2);
  Linear l(5, 4);
  to_float64(l);
  Tensor x = rand64({2, 3, 5});
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return l(in[0]); }, {x, l.weight, l.bias});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Embedding, ForwardIsRowLookupAndGradcheck) {
  manual_seed(3);
  Embedding e(7, 4);
  Tensor idx = ids_tensor({3, 0, 6, 3}, 2, 2);
  Tensor y = e(idx);
  ASSERT_EQ(y.shape(), Shape({2, 2, 4}));
  auto w = e.weight.to_vector<double>();
  std::vector<double> ref;
  for (int64_t i : {3, 0, 6, 3})
    for (int c = 0; c < 4; ++c) ref.push_back(w[i * 4 + c]);
  EXPECT_TRUE(allclose(y, ref, {.atol = 0, .rtol = 0}));
  to_float64(e);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &) { return e(idx); }, {e.weight});
  EXPECT_TRUE(r.ok) << r.message;  // row 3 appears twice: its gradient accumulates
  EXPECT_THROW(e(ids_tensor({7}, 1, 1)), Error);
}

TEST(LayerNormModule, ForwardAndGradcheck) {
  manual_seed(4);
  LayerNorm ln(6);
  perturb_norms(ln);
  to_float64(ln);
  Tensor x = rand64({2, 3, 6}, -2, 2);
  EXPECT_TRUE(allclose(ln(x), ref_layer_norm(x.to_vector<double>(), 6, ln), {.atol = 1e-10, .rtol = 1e-10}));
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &in) { return ln(in[0]); }, {x, ln.weight, ln.bias});
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(MLP, ForwardAgainstReferenceAndGradcheck) {
  manual_seed(5);
  MLP m(6, 0.0);
  to_float64(m);
  Tensor x = rand64({2, 3, 6});
  EXPECT_TRUE(allclose(m.forward(x), ref_mlp(m, x.to_vector<double>(), 6), {.atol = 1e-12, .rtol = 1e-9}));
  std::vector<Tensor> in = {x};
  for (auto &p : m.parameters()) in.push_back(p);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &v) { return m.forward(v[0]); }, in);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Attention, ForwardAgainstNaivePerHeadLoop) {
  manual_seed(6);
  CausalSelfAttention a(8, 2, 0.0);
  to_float64(a);
  { NoGradGuard ng; a.qkv->bias.copy_(rand64({24}, -1, 1, false)); a.proj->bias.copy_(rand64({8}, -1, 1, false)); }
  // Larger weights than the init so the softmax is far from uniform.
  { NoGradGuard ng; a.qkv->weight.copy_((a.qkv->weight * 20.0).detach()); }
  int64_t B = 2, T = 5;
  Tensor x = rand64({B, T, 8});
  EXPECT_TRUE(allclose(a.forward(x), ref_attention(a, x.to_vector<double>(), B, T, {}), {.atol = 1e-12, .rtol = 1e-9}));
  // Key padding: row 0 left-padded by two, row 1 has a hole; compare the real query positions.
  std::vector<double> km = {0, 0, 1, 1, 1, 1, 1, 0, 1, 1};
  Tensor y = a.forward(x, from_vector<double>(km, {B, T}).to(kFloat32));
  auto ref = ref_attention(a, x.to_vector<double>(), B, T, km);
  auto got = y.to_vector<double>();
  for (int64_t r = 0; r < B * T; ++r) {
    for (int64_t c = 0; c < 8; ++c) {
      ASSERT_TRUE(std::isfinite(got[r * 8 + c])) << "row " << r;  // a pad query attends to nothing real: still finite
      if (km[r]) {
        EXPECT_NEAR(got[r * 8 + c], ref[r * 8 + c], 1e-9) << "row " << r << " col " << c;
      }
    }
  }
}

TEST(Attention, GradcheckParamsAndInputWithMask) {
  manual_seed(7);
  CausalSelfAttention a(6, 2, 0.0);
  to_float64(a);
  { NoGradGuard ng; a.qkv->weight.copy_((a.qkv->weight * 20.0).detach()); }
  Tensor x = rand64({2, 4, 6});
  Tensor km = mask_tensor({0, 1, 1, 1, 1, 1, 1, 1}, 2, 4);
  std::vector<Tensor> in = {x};
  for (auto &p : a.parameters()) in.push_back(p);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &v) { return a.forward(v[0], km); }, in);
  EXPECT_TRUE(r.ok) << r.message;
  auto r2 = autograd::gradcheck([&](const std::vector<Tensor> &v) { return a.forward(v[0]); }, {x});
  EXPECT_TRUE(r2.ok) << r2.message;
}

TEST(Attention, FutureTokensDoNotChangeEarlierOutputs) {
  manual_seed(8);
  CausalSelfAttention a(8, 2, 0.0);
  Tensor x = randn({1, 6, 8});
  Tensor y1 = a.forward(x);
  Tensor x2 = x.clone().detach();
  { NoGradGuard ng; x2.narrow(1, 4, 2).copy_(randn({1, 2, 8})); }
  Tensor y2 = a.forward(x2);
  EXPECT_EQ(max_abs_diff(y1.narrow(1, 0, 4).contiguous(), y2.narrow(1, 0, 4).contiguous()), 0.0);
  EXPECT_GT(max_abs_diff(y1.narrow(1, 4, 2).contiguous(), y2.narrow(1, 4, 2).contiguous()), 1e-4);
}

TEST(Attention, KVCacheMatchesFullRecompute) {
  manual_seed(9);
  CausalSelfAttention a(8, 2, 0.0);
  int64_t B = 2, T = 6;
  Tensor x = randn({B, T, 8});
  Tensor km = mask_tensor({0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1}, B, T);
  NoGradGuard ng;
  Tensor full = a.forward(x, km);
  LayerKV cache;
  // Prefill 3 positions, then one at a time.
  std::vector<Tensor> parts = {a.forward(x.narrow(1, 0, 3), km.narrow(1, 0, 3).contiguous(), &cache)};
  EXPECT_EQ(cache.k.shape(), Shape({B, 2, 3, 4}));
  for (int64_t t = 3; t < T; ++t) parts.push_back(a.forward(x.narrow(1, t, 1), km.narrow(1, 0, t + 1).contiguous(), &cache));
  EXPECT_EQ(cache.k.shape(), Shape({B, 2, T, 4}));
  EXPECT_FALSE(cache.k.requires_grad());
  Tensor inc = cat(parts, 1);
  // Real positions only: pad queries are garbage in both but need not agree.
  auto f = full.to_vector<double>(), g = inc.to_vector<double>(), m = km.to_vector<double>();
  std::vector<double> got, ref;
  for (int64_t r = 0; r < B * T; ++r)
    for (int64_t c = 0; c < 8 && m[r]; ++c) got.push_back(g[r * 8 + c]), ref.push_back(f[r * 8 + c]);
  EXPECT_TRUE(allclose(got, ref, {.atol = 1e-5, .rtol = 0}));
}

TEST(Block, IsPreLNCompositionAndGradchecks) {
  manual_seed(10);
  Block blk(6, 2, 0.0);
  perturb_norms(blk);
  to_float64(blk);
  int64_t B = 2, T = 3;
  Tensor x = rand64({B, T, 6});
  // h = x + attn(ln1(x)); y = h + mlp(ln2(h))
  auto xv = x.to_vector<double>();
  auto a = ref_attention(*blk.attn, ref_layer_norm(xv, B * T, *blk.ln1), B, T, {});
  std::vector<double> h(xv.size());
  for (size_t i = 0; i < h.size(); ++i) h[i] = xv[i] + a[i];
  auto m = ref_mlp(*blk.mlp, ref_layer_norm(h, B * T, *blk.ln2), B * T);
  for (size_t i = 0; i < h.size(); ++i) h[i] += m[i];
  EXPECT_TRUE(allclose(blk.forward(x), h, {.atol = 1e-12, .rtol = 1e-9}));
  std::vector<Tensor> in = {x};
  for (auto &p : blk.parameters()) in.push_back(p);
  auto r = autograd::gradcheck([&](const std::vector<Tensor> &v) { return blk.forward(v[0]); }, in);
  EXPECT_TRUE(r.ok) << r.message;
}

TEST(Dropout, TrainOnlyAndInverted) {
  manual_seed(11);
  Dropout d(0.5);
  Tensor x = ones({1000});
  auto y = d(x).to_vector<double>();
  int zeros = 0;
  for (double v : y) {
    EXPECT_TRUE(v == 0.0 || std::abs(v - 2.0) < 1e-6);
    zeros += v == 0.0;
  }
  EXPECT_NEAR(zeros / 1000.0, 0.5, 0.07);
  d.eval();
  EXPECT_TRUE(d(x).is_same(x));
}

}  // namespace
