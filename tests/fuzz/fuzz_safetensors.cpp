// libFuzzer target: nn::parse_safetensors on arbitrary bytes. Rejections are std::runtime_error or
// std::invalid_argument with a message; a crash, a sanitizer report or another exception is a finding.
#include <stdexcept>
#include <string_view>

#include "nn/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  try {
    auto file = nanorlhf::nn::parse_safetensors(std::string_view(reinterpret_cast<const char *>(data), size), "fuzz");
    for (auto &[name, t] : file.tensors)  // a parsed tensor holds exactly numel * itemsize bytes
      if ((int64_t)t.data.size() != t.numel() * nanorlhf::nn::dtype_itemsize(t.dtype)) __builtin_trap();
  } catch (const std::runtime_error &) {
  } catch (const std::invalid_argument &) {
  }
  return 0;
}
