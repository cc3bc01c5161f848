// safetensors checkpoints: an 8-byte little-endian header length, a JSON header (dtype, shape,
// data_offsets per tensor, optional "__metadata__"), then the raw little-endian bytes. Opens in
// Python's `safetensors`. Loading validates everything and names the file and tensor in each error.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace nanorlhf::nn {

// One tensor as bytes. dtype is a safetensors name: "F32", "F64", "F16", "BF16", "I8", "I16",
// "I32", "I64", "U8", "BOOL". shape {} is a scalar (one element); a 0 in the shape is an empty tensor.
struct RawTensor {
  std::string dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> data;  // numel * itemsize bytes, little-endian, row-major

  int64_t numel() const;
  static RawTensor from_f32(std::vector<int64_t> shape, std::span<const float> values);
  static RawTensor from_i64(std::vector<int64_t> shape, std::span<const int64_t> values);
  std::vector<float> to_f32() const;    // throws unless dtype is F32
  std::vector<int64_t> to_i64() const;  // throws unless dtype is I64
};

// Bytes per element of a safetensors dtype; throws std::invalid_argument listing the known dtypes.
int64_t dtype_itemsize(std::string_view dtype);

struct SafetensorsFile {
  std::map<std::string, RawTensor> tensors;
  std::map<std::string, std::string> metadata;
};

// The file's bytes: header padded with spaces to a multiple of 8, tensors in name order.
std::string serialize_safetensors(const std::map<std::string, RawTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata = {});
// Parses and validates `bytes`; `name` (usually the path) is quoted in every error.
SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name);

// Written atomically (see atomic_file.h): the old file survives a failed save.
void save_safetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});
SafetensorsFile load_safetensors(const std::string& path);

}  // namespace nanorlhf::nn
