// A GPT-2 tokenizer small enough to write by hand: 256 byte tokens, then "ab", "abc", " a" and
// <|endoftext|> (id 259); merges a+b, ab+c, space+a. Its files are what transformers saves.
#pragma once
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/gpt2_tokenizer.h"

namespace nr_test {

struct TinyGpt2Tokenizer {
  nlohmann::json vocab = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> merges;
  TinyGpt2Tokenizer() {
    using nanorlhf::nn::GPT2Tokenizer;
    for (int b = 0; b < 256; ++b) vocab[GPT2Tokenizer::bytes_to_unicode(std::string(1, static_cast<char>(b)))] = b;
    vocab["ab"] = 256;
    vocab["abc"] = 257;
    vocab[GPT2Tokenizer::bytes_to_unicode(" a")] = 258;
    vocab["<|endoftext|>"] = 259;
    merges = {{"a", "b"}, {"ab", "c"}, {GPT2Tokenizer::bytes_to_unicode(" "), "a"}};
  }
  static constexpr int64_t kVocab = 260;
  // dir/vocab.json and dir/merges.txt.
  void write_files(const std::filesystem::path& dir) const {
    std::filesystem::create_directories(dir);
    std::ofstream(dir / "vocab.json", std::ios::binary) << vocab.dump();
    std::string m = "#version: 0.2\n";
    for (const auto& [a, b] : merges) m += a + " " + b + "\n";
    std::ofstream(dir / "merges.txt", std::ios::binary) << m;
  }
};

}  // namespace nr_test
