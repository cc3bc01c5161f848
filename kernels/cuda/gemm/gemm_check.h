// Error checks for the GEMM ladder on top of kernels/cuda/check.h (CUDA_CHECK, CUDA_LAUNCH_CHECK):
// cuBLAS status checks and argument requirements, all throwing std::runtime_error with the call, file
// and line. Private to kernels/cuda/gemm/.
#pragma once
#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

#include "kernels/cuda/check.h"

namespace nanorlhf::kernels::cuda::gemm_detail {

[[noreturn]] inline void throw_cublas(cublasStatus_t s, const char *call, const char *file, int line) {
  throw std::runtime_error(std::string("cuBLAS error: ") + call + " failed with " + cublasGetStatusName(s) + " (" +
                           cublasGetStatusString(s) + ") at " + file + ":" + std::to_string(line));
}

[[noreturn]] inline void throw_requirement(const std::string &msg, const char *file, int line) {
  throw std::runtime_error(msg + " at " + file + ":" + std::to_string(line));
}

}  // namespace nanorlhf::kernels::cuda::gemm_detail

#define NR_GEMM_CUDA(call) CUDA_CHECK(call)
#define NR_GEMM_LAUNCHED(kernel_name) CUDA_LAUNCH_CHECK(kernel_name)

#define NR_GEMM_CUBLAS(call)                                                                    \
  do {                                                                                          \
    cublasStatus_t nr_s_ = (call);                                                              \
    if (nr_s_ != CUBLAS_STATUS_SUCCESS)                                                         \
      ::nanorlhf::kernels::cuda::gemm_detail::throw_cublas(nr_s_, #call, __FILE__, __LINE__);   \
  } while (0)

#define NR_GEMM_REQUIRE(cond, msg)                                                              \
  do {                                                                                          \
    if (!(cond)) ::nanorlhf::kernels::cuda::gemm_detail::throw_requirement(msg, __FILE__, __LINE__); \
  } while (0)
