// libFuzzer target: every JSONL reader of rlhf/data.h on the same bytes. A reader may reject the
// input with a clear error (std::runtime_error / std::invalid_argument); anything else that escapes,
// a crash or a sanitizer report is a finding.
#include <stdexcept>

#include "fuzz_util.h"
#include "rlhf/data.h"

using namespace nanorlhf;

template <class F>
static void expect_clean(F &&read) {
  try {
    read();
  } catch (const std::runtime_error &) {
  } catch (const std::invalid_argument &) {
  }
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const std::string &path = fuzz::write_scratch(data, size, ".jsonl");
  expect_clean([&] { rlhf::read_text_jsonl(path); });
  expect_clean([&] { rlhf::read_sft_jsonl(path); });
  expect_clean([&] { rlhf::read_prompts_jsonl(path); });
  expect_clean([&] { rlhf::read_preference_jsonl(path); });
  expect_clean([&] { rlhf::read_unpaired_jsonl(path); });
  expect_clean([&] { rlhf::read_kto_jsonl(path); });
  return 0;
}
