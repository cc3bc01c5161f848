// IEEE binary16 (F16) and bfloat16 (BF16) to float32, for checkpoints saved in half precision
// (Hugging Face models often are). Both widen exactly: every half value is a float32 value.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "nn/safetensors.h"

namespace nanorlhf::nn {

float f16_to_f32(uint16_t h);
float bf16_to_f32(uint16_t h);

// The values of an F32, F16, BF16 or F64 tensor as float32 (F64 rounded to nearest); any other
// dtype throws, naming `what` (e.g. "model.safetensors: tensor 'wte.weight'").
std::vector<float> floats_of(const RawTensor &t, const std::string &what);

}  // namespace nanorlhf::nn
