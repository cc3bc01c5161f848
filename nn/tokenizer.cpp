// Byte-level BPE: GPT-2 style pre-split, the merge trainer (incremental pair counts + a lazy max-heap),
// encoding with a rank heap per word and a word cache, JSON save/load; GPT-2's tokenizer behind it.
#include "nn/tokenizer.h"

#include <algorithm>
#include <mutex>
#include <queue>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "nn/atomic_file.h"

namespace nanorlhf::nn {

namespace {

constexpr int kFormatVersion = 1;
constexpr const char* kFormatName = "nanorlhf-bpe";

uint64_t pair_key(int64_t a, int64_t b) { return (static_cast<uint64_t>(a) << 32) | static_cast<uint64_t>(b); }
int64_t key_left(uint64_t k) { return static_cast<int64_t>(k >> 32); }
int64_t key_right(uint64_t k) { return static_cast<int64_t>(k & 0xffffffffu); }

bool is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'; }
bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
// Bytes >= 0x80 count as letters so multi-byte UTF-8 characters stay inside their word.
bool is_letter(unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; }
bool is_other(unsigned char c) { return !is_space(c) && !is_digit(c) && !is_letter(c); }

// Length of a contraction ('s 't 'm 'd 're 've 'll) starting at text[i], or 0.
size_t contraction_len(std::string_view t, size_t i) {
  if (t[i] != '\'' || i + 1 >= t.size()) return 0;
  char c = t[i + 1];
  if (c == 's' || c == 't' || c == 'm' || c == 'd') return 2;
  if (i + 2 < t.size()) {
    char d = t[i + 2];
    if ((c == 'r' && d == 'e') || (c == 'v' && d == 'e') || (c == 'l' && d == 'l')) return 3;
  }
  return 0;
}

// Calls on_text(segment) for plain text and on_special(index) for each special-token string.
template <typename OnText, typename OnSpecial>
void split_specials(std::string_view text, OnText on_text, OnSpecial on_special) {
  const auto& specials = Tokenizer::special_tokens();
  size_t start = 0, pos = 0;
  while ((pos = text.find("<|", pos)) != std::string_view::npos) {
    int hit = -1;
    for (size_t s = 0; s < specials.size(); ++s) {
      if (text.substr(pos).starts_with(specials[s])) {
        hit = static_cast<int>(s);
        break;
      }
    }
    if (hit < 0) {
      pos += 2;
      continue;
    }
    if (pos > start) on_text(text.substr(start, pos - start));
    on_special(hit);
    pos += specials[hit].size();
    start = pos;
  }
  if (start < text.size()) on_text(text.substr(start));
}

}  // namespace

struct Tokenizer::Cache {
  std::mutex mu;
  std::unordered_map<std::string, std::vector<int64_t>> words;
};

const std::vector<std::string>& Tokenizer::special_tokens() {
  static const std::vector<std::string> s = {"<|bos|>", "<|eos|>", "<|pad|>", "<|system|>", "<|user|>", "<|assistant|>"};
  return s;
}

const std::vector<std::string>& Tokenizer::chat_roles() {
  static const std::vector<std::string> r = {"system", "user", "assistant"};
  return r;
}

Tokenizer::Tokenizer() { build(); }

Tokenizer Tokenizer::from_merges(std::vector<std::pair<int64_t, int64_t>> merges) {
  Tokenizer t;
  t.merges_ = std::move(merges);
  t.build();
  return t;
}

void Tokenizer::build() {
  pieces_.clear();
  ranks_.clear();
  pieces_.reserve(256 + merges_.size() + special_tokens().size());
  for (int b = 0; b < 256; ++b) pieces_.push_back(std::string(1, static_cast<char>(b)));
  for (size_t i = 0; i < merges_.size(); ++i) {
    auto [a, b] = merges_[i];
    const int64_t next_id = 256 + static_cast<int64_t>(i);
    if (a < 0 || b < 0 || a >= next_id || b >= next_id)
      throw std::invalid_argument("tokenizer merge " + std::to_string(i) + " is (" + std::to_string(a) + ", " +
                                  std::to_string(b) + "); expected ids in [0, " + std::to_string(next_id) +
                                  ") (bytes and earlier merges)");
    if (!ranks_.emplace(pair_key(a, b), static_cast<int32_t>(i)).second)
      throw std::invalid_argument("tokenizer merge " + std::to_string(i) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") repeats an earlier merge");
    if (pieces_[a].size() + pieces_[b].size() > kMaxPieceBytes)
      throw std::invalid_argument("tokenizer merge " + std::to_string(i) + " (" + std::to_string(a) + ", " +
                                  std::to_string(b) + ") makes a token of " +
                                  std::to_string(pieces_[a].size() + pieces_[b].size()) + " bytes; the most is " +
                                  std::to_string(kMaxPieceBytes));
    pieces_.push_back(pieces_[a] + pieces_[b]);
  }
  first_special_ = static_cast<int64_t>(pieces_.size());
  for (const auto& s : special_tokens()) pieces_.push_back(s);
  bos_ = first_special_ + 0, eos_ = first_special_ + 1, pad_ = first_special_ + 2;
  cache_ = std::make_shared<Cache>();
}

Tokenizer::Tokenizer(GPT2Tokenizer gpt2) : gpt2_(std::make_shared<const GPT2Tokenizer>(std::move(gpt2))) {
  bos_ = eos_ = pad_ = gpt2_->endoftext_id();
}

bool Tokenizer::operator==(const Tokenizer& other) const {
  if (gpt2_ || other.gpt2_) return gpt2_ && other.gpt2_ && (gpt2_ == other.gpt2_ || *gpt2_ == *other.gpt2_);
  return merges_ == other.merges_;
}

std::string Tokenizer::describe() const {
  return std::string(gpt2_ ? "GPT-2" : "nanorlhf") + " BPE, " + std::to_string(vocab_size()) + " tokens (" +
         std::to_string(num_merges()) + " merges)";
}

std::vector<std::string_view> Tokenizer::pre_split(std::string_view t) {
  std::vector<std::string_view> out;
  const size_t n = t.size();
  size_t i = 0;
  auto run = [&](size_t j, bool (*cls)(unsigned char)) {
    while (j < n && cls(static_cast<unsigned char>(t[j]))) ++j;
    return j;
  };
  while (i < n) {
    const auto c = static_cast<unsigned char>(t[i]);
    if (size_t k = contraction_len(t, i)) {
      out.push_back(t.substr(i, k));
      i += k;
      continue;
    }
    // A single space joins the word that follows it (" hello", " 42", " ...").
    size_t j = i;
    if (c == ' ' && i + 1 < n && !is_space(static_cast<unsigned char>(t[i + 1]))) j = i + 1;
    const auto d = static_cast<unsigned char>(t[j]);
    size_t end;
    if (is_letter(d)) {
      end = run(j, is_letter);
    } else if (is_digit(d)) {
      end = run(j, is_digit);
    } else if (is_other(d)) {
      end = run(j, is_other);
    } else {
      // Whitespace: leave its last character for the next word (GPT-2's \s+(?!\S)).
      end = run(i, is_space);
      if (end < n && end - i >= 2) end -= 1;
    }
    out.push_back(t.substr(i, end - i));
    i = end;
  }
  return out;
}

Tokenizer Tokenizer::train(const std::vector<std::string>& texts, int vocab_size) {
  const int n_special = static_cast<int>(special_tokens().size());
  if (vocab_size < 256 + n_special)
    throw std::invalid_argument("Tokenizer::train: vocab_size must be >= " + std::to_string(256 + n_special) +
                                " (256 bytes + " + std::to_string(n_special) + " special tokens), got " +
                                std::to_string(vocab_size));
  const size_t target_merges = static_cast<size_t>(vocab_size - 256 - n_special);

  // Word frequencies, counted once; special-token strings are dropped, never merged across.
  std::unordered_map<std::string, int64_t> freq;
  for (const auto& text : texts) {
    split_specials(
        text,
        [&](std::string_view seg) {
          for (auto w : pre_split(seg)) ++freq[std::string(w)];
        },
        [](int) {});
  }
  std::vector<std::pair<std::string, int64_t>> sorted(freq.begin(), freq.end());
  std::sort(sorted.begin(), sorted.end());  // determinism does not rest on hash order

  struct Word {
    std::vector<int32_t> sym;
    int64_t freq;
  };
  std::vector<Word> words;
  words.reserve(sorted.size());
  for (auto& [w, f] : sorted) {
    if (w.size() < 2) continue;  // nothing to merge
    Word word{{}, f};
    for (unsigned char ch : w) word.sym.push_back(ch);
    words.push_back(std::move(word));
  }

  std::unordered_map<uint64_t, int64_t> counts;              // pair -> weighted count
  std::unordered_map<uint64_t, std::vector<int32_t>> where;  // pair -> words that may hold it
  for (size_t w = 0; w < words.size(); ++w) {
    const auto& s = words[w].sym;
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = pair_key(s[i], s[i + 1]);
      counts[k] += words[w].freq;
      auto& list = where[k];
      if (list.empty() || list.back() != static_cast<int32_t>(w)) list.push_back(static_cast<int32_t>(w));
    }
  }

