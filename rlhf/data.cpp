// JSONL readers with "path:line" errors, write_jsonl, pad_batch, encode_sft and shuffled_indices.
#include "rlhf/data.h"

#include <algorithm>
#include <random>
#include <stdexcept>
#include <tuple>

#include "nn/atomic_file.h"

namespace nanorlhf::rlhf {

namespace {

using nlohmann::json;

std::runtime_error record_error(const std::string& where, const std::string& what) {
  return std::runtime_error(where + ": " + what);
}

std::string describe(const json& v) {
  std::string s = v.dump();
  if (s.size() > 60) s = s.substr(0, 57) + "...";
  return std::string(v.type_name()) + " " + s;
}

// The string field `key` of `obj`; must be present, a string and (unless allow_empty) non-empty.
std::string string_field(const json& obj, const char* key, const std::string& where, bool allow_empty = false) {
  if (!obj.contains(key)) throw record_error(where, std::string("missing field \"") + key + "\"");
  const json& v = obj[key];
  if (!v.is_string()) throw record_error(where, std::string("field \"") + key + "\" must be a string, got " + describe(v));
  std::string s = v.get<std::string>();
  if (s.empty() && !allow_empty)
    throw record_error(where, std::string("field \"") + key + "\" is an empty string (empty response); expected text");
  return s;
}

bool valid_role(const std::string& role) {
  const auto& roles = nn::Tokenizer::chat_roles();
  return std::find(roles.begin(), roles.end(), role) != roles.end();
}

std::string valid_roles() {
  std::string s;
  for (const auto& r : nn::Tokenizer::chat_roles()) s += (s.empty() ? "" : ", ") + r;
  return s;
}

// A list of {"role","content"} messages; `field` names it in errors ("messages", "prompt"...).
std::vector<nn::ChatMessage> parse_messages(const json& list, const std::string& field, const std::string& where) {
  if (!list.is_array()) throw record_error(where, "field \"" + field + "\" must be a list of messages, got " + describe(list));
  if (list.empty()) throw record_error(where, "field \"" + field + "\" is an empty list; expected at least one message");
  std::vector<nn::ChatMessage> out;
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = field + "[" + std::to_string(i) + "]";
    const json& m = list[i];
    if (!m.is_object()) throw record_error(where, at + " must be an object with \"role\" and \"content\", got " + describe(m));
    std::string role = string_field(m, "role", where + ": " + at);
    if (!valid_role(role))
      throw record_error(where, "unknown role '" + role + "' in " + at + "; valid roles: " + valid_roles());
    // A system prompt may be empty; a user turn or a response may not.
    std::string content = string_field(m, "content", where + ": " + at, role == "system");
    out.push_back({std::move(role), std::move(content)});
  }
  return out;
}

// Each non-blank line parsed as a JSON object, handed over with its "path:line".
template <typename Fn>
void for_each_record(const std::string& path, Fn fn) {
  for (auto& [line, value] : read_jsonl(path)) {
    const std::string where = path + ":" + std::to_string(line);
    if (!value.is_object()) throw record_error(where, "expected a JSON object, got " + describe(value));
    fn(value, where);
  }
}

// Unbiased draw in [0, bound): reject the few values that would make `r % bound` uneven.
uint64_t bounded(std::mt19937_64& rng, uint64_t bound) {
  const uint64_t threshold = (0 - bound) % bound;  // (2^64 - bound) mod bound
  for (;;) {
    uint64_t r = rng();
    if (r >= threshold) return r % bound;
  }
}

}  // namespace

std::vector<std::pair<int64_t, json>> read_jsonl(const std::string& path) {
  const std::string text = nn::read_file(path);
  std::vector<std::pair<int64_t, json>> out;
  size_t pos = 0;
  int64_t line_no = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view line(text.data() + pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (line_no == 1 && line.starts_with("\xEF\xBB\xBF")) line.remove_prefix(3);  // UTF-8 byte-order mark
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.find_first_not_of(" \t") == std::string_view::npos) continue;
    try {
      out.emplace_back(line_no, json::parse(line));
    } catch (const json::parse_error& e) {
      // nlohmann counts lines inside the one-line string; report the column instead.
      std::string what = e.what();
      auto syntax = what.find("syntax error");
      if (syntax != std::string::npos) what = "at column " + std::to_string(e.byte) + ": " + what.substr(syntax);
      throw record_error(path + ":" + std::to_string(line_no), "invalid JSON " + what);
    } catch (const json::exception& e) {  // not a parse_error: a number too large for a double (1e999)
      throw record_error(path + ":" + std::to_string(line_no), std::string("invalid JSON: ") + e.what());
    }
  }
  return out;
}

