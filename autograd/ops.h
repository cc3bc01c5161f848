// The differentiable ops, named as in PyTorch. Each records one backward formula (autograd/ops_*.cpp).
#pragma once
#include <string>
#include <vector>

#include "autograd/node.h"
#include "tensor/tensor.h"

namespace nanorlhf {

// ---- elementwise (ops_elementwise.cpp) ----
Tensor neg(const Tensor &x);
Tensor exp(const Tensor &x);
Tensor log(const Tensor &x);
Tensor sqrt(const Tensor &x);
Tensor rsqrt(const Tensor &x);
Tensor tanh(const Tensor &x);
Tensor sigmoid(const Tensor &x);
Tensor relu(const Tensor &x);
Tensor gelu(const Tensor &x);  // tanh approximation
Tensor silu(const Tensor &x);
Tensor abs(const Tensor &x);
Tensor square(const Tensor &x);
Tensor log_sigmoid(const Tensor &x);  // log(sigmoid(x)), stable for large |x|
Tensor pow(const Tensor &x, double p);
Tensor clamp(const Tensor &x, double lo, double hi);

Tensor add(const Tensor &a, const Tensor &b);
Tensor sub(const Tensor &a, const Tensor &b);
Tensor mul(const Tensor &a, const Tensor &b);
Tensor div(const Tensor &a, const Tensor &b);
Tensor pow(const Tensor &a, const Tensor &b);
Tensor maximum(const Tensor &a, const Tensor &b);
Tensor minimum(const Tensor &a, const Tensor &b);
Tensor add(const Tensor &a, double b);
Tensor mul(const Tensor &a, double b);

// Comparisons give bool masks (no gradient).
Tensor eq(const Tensor &a, const Tensor &b);
Tensor ne(const Tensor &a, const Tensor &b);
Tensor lt(const Tensor &a, const Tensor &b);
Tensor le(const Tensor &a, const Tensor &b);
Tensor gt(const Tensor &a, const Tensor &b);
Tensor ge(const Tensor &a, const Tensor &b);
Tensor logical_not(const Tensor &mask);
Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b);
Tensor masked_fill(const Tensor &x, const Tensor &mask, double value);

// ---- reductions (ops_reduce.cpp); empty dims = all dims ----
Tensor sum(const Tensor &x, const Shape &dims = {}, bool keepdim = false);
Tensor mean(const Tensor &x, const Shape &dims = {}, bool keepdim = false);
Tensor amax(const Tensor &x, const Shape &dims = {}, bool keepdim = false);  // ties share the gradient
Tensor amin(const Tensor &x, const Shape &dims = {}, bool keepdim = false);
Tensor max(const Tensor &x, int64_t dim, bool keepdim = false);
Tensor min(const Tensor &x, int64_t dim, bool keepdim = false);
Tensor argmax(const Tensor &x, int64_t dim, bool keepdim = false);
Tensor logsumexp(const Tensor &x, const Shape &dims, bool keepdim = false);
Tensor var(const Tensor &x, const Shape &dims = {}, int64_t correction = 1, bool keepdim = false);
// Sum a broadcast gradient back down to `shape` (the backward of broadcasting).
Tensor sum_to_shape(const Tensor &g, const Shape &shape);

// ---- linear algebra (ops_matmul.cpp) ----
Tensor matmul(const Tensor &a, const Tensor &b);

// ---- neural-network ops (ops_nn.cpp) ----
Tensor softmax(const Tensor &x, int64_t dim);
Tensor log_softmax(const Tensor &x, int64_t dim);
Tensor layer_norm(const Tensor &x, const Tensor &weight, const Tensor &bias, double eps = 1e-5);
// logits [N, V] (or [..., V]) and int64 targets [N] (or [...]); reduction "mean" (over
// non-ignored targets), "sum" or "none" (per position, 0 where ignored).
Tensor cross_entropy(const Tensor &logits, const Tensor &target, int64_t ignore_index = -100,
                     const std::string &reduction = "mean");
// cross_entropy(hidden @ weight^T, target, ignore_index, "none") without the [N, V] logits in
// memory at once: hidden [..., d], weight [V, d] (an LM head), target [...] -> [...]. The rows go
// through in chunks of `chunk`, and the backward recomputes each chunk's logits, so the peak grows
// with chunk * V, not with N * V (GPT-2's V = 50257 at 4096 tokens is 0.8 GB of float32 logits).
Tensor linear_cross_entropy(const Tensor &hidden, const Tensor &weight, const Tensor &target, int64_t chunk = 1024,
                            int64_t ignore_index = -100);
Tensor embedding(const Tensor &weight, const Tensor &indices);
Tensor index_select(const Tensor &x, int64_t dim, const Tensor &indices);
Tensor gather(const Tensor &x, int64_t dim, const Tensor &indices);
Tensor dropout(const Tensor &x, double p, bool training);

// ---- shape ops (ops_shape.cpp) ----
Tensor cat(const std::vector<Tensor> &xs, int64_t dim = 0);
Tensor stack(const std::vector<Tensor> &xs, int64_t dim = 0);
std::vector<Tensor> split(const Tensor &x, int64_t split_size, int64_t dim = 0);
std::vector<Tensor> chunk(const Tensor &x, int64_t chunks, int64_t dim = 0);
Tensor triu(const Tensor &x, int64_t diagonal = 0);  // on the last two dims
Tensor tril(const Tensor &x, int64_t diagonal = 0);

// ---- operators ----
inline Tensor operator+(const Tensor &a, const Tensor &b) { return add(a, b); }
inline Tensor operator-(const Tensor &a, const Tensor &b) { return sub(a, b); }
inline Tensor operator*(const Tensor &a, const Tensor &b) { return mul(a, b); }
inline Tensor operator/(const Tensor &a, const Tensor &b) { return div(a, b); }
inline Tensor operator-(const Tensor &a) { return neg(a); }
inline Tensor operator+(const Tensor &a, double b) { return add(a, b); }
inline Tensor operator+(double a, const Tensor &b) { return add(b, a); }
inline Tensor operator-(const Tensor &a, double b) { return add(a, -b); }
Tensor operator-(double a, const Tensor &b);
inline Tensor operator*(const Tensor &a, double b) { return mul(a, b); }
inline Tensor operator*(double a, const Tensor &b) { return mul(b, a); }
inline Tensor operator/(const Tensor &a, double b) { return mul(a, 1.0 / b); }
Tensor operator/(double a, const Tensor &b);
Tensor operator<(const Tensor &a, double b);
Tensor operator>(const Tensor &a, double b);
Tensor operator<=(const Tensor &a, double b);
Tensor operator>=(const Tensor &a, double b);
inline Tensor operator<(const Tensor &a, const Tensor &b) { return lt(a, b); }
inline Tensor operator>(const Tensor &a, const Tensor &b) { return gt(a, b); }
inline Tensor operator<=(const Tensor &a, const Tensor &b) { return le(a, b); }
inline Tensor operator>=(const Tensor &a, const Tensor &b) { return ge(a, b); }

}  // namespace nanorlhf