  // Max-heap on (count, then smallest pair); entries go stale and are checked against `counts`.
  struct Entry {
    int64_t count;
    uint64_t key;
  };
  auto worse = [](const Entry& a, const Entry& b) { return a.count != b.count ? a.count < b.count : a.key > b.key; };
  std::priority_queue<Entry, std::vector<Entry>, decltype(worse)> heap(worse);
  for (auto& [k, c] : counts) heap.push({c, k});

  std::vector<std::pair<int64_t, int64_t>> merges;
  std::vector<size_t> piece_len(256, 1);  // bytes of each token made so far
  std::unordered_map<uint64_t, int64_t> delta;
  while (merges.size() < target_merges) {
    Entry best{0, 0};
    bool found = false;
    while (!heap.empty()) {
      Entry e = heap.top();
      heap.pop();
      auto it = counts.find(e.key);
      if (it != counts.end() && it->second == e.count && e.count > 0) {
        best = e;
        found = true;
        break;
      }
    }
    if (!found) break;  // every word is a single token

    const int32_t a = static_cast<int32_t>(key_left(best.key)), b = static_cast<int32_t>(key_right(best.key));
    if (piece_len[a] + piece_len[b] > kMaxPieceBytes) {  // from_merges would refuse it
      counts.erase(best.key);
      continue;
    }
    const int32_t new_id = static_cast<int32_t>(256 + merges.size());
    merges.emplace_back(a, b);
    piece_len.push_back(piece_len[a] + piece_len[b]);

    std::vector<int32_t> affected = std::move(where[best.key]);
    where.erase(best.key);
    std::sort(affected.begin(), affected.end());
    affected.erase(std::unique(affected.begin(), affected.end()), affected.end());
    delta.clear();
    for (int32_t w : affected) {
      auto& s = words[w].sym;
      const int64_t f = words[w].freq;
      bool has = false;
      for (size_t i = 0; i + 1 < s.size() && !has; ++i) has = s[i] == a && s[i + 1] == b;
      if (!has) continue;
      // Subtract the word's pairs, merge left to right, add its new pairs back: simple and exact.
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= f;
      std::vector<int32_t> merged;
      merged.reserve(s.size());
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          merged.push_back(new_id);
          ++i;
        } else {
          merged.push_back(s[i]);
        }
      }
      s = std::move(merged);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        delta[k] += f;
        auto& list = where[k];
        if (list.empty() || list.back() != w) list.push_back(w);
      }
    }
    for (auto& [k, d] : delta) {
      if (d == 0) continue;
      int64_t& c = counts[k];
      c += d;
      if (c <= 0) {
        counts.erase(k);
      } else {
        heap.push({c, k});
      }
    }
  }
  return from_merges(std::move(merges));
}

