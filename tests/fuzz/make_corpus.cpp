// Writes the generated part of the seed corpora (tests/fuzz/corpus/) with the project's own
// writers: tiny safetensors files, tokenizer.json files and ppo config files from the real schema.
//   fuzz_make_corpus tests/fuzz/corpus      (built in build-fuzz; `make fuzz` does not run it)
// The JSONL seeds are hand-written lines of each format; they are not generated.
#include <cstdio>
#include <fstream>
#include <string>

#include "nn/safetensors.h"
#include "nn/tokenizer.h"
#include "rlhf/stages.h"

using namespace nanorlhf;

static void put(const std::string &path, const std::string &bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
  std::printf("%s (%zu bytes)\n", path.c_str(), bytes.size());
}

int main(int argc, char **argv) {
  if (argc != 2) { std::fprintf(stderr, "usage: %s <corpus folder>\n", argv[0]); return 2; }
  const std::string dir = argv[1];

  std::map<std::string, nn::RawTensor> t;
  t["wte.weight"] = nn::RawTensor::from_f32({2, 3}, std::vector<float>{1, -2, 0.5f, 0, 3, -1});
  t["step"] = nn::RawTensor::from_i64({}, std::vector<int64_t>{7});
  put(dir + "/safetensors/two_tensors.safetensors", nn::serialize_safetensors(t, {{"format", "pt"}}));
  std::map<std::string, nn::RawTensor> e;
  e["empty"] = nn::RawTensor::from_f32({0, 4}, std::vector<float>{});
  put(dir + "/safetensors/empty_tensor.safetensors", nn::serialize_safetensors(e));

  const std::string base = dir + "/tokenizer/bytes_only.json";
  nn::Tokenizer().save(base);
  const std::string trained = dir + "/tokenizer/trained_16_merges.json";
  const int vocab = int(256 + 16 + nn::Tokenizer::special_tokens().size());  // 16 merges
  nn::Tokenizer::train({"the cat sat on the mat", "the dog ate the hat, then the cat"}, vocab).save(trained);

  rlhf::Config c(rlhf::find_stage("ppo").schema());
  put(dir + "/config/ppo_defaults.json", c.resolved().dump(1) + "\n");
  return 0;
}
