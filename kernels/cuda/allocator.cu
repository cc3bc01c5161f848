// The CUDA runtime wrappers and the caching device allocator.
// Requests are rounded to size classes (512 B multiples below 1 MiB, 2 MiB multiples above) and
// freed blocks go back to a per-device, per-size free list, so steady-state training makes no
// cudaMalloc/cudaFree calls (each of which synchronises the device). Every kernel runs on the
// legacy default stream, so a block handed out again is only touched after the work that used it.
// Blocks are never split or merged: simple, at the price of some fragmentation.
// NANORLHF_CUDA_ALLOC_EXACT=1 in the environment turns the cache off (exact-size cudaMalloc per
// request, cudaFree on free) so that compute-sanitizer's memcheck sees every overrun.
#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <vector>

#include "kernels/cuda/check.h"
#include "kernels/cuda/cuda_api.h"

namespace nanorlhf::kernels::cuda {

namespace {

constexpr size_t kSmallLimit = size_t(1) << 20;   // below this: 512 B granularity
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = size_t(2) << 20;   // 2 MiB
constexpr size_t kAbsurd = size_t(1) << 56;       // larger than any GPU: reported as OOM at once

bool exact_mode() {
  static const bool on = [] {
    const char *e = std::getenv("NANORLHF_CUDA_ALLOC_EXACT");
    return e && e[0] && e[0] != '0';
  }();
  return on;
}

size_t round_size(size_t bytes) {
  if (exact_mode()) return bytes;
  if (bytes < kSmallLimit) return (bytes + kSmallRound - 1) / kSmallRound * kSmallRound;
  return (bytes + kLargeRound - 1) / kLargeRound * kLargeRound;
}

struct DeviceCache {
  std::unordered_map<size_t, std::vector<void *>> free_blocks;  // size class -> cached blocks
  std::unordered_map<void *, size_t> live;                      // handed-out block -> size class
  size_t allocated = 0, reserved = 0, peak = 0, num_allocs = 0, num_cache_hits = 0;
};

struct Allocator {
  std::mutex mu;
  std::vector<DeviceCache> devices;
  DeviceCache &dev(int device) {
    if (device < 0) throw std::runtime_error("CUDA allocator: negative device index " + std::to_string(device));
    if ((size_t)device >= devices.size()) devices.resize(device + 1);
    return devices[device];
  }
};

// Leaked on purpose: tensors freed during static destruction must still find it alive.
Allocator &allocator() {
  static Allocator *a = new Allocator();
  return *a;
}

// Makes `device` current for the scope, restoring the previous one.
struct DeviceGuard {
  int prev = -1;
  explicit DeviceGuard(int device) {
    CUDA_CHECK(cudaGetDevice(&prev));
    if (prev != device) CUDA_CHECK(cudaSetDevice(device));
    else prev = -1;
  }
  ~DeviceGuard() {
    if (prev >= 0) cudaSetDevice(prev);
  }
};

// Frees every cached block of one device; the caller holds the mutex.
void release_cached(DeviceCache &c, int device) {
  DeviceGuard guard(device);
  for (auto &[size, blocks] : c.free_blocks) {
    for (void *p : blocks) {
      CUDA_CHECK(cudaFree(p));
      c.reserved -= size;
    }
  }
  c.free_blocks.clear();
}

std::string mib(size_t bytes) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f", bytes / 1048576.0);
  return buf;
}

[[noreturn]] void throw_oom(size_t bytes, const DeviceCache &c, int device) {
  throw std::runtime_error("CUDA out of memory: tried to allocate " + mib(bytes) + " MiB; " + mib(c.allocated) +
                           " MiB allocated, " + mib(c.reserved) + " MiB reserved by nanorlhf on device " +
                           std::to_string(device));
}

}  // namespace

int device_count() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();  // clear the sticky "no driver / no device" error so later calls see none
    return 0;
  }
  return n;
}

bool available() { return device_count() > 0; }

void set_device(int device) { CUDA_CHECK(cudaSetDevice(device)); }

void *device_malloc(size_t bytes, int device) {
  if (bytes == 0) return nullptr;  // empty tensors own no memory; device_free(nullptr) is a no-op
  Allocator &a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  DeviceCache &c = a.dev(device);
  c.num_allocs++;
  if (bytes >= kAbsurd) throw_oom(bytes, c, device);
  const size_t size = round_size(bytes);

  void *p = nullptr;
  auto it = c.free_blocks.find(size);
  if (it != c.free_blocks.end() && !it->second.empty()) {
    p = it->second.back();
    it->second.pop_back();
    c.num_cache_hits++;
  } else {
    DeviceGuard guard(device);
    cudaError_t err = cudaMalloc(&p, size);
    if (err == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      release_cached(c, device);  // give the driver back what we hold, then try once more
      err = cudaMalloc(&p, size);
      if (err == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        throw_oom(bytes, c, device);
      }
    }
    CUDA_CHECK(err);
    c.reserved += size;
  }
  c.live.emplace(p, size);
  c.allocated += size;
  if (c.allocated > c.peak) c.peak = c.allocated;
  return p;
}

void device_free(void *p, int device) {
  if (!p) return;
  Allocator &a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  DeviceCache &c = a.dev(device);
  auto it = c.live.find(p);
  if (it == c.live.end())
    throw std::runtime_error("CUDA allocator: device_free of a pointer not allocated by device_malloc on device " +
                             std::to_string(device));
  size_t size = it->second;
  c.live.erase(it);
  c.allocated -= size;
  if (exact_mode()) {
    DeviceGuard guard(device);
    CUDA_CHECK(cudaFree(p));
    c.reserved -= size;
    return;
  }
  c.free_blocks[size].push_back(p);
}

void empty_cache() {
  Allocator &a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  for (size_t d = 0; d < a.devices.size(); ++d) release_cached(a.devices[d], (int)d);
}

MemoryStats memory_stats(int device) {
  Allocator &a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  const DeviceCache &c = a.dev(device);
  return MemoryStats{c.allocated, c.reserved, c.peak, c.num_allocs, c.num_cache_hits};
}

void reset_peak_memory_stats(int device) {
  Allocator &a = allocator();
  std::lock_guard<std::mutex> lock(a.mu);
  DeviceCache &c = a.dev(device);
  c.peak = c.allocated;
}

void memcpy_h2d(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyHostToDevice));
}
void memcpy_d2h(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToHost));
}
void memcpy_d2d(void *dst, const void *src, size_t bytes) {
  if (bytes) CUDA_CHECK(cudaMemcpy(dst, src, bytes, cudaMemcpyDeviceToDevice));
}
void synchronize() { CUDA_CHECK(cudaDeviceSynchronize()); }

}  // namespace nanorlhf::kernels::cuda
