// Element types and devices: float32 for values, float64 (CPU) for gradcheck, int32/int64 for ids
// and indices, bool for masks.
#pragma once
#include <cstdint>
#include <string>

#include "tensor/error.h"

namespace nanorlhf {

enum class DType : int8_t { Float32, Float64, Int32, Int64, Bool };
inline constexpr DType kFloat32 = DType::Float32, kFloat64 = DType::Float64, kInt32 = DType::Int32,
                       kInt64 = DType::Int64, kBool = DType::Bool;

inline size_t itemsize(DType t) {
  switch (t) {
    case DType::Float32: case DType::Int32: return 4;
    case DType::Float64: case DType::Int64: return 8;
    case DType::Bool: return 1;
  }
  return 0;
}
inline const char *dtype_name(DType t) {
  switch (t) {
    case DType::Float32: return "float32";
    case DType::Float64: return "float64";
    case DType::Int32: return "int32";
    case DType::Int64: return "int64";
    case DType::Bool: return "bool";
  }
  return "?";
}
inline bool is_floating(DType t) { return t == DType::Float32 || t == DType::Float64; }

template <class T> constexpr DType dtype_of();
template <> constexpr DType dtype_of<float>() { return DType::Float32; }
template <> constexpr DType dtype_of<double>() { return DType::Float64; }
template <> constexpr DType dtype_of<int32_t>() { return DType::Int32; }
template <> constexpr DType dtype_of<int64_t>() { return DType::Int64; }
template <> constexpr DType dtype_of<uint8_t>() { return DType::Bool; }
template <> constexpr DType dtype_of<bool>() { return DType::Bool; }

enum class DeviceType : int8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;
  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int i = 0) { return {DeviceType::CUDA, i}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device &o) const { return type == o.type && (is_cpu() || index == o.index); }
  std::string str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }
  static Device parse(const std::string &s);  // "cpu", "cuda", "cuda:1"
};

}  // namespace nanorlhf
