// Assignment 06_cuda_softmax: the function to write, with the signature of the library's CUDA
// softmax (kernels/cuda/cuda_api.h) in a namespace of its own, so the grader can link either the
// student's file (softmax_forward.cu) or the reference (reference_softmax.cpp, the library's kernel).
#pragma once
#include <cstdint>

namespace nanorlhf::kernels::cuda::assignment {

// x, y (rows, cols): device pointers, row-major, contiguous. y = softmax(x) over each row,
// numerically stable (subtract the row max). Launches on the default stream; may return before the
// kernel finishes (the caller synchronises). Throws std::runtime_error if a launch fails.
void softmax_forward(const float *x, float *y, int64_t rows, int64_t cols);

}  // namespace nanorlhf::kernels::cuda::assignment
