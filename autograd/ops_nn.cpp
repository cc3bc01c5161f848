// Fused neural-network ops with their own backward kernels (softmax, layer_norm, cross_entropy,
// embedding, gather) and composites (dropout).
#include "autograd/ops.h"
#include "tensor/native.h"
#include "tensor/random.h"

namespace nanorlhf {

using autograd::record;

Tensor softmax(const Tensor &x, int64_t dim) {
  Tensor y = native::softmax(x, dim, false);
  return record("softmax", {x}, y, [y = y.detach(), dim](const Tensor &g) -> std::vector<Tensor> {
    return {native::softmax_backward(y, g, dim, false)};
  });
}

Tensor log_softmax(const Tensor &x, int64_t dim) {
  Tensor y = native::softmax(x, dim, true);
  return record("log_softmax", {x}, y, [y = y.detach(), dim](const Tensor &g) -> std::vector<Tensor> {
    return {native::softmax_backward(y, g, dim, true)};
  });
}

Tensor layer_norm(const Tensor &x, const Tensor &weight, const Tensor &bias, double eps) {
  auto [y, mu, rstd] = native::layer_norm(x, weight, bias, eps);
  return record("layer_norm", {x, weight, bias}, y, [x, weight, bias, mu = mu, rstd = rstd](const Tensor &g) -> std::vector<Tensor> {
    auto [dx, dw, db] = native::layer_norm_backward(g, x, weight, mu, rstd);
    return {dx, weight.defined() ? dw : Tensor(), bias.defined() ? db : Tensor()};
  });
}

Tensor cross_entropy(const Tensor &logits, const Tensor &target, int64_t ignore_index, const std::string &reduction) {
  NR_CHECK(reduction == "mean" || reduction == "sum" || reduction == "none",
           "cross_entropy: reduction must be mean, sum or none, got '{}'", reduction);
  NR_CHECK(logits.dim() >= 1, "cross_entropy: logits need a class dim");
  int64_t V = logits.shape().back();
  Shape lead(logits.shape().begin(), logits.shape().end() - 1);
  NR_CHECK(target.shape() == lead, "cross_entropy: logits {} need targets of shape {}, got {}", shape_str(logits.shape()),
           shape_str(lead), shape_str(target.shape()));
  Tensor l2 = logits.reshape({-1, V}), t1 = target.reshape({-1});
  auto [loss, lse] = native::cross_entropy(l2, t1, ignore_index);
  Tensor per = record("cross_entropy", {l2}, loss, [l2, t1, lse = lse, ignore_index](const Tensor &g) -> std::vector<Tensor> {
    return {native::cross_entropy_backward(l2, t1, lse, g, ignore_index)};
  });
  if (reduction == "none") return per.reshape(lead);
  if (reduction == "sum") return per.sum();
  // Mean over the targets that count.
  double count = 0;
  for (auto t : t1.to_vector<int64_t>()) count += t != ignore_index;
  return per.sum() * (1.0 / std::max(count, 1.0));
}

// The chunked, fused linear head + cross-entropy (as Liger-Kernel's and Cut Cross-Entropy's), with
// p_n = softmax(W h_n):
// \ell_n = \log \sum_v e^{w_v^\top h_n} - w_{y_n}^\top h_n, \qquad
// \frac{\partial \ell_n}{\partial h_n} = W^\top (p_n - e_{y_n}), \qquad
// \frac{\partial \ell_n}{\partial W} = (p_n - e_{y_n})\, h_n^\top
Tensor linear_cross_entropy(const Tensor &hidden, const Tensor &weight, const Tensor &target, int64_t chunk,
                            int64_t ignore_index) {
  NR_CHECK(hidden.dim() >= 1 && weight.dim() == 2 && hidden.shape().back() == weight.shape()[1],
           "linear_cross_entropy: hidden {} and weight {} (vocab, d) disagree on d", shape_str(hidden.shape()),
           shape_str(weight.shape()));
  Shape lead(hidden.shape().begin(), hidden.shape().end() - 1);
  NR_CHECK(target.shape() == lead, "linear_cross_entropy: hidden {} needs targets of shape {}, got {}",
           shape_str(hidden.shape()), shape_str(lead), shape_str(target.shape()));
  NR_CHECK(chunk >= 1, "linear_cross_entropy: chunk must be >= 1, got {}", chunk);
  const int64_t d = weight.shape()[1];
  Tensor h = hidden.reshape({-1, d}), t = target.reshape({-1}).contiguous();
  const int64_t n = h.shape()[0];
  std::vector<Tensor> losses, lses;
  {
    Tensor hd = h.detach();
    for (int64_t i = 0; i < n; i += chunk) {
      const int64_t c = std::min(chunk, n - i);
      auto [loss, lse] = native::cross_entropy(native::matmul(hd.narrow(0, i, c), weight.detach().t()),
                                               t.narrow(0, i, c).contiguous(), ignore_index);
      losses.push_back(loss), lses.push_back(lse);
    }
  }
  Tensor loss = n > 0 ? native::cat(losses, 0) : zeros({0}, {.dtype = hidden.dtype(), .device = hidden.device()});
  Tensor lse = n > 0 ? native::cat(lses, 0) : loss;
  Tensor per = record("linear_cross_entropy", {h, weight}, loss,
                      [h = h.detach(), w = weight.detach(), t, lse, chunk, ignore_index](const Tensor &g) -> std::vector<Tensor> {
    const int64_t n = h.shape()[0];
    std::vector<Tensor> dh;
    Tensor dw = zeros(w.shape(), {.dtype = w.dtype(), .device = w.device()});
    for (int64_t i = 0; i < n; i += chunk) {
      const int64_t c = std::min(chunk, n - i);
      Tensor hc = h.narrow(0, i, c);
      Tensor dlogits = native::cross_entropy_backward(native::matmul(hc, w.t()), t.narrow(0, i, c).contiguous(),
                                                      lse.narrow(0, i, c).contiguous(),
                                                      g.narrow(0, i, c).contiguous(), ignore_index);  // [c, V]
      dh.push_back(native::matmul(dlogits, w));
      dw = native::binary(native::BinaryOp::add, dw, native::matmul(dlogits.t(), hc));
    }
    return {n > 0 ? native::cat(dh, 0) : zeros(h.shape(), {.dtype = h.dtype(), .device = h.device()}), dw};
  });
  return per.reshape(lead);
}

Tensor embedding(const Tensor &weight, const Tensor &indices) {
  return record("embedding", {weight}, native::index_select_rows(weight, indices),
                [indices, num = weight.shape()[0]](const Tensor &g) -> std::vector<Tensor> {
                  return {native::index_add_rows(g.reshape({-1, g.shape().back()}), indices.reshape({-1}), num)};
                });
}

Tensor index_select(const Tensor &x, int64_t dim, const Tensor &indices) {
  NR_CHECK(indices.dim() == 1, "index_select: indices must be 1-D, got {}", shape_str(indices.shape()));
  int64_t d = wrap_dim(dim, x.dim(), "index_select");
  // Move dim to the front, view the rest as one row, select rows, move back.
  Tensor xf = x.transpose(0, d).contiguous();
  Shape rest(xf.shape().begin() + 1, xf.shape().end());
  Tensor rows = embedding(xf.reshape({xf.shape()[0], shape_numel(rest)}), indices);
  Shape s = rest;
  s.insert(s.begin(), indices.shape()[0]);
  return rows.reshape(s).transpose(0, d);
}

Tensor gather(const Tensor &x, int64_t dim, const Tensor &indices) {
  NR_CHECK(indices.dim() == x.dim(), "gather: index has {} dims but input {} has {}", indices.dim(), shape_str(x.shape()), x.dim());
  int64_t d = wrap_dim(dim, x.dim(), "gather"), last = x.dim() - 1;
  for (int64_t i = 0; i < x.dim(); ++i)
    NR_CHECK(i == d || indices.shape()[i] == x.shape()[i], "gather: index shape {} must match input shape {} outside dim {}",
             shape_str(indices.shape()), shape_str(x.shape()), d);
  Tensor xt = x.transpose(d, last).contiguous(), it = native::contiguous(indices.transpose(d, last).detach());
  int64_t C = xt.shape().back(), K = it.shape().back();
  Tensor x2 = xt.reshape({-1, C}), i2 = it.reshape({-1, K});
  Tensor out = record("gather", {x2}, native::gather_last(x2, i2), [i2, C](const Tensor &g) -> std::vector<Tensor> {
    return {native::scatter_add_last(g, i2, C)};
  });
  return out.reshape(it.shape()).transpose(d, last);
}

// Inverted dropout: keep with probability 1 - p and scale by 1 / (1 - p), so eval needs no rescale.
Tensor dropout(const Tensor &x, double p, bool training) {
  NR_CHECK(p >= 0 && p < 1, "dropout: p must be in [0, 1), got {}", p);
  if (!training || p == 0) return x;
  Tensor keep = native::cast(native::uniform(x.shape(), {x.dtype(), x.device()}, 0, 1) >= p, x.dtype());
  return x * keep * (1.0 / (1.0 - p));
}

}  // namespace nanorlhf
