// CPU elementwise, copy, fill, random and row-reduction kernels (float and double, some int).
// Strided kernels take the output shape and per-input element strides already broadcast to it
// (stride 0 on a broadcast dim); the output is always contiguous.
#pragma once
#include <cstdint>

#include "kernels/ops.h"

namespace nanorlhf::kernels::cpu {

template <class T> void unary(UnaryOp op, const T *x, T *y, int64_t n, double alpha = 0, double beta = 0);
// out[i] = g[i] * f'(x[i]) for op = gelu_grad or silu_grad (the fused backward of gelu/silu: one
// pass, no f'(x) temporary); contiguous arrays of n elements.
template <class T> void unary_grad_mul(UnaryOp op, const T *g, const T *x, T *out, int64_t n);
template <class T>
void binary(BinaryOp op, int ndim, const int64_t *shape, const T *a, const int64_t *sa, const T *b,
            const int64_t *sb, T *out);
template <class T>
void compare(CompareOp op, int ndim, const int64_t *shape, const T *a, const int64_t *sa, const T *b,
             const int64_t *sb, uint8_t *out);
// out = cond ? a : b
template <class T>
void where(int ndim, const int64_t *shape, const uint8_t *cond, const int64_t *sc, const T *a,
           const int64_t *sa, const T *b, const int64_t *sb, T *out);
// dst (contiguous) = src viewed through (shape, strides); T is any trivially copyable element.
template <class T> void copy_strided(int ndim, const int64_t *shape, const T *src, const int64_t *strides, T *dst);
template <class S, class D> void cast(const S *src, D *dst, int64_t n);
template <class T> void fill(T *p, int64_t n, T value);
template <class T> void arange(T *p, int64_t n, double start, double step);
// Philox streams (kernels/philox.h): out[i] = uniform/normal(seed, offset, i) scaled.
template <class T> void uniform(T *out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
template <class T> void normal(T *out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// x[rows, cols] -> out[rows]
template <class T> void reduce_rows(ReduceOp op, const T *x, int64_t rows, int64_t cols, T *out);
template <class T> void argmax_rows(const T *x, int64_t rows, int64_t cols, int64_t *out);
// x[rows, cols] -> out[cols] = sum_r x[r, c]: the sum over leading dims (bias gradients) without a
// transposed copy. Each column is summed in row order (float in double) by one thread, so the
// result does not depend on the thread count.
template <class T> void reduce_cols_sum(const T *x, int64_t rows, int64_t cols, T *out);

}  // namespace nanorlhf::kernels::cpu
