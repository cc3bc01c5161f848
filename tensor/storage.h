// Storage: one reference-counted block of bytes on one device. Tensors are views into it.
#pragma once
#include <cstddef>
#include <memory>

#include "tensor/dtype.h"

namespace nanorlhf {

class Storage {
 public:
  Storage(size_t nbytes, Device device);  // uninitialised
  ~Storage();
  Storage(const Storage &) = delete;
  Storage &operator=(const Storage &) = delete;
  void *data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void *data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

// Bytes currently held by CPU storages and their high-water mark (for memory benchmarks).
size_t cpu_bytes_allocated();
size_t cpu_bytes_peak();
void reset_cpu_peak();

// Copy raw bytes between devices (either side may be CPU or CUDA).
void copy_bytes(void *dst, Device dst_dev, const void *src, Device src_dev, size_t nbytes);

}  // namespace nanorlhf
