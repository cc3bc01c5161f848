// The tokenizer every trainer uses: nanorlhf's own byte-level BPE (GPT-2 style pre-split, trainer,
// encode/decode, special tokens, chat template <|bos|> then <|role|>content per message, <|eos|>
// after each assistant message), or GPT-2's tokenizer behind the same interface (nn/chat_template.cpp
// holds both chat templates).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "nn/gpt2_tokenizer.h"

namespace nanorlhf::nn {

struct ChatMessage {
  std::string role;  // "system", "user" or "assistant"
  std::string content;
};

class Tokenizer {
 public:
  // The special tokens, in id order; their ids come right after the merges.
  static const std::vector<std::string>& special_tokens();
  // The roles the chat template knows: system, user, assistant.
  static const std::vector<std::string>& chat_roles();

  // A tokenizer with no merges: 256 byte tokens + the special tokens.
  Tokenizer();

  // GPT-2's tokenizer (a Hugging Face checkpoint's ids): <|endoftext|> is bos, eos and pad, as in
  // transformers, and the chat template is text (Anthropic HH's "\n\nHuman: ...\n\nAssistant: ...",
  // see role_prefix), since GPT-2 has no role tokens.
  explicit Tokenizer(GPT2Tokenizer gpt2);
  bool is_gpt2() const { return gpt2_ != nullptr; }
  const GPT2Tokenizer* gpt2() const { return gpt2_.get(); }
  // Same ids for the same text: the same kind, the same tokens and merges.
  bool operator==(const Tokenizer& other) const;
  // For messages: "nanorlhf BPE, 512 tokens (250 merges)" or "GPT-2 BPE, 50257 tokens (50000 merges)".
  std::string describe() const;

  // Learns merges on `texts` until the vocabulary (bytes + merges + special tokens) holds
  // `vocab_size` tokens, or no pair is left to merge. Special-token strings in the texts are
  // removed before counting; merges never cross pre-split word boundaries. Deterministic: the most
  // frequent pair wins, ties go to the smallest (left id, right id); a pair that would make a token
  // longer than kMaxPieceBytes is never merged.
  static Tokenizer train(const std::vector<std::string>& texts, int vocab_size);

  // The longest token, in bytes. Merges can double a token's length each time, so a few dozen in a
  // hostile tokenizer.json would ask for exponential memory; real BPE vocabularies' longest tokens
  // (runs of spaces or dashes) are well under 256 bytes.
  static constexpr size_t kMaxPieceBytes = 1024;

  // Builds a tokenizer from an explicit merge list (merge i creates id 256 + i). Throws if a merge
  // refers to an id not yet created or makes a token longer than kMaxPieceBytes.
  static Tokenizer from_merges(std::vector<std::pair<int64_t, int64_t>> merges);

  // Text -> ids. With allow_special, special-token strings map to their ids; otherwise they are
  // encoded as plain bytes.
  std::vector<int64_t> encode(std::string_view text, bool allow_special = true) const;
  // Ids -> bytes. Any byte sequence round-trips, including invalid UTF-8. Throws on an id out of range.
  std::string decode(const std::vector<int64_t>& ids, bool skip_special = false) const;

  int64_t vocab_size() const { return gpt2_ ? gpt2_->vocab_size() : static_cast<int64_t>(pieces_.size()); }
  int64_t num_merges() const { return gpt2_ ? gpt2_->num_merges() : static_cast<int64_t>(merges_.size()); }
  // nanorlhf's own merges (empty for GPT-2's tokenizer).
  const std::vector<std::pair<int64_t, int64_t>>& merges() const { return merges_; }
  // The bytes of one token (the token's text for a special token).
  std::string id_to_piece(int64_t id) const;
  bool is_special(int64_t id) const {
    return gpt2_ ? gpt2_->is_special(id) : id >= first_special_ && id < vocab_size();
  }

