// `nanorlhf tokenizer train`: learns a byte-level BPE tokenizer on a {"text"} JSONL corpus.
#include <chrono>
#include <cstdio>
#include <memory>

#include "nn/tokenizer.h"
#include "rlhf/cli/config_flags.h"
#include "rlhf/data.h"

namespace nanorlhf::cli {

void setup_tokenizer(CLI::App &cmd) {
  cmd.require_subcommand(1);
  CLI::App *train = cmd.add_subcommand("train", "train a byte-level BPE tokenizer on a {\"text\"} JSONL corpus");
  struct Args {
    std::string data, out = "tokenizer.json";
    int vocab_size = 512;
  };
  auto a = std::make_shared<Args>();
  train->add_option("-d,--data", a->data, "corpus JSONL with a \"text\" field per line")->required();
  train->add_option("-v,--vocab-size", a->vocab_size, "tokens in the vocabulary: 256 bytes + merges + special tokens")
      ->capture_default_str()
      ->check(CLI::Range(int(256 + nn::Tokenizer::special_tokens().size()), 1 << 20));
  train->add_option("-o,--out", a->out, "where to write tokenizer.json")->capture_default_str();
  train->callback([a] {
    const auto t0 = std::chrono::steady_clock::now();
    std::vector<std::string> texts;
    for (auto &ex : rlhf::read_text_jsonl(a->data)) texts.push_back(std::move(ex.text));
    if (texts.empty()) throw std::runtime_error(a->data + ": the corpus holds no documents");
    nn::Tokenizer tok = nn::Tokenizer::train(texts, a->vocab_size);
    tok.save(a->out);
    size_t bytes = 0, tokens = 0;
    for (size_t i = 0; i < texts.size(); i += std::max<size_t>(1, texts.size() / 200)) {  // a sample for the ratio
      bytes += texts[i].size();
      tokens += tok.encode(texts[i]).size();
    }
    std::printf("wrote %s: %lld tokens (%lld merges) from %zu documents in %.1fs; %.2f bytes per token\n", a->out.c_str(),
                (long long)tok.vocab_size(), (long long)tok.num_merges(), texts.size(),
                std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(),
                tokens ? double(bytes) / double(tokens) : 0.0);
  });
}

}  // namespace nanorlhf::cli
