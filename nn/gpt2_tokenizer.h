// GPT-2's byte-level BPE tokenizer, loaded from a Hugging Face folder (vocab.json + merges.txt, or
// tokenizer.json): GPT-2's byte-to-unicode mapping, its pre-tokenisation regex with Unicode classes
// (PCRE2), merges by rank, and <|endoftext|> as a special token. Ids are the checkpoint's own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace nanorlhf::nn {

class GPT2Tokenizer {
 public:
  // A folder with vocab.json and merges.txt, or else tokenizer.json; an error names what is missing.
  static GPT2Tokenizer load(const std::string& folder);
  static GPT2Tokenizer from_files(const std::string& vocab_json, const std::string& merges_txt);
  // The "model" of a tokenizer.json (type BPE, vocab, merges as "a b" strings or [a, b] pairs);
  // added_tokens marked special become special tokens.
  static GPT2Tokenizer from_tokenizer_json(const std::string& path);

  // Text -> ids; special-token strings (<|endoftext|>) map to their ids.
  std::vector<int64_t> encode(std::string_view text) const;
  // Text -> ids with no special tokens: "<|endoftext|>" is encoded as plain text.
  std::vector<int64_t> encode_ordinary(std::string_view text) const;
  // Ids -> bytes (special tokens as their text). Throws on an id out of range.
  std::string decode(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(pieces_.size()); }
  int64_t num_merges() const { return num_merges_; }
  // The bytes of one token.
  const std::string& id_to_piece(int64_t id) const;
  // Id of a special token by its text; throws listing the special tokens there are.
  int64_t special_id(std::string_view token) const;
  int64_t endoftext_id() const { return special_id("<|endoftext|>"); }
  bool is_special(int64_t id) const;
  // The same tokens, merges and special tokens.
  bool operator==(const GPT2Tokenizer& other) const;

  // Writes folder/vocab.json and folder/merges.txt (the layout from_files reads, as transformers
  // saves GPT-2's), atomically; special tokens go into vocab.json as in GPT-2's own.
  void save(const std::string& folder) const;

  // GPT-2's pre-tokenisation of plain text; bytes that are not valid UTF-8 form pre-tokens of
  // their own, so every byte string is covered. Exposed for tests.
  std::vector<std::string_view> pre_tokenize(std::string_view text) const;

  // GPT-2's byte -> code point mapping (printable bytes map to themselves, the rest to 256 + n):
  // vocab.json's keys are written in it.
  static std::string bytes_to_unicode(std::string_view bytes);

 private:
  struct Regex;  // the compiled pattern (PCRE2), shared by copies
  struct Cache;  // pre-token -> ids, shared by copies
  GPT2Tokenizer() = default;
  // vocab: the mapped token text -> id; merges: pairs of mapped texts, each with where it came
  // from (file:line or key) for errors; added: special tokens (text, id) besides <|endoftext|>.
  struct Merge {
    std::string left, right, where;
  };
  static GPT2Tokenizer build(const std::unordered_map<std::string, int64_t>& vocab, const std::string& vocab_where,
                             const std::vector<Merge>& merges,
                             const std::vector<std::pair<std::string, int64_t>>& added);
  void bpe(std::string_view word, std::vector<int64_t>& out) const;
  void encode_plain(std::string_view text, std::vector<int64_t>& out) const;

  std::vector<std::string> pieces_;      // id -> bytes
  std::vector<int64_t> byte_id_;         // byte -> id of its one-byte token
  std::unordered_map<uint64_t, std::pair<int32_t, int64_t>> merge_;  // (left << 32 | right) -> (rank, merged id)
  int64_t num_merges_ = 0;
  std::vector<std::pair<std::string, int64_t>> specials_;  // text -> id
  std::shared_ptr<Regex> regex_;
  std::shared_ptr<Cache> cache_;
};

}  // namespace nanorlhf::nn