std::vector<TextExample> read_text_jsonl(const std::string& path) {
  std::vector<TextExample> out;
  for_each_record(path, [&](const json& r, const std::string& where) {
    out.push_back({string_field(r, "text", where), where});
  });
  return out;
}

std::vector<SftExample> read_sft_jsonl(const std::string& path) {
  std::vector<SftExample> out;
  for_each_record(path, [&](const json& r, const std::string& where) {
    SftExample ex;
    ex.source = where;
    if (r.contains("messages")) {
      ex.messages = parse_messages(r["messages"], "messages", where);
    } else if (r.contains("prompt") || r.contains("completion")) {
      for (const char* key : {"prompt", "completion"}) {
        if (!r.contains(key)) throw record_error(where, std::string("missing field \"") + key + "\"");
        const json& v = r[key];
        if (v.is_array()) {  // TRL's conversational prompt/completion
          auto msgs = parse_messages(v, key, where);
          ex.messages.insert(ex.messages.end(), msgs.begin(), msgs.end());
        } else {
          ex.messages.push_back({std::string(key) == "prompt" ? "user" : "assistant", string_field(r, key, where)});
        }
      }
    } else {
      throw record_error(where, "expected an SFT record with \"messages\" or with \"prompt\" and \"completion\"; got keys " +
                                    [&] {
                                      std::string keys;
                                      for (const auto& [k, v] : r.items()) keys += (keys.empty() ? "" : ", ") + k;
                                      return keys.empty() ? std::string("(none)") : keys;
                                    }());
    }
    const bool has_assistant = std::any_of(ex.messages.begin(), ex.messages.end(),
                                           [](const nn::ChatMessage& m) { return m.role == "assistant"; });
    if (!has_assistant) throw record_error(where, "no assistant message: nothing to train on");
    out.push_back(std::move(ex));
  });
  return out;
}

std::vector<PromptExample> read_prompts_jsonl(const std::string& path) {
  std::vector<PromptExample> out;
  for_each_record(path, [&](const json& r, const std::string& where) {
    out.push_back({string_field(r, "prompt", where), where});
  });
  return out;
}

namespace {

// An optional boolean field (absent: `flag` keeps its default).
void bool_field(const json& r, const char* key, bool* flag, const std::string& where) {
  if (!r.contains(key)) return;
  if (!r[key].is_boolean())
    throw std::runtime_error(where + ": field \"" + key + "\" must be true or false, got " + r[key].dump());
  *flag = r[key].get<bool>();
}

PreferencePair parse_preference(const json& r, const std::string& where) {
  PreferencePair p;
  p.prompt = string_field(r, "prompt", where);
  p.chosen = string_field(r, "chosen", where);
  p.rejected = string_field(r, "rejected", where);
  bool_field(r, "chosen_finished", &p.chosen_finished, where);
  bool_field(r, "rejected_finished", &p.rejected_finished, where);
  p.source = where;
  return p;
}

UnpairedExample parse_unpaired(const json& r, const std::string& where) {
  UnpairedExample e;
  e.prompt = string_field(r, "prompt", where);
  e.completion = string_field(r, "completion", where);
  if (!r.contains("label")) throw record_error(where, "missing field \"label\" (true = desirable, false = undesirable)");
  // Strict, as TRL: 1, "yes" or "true" are not labels.
  if (!r["label"].is_boolean())
    throw record_error(where, "field \"label\" must be a JSON boolean true or false (TRL's unpaired format), got " +
                                  describe(r["label"]));
  e.label = r["label"].get<bool>();
  bool_field(r, "completion_finished", &e.finished, where);
  e.source = where;
  return e;
}

}  // namespace

std::vector<PreferencePair> read_preference_jsonl(const std::string& path) {
  std::vector<PreferencePair> out;
  for_each_record(path, [&](const json& r, const std::string& where) { out.push_back(parse_preference(r, where)); });
  return out;
}

