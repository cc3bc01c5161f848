// Helpers for the model-layer tests: float64 modules for gradcheck, tiny configs, host references.
#pragma once
#include <cmath>
#include <vector>

#include "nn/gpt.h"
#include "test_util.h"

namespace nr_test {

// Re-type every parameter of a module to float64 in place (same TensorImpl, so the module and any
// handle to the parameter see the new storage), for float64 gradcheck.
inline void to_float64(nanorlhf::nn::Module &m) {
  nanorlhf::NoGradGuard ng;
  for (auto &p : m.parameters()) {
    Tensor d = p.detach().to(nanorlhf::kFloat64).contiguous();
    p.impl().storage = d.storage();
    p.impl().dtype = nanorlhf::kFloat64;
    p.impl().strides = d.strides();
    p.impl().offset = d.offset();
    p.impl().grad = nullptr;
  }
}

inline nanorlhf::nn::GPTConfig tiny_config(int64_t vocab = 13, int64_t ctx = 16, int64_t d = 8, int64_t layers = 2,
                                           int64_t heads = 2) {
  return {.vocab = vocab, .ctx = ctx, .d_model = d, .n_layer = layers, .n_head = heads};
}

inline Tensor ids_tensor(const std::vector<int64_t> &v, int64_t B, int64_t T) {
  return nanorlhf::from_vector<int64_t>(v, {B, T});
}

inline Tensor mask_tensor(const std::vector<float> &v, int64_t B, int64_t T) {
  return nanorlhf::from_vector<float>(v, {B, T});
}

}  // namespace nr_test
