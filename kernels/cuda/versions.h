// Every version of the CUDA kernels, callable by number, for the kernel benchmark and the tests
// (plain C++; no CUDA headers). The public functions in cuda_api.h launch the best version for the
// shape; these entry points launch exactly the version asked for (throwing std::invalid_argument
// for a number that does not exist). Each .cu file's opening comment says what each version does.
#pragma once
#include <cstdint>

#include "kernels/ops.h"

namespace nanorlhf::kernels::cuda::versions {

// elementwise.cu: 1 = scalar grid-stride loop, 2 = float4 vectorised (needs 16-byte aligned pointers)
constexpr int kUnaryVersions = 2, kBinaryVersions = 2;
void unary(int version, UnaryOp op, const float *x, float *y, int64_t n, double alpha = 0, double beta = 0);
// contiguous a, b, out of n elements
void binary_contiguous(int version, BinaryOp op, const float *a, const float *b, float *out, int64_t n);

// reduce.cu: 1 = one thread per row, 2 = one warp per row, 3 = one block per row
constexpr int kReduceVersions = 3;
void reduce_rows(int version, ReduceOp op, const float *x, int64_t rows, int64_t cols, float *out);

// softmax.cu: 1 = one thread per row (three passes), 2 = one warp per row (online max/sum),
// 3 = one block per row (online max/sum)
constexpr int kSoftmaxVersions = 3;
void softmax_forward(int version, const float *x, float *y, int64_t rows, int64_t cols);

// layer_norm.cu forward: 1 = one thread per row (two passes), 2 = one warp per row (Welford),
// 3 = one block per row (Welford, merged across warps in shared memory)
constexpr int kLayerNormVersions = 3;
void layer_norm_forward(int version, const float *x, const float *weight, const float *bias, float *y, float *mean,
                        float *rstd, int64_t rows, int64_t cols, double eps);

// cross_entropy.cu forward: 1 = one thread per row, 2 = one block per row (online logsumexp)
constexpr int kCrossEntropyVersions = 2;
void cross_entropy_forward(int version, const float *logits, const int64_t *target, float *loss, float *lse,
                           int64_t rows, int64_t vocab, int64_t ignore_index);

// adamw.cu: 1 = scalar, 2 = float4 vectorised
constexpr int kAdamWVersions = 2;
void adamw_step(int version, float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1,
                float beta2, float eps, float weight_decay, int64_t step);

// attention.cu: 1 = one block per query row, scores in shared memory (naive);
// 2 = flash-attention-style tiles with online softmax (head dims 16, 32, 64, 128; others fall back to 1)
constexpr int kAttentionVersions = 2;
void causal_attention_forward(int version, const float *q, const float *k, const float *v, float *out, int64_t B,
                              int64_t H, int64_t T, int64_t D, double scale);

}  // namespace nanorlhf::kernels::cuda::versions