void tokenize_pairs(std::vector<PreferencePair>& pairs, const nn::Tokenizer& tok, int64_t ctx) {
  for (PreferencePair& p : pairs) {
    p.prompt_ids = tok.encode_prompt(p.prompt);
    const int64_t P = static_cast<int64_t>(p.prompt_ids.size());
    if (P >= ctx)
      throw std::runtime_error(p.source + ": the prompt is " + std::to_string(P) +
                               " tokens with the chat template, longer than the context ctx = " + std::to_string(ctx) +
                               " leaves room for (the model reads prompt + response)");
    for (auto [what, text, finished, ids] : {std::tuple{"chosen", &p.chosen, p.chosen_finished, &p.chosen_ids},
                                             {"rejected", &p.rejected, p.rejected_finished, &p.rejected_ids}}) {
      *ids = finished ? tok.encode_completion(*text) : tok.encode_content(*text);
      const int64_t n = P + static_cast<int64_t>(ids->size());
      if (n > ctx)
        throw std::runtime_error(p.source + ": prompt + " + what + " response is " + std::to_string(n) +
                                 " tokens, longer than the context ctx = " + std::to_string(ctx));
    }
  }
}

std::vector<PreferencePair> read_preference_pairs(const std::string& path, const nn::Tokenizer& tok, int64_t ctx) {
  std::vector<PreferencePair> pairs = read_preference_jsonl(path);
  tokenize_pairs(pairs, tok, ctx);
  return pairs;
}

std::vector<UnpairedExample> read_unpaired_jsonl(const std::string& path) {
  std::vector<UnpairedExample> out;
  for_each_record(path, [&](const json& r, const std::string& where) { out.push_back(parse_unpaired(r, where)); });
  return out;
}

std::vector<UnpairedExample> unpair_preferences(const std::vector<PreferencePair>& pairs) {
  std::vector<UnpairedExample> out;
  for (const PreferencePair& p : pairs)
    for (bool chosen : {true, false}) {
      UnpairedExample e;
      e.prompt = p.prompt;
      e.completion = chosen ? p.chosen : p.rejected;
      e.label = chosen;
      e.finished = chosen ? p.chosen_finished : p.rejected_finished;
      e.source = p.source;
      out.push_back(std::move(e));
    }
  return out;
}

std::vector<UnpairedExample> read_kto_jsonl(const std::string& path) {
  // A record's format by its keys; a record with neither set takes the file's (the parser then names
  // what is missing).
  auto is_pair = [](const json& r) { return r.contains("chosen") || r.contains("rejected"); };
  auto is_unpaired = [](const json& r) { return r.contains("completion") || r.contains("label"); };
  std::vector<UnpairedExample> out;
  int first = 0;  // 1 = pairs, 2 = unpaired, from the first record
  std::string first_at;
  for_each_record(path, [&](const json& r, const std::string& where) {
    const int kind = is_pair(r) && is_unpaired(r) ? 3 : is_pair(r) ? 1 : is_unpaired(r) ? 2 : 0;
    if (kind == 3)
      throw record_error(where, "holds both preference keys (\"chosen\"/\"rejected\") and unpaired keys "
                                "(\"completion\"/\"label\"); expected one format");
    if (!first) {
      first = kind ? kind : 2;
      first_at = where;
    }
    if (kind && kind != first)
      throw record_error(where, std::string("a ") + (kind == 1 ? "preference {\"chosen\", \"rejected\"}" :
                                                                  "unpaired {\"completion\", \"label\"}") +
                                    " record in a file whose first record (" + first_at + ") is " +
                                    (first == 1 ? "a preference pair" : "unpaired") + "; a file must hold one format");
    if (first == 1) {
      std::vector<UnpairedExample> two = unpair_preferences({parse_preference(r, where)});
      out.insert(out.end(), two.begin(), two.end());
    } else {
      out.push_back(parse_unpaired(r, where));
    }
  });
  return out;
}

void tokenize_unpaired(std::vector<UnpairedExample>& examples, const nn::Tokenizer& tok, int64_t ctx) {
  for (UnpairedExample& e : examples) {
    e.prompt_ids = tok.encode_prompt(e.prompt);
    const int64_t P = static_cast<int64_t>(e.prompt_ids.size());
    if (P >= ctx)
      throw std::runtime_error(e.source + ": the prompt is " + std::to_string(P) +
                               " tokens with the chat template, longer than the context ctx = " + std::to_string(ctx) +
                               " leaves room for (the model reads prompt + completion)");
    e.completion_ids = e.finished ? tok.encode_completion(e.completion) : tok.encode_content(e.completion);
    const int64_t n = P + static_cast<int64_t>(e.completion_ids.size());
    if (n > ctx)
      throw std::runtime_error(e.source + ": prompt + " + (e.label ? "desirable" : "undesirable") + " completion is " +
                               std::to_string(n) + " tokens, longer than the context ctx = " + std::to_string(ctx));
  }
}

std::vector<UnpairedExample> read_kto_examples(const std::string& path, const nn::Tokenizer& tok, int64_t ctx) {
  std::vector<UnpairedExample> examples = read_kto_jsonl(path);
  tokenize_unpaired(examples, tok, ctx);
  return examples;
}

