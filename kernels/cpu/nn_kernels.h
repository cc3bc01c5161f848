// CPU kernels of the fused neural-network ops: softmax, layer_norm, cross_entropy, embedding,
// gather/scatter-add, AdamW, and a naive causal attention reference. Row-major, contiguous.
#pragma once
#include <cstdint>

namespace nanorlhf::kernels::cpu {

// x, y [rows, cols]; numerically stable (subtract the row max).
template <class T> void softmax_forward(const T *x, T *y, int64_t rows, int64_t cols);
template <class T> void log_softmax_forward(const T *x, T *y, int64_t rows, int64_t cols);
// dx = y * (dy - sum(dy * y))   (y = softmax output)
template <class T> void softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols);
// dx = dy - exp(y) * sum(dy)    (y = log_softmax output)
template <class T> void log_softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols);

// x, y [rows, cols]; weight, bias [cols] (either may be null: 1 and 0); mean, rstd [rows] saved.
template <class T>
void layer_norm_forward(const T *x, const T *weight, const T *bias, T *y, T *mean, T *rstd,
                        int64_t rows, int64_t cols, double eps);
// dx [rows, cols] is written; dweight, dbias [cols] are written (not accumulated); either may be null.
template <class T>
void layer_norm_backward(const T *dy, const T *x, const T *weight, const T *mean, const T *rstd,
                         T *dx, T *dweight, T *dbias, int64_t rows, int64_t cols);

// logits [rows, vocab], target [rows]; loss[r] = logsumexp(logits[r]) - logits[r, target[r]],
// and 0 where target == ignore_index. lse [rows] is saved for backward. Bad targets are the
// caller's to check.
template <class T>
void cross_entropy_forward(const T *logits, const int64_t *target, T *loss, T *lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index);
// dlogits[r] = dloss[r] * (softmax(logits[r]) - onehot(target[r])); zero rows where ignored.
template <class T>
void cross_entropy_backward(const T *logits, const int64_t *target, const T *lse, const T *dloss,
                            T *dlogits, int64_t rows, int64_t vocab, int64_t ignore_index);

// out[i, :] = weight[idx[i], :]      weight [num, dim], idx [n], out [n, dim]
template <class T> void index_select_rows(const T *weight, const int64_t *idx, T *out, int64_t n, int64_t dim);
// dweight[idx[i], :] += dout[i, :]   (scatter-add; dweight is not zeroed here)
template <class T> void index_add_rows(const T *dout, const int64_t *idx, T *dweight, int64_t n, int64_t dim);
// out[r, j] = x[r, idx[r, j]]        x [rows, cols], idx/out [rows, k]
template <class T> void gather_rows(const T *x, const int64_t *idx, T *out, int64_t rows, int64_t cols, int64_t k);
// dx[r, idx[r, j]] += dout[r, j]     (dx is not zeroed here)
template <class T> void scatter_add_rows(const T *dout, const int64_t *idx, T *dx, int64_t rows, int64_t cols, int64_t k);

// One AdamW step (Loshchilov & Hutter 2019) on n parameters; step counts from 1.
// p -= lr * (mhat / (sqrt(vhat) + eps) + weight_decay * p)
void adamw_step(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step);

// Naive causal attention reference: q, k, v, out [B, H, T, D]; out = softmax(q k^T * scale + mask) v.
template <class T>
void causal_attention_forward(const T *q, const T *k, const T *v, T *out, int64_t B, int64_t H, int64_t T_,
                              int64_t D, double scale);

}  // namespace nanorlhf::kernels::cpu
