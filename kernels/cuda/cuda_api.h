// The CUDA backend's kernel list as seen from plain C++ (no CUDA headers needed to include it).
// Every pointer argument is a device pointer; it mirrors kernels/cpu/*.h name for name, float only
// (indices int64, masks uint8). Implemented in kernels/cuda/*.cu; compiled only where
// NANORLHF_WITH_CUDA is defined. Every call checks its launch and throws std::runtime_error
// naming the call, file and line on a CUDA error.
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernels/ops.h"

namespace nanorlhf::kernels::cuda {

// ---- runtime and the caching allocator (kernels/cuda/allocator.cu) ----
int device_count();                    // 0 where there is no driver or no device; never throws
bool available();                      // device_count() > 0
void set_device(int device);
void *device_malloc(size_t bytes, int device);   // from the cache; throws a clear OOM message
void device_free(void *p, int device);           // back to the cache
void empty_cache();                              // release cached, unused blocks to the driver
struct MemoryStats { size_t allocated, reserved, peak_allocated, num_allocs, num_cache_hits; };
MemoryStats memory_stats(int device);
void reset_peak_memory_stats(int device);
void memcpy_h2d(void *dst, const void *src, size_t bytes);
void memcpy_d2h(void *dst, const void *src, size_t bytes);
void memcpy_d2d(void *dst, const void *src, size_t bytes);
void synchronize();

// ---- elementwise, copy, fill, random, reductions (kernels/cuda/elementwise.cu, reduce.cu) ----
void unary(UnaryOp op, const float *x, float *y, int64_t n, double alpha = 0, double beta = 0);
void binary(BinaryOp op, int ndim, const int64_t *shape, const float *a, const int64_t *sa, const float *b,
            const int64_t *sb, float *out);
void compare(CompareOp op, int ndim, const int64_t *shape, const float *a, const int64_t *sa, const float *b,
             const int64_t *sb, uint8_t *out);
void where(int ndim, const int64_t *shape, const uint8_t *cond, const int64_t *sc, const float *a,
           const int64_t *sa, const float *b, const int64_t *sb, float *out);
// elem_size 1, 4 or 8 bytes: copies any dtype
void copy_strided(int ndim, const int64_t *shape, const void *src, const int64_t *strides, void *dst, int elem_size);
void cast_f32_i64(const float *src, int64_t *dst, int64_t n);
void cast_i64_f32(const int64_t *src, float *dst, int64_t n);
void cast_u8_f32(const uint8_t *src, float *dst, int64_t n);
void fill(float *p, int64_t n, float value);
void fill_i64(int64_t *p, int64_t n, int64_t value);
void arange(float *p, int64_t n, double start, double step);
void uniform(float *out, int64_t n, uint64_t seed, uint64_t offset, double low, double high);
void normal(float *out, int64_t n, uint64_t seed, uint64_t offset, double mean, double std);
// dropout in one pass: mask = uniform(seed, offset, i) >= p; y = x * mask / (1 - p)
void dropout(const float *x, float *y, uint8_t *mask, int64_t n, float p, uint64_t seed, uint64_t offset);
void reduce_rows(ReduceOp op, const float *x, int64_t rows, int64_t cols, float *out);
void argmax_rows(const float *x, int64_t rows, int64_t cols, int64_t *out);

// ---- fused nn kernels (softmax.cu, layer_norm.cu, cross_entropy.cu, embedding.cu, adamw.cu) ----
void softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void log_softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);
void softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols);
void log_softmax_backward(const float *y, const float *dy, float *dx, int64_t rows, int64_t cols);
void layer_norm_forward(const float *x, const float *weight, const float *bias, float *y, float *mean, float *rstd,
                        int64_t rows, int64_t cols, double eps);
void layer_norm_backward(const float *dy, const float *x, const float *weight, const float *mean, const float *rstd,
                         float *dx, float *dweight, float *dbias, int64_t rows, int64_t cols);
void cross_entropy_forward(const float *logits, const int64_t *target, float *loss, float *lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index);
void cross_entropy_backward(const float *logits, const int64_t *target, const float *lse, const float *dloss,
                            float *dlogits, int64_t rows, int64_t vocab, int64_t ignore_index);
void index_select_rows(const float *weight, const int64_t *idx, float *out, int64_t n, int64_t dim);
void index_add_rows(const float *dout, const int64_t *idx, float *dweight, int64_t n, int64_t dim);
void gather_rows(const float *x, const int64_t *idx, float *out, int64_t rows, int64_t cols, int64_t k);
void scatter_add_rows(const float *dout, const int64_t *idx, float *dx, int64_t rows, int64_t cols, int64_t k);
void adamw_step(float *p, const float *g, float *m, float *v, int64_t n, float lr, float beta1, float beta2,
                float eps, float weight_decay, int64_t step);
// q, k, v, out [B, H, T, D]; flash-attention-style fused causal forward (online softmax).
void causal_attention_forward(const float *q, const float *k, const float *v, float *out, int64_t B, int64_t H,
                              int64_t T, int64_t D, double scale);

// ---- GEMM (kernels/cuda/gemm/gemm_train.cu for training, beside the ladder it runs) ----
// Same conventions as kernels::cpu::gemm (row-major, trans flags, element strides), batched with
// element strides between matrices (0 broadcasts one operand). Uses the best handwritten rung,
// or cuBLAS when use_cublas(true) was set (or NANORLHF_USE_CUBLAS=1 in the environment).
void gemm_batched(bool trans_a, bool trans_b, int64_t M, int64_t N, int64_t K, float alpha, const float *A,
                  int64_t lda, int64_t stride_a, const float *B, int64_t ldb, int64_t stride_b, float beta, float *C,
                  int64_t ldc, int64_t stride_c, int64_t batch);
void use_cublas(bool on);

}  // namespace nanorlhf::kernels::cuda
