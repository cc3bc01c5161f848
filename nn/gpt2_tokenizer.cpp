// GPT-2 byte-level BPE: the byte <-> code point mapping, the pre-tokenisation regex (PCRE2, UTF +
// UCP so \p{L} and \p{N} are Unicode's classes), merges by rank, encode and decode. Loading the
// files is gpt2_tokenizer_load.cpp.
#include "nn/gpt2_tokenizer.h"
#include "nn/utf8.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>
#include <functional>
#include <limits>
#include <mutex>
#include <queue>
#include <stdexcept>

namespace nanorlhf::nn {
namespace {

// GPT-2's pattern: contractions, letter runs, number runs, other runs (each with one optional
// leading space), then whitespace that is not followed by a word, then whitespace.
constexpr const char* kPattern =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

// byte -> code point: the printable bytes ! .. ~, ¡ .. ¬, ® .. ÿ are themselves; the other 68 get
// 256, 257, ... in byte order, so no token is made of control or blank characters.
const std::array<uint32_t, 256>& byte_to_cp() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }

}  // namespace

struct GPT2Tokenizer::Regex {
  pcre2_code* code = nullptr;
  Regex() {
    int err = 0;
    PCRE2_SIZE offset = 0;
    // MATCH_INVALID_UTF: bytes that are not UTF-8 are skipped instead of failing the whole match.
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(kPattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &err, &offset, nullptr);
    if (!code) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(err, msg, sizeof msg);
      throw std::runtime_error("GPT2Tokenizer: PCRE2 cannot compile the GPT-2 pattern at offset " +
                               std::to_string(offset) + ": " + reinterpret_cast<const char*>(msg));
    }
    pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // where JIT is missing, pcre2_match interprets
  }
  ~Regex() { pcre2_code_free(code); }
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
};

// Looked up by string_view, so a cache hit copies no key.
struct WordHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};

struct GPT2Tokenizer::Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<int64_t>, WordHash, std::equal_to<>> words;
};

std::string GPT2Tokenizer::bytes_to_unicode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char b : bytes) append_utf8(out, byte_to_cp()[b]);
  return out;
}

GPT2Tokenizer GPT2Tokenizer::build(const std::unordered_map<std::string, int64_t>& vocab,
                                   const std::string& vocab_where, const std::vector<Merge>& merges,
                                   const std::vector<std::pair<std::string, int64_t>>& added) {
  GPT2Tokenizer t;
  // Decode every token text back to bytes: code points of the mapping are bytes, any other code
  // point (an added token's text) stays as its UTF-8.
  std::array<int, 512> cp_to_byte;
  cp_to_byte.fill(-1);
  for (int b = 0; b < 256; ++b) cp_to_byte[byte_to_cp()[b]] = b;
  int64_t max_id = -1;
  for (const auto& [text, id] : vocab) {
    if (id < 0 || id >= std::numeric_limits<int32_t>::max())
      throw std::invalid_argument(vocab_where + ": token \"" + text + "\" has id " + std::to_string(id) +
                                  ", outside [0, 2^31)");
    max_id = std::max(max_id, id);
  }
  for (const auto& [text, id] : added) max_id = std::max(max_id, id);
  t.pieces_.assign(static_cast<size_t>(max_id + 1), std::string());
  std::vector<bool> seen(t.pieces_.size(), false);
  for (const auto& [text, id] : vocab) {
    if (seen[id]) throw std::invalid_argument(vocab_where + ": two tokens have id " + std::to_string(id));
    seen[id] = true;
    std::string& piece = t.pieces_[id];
    for (size_t i = 0; i < text.size();) {
      const auto c = static_cast<unsigned char>(text[i]);
      const size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
      uint32_t cp = len == 1 ? c : c & (0xFF >> (len + 1));
      for (size_t k = 1; k < len && i + k < text.size(); ++k) cp = (cp << 6) | (text[i + k] & 0x3F);
      if (cp < cp_to_byte.size() && cp_to_byte[cp] >= 0)
        piece += static_cast<char>(cp_to_byte[cp]);
      else
        piece.append(text, i, len);
      i += len;
    }
  }
  for (const auto& [text, id] : added) {
    seen[id] = true;
    t.pieces_[id] = text;
    t.specials_.emplace_back(text, id);
  }
  for (size_t id = 0; id < seen.size(); ++id)
    if (!seen[id]) throw std::invalid_argument(vocab_where + ": no token has id " + std::to_string(id));
  if (auto it = vocab.find("<|endoftext|>"); it != vocab.end()) {
    bool listed = false;
    for (const auto& s : t.specials_) listed = listed || s.first == "<|endoftext|>";
    if (!listed) t.specials_.emplace_back("<|endoftext|>", it->second);
  }

  t.byte_id_.assign(256, -1);
  for (int b = 0; b < 256; ++b) {
    auto it = vocab.find(bytes_to_unicode(std::string(1, static_cast<char>(b))));
    if (it == vocab.end())
      throw std::invalid_argument(vocab_where + ": byte " + std::to_string(b) + " has no token (\"" +
                                  bytes_to_unicode(std::string(1, static_cast<char>(b))) +
                                  "\"); a byte-level BPE vocabulary holds all 256");
    t.byte_id_[b] = it->second;
  }
  auto id_of = [&](const std::string& text, const Merge& m) {
    auto it = vocab.find(text);
    if (it == vocab.end())
      throw std::invalid_argument(m.where + ": merge \"" + m.left + " " + m.right + "\": token \"" + text +
                                  "\" is not in the vocabulary (" + vocab_where + ")");
    return it->second;
  };
  t.merge_.reserve(merges.size() * 2);
  for (size_t r = 0; r < merges.size(); ++r) {
    const Merge& m = merges[r];
    const int64_t a = id_of(m.left, m), b = id_of(m.right, m), ab = id_of(m.left + m.right, m);
    t.merge_.try_emplace(pair_key(a, b), static_cast<int32_t>(r), ab);  // a repeated merge keeps its first rank
  }
  t.num_merges_ = static_cast<int64_t>(merges.size());
  t.regex_ = std::make_shared<Regex>();
  t.cache_ = std::make_shared<Cache>();
  return t;
}

