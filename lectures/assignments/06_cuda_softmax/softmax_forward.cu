// Assignment 06_cuda_softmax: a CUDA kernel for softmax over the last dim of x (rows, cols), checked
// against the CPU kernel (kernels/cpu/softmax.cpp). README.md has the equation and hints.
// Write your kernel and its launch between the BEGIN/END YOUR SOLUTION markers; leave the rest.
// Grade it with: make grade ASSIGNMENT=06_cuda_softmax (on a machine with an NVIDIA GPU; elsewhere
// the grader compiles it, skips its tests and reports 0 of 0 available points).
#include <cuda_runtime.h>

#include <cstdint>
#include <stdexcept>
#include <string>

#include "lectures/assignments/06_cuda_softmax/cuda_softmax.h"

namespace nanorlhf::kernels::cuda::assignment {

// x, y (rows, cols), row-major. Decide which threads work on which row (one thread, one warp or one
// block per row), then: m = max_j x_j, s = sum_j exp(x_j - m), y_j = exp(x_j - m) / s.
__global__ void softmax_forward_kernel(const float *__restrict__ x, float *__restrict__ y, int64_t rows,
                                       int64_t cols) {
  // BEGIN YOUR SOLUTION
  // END YOUR SOLUTION
}

// Launches softmax_forward_kernel (choose the grid and block sizes), then checks the launch:
//   cudaError_t err = cudaGetLastError();
//   if (err != cudaSuccess) throw std::runtime_error(std::string("softmax_forward_kernel: ") + cudaGetErrorString(err));
void softmax_forward(const float *x, float *y, int64_t rows, int64_t cols) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: softmax_forward");
  // END YOUR SOLUTION
}

}  // namespace nanorlhf::kernels::cuda::assignment
