// Storage allocation on CPU (64-byte aligned, tracked for memory benchmarks) and CUDA (caching allocator).
#include "tensor/storage.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>
#include <vector>

#ifdef NANORLHF_WITH_CUDA
#include "kernels/cuda/cuda_api.h"
#endif

namespace nanorlhf {

namespace {
std::atomic<size_t> g_cpu_bytes{0}, g_cpu_peak{0};

// A small caching allocator for large CPU blocks. A training step allocates and frees the same
// activation-sized blocks every step; handed back to glibc they are unmapped or trimmed and come
// back as fresh zero-filled pages (~4500 page faults, ~8 ms of kernel time a step for the small
// GPT). Blocks of at least kMinCached bytes (rounded up to 4 KiB) are kept on a free list per size
// and reused exactly; at most kMaxCached bytes are kept, beyond that a block is freed. Smaller
// blocks go straight to glibc. cpu_bytes_allocated() still counts only live tensors' bytes.
class CpuBlockCache {
 public:
  static constexpr size_t kMinCached = size_t(1) << 16, kMaxCached = size_t(1) << 29;
  static size_t rounded(size_t n) { return n < kMinCached ? (n + 63) / 64 * 64 : (n + 4095) / 4096 * 4096; }
  void *get(size_t bytes) {
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = free_.find(bytes);
      if (it != free_.end() && !it->second.empty()) {
        void *p = it->second.back();
        it->second.pop_back();
        cached_ -= bytes;
        return p;
      }
    }
    return std::aligned_alloc(64, bytes);
  }
  void put(void *p, size_t bytes) {
    if (bytes >= kMinCached) {
      std::lock_guard<std::mutex> lock(mu_);
      if (cached_ + bytes <= kMaxCached) {
        free_[bytes].push_back(p);
        cached_ += bytes;
        return;
      }
    }
    std::free(p);
  }
  ~CpuBlockCache() {
    for (auto &[n, v] : free_)
      for (void *p : v) std::free(p);
  }

 private:
  std::mutex mu_;
  std::unordered_map<size_t, std::vector<void *>> free_;
  size_t cached_ = 0;
};

CpuBlockCache &block_cache() {
  static CpuBlockCache *cache = new CpuBlockCache();  // never destroyed: storages may outlive statics
  return *cache;
}
}  // namespace

size_t cpu_bytes_allocated() { return g_cpu_bytes.load(); }
size_t cpu_bytes_peak() { return g_cpu_peak.load(); }
void reset_cpu_peak() { g_cpu_peak.store(g_cpu_bytes.load()); }

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  size_t n = nbytes ? nbytes : 1;
  if (device.is_cpu()) {
    data_ = block_cache().get(CpuBlockCache::rounded(n));
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
    block_cache().put(data_, CpuBlockCache::rounded(nbytes_ ? nbytes_ : 1));
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