std::vector<std::string_view> GPT2Tokenizer::pre_tokenize(std::string_view text) const {
  std::vector<std::string_view> out;
  // One match-data block per thread, reused: the pattern has no groups, so one pair is all it needs.
  struct MatchData {
    pcre2_match_data* md = pcre2_match_data_create(1, nullptr);
    ~MatchData() { pcre2_match_data_free(md); }
  };
  thread_local MatchData tls;
  pcre2_match_data* md = tls.md;
  if (!md) throw std::bad_alloc();
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0, covered = 0;
  while (pos < text.size()) {
    const int rc = pcre2_match(regex_->code, subject, text.size(), pos, 0, md, nullptr);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      throw std::runtime_error("GPT2Tokenizer::pre_tokenize: PCRE2 match failed at byte " + std::to_string(pos) +
                               ": " + reinterpret_cast<const char*>(msg));
    }
    const PCRE2_SIZE* ov = pcre2_get_ovector_pointer(md);
    if (ov[0] > covered) out.push_back(text.substr(covered, ov[0] - covered));  // skipped invalid UTF-8
    if (ov[1] == ov[0]) {  // the pattern never matches empty; guard against looping anyway
      pos = ov[0] + 1;
      continue;
    }
    out.push_back(text.substr(ov[0], ov[1] - ov[0]));
    covered = pos = ov[1];
  }
  if (covered < text.size()) out.push_back(text.substr(covered));
  return out;
}

