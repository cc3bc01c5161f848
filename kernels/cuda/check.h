// Error checking for CUDA runtime calls and kernel launches (private to kernels/cuda/*.cu).
// CUDA_CHECK(call) throws std::runtime_error naming the call, the CUDA error, the file and line;
// CUDA_LAUNCH_CHECK("kernel") does the same for the last launch. With NANORLHF_CUDA_SYNC=1 in the
// environment every launch is followed by a device synchronisation, so an asynchronous fault is
// reported at the launch that caused it rather than at some later call.
#pragma once
#include <cuda_runtime.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

namespace nanorlhf::kernels::cuda::detail {

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char *what, const char *file, int line) {
  throw std::runtime_error(std::string("CUDA error: ") + what + " failed with " + cudaGetErrorName(err) + " (" +
                           cudaGetErrorString(err) + ") at " + file + ":" + std::to_string(line));
}

inline void check_cuda(cudaError_t err, const char *what, const char *file, int line) {
  if (err != cudaSuccess) {
    cudaGetLastError();  // reset a non-sticky error so the next launch check does not report it again
    throw_cuda_error(err, what, file, line);
  }
}

inline bool sync_after_launch() {
  static const bool on = [] {
    const char *e = std::getenv("NANORLHF_CUDA_SYNC");
    return e && e[0] && e[0] != '0';
  }();
  return on;
}

inline void check_launch(const char *kernel, const char *file, int line) {
  cudaError_t err = cudaGetLastError();
  if (err != cudaSuccess) throw_cuda_error(err, (std::string("launch of ") + kernel).c_str(), file, line);
  if (sync_after_launch()) {
    err = cudaDeviceSynchronize();
    if (err != cudaSuccess) throw_cuda_error(err, (std::string("kernel ") + kernel).c_str(), file, line);
  }
}

}  // namespace nanorlhf::kernels::cuda::detail

#define CUDA_CHECK(call) ::nanorlhf::kernels::cuda::detail::check_cuda((call), #call, __FILE__, __LINE__)
#define CUDA_LAUNCH_CHECK(kernel_name) ::nanorlhf::kernels::cuda::detail::check_launch(kernel_name, __FILE__, __LINE__)
