// Which tokenizer a folder holds: nanorlhf's tokenizer.json, or GPT-2's files as Hugging Face
// writes them (vocab.json + merges.txt, or a tokenizer.json with a "model" section).
#include <filesystem>
#include <fstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "nn/tokenizer.h"

namespace nanorlhf::nn {

namespace fs = std::filesystem;

namespace {
// A Hugging Face tokenizer.json has a "model" object; nanorlhf's has "merges" at the top.
bool is_hf_tokenizer_json(const fs::path &path) {
  std::ifstream f(path, std::ios::binary);
  const nlohmann::json j = nlohmann::json::parse(f, nullptr, /*allow_exceptions=*/false);
  return j.is_object() && j.contains("model") && j["model"].is_object();
}
}  // namespace

Tokenizer Tokenizer::load_folder(const std::string &dir) {
  const fs::path d(dir), ours = d / "tokenizer.json";
  const bool gpt2_files = fs::is_regular_file(d / "vocab.json") && fs::is_regular_file(d / "merges.txt");
  if (fs::is_regular_file(ours) && !is_hf_tokenizer_json(ours)) return load(ours.string());
  if (gpt2_files || fs::is_regular_file(ours)) return Tokenizer(GPT2Tokenizer::load(dir));
  throw std::runtime_error(dir + ": no tokenizer (expected nanorlhf's tokenizer.json, or GPT-2's vocab.json + "
                           "merges.txt, or a Hugging Face tokenizer.json)");
}

void Tokenizer::save_folder(const std::string &dir) const {
  fs::create_directories(dir);
  if (gpt2_)
    gpt2_->save(dir);
  else
    save((fs::path(dir) / "tokenizer.json").string());
}

}  // namespace nanorlhf::nn