std::vector<int64_t> Tokenizer::encode_word(std::string_view word) const {
  const int32_t n = static_cast<int32_t>(word.size());
  std::vector<int64_t> out;
  if (n == 0) return out;
  std::vector<int32_t> sym(n), next(n), prev(n);
  for (int32_t i = 0; i < n; ++i) {
    sym[i] = static_cast<unsigned char>(word[i]);
    next[i] = i + 1;
    prev[i] = i - 1;
  }
  auto rank = [&](int32_t l, int32_t r) -> int32_t {
    auto it = ranks_.find(pair_key(l, r));
    return it == ranks_.end() ? -1 : it->second;
  };
  // Min-heap of (merge rank, left position): applying merges in rank order, leftmost first,
  // reproduces the trainer's left-to-right sweeps exactly.
  using Cand = std::pair<int32_t, int32_t>;
  std::priority_queue<Cand, std::vector<Cand>, std::greater<Cand>> heap;
  for (int32_t i = 0; i + 1 < n; ++i)
    if (int32_t r = rank(sym[i], sym[i + 1]); r >= 0) heap.push({r, i});
  while (!heap.empty()) {
    auto [r, p] = heap.top();
    heap.pop();
    if (sym[p] < 0) continue;
    int32_t q = next[p];
    if (q >= n || rank(sym[p], sym[q]) != r) continue;
    sym[p] = 256 + r;
    sym[q] = -1;
    next[p] = next[q];
    if (next[p] < n) prev[next[p]] = p;
    if (prev[p] >= 0)
      if (int32_t r2 = rank(sym[prev[p]], sym[p]); r2 >= 0) heap.push({r2, prev[p]});
    if (next[p] < n)
      if (int32_t r2 = rank(sym[p], sym[next[p]]); r2 >= 0) heap.push({r2, p});
  }
  for (int32_t i = 0; i < n; i = next[i]) out.push_back(sym[i]);
  return out;
}

