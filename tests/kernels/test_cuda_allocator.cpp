// Tests of the CUDA runtime wrappers and the caching allocator (kernels/cuda/allocator.cu):
// reuse after free is a cache hit, the statistics, empty_cache, the out-of-memory message,
// and the copies round-trip. Skipped without a CUDA device.
#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "cuda_test_util.h"

namespace kc = nanorlhf::kernels::cuda;
using namespace nr_cuda_test;

TEST(CudaRuntime, DeviceCountNeverThrows) {
  int n = -1;
  EXPECT_NO_THROW(n = kc::device_count());
  EXPECT_GE(n, 0);
  EXPECT_EQ(kc::available(), n > 0);
  EXPECT_EQ(kc::device_count(), n);  // the "no device" error is cleared: asking again gives the same
}

// The caching tests do not apply when NANORLHF_CUDA_ALLOC_EXACT=1 turns the cache off (memcheck runs).
#define NR_SKIP_IF_CACHE_OFF()                                                         \
  do {                                                                                 \
    const char *e = std::getenv("NANORLHF_CUDA_ALLOC_EXACT");                          \
    if (e && e[0] && e[0] != '0') GTEST_SKIP() << "allocator cache off (NANORLHF_CUDA_ALLOC_EXACT)"; \
  } while (0)

TEST(CudaAllocator, ReuseAfterFreeIsACacheHit) {
  NR_SKIP_WITHOUT_CUDA();
  NR_SKIP_IF_CACHE_OFF();
  kc::empty_cache();
  const auto s0 = kc::memory_stats(0);
  void *a = kc::device_malloc(1000, 0);
  ASSERT_NE(a, nullptr);
  const auto s1 = kc::memory_stats(0);
  EXPECT_EQ(s1.num_allocs, s0.num_allocs + 1);
  EXPECT_EQ(s1.allocated, s0.allocated + 1024);  // 1000 B rounds up to two 512 B units
  EXPECT_EQ(s1.reserved, s0.reserved + 1024);
  kc::device_free(a, 0);
  const auto s2 = kc::memory_stats(0);
  EXPECT_EQ(s2.allocated, s0.allocated);
  EXPECT_EQ(s2.reserved, s1.reserved);  // kept in the cache

  void *b = kc::device_malloc(900, 0);  // same size class
  const auto s3 = kc::memory_stats(0);
  EXPECT_EQ(b, a);
  EXPECT_EQ(s3.num_cache_hits, s2.num_cache_hits + 1);
  EXPECT_EQ(s3.reserved, s2.reserved);  // no new cudaMalloc
  kc::device_free(b, 0);
}

TEST(CudaAllocator, LargeRequestsRoundTo2MiB) {
  NR_SKIP_WITHOUT_CUDA();
  NR_SKIP_IF_CACHE_OFF();
  const auto s0 = kc::memory_stats(0);
  void *p = kc::device_malloc((3u << 20) + 1, 0);  // 3 MiB + 1 -> 4 MiB
  EXPECT_EQ(kc::memory_stats(0).allocated - s0.allocated, size_t(4) << 20);
  kc::device_free(p, 0);
}

TEST(CudaAllocator, PeakAndReset) {
  NR_SKIP_WITHOUT_CUDA();
  const auto s0 = kc::memory_stats(0);
  void *a = kc::device_malloc(size_t(8) << 20, 0);
  void *b = kc::device_malloc(size_t(8) << 20, 0);
  kc::device_free(a, 0);
  kc::device_free(b, 0);
  const auto s1 = kc::memory_stats(0);
  EXPECT_GE(s1.peak_allocated, s0.allocated + (size_t(16) << 20));
  kc::reset_peak_memory_stats(0);
  EXPECT_EQ(kc::memory_stats(0).peak_allocated, kc::memory_stats(0).allocated);
}

