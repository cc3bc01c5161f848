// Reading a Hugging Face GPT-2 tokenizer (vocab.json + merges.txt, or tokenizer.json; every error
// names the file and the line or key) and writing vocab.json + merges.txt.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "nn/atomic_file.h"
#include "nn/gpt2_tokenizer.h"

namespace nanorlhf::nn {
namespace {

nlohmann::json read_json(const std::string& path) {
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(path + ": invalid JSON: " + e.what());
  }
}

// {"token": id, ...}; where names the file (and key path) in errors.
std::unordered_map<std::string, int64_t> parse_vocab(const nlohmann::json& j, const std::string& where) {
  if (!j.is_object()) throw std::invalid_argument(where + ": expected an object {token: id}, got " + j.type_name());
  std::unordered_map<std::string, int64_t> vocab;
  vocab.reserve(j.size());
  for (const auto& [token, id] : j.items()) {
    if (!id.is_number_integer())
      throw std::invalid_argument(where + ": token \"" + token + "\": id is " + id.dump() + ", expected an integer");
    vocab.emplace(token, id.get<int64_t>());
  }
  return vocab;
}

}  // namespace

GPT2Tokenizer GPT2Tokenizer::from_files(const std::string& vocab_json, const std::string& merges_txt) {
  const auto vocab = parse_vocab(read_json(vocab_json), vocab_json);
  std::vector<Merge> merges;
  std::istringstream in(read_file(merges_txt));
  std::string line;
  for (int64_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (n == 1 && line.rfind("#version", 0) == 0)) continue;
    const std::string where = merges_txt + ":" + std::to_string(n);
    const size_t sp = line.find(' ');
    if (sp == 0 || sp == std::string::npos || sp + 1 == line.size() || line.find(' ', sp + 1) != std::string::npos)
      throw std::invalid_argument(where + ": expected two tokens separated by one space, got \"" + line + "\"");
    merges.push_back({line.substr(0, sp), line.substr(sp + 1), where});
  }
  return build(vocab, vocab_json, merges, {});
}

GPT2Tokenizer GPT2Tokenizer::from_tokenizer_json(const std::string& path) {
  const nlohmann::json j = read_json(path);
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw std::invalid_argument(path + ": missing object \"model\"");
  const auto& model = j["model"];
  if (model.contains("type") && model["type"] != "BPE")
    throw std::invalid_argument(path + ": model.type is " + model["type"].dump() + ", expected \"BPE\"");
  if (!model.contains("vocab")) throw std::invalid_argument(path + ": missing model.vocab");
  if (!model.contains("merges") || !model["merges"].is_array())
    throw std::invalid_argument(path + ": missing array model.merges");
  const auto vocab = parse_vocab(model["vocab"], path + ": model.vocab");
  std::vector<Merge> merges;
  const auto& ms = model["merges"];
  for (size_t i = 0; i < ms.size(); ++i) {
    const std::string where = path + ": model.merges[" + std::to_string(i) + "]";
    const auto& m = ms[i];
    if (m.is_string()) {  // "a b" (older files)
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == 0 || sp == std::string::npos || sp + 1 == s.size() || s.find(' ', sp + 1) != std::string::npos)
        throw std::invalid_argument(where + ": expected \"a b\", got " + m.dump());
      merges.push_back({s.substr(0, sp), s.substr(sp + 1), where});
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // [a, b]
      merges.push_back({m[0].get<std::string>(), m[1].get<std::string>(), where});
    } else {
      throw std::invalid_argument(where + ": expected \"a b\" or [a, b], got " + m.dump());
    }
  }
  std::vector<std::pair<std::string, int64_t>> added;
  if (j.contains("added_tokens")) {
    const auto& at = j["added_tokens"];
    if (!at.is_array()) throw std::invalid_argument(path + ": added_tokens is not an array");
    for (size_t i = 0; i < at.size(); ++i) {
      const auto& t = at[i];
      const std::string where = path + ": added_tokens[" + std::to_string(i) + "]";
      if (!t.is_object() || !t.contains("content") || !t["content"].is_string() || !t.contains("id") ||
          !t["id"].is_number_integer() || t["id"].get<int64_t>() < 0)
        throw std::invalid_argument(where + ": expected {\"id\": non-negative integer, \"content\": string}");
      if (t.value("special", false)) added.emplace_back(t["content"].get<std::string>(), t["id"].get<int64_t>());
    }
  }
  return build(vocab, path + ": model.vocab", merges, added);
}

GPT2Tokenizer GPT2Tokenizer::load(const std::string& folder) {
  namespace fs = std::filesystem;
  const fs::path dir(folder);
  if (fs::exists(dir / "vocab.json") && fs::exists(dir / "merges.txt"))
    return from_files((dir / "vocab.json").string(), (dir / "merges.txt").string());
  if (fs::exists(dir / "tokenizer.json")) return from_tokenizer_json((dir / "tokenizer.json").string());
  throw std::runtime_error(folder + ": no GPT-2 tokenizer (expected vocab.json and merges.txt, or tokenizer.json)");
}

void GPT2Tokenizer::save(const std::string& folder) const {
  namespace fs = std::filesystem;
  fs::create_directories(folder);
  nlohmann::json vocab = nlohmann::json::object();
  for (int64_t id = 0; id < vocab_size(); ++id)
    vocab[is_special(id) ? pieces_[id] : bytes_to_unicode(pieces_[id])] = id;
  std::vector<std::pair<int32_t, uint64_t>> by_rank;  // (rank, left << 32 | right)
  by_rank.reserve(merge_.size());
  for (const auto& [key, value] : merge_) by_rank.emplace_back(value.first, key);
  std::sort(by_rank.begin(), by_rank.end());
  std::string merges = "#version: 0.2\n";
  for (const auto& [rank, key] : by_rank)
    merges += bytes_to_unicode(pieces_[key >> 32]) + " " + bytes_to_unicode(pieces_[key & 0xffffffffu]) + "\n";
  write_file_atomic((fs::path(folder) / "vocab.json").string(), vocab.dump());
  write_file_atomic((fs::path(folder) / "merges.txt").string(), merges);
}

}  // namespace nanorlhf::nn