void Tokenizer::encode_plain(std::string_view text, std::vector<int64_t>& out) const {
  constexpr size_t kMaxCached = 1 << 18;  // bound memory on unbounded vocabularies of words
  for (auto w : pre_split(text)) {
    if (w.size() == 1) {
      out.push_back(static_cast<unsigned char>(w[0]));
      continue;
    }
    std::string key(w);
    {
      std::lock_guard<std::mutex> lock(cache_->mu);
      auto it = cache_->words.find(key);
      if (it != cache_->words.end()) {
        out.insert(out.end(), it->second.begin(), it->second.end());
        continue;
      }
    }
    auto ids = encode_word(w);
    out.insert(out.end(), ids.begin(), ids.end());
    std::lock_guard<std::mutex> lock(cache_->mu);
    if (cache_->words.size() >= kMaxCached) cache_->words.clear();
    cache_->words.emplace(std::move(key), std::move(ids));
  }
}

std::vector<int64_t> Tokenizer::encode(std::string_view text, bool allow_special) const {
  if (gpt2_) return allow_special ? gpt2_->encode(text) : gpt2_->encode_ordinary(text);
  std::vector<int64_t> out;
  out.reserve(text.size() / 3 + 4);
  if (!allow_special) {
    encode_plain(text, out);
    return out;
  }
  split_specials(
      text, [&](std::string_view seg) { encode_plain(seg, out); },
      [&](int s) { out.push_back(first_special_ + s); });
  return out;
}

std::string Tokenizer::decode(const std::vector<int64_t>& ids, bool skip_special) const {
  if (gpt2_) {
    if (!skip_special) return gpt2_->decode(ids);
    std::vector<int64_t> kept;
    for (int64_t id : ids)
      if (id < 0 || id >= vocab_size() || !is_special(id)) kept.push_back(id);
    return gpt2_->decode(kept);
  }
  std::string out;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab_size())
      throw std::out_of_range("Tokenizer::decode: id " + std::to_string(id) + " at position " + std::to_string(i) +
                              " is outside the vocabulary [0, " + std::to_string(vocab_size()) + ")");
    if (skip_special && is_special(id)) continue;
    out += pieces_[id];
  }
  return out;
}

std::string Tokenizer::id_to_piece(int64_t id) const {
  if (gpt2_) return gpt2_->id_to_piece(id);
  if (id < 0 || id >= vocab_size())
    throw std::out_of_range("Tokenizer::id_to_piece: id " + std::to_string(id) + " is outside the vocabulary [0, " +
                            std::to_string(vocab_size()) + ")");
  return pieces_[id];
}