TEST(CudaAllocator, EmptyCacheReleasesOnlyCachedBlocks) {
  NR_SKIP_WITHOUT_CUDA();
  NR_SKIP_IF_CACHE_OFF();
  void *kept = kc::device_malloc(size_t(2) << 20, 0);
  void *freed = kc::device_malloc(size_t(6) << 20, 0);
  kc::device_free(freed, 0);
  const auto before = kc::memory_stats(0);
  kc::empty_cache();
  const auto after = kc::memory_stats(0);
  EXPECT_EQ(after.allocated, before.allocated);
  EXPECT_EQ(after.reserved, after.allocated);  // nothing cached any more
  EXPECT_LE(after.reserved, before.reserved - (size_t(6) << 20));
  kc::device_free(kept, 0);
  kc::empty_cache();
}

TEST(CudaAllocator, ZeroBytesIsNullAndFreeOfNullIsNoop) {
  NR_SKIP_WITHOUT_CUDA();
  EXPECT_EQ(kc::device_malloc(0, 0), nullptr);
  EXPECT_NO_THROW(kc::device_free(nullptr, 0));
}

TEST(CudaAllocator, FreeOfForeignPointerThrows) {
  NR_SKIP_WITHOUT_CUDA();
  int x = 0;
  EXPECT_THROW(kc::device_free(&x, 0), std::runtime_error);
}

TEST(CudaAllocator, OutOfMemoryMessage) {
  NR_SKIP_WITHOUT_CUDA();
  for (size_t bytes : {size_t(1) << 60, size_t(1) << 50}) {  // the first is refused at once, the second by cudaMalloc
    try {
      kc::device_malloc(bytes, 0);
      FAIL() << "expected an out-of-memory error for " << bytes << " bytes";
    } catch (const std::runtime_error &e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("CUDA out of memory: tried to allocate"), std::string::npos) << msg;
      EXPECT_NE(msg.find("MiB allocated"), std::string::npos) << msg;
      EXPECT_NE(msg.find("MiB reserved by nanorlhf on device 0"), std::string::npos) << msg;
    }
  }
  // the allocator still works afterwards
  void *p = kc::device_malloc(4096, 0);
  EXPECT_NE(p, nullptr);
  kc::device_free(p, 0);
}

TEST(CudaAllocator, ThreadsShareTheCacheSafely) {
  NR_SKIP_WITHOUT_CUDA();
  NR_SKIP_IF_CACHE_OFF();
  const auto s0 = kc::memory_stats(0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t] {
      for (int i = 0; i < 200; ++i) {
        void *p = kc::device_malloc(512 * (1 + (i + t) % 7), 0);
        kc::device_free(p, 0);
      }
    });
  for (auto &th : threads) th.join();
  const auto s1 = kc::memory_stats(0);
  EXPECT_EQ(s1.allocated, s0.allocated);
  EXPECT_EQ(s1.num_allocs, s0.num_allocs + 800);
  EXPECT_GE(s1.num_cache_hits, s0.num_cache_hits + 800 - 4 * 7);  // at most one cudaMalloc per thread and class
}

TEST(CudaRuntime, CopiesRoundTrip) {
  NR_SKIP_WITHOUT_CUDA();
  std::vector<float> host = rand_floats(1001);
  DeviceBuffer<float> a(host.size()), b(host.size());
  kc::memcpy_h2d(a.get(), host.data(), host.size() * sizeof(float));
  kc::memcpy_d2d(b.get(), a.get(), host.size() * sizeof(float));
  std::vector<float> back(host.size());
  kc::memcpy_d2h(back.data(), b.get(), host.size() * sizeof(float));
  kc::synchronize();
  EXPECT_TRUE(all_equal(back, host));
}

TEST(CudaRuntime, ErrorsNameTheCall) {
  NR_SKIP_WITHOUT_CUDA();
  try {
    kc::set_device(1 << 20);
    FAIL() << "expected an error for a device index that does not exist";
  } catch (const std::runtime_error &e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("cudaSetDevice"), std::string::npos) << msg;
    EXPECT_NE(msg.find("allocator.cu"), std::string::npos) << msg;
  }
}
