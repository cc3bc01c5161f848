// CUDA fused cross-entropy over logits (rows, vocab) with integer targets (rows) (CPU reference:
// kernels/cpu/nn_kernels.h). Forward: loss[r] = logsumexp(logits[r]) - logits[r, target[r]], 0 where
// target == ignore_index; lse[r] is saved. Backward: dlogits[r] = dloss[r] * (softmax - onehot(target)),
// zero rows where ignored. The softmax is recomputed from the saved lse, never stored.
// forward version 1: one thread per row, online logsumexp (one read of the row)
// forward version 2: one block per row (one warp for vocabularies up to 1024), online logsumexp per
//                    thread merged through shuffles and shared memory
// backward: one block per row, one read of logits and one write of dlogits
// Targets outside [0, vocab) that are not ignore_index are the caller's to reject; here they give a
// NaN loss and no gradient one-hot rather than an out-of-bounds read.
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/common.cuh"
#include "kernels/cuda/cuda_api.h"
#include "kernels/cuda/versions.h"

namespace nanorlhf::kernels::cuda {

namespace {
using namespace detail;

__device__ __forceinline__ float target_logit(const float *row, int64_t t, int64_t vocab) {
  return (t >= 0 && t < vocab) ? row[t] : NAN;
}

__global__ void cross_entropy_v1_kernel(const float *__restrict__ logits, const int64_t *__restrict__ target,
                                        float *__restrict__ loss, float *__restrict__ lse, int64_t rows,
                                        int64_t vocab, int64_t ignore_index) {
  int64_t r = blockIdx.x * (int64_t)blockDim.x + threadIdx.x;
  if (r >= rows) return;
  const float *row = logits + r * vocab;
  MaxSum acc{-INFINITY, 0.f};
  for (int64_t j = 0; j < vocab; ++j) acc = maxsum_push(acc, row[j]);
  const float l = maxsum_lse(acc);
  const int64_t t = target[r];
  if (lse) lse[r] = l;
  loss[r] = t == ignore_index ? 0.f : l - target_logit(row, t, vocab);
}

__global__ void cross_entropy_v2_kernel(const float *__restrict__ logits, const int64_t *__restrict__ target,
                                        float *__restrict__ loss, float *__restrict__ lse, int64_t rows,
                                        int64_t vocab, int64_t ignore_index) {
  const int64_t r = blockIdx.x;
  const float *row = logits + r * vocab;
  MaxSum acc{-INFINITY, 0.f};
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) acc = maxsum_push(acc, row[j]);
  acc = block_reduce_maxsum(acc);
  if (threadIdx.x == 0) {
    const float l = maxsum_lse(acc);
    const int64_t t = target[r];
    if (lse) lse[r] = l;
    loss[r] = t == ignore_index ? 0.f : l - target_logit(row, t, vocab);
  }
}

__global__ void cross_entropy_backward_kernel(const float *__restrict__ logits, const int64_t *__restrict__ target,
                                              const float *__restrict__ lse, const float *__restrict__ dloss,
                                              float *__restrict__ dlogits, int64_t rows, int64_t vocab,
                                              int64_t ignore_index) {
  const int64_t r = blockIdx.x;
  const float *row = logits + r * vocab;
  float *drow = dlogits + r * vocab;
  const int64_t t = target[r];
  if (t == ignore_index) {
    for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x) drow[j] = 0.f;
    return;
  }
  const float l = lse[r], g = dloss[r];
  for (int64_t j = threadIdx.x; j < vocab; j += blockDim.x)
    drow[j] = g * (expf(row[j] - l) - (j == t ? 1.f : 0.f));
}

int row_block(int64_t vocab) { return vocab <= 1024 ? 32 : vocab > 8192 ? 512 : 256; }

}  // namespace

namespace versions {
void cross_entropy_forward(int version, const float *logits, const int64_t *target, float *loss, float *lse,
                           int64_t rows, int64_t vocab, int64_t ignore_index) {
  if (rows <= 0) return;
  if (version == 1) {
    cross_entropy_v1_kernel<<<(unsigned)((rows + 127) / 128), 128>>>(logits, target, loss, lse, rows, vocab,
                                                                      ignore_index);
    CUDA_LAUNCH_CHECK("cross_entropy_v1_kernel");
  } else if (version == 2) {
    cross_entropy_v2_kernel<<<(unsigned)rows, row_block(vocab)>>>(logits, target, loss, lse, rows, vocab,
                                                                  ignore_index);
    CUDA_LAUNCH_CHECK("cross_entropy_v2_kernel");
  } else {
    throw std::invalid_argument("CUDA cross_entropy_forward: no version " + std::to_string(version));
  }
}
}  // namespace versions

void cross_entropy_forward(const float *logits, const int64_t *target, float *loss, float *lse, int64_t rows,
                           int64_t vocab, int64_t ignore_index) {
  versions::cross_entropy_forward(2, logits, target, loss, lse, rows, vocab, ignore_index);
}

void cross_entropy_backward(const float *logits, const int64_t *target, const float *lse, const float *dloss,
                            float *dlogits, int64_t rows, int64_t vocab, int64_t ignore_index) {
  if (rows <= 0 || vocab <= 0) return;
  cross_entropy_backward_kernel<<<(unsigned)rows, row_block(vocab)>>>(logits, target, lse, dloss, dlogits, rows,
                                                                      vocab, ignore_index);
  CUDA_LAUNCH_CHECK("cross_entropy_backward_kernel");
}

}  // namespace nanorlhf::kernels::cuda