  int64_t bos_id() const { return bos_; }
  int64_t eos_id() const { return eos_; }
  int64_t pad_id() const { return pad_; }
  // Id of a special token by its text, e.g. special_id("<|user|>"); throws listing the valid ones.
  int64_t special_id(std::string_view token) const;
  // Id of the role token for a chat role ("user" -> <|user|>); throws listing the valid roles, or
  // for GPT-2's tokenizer, which has none (role_prefix works for both).
  int64_t role_id(std::string_view role) const;
  // The tokens that open a message of `role`: {<|role|>}, or for GPT-2 "\n\nHuman:" (user),
  // "\n\nAssistant:", "\n\nSystem:". Throws on an unknown role, listing the valid ones.
  std::vector<int64_t> role_prefix(std::string_view role) const;
  // A message's content, never a control token: the plain text, or for GPT-2 " " + text, so
  // "Assistant: Hi" splits as GPT-2 splits it (" Hi"), not into ":", " ", "Hi".
  std::vector<int64_t> encode_content(std::string_view content) const;

  // bos then, per message, role_prefix + encode_content, with eos after each assistant message;
  // add_generation_prompt appends the assistant's prefix. Contents are encoded without special
  // tokens, so text inside a message can never inject a control token.
  std::vector<int64_t> apply_chat_template(const std::vector<ChatMessage>& messages,
                                           bool add_generation_prompt) const;
  // The same conversation as text (render_chat_text below).
  std::string render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  // Prompt/completion format: encode_prompt(p) + encode_completion(c) equals the chat template of
  // {user: p, assistant: c}.
  std::vector<int64_t> encode_prompt(std::string_view user_prompt) const;
  std::vector<int64_t> encode_completion(std::string_view completion) const;

  // JSON: {"format","version","vocab_size","merges":[[a,b],...],"special_tokens":{...}}, written
  // atomically. load() checks the content and names the file in every error. nanorlhf's own only.
  void save(const std::string& path) const;
  static Tokenizer load(const std::string& path);
  // A run or Hugging Face folder's tokenizer (nn/tokenizer_folder.cpp): nanorlhf's tokenizer.json,
  // else GPT-2's vocab.json + merges.txt, else a Hugging Face tokenizer.json. save_folder writes
  // the files of its kind (tokenizer.json, or vocab.json + merges.txt), each atomically.
  static Tokenizer load_folder(const std::string& dir);
  void save_folder(const std::string& dir) const;

  // GPT-2 style pre-split of plain text (no special tokens) into words: a leading space stays
  // with the word; letters, digits and punctuation form separate runs. Exposed for tests.
  static std::vector<std::string_view> pre_split(std::string_view text);

 private:
  struct Cache;
  void build();  // pieces_ and merge ranks from merges_
  std::vector<int64_t> encode_word(std::string_view word) const;  // BPE on one pre-split word
  void encode_plain(std::string_view text, std::vector<int64_t>& out) const;

  std::vector<std::pair<int64_t, int64_t>> merges_;
  std::vector<std::string> pieces_;  // bytes of every token, specials last
  int64_t first_special_ = 256;
  int64_t bos_ = 0, eos_ = 0, pad_ = 0;
  std::unordered_map<uint64_t, int32_t> ranks_;  // (left << 32 | right) -> merge rank
  std::shared_ptr<Cache> cache_;       // word -> ids, shared by copies (same merges)
  std::shared_ptr<const GPT2Tokenizer> gpt2_;  // set: every call goes to GPT-2's tokenizer
};

// The chat template as text, no tokenizer needed (Tokenizer::render_chat is this): <|bos|>, then
// <|role|>content per message, <|eos|> after each assistant message, then <|assistant|> when
// add_generation_prompt. last_finished = false leaves the <|eos|> off a last assistant message (a
// response cut off mid-way, as in the world's web text). Throws std::invalid_argument on an
// unknown role, listing the valid ones.
std::string render_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt = false,
                             bool last_finished = true);

}  // namespace nanorlhf::nn