// BPE on one pre-token, as GPT-2 does it: take the adjacent pair of lowest merge rank, merge its
// occurrences left to right, repeat until no pair is a merge. A heap of (rank, position) pops the
// same merges in the same order in O(n log n) (a merge's result only forms pairs of higher rank
// in a trained merge list); a word of 100,000 letters takes milliseconds, not seconds.
void GPT2Tokenizer::bpe(std::string_view word, std::vector<int64_t>& out) const {
  struct Sym {
    int64_t id;
    int prev, next;
  };
  struct Cand {
    int32_t rank;
    int pos;
    int64_t left, right, merged;
    bool operator>(const Cand& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  const int n = static_cast<int>(word.size());
  std::vector<Sym> syms(n);
  for (int i = 0; i < n; ++i) syms[i] = {byte_id_[static_cast<unsigned char>(word[i])], i - 1, i + 1 < n ? i + 1 : -1};
  std::priority_queue<Cand, std::vector<Cand>, std::greater<>> heap;
  auto push = [&](int i) {
    if (i < 0 || syms[i].next < 0) return;
    const int j = syms[i].next;
    if (auto it = merge_.find(pair_key(syms[i].id, syms[j].id)); it != merge_.end())
      heap.push({it->second.first, i, syms[i].id, syms[j].id, it->second.second});
  };
  for (int i = 0; i + 1 < n; ++i) push(i);
  while (!heap.empty()) {
    const Cand c = heap.top();
    heap.pop();
    Sym& a = syms[c.pos];
    if (a.id != c.left || a.next < 0 || syms[a.next].id != c.right) continue;  // stale: a side merged since
    const int j = a.next;
    a.id = c.merged;
    a.next = syms[j].next;
    if (a.next >= 0) syms[a.next].prev = c.pos;
    syms[j].id = -1;
    push(a.prev);
    push(c.pos);
  }
  for (int i = n > 0 ? 0 : -1; i >= 0; i = syms[i].next) out.push_back(syms[i].id);
}

void GPT2Tokenizer::encode_plain(std::string_view text, std::vector<int64_t>& out) const {
  constexpr size_t kMaxCached = 1 << 18;  // bound the memory an unbounded stream of words takes
  for (std::string_view w : pre_tokenize(text)) {
    if (w.size() == 1) {
      out.push_back(byte_id_[static_cast<unsigned char>(w[0])]);
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      if (auto it = cache_->words.find(w); it != cache_->words.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    std::vector<int64_t> ids;
    bpe(w, ids);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_->mu);
    if (cache_->words.size() >= kMaxCached) cache_->words.clear();
    cache_->words.emplace(std::string(w), std::move(ids));
  }
}

std::vector<int64_t> GPT2Tokenizer::encode_ordinary(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  encode_plain(text, out);
  return out;
}

std::vector<int64_t> GPT2Tokenizer::encode(std::string_view text) const {
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  size_t pos = 0;
  while (pos < text.size()) {
    // The earliest special token from pos (the longest where two start at the same byte).
    size_t at = std::string_view::npos, len = 0;
    int64_t id = -1;
    for (const auto& [s, sid] : specials_) {
      const size_t f = text.find(s, pos);
      if (f < at || (f == at && f != std::string_view::npos && s.size() > len)) at = f, len = s.size(), id = sid;
    }
    encode_plain(text.substr(pos, at == std::string_view::npos ? std::string_view::npos : at - pos), out);
    if (at == std::string_view::npos) break;
    out.push_back(id);
    pos = at + len;
  }
  return out;
}

std::string GPT2Tokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size())
      throw std::out_of_range("GPT2Tokenizer::decode: id " + std::to_string(ids[i]) + " at position " +
                              std::to_string(i) + " is outside the vocabulary [0, " + std::to_string(vocab_size()) +
                              ")");
    out += pieces_[ids[i]];
  }
  return out;
}

const std::string& GPT2Tokenizer::id_to_piece(int64_t id) const {
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range("GPT2Tokenizer::id_to_piece: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(vocab_size()) + ")");
  return pieces_[id];
}

int64_t GPT2Tokenizer::special_id(std::string_view token) const {
  std::string valid;
  for (const auto& [s, id] : specials_) {
    if (s == token) return id;
    valid += (valid.empty() ? "" : ", ") + s;
  }
  throw std::invalid_argument("GPT2Tokenizer: unknown special token '" + std::string(token) +
                              "'; special tokens: " + (valid.empty() ? "none" : valid));
}

bool GPT2Tokenizer::is_special(int64_t id) const {
  for (const auto& s : specials_)
    if (s.second == id) return true;
  return false;
}

bool GPT2Tokenizer::operator==(const GPT2Tokenizer& other) const {
  return pieces_ == other.pieces_ && merge_ == other.merge_ && specials_ == other.specials_;
}

}  // namespace nanorlhf::nn