int64_t Tokenizer::special_id(std::string_view token) const {
  if (gpt2_) return gpt2_->special_id(token);
  const auto& s = special_tokens();
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == token) return first_special_ + static_cast<int64_t>(i);
  std::string valid;
  for (const auto& t : s) valid += (valid.empty() ? "" : ", ") + t;
  throw std::invalid_argument("unknown special token '" + std::string(token) + "'; valid special tokens: " + valid);
}

void Tokenizer::save(const std::string& path) const {
  if (gpt2_)
    throw std::invalid_argument("cannot write GPT-2's tokenizer as a nanorlhf tokenizer file '" + path +
                                "'; it is saved as vocab.json + merges.txt (Tokenizer::save_folder)");
  nlohmann::json j;
  j["format"] = kFormatName;
  j["version"] = kFormatVersion;
  j["vocab_size"] = vocab_size();
  nlohmann::json merges = nlohmann::json::array();
  for (auto [a, b] : merges_) merges.push_back({a, b});
  j["merges"] = std::move(merges);
  nlohmann::json specials = nlohmann::json::object();
  for (const auto& s : special_tokens()) specials[s] = special_id(s);
  j["special_tokens"] = std::move(specials);
  write_file_atomic(path, j.dump() + "\n");
}

Tokenizer Tokenizer::load(const std::string& path) {
  const std::string text = read_file(path);
  auto bad = [&](const std::string& what) { return std::runtime_error("tokenizer file '" + path + "': " + what); };
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  // json::exception, not just parse_error: a number too large for a double (1e999) is out_of_range.
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("invalid JSON: ") + e.what());
  }
  if (!j.is_object()) throw bad("expected a JSON object, got " + std::string(j.type_name()));
  for (const char* field : {"version", "vocab_size", "merges", "special_tokens"})
    if (!j.contains(field)) throw bad(std::string("missing field \"") + field + "\"");
  if (j.contains("format") && j["format"] != kFormatName)
    throw bad("format is " + j["format"].dump() + ", expected \"" + kFormatName + "\"");
  if (!j["version"].is_number_integer() || j["version"].get<int64_t>() != kFormatVersion)
    throw bad("unsupported version " + j["version"].dump() + "; this build reads version " +
              std::to_string(kFormatVersion));
  const auto& jm = j["merges"];
  if (!jm.is_array()) throw bad("\"merges\" must be an array of [left, right] id pairs");
  std::vector<std::pair<int64_t, int64_t>> merges;
  merges.reserve(jm.size());
  for (size_t i = 0; i < jm.size(); ++i) {
    const auto& m = jm[i];
    if (!m.is_array() || m.size() != 2 || !m[0].is_number_integer() || !m[1].is_number_integer())
      throw bad("merge " + std::to_string(i) + " must be a pair of integer ids, got " + m.dump());
    merges.emplace_back(m[0].get<int64_t>(), m[1].get<int64_t>());
  }
  Tokenizer t;
  try {
    t = from_merges(std::move(merges));
  } catch (const std::invalid_argument& e) {
    throw bad(e.what());
  }
  if (!j["vocab_size"].is_number_integer() || j["vocab_size"].get<int64_t>() != t.vocab_size())
    throw bad("vocab_size is " + j["vocab_size"].dump() + " but 256 bytes + " + std::to_string(t.num_merges()) +
              " merges + " + std::to_string(special_tokens().size()) + " special tokens make " +
              std::to_string(t.vocab_size()));
  const auto& js = j["special_tokens"];
  if (!js.is_object() || js.size() != special_tokens().size())
    throw bad("\"special_tokens\" must map the " + std::to_string(special_tokens().size()) +
              " special tokens to their ids, got " + js.dump());
  for (const auto& s : special_tokens()) {
    if (!js.contains(s) || !js[s].is_number_integer() || js[s].get<int64_t>() != t.special_id(s))
      throw bad("special token " + s + " must have id " + std::to_string(t.special_id(s)) + ", got " +
                (js.contains(s) ? js[s].dump() : std::string("nothing")));
  }
  return t;
}

}  // namespace nanorlhf::nn
