// Storage allocation on CPU (64-byte aligned, tracked for memory benchmarks) and CUDA (caching allocator).
#include "tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>

#ifdef NANORLHF_WITH_CUDA
#include "kernels/cuda/cuda_api.h"
#endif

namespace nanorlhf {

namespace {
std::atomic<size_t> g_cpu_bytes{0}, g_cpu_peak{0};
}

size_t cpu_bytes_allocated() { return g_cpu_bytes.load(); }
size_t cpu_bytes_peak() { return g_cpu_peak.load(); }
void reset_cpu_peak() { g_cpu_peak.store(g_cpu_bytes.load()); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t n = nbytes ? nbytes : 1;
  if (device.is_cpu()) {
    data_ = std::aligned_alloc(64, (n + 63) / 64 * 64);
    NR_CHECK(data_, "out of host memory: tried to allocate {} bytes", nbytes);
    size_t now = g_cpu_bytes.fetch_add(nbytes) + nbytes;
    size_t peak = g_cpu_peak.load();
    while (now > peak && !g_cpu_peak.compare_exchange_weak(peak, now)) {}
  } else {
#ifdef NANORLHF_WITH_CUDA
    data_ = kernels::cuda::device_malloc(n, device.index);
#else
    throw Error("this build has no CUDA backend (configure with NANORLHF_CUDA=ON where nvcc and cuBLAS exist)");
#endif
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    std::free(data_);
    g_cpu_bytes.fetch_sub(nbytes_);
  } else {
#ifdef NANORLHF_WITH_CUDA
    try {
      kernels::cuda::device_free(data_, device_.index);
    } catch (...) {  // a destructor must not throw; the allocator already reported the problem
    }
#endif
  }
}

void copy_bytes(void *dst, Device dd, const void *src, Device sd, size_t n) {
  if (n == 0) return;
  if (dd.is_cpu() && sd.is_cpu()) { std::memcpy(dst, src, n); return; }
#ifdef NANORLHF_WITH_CUDA
  if (dd.is_cuda() && sd.is_cpu()) kernels::cuda::memcpy_h2d(dst, src, n);
  else if (dd.is_cpu() && sd.is_cuda()) kernels::cuda::memcpy_d2h(dst, src, n);
  else kernels::cuda::memcpy_d2d(dst, src, n);
#else
  throw Error("this build has no CUDA backend");
#endif
}

Device Device::parse(const std::string &s) {
  if (s == "cpu") return cpu();
  if (s == "cuda") return cuda(0);
  if (s.rfind("cuda:", 0) == 0) {
    try { return cuda(std::stoi(s.substr(5))); } catch (...) {}
  }
  throw Error(fmt::format("unknown device '{}'; expected cpu, cuda or cuda:N", s));
}

}  // namespace nanorlhf
