// Assignment 01_softmax: softmax and log-softmax over the last dim of x[rows, cols], forward and
// backward, on the CPU. The contract is kernels/cpu/nn_kernels.h; README.md has the equations.
// Write the four bodies between the BEGIN/END YOUR SOLUTION markers and leave the rest as it is.
// Grade it with: make grade ASSIGNMENT=01_softmax
#include <cmath>
#include <cstdint>
#include <stdexcept>

#include "kernels/cpu/nn_kernels.h"

namespace nanorlhf::kernels::cpu {

// y = softmax(x) row by row: y_j = exp(x_j - m) / sum_k exp(x_k - m), m = max_k x_k.
// x, y [rows, cols], row-major and contiguous.
template <class T>
void softmax_forward(const T *x, T *y, int64_t rows, int64_t cols) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: softmax_forward");
  // END YOUR SOLUTION
}

// y = log softmax(x) row by row: y_j = (x_j - m) - log sum_k exp(x_k - m).
template <class T>
void log_softmax_forward(const T *x, T *y, int64_t rows, int64_t cols) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: log_softmax_forward");
  // END YOUR SOLUTION
}

// Given y = softmax(x) and dy = dL/dy, write dx = dL/dx = y * (dy - sum_k dy_k y_k).
// y, dy, dx [rows, cols]; dx is written, not accumulated.
template <class T>
void softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: softmax_backward");
  // END YOUR SOLUTION
}

// Given y = log softmax(x) and dy = dL/dy, write dx = dy - exp(y) * sum_k dy_k.
template <class T>
void log_softmax_backward(const T *y, const T *dy, T *dx, int64_t rows, int64_t cols) {
  // BEGIN YOUR SOLUTION
  throw std::runtime_error("not implemented yet: log_softmax_backward");
  // END YOUR SOLUTION
}

// The library uses float (training) and double (gradcheck): both are compiled from the templates.
#define NR_INST(T)                                                                  \
  template void softmax_forward<T>(const T *, T *, int64_t, int64_t);               \
  template void log_softmax_forward<T>(const T *, T *, int64_t, int64_t);           \
  template void softmax_backward<T>(const T *, const T *, T *, int64_t, int64_t);    \
  template void log_softmax_backward<T>(const T *, const T *, T *, int64_t, int64_t);
NR_INST(float)
NR_INST(double)
#undef NR_INST

}  // namespace nanorlhf::kernels::cpu
