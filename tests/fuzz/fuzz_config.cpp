// libFuzzer target: rlhf::Config against a real schema (the ppo stage's) with arbitrary JSON text
// as a config file, and the input's first line as a `--set key=value` override. Rejections are
// std::runtime_error / std::invalid_argument; a config that was accepted must still resolve.
#include <stdexcept>
#include <string>

#include "fuzz_util.h"
#include "rlhf/stages.h"

using namespace nanorlhf;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const std::vector<rlhf::ConfigKey> schema = rlhf::find_stage("ppo").schema();
  const std::string &path = fuzz::write_scratch(data, size, ".json");
  rlhf::Config config(schema);
  try {
    config.load_file(path);
  } catch (const std::runtime_error &) {
  } catch (const std::invalid_argument &) {
  }
  const std::string text(reinterpret_cast<const char *>(data), size);
  try {
    config.set(text.substr(0, text.find('\n')));
  } catch (const std::runtime_error &) {
  } catch (const std::invalid_argument &) {
  }
  rlhf::Config again(schema);
  again.merge(config.resolved());  // whatever was accepted reads back
  return 0;
}