namespace {
template <class Json>
void write_records(const std::string& path, const std::vector<Json>& records) {
  std::string text;
  for (const auto& r : records) {
    text += r.dump(-1, ' ', false, Json::error_handler_t::replace);
    text += '\n';
  }
  nn::write_file_atomic(path, text);
}
}  // namespace

void write_jsonl(const std::string& path, const std::vector<json>& records) { write_records(path, records); }
void write_unpaired_jsonl(const std::string& path, const std::vector<UnpairedExample>& examples) {
  std::vector<nlohmann::ordered_json> records;
  for (const UnpairedExample& e : examples) {
    nlohmann::ordered_json r = {{"prompt", e.prompt}, {"completion", e.completion}, {"label", e.label}};
    if (!e.finished) r["completion_finished"] = false;
    records.push_back(std::move(r));
  }
  write_records(path, records);
}
void write_ordered_jsonl(const std::string& path, const std::vector<nlohmann::ordered_json>& records) {
  write_records(path, records);
}

TokenBatch pad_batch(const std::vector<std::vector<int64_t>>& seqs, const std::vector<std::vector<float>>& loss_masks,
                     int64_t pad_id, bool left_pad) {
  if (!loss_masks.empty() && loss_masks.size() != seqs.size())
    throw std::invalid_argument("pad_batch: " + std::to_string(seqs.size()) + " sequences but " +
                                std::to_string(loss_masks.size()) + " loss masks; expected one per sequence or none");
  TokenBatch b;
  b.batch = static_cast<int64_t>(seqs.size());
  for (const auto& s : seqs) b.seq = std::max<int64_t>(b.seq, static_cast<int64_t>(s.size()));
  const size_t total = static_cast<size_t>(b.batch * b.seq);
  b.input_ids.assign(total, pad_id);
  b.attention_mask.assign(total, 0.0f);
  b.loss_mask.assign(total, 0.0f);
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& s = seqs[i];
    if (!loss_masks.empty() && loss_masks[i].size() != s.size())
      throw std::invalid_argument("pad_batch: sequence " + std::to_string(i) + " has " + std::to_string(s.size()) +
                                  " tokens but its loss mask has " + std::to_string(loss_masks[i].size()));
    const size_t offset = i * b.seq + (left_pad ? b.seq - s.size() : 0);
    for (size_t t = 0; t < s.size(); ++t) {
      b.input_ids[offset + t] = s[t];
      b.attention_mask[offset + t] = 1.0f;
      b.loss_mask[offset + t] = loss_masks.empty() ? 1.0f : loss_masks[i][t];
    }
  }
  return b;
}

SftTokens encode_sft(const nn::Tokenizer& tok, const SftExample& ex, int64_t max_len, bool truncate) {
  SftTokens out;
  auto append = [&](const std::vector<int64_t>& ids, float mask) {
    out.ids.insert(out.ids.end(), ids.begin(), ids.end());
    out.loss_mask.insert(out.loss_mask.end(), ids.size(), mask);
  };
  // Same layout as Tokenizer::apply_chat_template, built piecewise to know which tokens are targets.
  append({tok.bos_id()}, 0.0f);
  for (const auto& m : ex.messages) {
    const bool target = m.role == "assistant";
    append(tok.role_prefix(m.role), 0.0f);
    append(tok.encode_content(m.content), target ? 1.0f : 0.0f);
    if (target) append({tok.eos_id()}, 1.0f);
  }
  if (max_len > 0 && static_cast<int64_t>(out.ids.size()) > max_len) {
    if (!truncate)
      throw std::invalid_argument((ex.source.empty() ? std::string("SFT example") : ex.source) + ": " +
                                  std::to_string(out.ids.size()) + " tokens, longer than max_len " +
                                  std::to_string(max_len) + "; raise max_len or allow truncation");
    out.ids.resize(max_len);
    out.loss_mask.resize(max_len);
  }
  return out;
}

std::vector<size_t> shuffled_indices(size_t n, uint64_t seed) {
  std::vector<size_t> idx(n);
  for (size_t i = 0; i < n; ++i) idx[i] = i;
  std::mt19937_64 rng(seed);
  for (size_t i = n; i > 1; --i) {
    const size_t j = static_cast<size_t>(bounded(rng, i));  // j in [0, i-1]
    std::swap(idx[i - 1], idx[j]);
  }
  return idx;
}

}  // namespace nanorlhf::rlhf
