// Shared helpers of the CUDA kernel tests (tests/kernels/test_cuda_*.cpp): device buffers, random
// inputs and exact comparison; the skip without a device (tests/cuda_skip.h) and the tolerance policy
// (tests/tolerance.h) are the suite's.
#pragma once
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <vector>

#include "cuda_skip.h"  // NR_SKIP_WITHOUT_CUDA
#include "kernels/cuda/cuda_api.h"
#include "tolerance.h"  // Tol, allclose: the suite's one tolerance policy

namespace nr_cuda_test {

namespace kc = nanorlhf::kernels::cuda;

// A typed device array from the caching allocator on device 0, freed on scope exit.
template <class T>
class DeviceBuffer {
 public:
  DeviceBuffer() = default;
  explicit DeviceBuffer(size_t n) : n_(n), p_(static_cast<T *>(kc::device_malloc(n * sizeof(T), 0))) {}
  explicit DeviceBuffer(const std::vector<T> &host) : DeviceBuffer(host.size()) { upload(host); }
  DeviceBuffer(const DeviceBuffer &) = delete;
  DeviceBuffer &operator=(const DeviceBuffer &) = delete;
  DeviceBuffer(DeviceBuffer &&o) noexcept : n_(o.n_), p_(o.p_) { o.p_ = nullptr, o.n_ = 0; }
  ~DeviceBuffer() {
    try {
      kc::device_free(p_, 0);
    } catch (...) {  // a destructor must not throw; the allocator tests check device_free's errors
    }
  }

  T *get() { return p_; }
  const T *get() const { return p_; }
  size_t size() const { return n_; }
  void upload(const std::vector<T> &host) {
    check_fits(host.size());
    kc::memcpy_h2d(p_, host.data(), host.size() * sizeof(T));
  }
  std::vector<T> download() const {
    std::vector<T> host(n_);
    kc::memcpy_d2h(host.data(), p_, n_ * sizeof(T));
    return host;
  }
  // Fills with a recognisable garbage pattern (NaN for floats) so that unwritten outputs show up.
  void poison() {
    std::vector<unsigned char> bytes(n_ * sizeof(T), 0xFF);
    kc::memcpy_h2d(p_, bytes.data(), bytes.size());
  }

 private:
  void check_fits(size_t m) const {
    if (m > n_) throw std::runtime_error("DeviceBuffer::upload: host vector larger than the buffer");
  }
  size_t n_ = 0;
  T *p_ = nullptr;
};

inline std::mt19937_64 &rng() {
  static std::mt19937_64 g(20240611);
  return g;
}

inline std::vector<float> rand_floats(size_t n, float lo = -1.f, float hi = 1.f) {
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v) x = d(rng());
  return v;
}

inline std::vector<int64_t> rand_indices(size_t n, int64_t lo, int64_t hi_exclusive) {
  std::uniform_int_distribution<int64_t> d(lo, hi_exclusive - 1);
  std::vector<int64_t> v(n);
  for (auto &x : v) x = d(rng());
  return v;
}

// The tolerance policy is the suite's (tests/tolerance.h). CUDA kernels are held against the CPU
// kernel's float result; their Tols cover a few ulps of expf/logf/tanhf between the CUDA math
// library and glibc, and a different summation order in row reductions.
using nr_test::allclose;
using nr_test::Tol;

template <class T>
::testing::AssertionResult all_equal(const std::vector<T> &got, const std::vector<T> &ref) {
  if (got.size() != ref.size())
    return ::testing::AssertionFailure() << "size " << got.size() << " vs reference " << ref.size();
  for (size_t i = 0; i < got.size(); ++i) {
    if (std::memcmp(&got[i], &ref[i], sizeof(T)) != 0)
      return ::testing::AssertionFailure() << "first difference at " << i << ": got " << +got[i] << ", reference "
                                           << +ref[i];
  }
  return ::testing::AssertionSuccess();
}

// Contiguous element strides of a shape.
inline std::vector<int64_t> contiguous_strides(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (int d = (int)shape.size() - 1; d >= 0; --d) {
    s[d] = acc;
    acc *= shape[d];
  }
  return s;
}

inline int64_t numel(const std::vector<int64_t> &shape) {
  int64_t n = 1;
  for (int64_t e : shape) n *= e;
  return n;
}

}  // namespace nr_cuda_test
