// libFuzzer target: nn::Tokenizer::load on arbitrary tokenizer.json bytes, then a round trip through
// whatever loaded: load() must reject anything that would make encode/decode misbehave.
#include <stdexcept>

#include "fuzz_util.h"
#include "nn/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string &path = nanorlhf::fuzz::write_scratch(data, size, ".json");
  nanorlhf::nn::Tokenizer tok;
  try {
    tok = nanorlhf::nn::Tokenizer::load(path);
  } catch (const std::runtime_error &) {
    return 0;
  } catch (const std::invalid_argument &) {
    return 0;
  }
  const std::string text = "<|bos|>Hello, world! 123 \xc3\xa9t\xc3\xa9<|eos|>";
  if (tok.decode(tok.encode(text, /*allow_special=*/true)) != text) __builtin_trap();
  if (tok.decode(tok.encode(text, /*allow_special=*/false)) != text) __builtin_trap();
  tok.encode_prompt("What is 2 + 2?");
  return 0;
}
