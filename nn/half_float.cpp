// Half-precision widening by bit manipulation: sign, exponent and mantissa moved into float32's fields.
#include "nn/half_float.h"

#include <bit>
#include <cstring>

#include "tensor/error.h"

namespace nanorlhf::nn {

// binary16: 1 sign, 5 exponent (bias 15), 10 mantissa bits; float32: 1, 8 (bias 127), 23.
float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000u) << 16;
  uint32_t exp = (h >> 10) & 0x1Fu, man = h & 0x3FFu;
  uint32_t bits;
  if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (man << 13);  // infinity, or NaN with its payload
  } else if (exp != 0) {
    bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
  } else if (man == 0) {
    bits = sign;  // signed zero
  } else {
    // Subnormal man * 2^-24: normalise, shifting the leading 1 into the implicit bit.
    int e = -14;
    while (!(man & 0x400u)) {
      man <<= 1;
      --e;
    }
    bits = sign | (uint32_t(e + 127) << 23) | ((man & 0x3FFu) << 13);
  }
  return std::bit_cast<float>(bits);
}

// bfloat16 is the top half of a float32.
float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

std::vector<float> floats_of(const RawTensor &t, const std::string &what) {
  const size_t n = size_t(t.numel());
  std::vector<float> out(n);
  auto halves = [&](float (*widen)(uint16_t)) {
    for (size_t i = 0; i < n; ++i) {
      uint16_t h;
      std::memcpy(&h, t.data.data() + 2 * i, 2);  // little-endian host, as the format
      out[i] = widen(h);
    }
  };
  if (t.dtype == "F32") {
    if (n) std::memcpy(out.data(), t.data.data(), 4 * n);
  } else if (t.dtype == "F16") {
    halves(f16_to_f32);
  } else if (t.dtype == "BF16") {
    halves(bf16_to_f32);
  } else if (t.dtype == "F64") {
    for (size_t i = 0; i < n; ++i) {
      double d;
      std::memcpy(&d, t.data.data() + 8 * i, 8);
      out[i] = float(d);
    }
  } else {
    throw Error(fmt::format("{} has dtype {}; expected a floating-point tensor (F32, F16, BF16 or F64)", what, t.dtype));
  }
  return out;
}

}  // namespace nanorlhf::nn
