// Config: schema checks, flattening of nested JSON, typed and ranged assignment, error messages with
// the valid keys and the closest one by edit distance.
#include "rlhf/config.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <sstream>
#include <stdexcept>

#include "nn/atomic_file.h"

namespace nanorlhf::rlhf {

namespace {

using nlohmann::json;

std::string fmt_bound(double v) {
  std::ostringstream ss;
  ss << v;
  return ss.str();
}

const char* type_word(const json& def) {
  if (def.is_boolean()) return "boolean";
  if (def.is_number_integer()) return "integer";  // also matches unsigned
  if (def.is_number()) return "number";
  if (def.is_string()) return "string";
  if (def.is_array()) return "list";
  return "any";
}

size_t edit_distance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j)
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1] ? 1 : 0)});
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string_view last_segment(std::string_view k) {
  auto dot = k.rfind('.');
  return dot == std::string_view::npos ? k : k.substr(dot + 1);
}

// Dotted leaf paths of a JSON object: {"ppo": {"beta": 1}} -> ("ppo.beta", 1).
void flatten(const json& obj, const std::string& prefix, std::vector<std::pair<std::string, const json*>>& out) {
  for (const auto& [k, v] : obj.items()) {
    std::string path = prefix.empty() ? k : prefix + "." + k;
    if (v.is_object()) {
      flatten(v, path, out);
    } else {
      out.emplace_back(std::move(path), &v);
    }
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

}  // namespace

Config::Config(std::vector<ConfigKey> schema) : schema_(std::move(schema)) {
  for (size_t i = 0; i < schema_.size(); ++i) {
    auto& k = schema_[i];
    const std::string who = "config schema key '" + k.name + "'";
    if (k.name.empty() || k.name.find_first_of(" =\t") != std::string::npos || k.name.front() == '.' ||
        k.name.back() == '.' || k.name.find("..") != std::string::npos)
      throw std::invalid_argument(who + ": expected a dotted name such as \"ppo.beta\"");
    if (!index_.emplace(k.name, i).second) throw std::invalid_argument(who + " is declared twice");
    if (k.default_value.is_object() || k.default_value.is_binary() || k.default_value.is_discarded())
      throw std::invalid_argument(who + ": an object cannot be a default; spell nested keys with dots");
    if ((k.min || k.max) && !k.default_value.is_number())
      throw std::invalid_argument(who + ": min/max need a numeric default, got " + k.default_value.dump());
    if (k.default_value.is_number_unsigned()) k.default_value = k.default_value.get<int64_t>();
  }
  for (const auto& k : schema_) {
    auto it = index_.lower_bound(k.name + ".");
    if (it != index_.end() && it->first.starts_with(k.name + "."))
      throw std::invalid_argument("config schema keys '" + k.name + "' and '" + it->first +
                                  "' conflict: a key cannot also be a group of keys");
  }
  values_.reserve(schema_.size());
  for (const auto& k : schema_) {
    try {
      values_.push_back(checked(k, k.default_value));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument(std::string("config schema: default out of range: ") + e.what());
    }
  }
}

size_t Config::index_of(std::string_view key) const {
  auto it = index_.find(key);
  if (it != index_.end()) return it->second;

  std::string suggestion;
  size_t best = std::string::npos;
  for (const auto& k : schema_) {
    size_t d = edit_distance(key, k.name);
    if (d < best) {
      best = d;
      suggestion = k.name;
    }
  }
  if (best > std::max<size_t>(2, key.size() / 3)) {
    suggestion.clear();  // too far; try the same last segment in another group ("beta" -> "ppo.beta")
    for (const auto& k : schema_)
      if (last_segment(k.name) == last_segment(key)) {
        suggestion = k.name;
        break;
      }
  }
  std::string msg = "unknown config key '" + std::string(key) + "'";
  if (!suggestion.empty()) msg += " (did you mean '" + suggestion + "'?)";
  msg += "; valid keys: ";
  for (size_t i = 0; i < schema_.size(); ++i) msg += (i ? ", " : "") + schema_[i].name;
  throw std::invalid_argument(msg);
}

json Config::checked(const ConfigKey& k, const json& v) const {
  const json& def = k.default_value;
  // The value as the error shows it. A --set string may be invalid UTF-8, which plain dump() throws
  // on (type_error.316, found by fuzz_config); shown with U+FFFD instead.
  const std::string got = v.dump(-1, ' ', false, json::error_handler_t::replace);
  auto expects = [&](const std::string& what) {
    return std::invalid_argument("config key '" + k.name + "' expects " + what + ", got " + got);
  };
  json out;
  if (def.is_null()) {
    if (v.is_object()) throw expects("a value, not an object");
    return v;
  } else if (def.is_boolean()) {
    if (!v.is_boolean()) throw expects("true or false");
    return v;
  } else if (def.is_number_integer()) {
    if (v.is_number_integer()) {
      if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) throw expects("an integer in int64 range");
      out = v.get<int64_t>();
    } else if (v.is_number_float() && std::isfinite(v.get<double>()) && std::floor(v.get<double>()) == v.get<double>() &&
               std::fabs(v.get<double>()) < 9.0e18) {
      out = static_cast<int64_t>(v.get<double>());  // 1e3 is an integer too
    } else {
      throw expects("an integer");
    }
  } else if (def.is_number()) {
    if (!v.is_number()) throw expects("a number");
    out = v.get<double>();
  } else if (def.is_string()) {
    if (!v.is_string()) throw expects("a string");
    if (!k.choices.empty() && std::find(k.choices.begin(), k.choices.end(), v.get<std::string>()) == k.choices.end()) {
      std::string valid;
      for (const auto& c : k.choices) valid += (valid.empty() ? "" : ", ") + c;
      throw std::invalid_argument("config key '" + k.name + "' must be one of " + valid + ", got " + got);
    }
    return v;
  } else if (def.is_array()) {
    if (!v.is_array()) throw expects("a list");
    return v;
  }

  // Numbers only from here: range checks.
  const double x = out.get<double>();
  if (k.min) {
    if (k.min_exclusive ? !(x > *k.min) : !(x >= *k.min))
      throw std::invalid_argument("config key '" + k.name + "' must be " + (k.min_exclusive ? "> " : ">= ") +
                                  fmt_bound(*k.min) + ", got " + got);
  }
  if (k.max && !(x <= *k.max))
    throw std::invalid_argument("config key '" + k.name + "' must be <= " + fmt_bound(*k.max) + ", got " + got);
  return out;
}

void Config::merge(const json& obj) {
  if (!obj.is_object()) throw std::invalid_argument("config must be a JSON object, got " + std::string(obj.type_name()));
  std::vector<std::pair<std::string, const json*>> leaves;
  flatten(obj, "", leaves);
  std::vector<std::pair<size_t, json>> staged;  // checked first, applied after: all or nothing
  for (const auto& [path, value] : leaves) {
    size_t i = index_of(path);
    staged.emplace_back(i, checked(schema_[i], *value));
  }
  for (auto& [i, v] : staged) values_[i] = std::move(v);
}

void Config::load_file(const std::string& path) {
  std::string text;
  try {
    text = nn::read_file(path);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("config file: ") + e.what());
  }
  json j;
  std::string last_key;  // the key whose value was being read when the parser failed
  try {
    j = json::parse(text, [&](int, json::parse_event_t ev, json& parsed) {
      if (ev == json::parse_event_t::key) last_key = parsed.get<std::string>();
      return true;
    });
  } catch (const json::exception& e) {  // syntax errors, and numbers out of range such as 1e400
    throw std::runtime_error("config file '" + path + "': invalid JSON" +
                             (last_key.empty() ? std::string() : " at key '" + last_key + "'") + ": " + e.what());
  }
  try {
    merge(j);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("config file '" + path + "': " + e.what());
  }
}

void Config::set(std::string_view assignment) {
  const auto eq = assignment.find('=');
  if (eq == std::string_view::npos)
    throw std::invalid_argument("--set expects key=value, got '" + std::string(assignment) + "'");
  const std::string key(trim(assignment.substr(0, eq)));
  const std::string_view text = assignment.substr(eq + 1);
  const size_t i = index_of(key);
  json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
  json value;
  if (schema_[i].default_value.is_string()) {
    value = parsed.is_string() ? parsed : json(std::string(text));  // run_dir=007 stays "007"
  } else {
    value = parsed.is_discarded() ? json(std::string(text)) : parsed;
  }
  values_[i] = checked(schema_[i], value);
}

const json& Config::get(std::string_view key) const { return values_[index_of(key)]; }

double Config::num(std::string_view key) const {
  const json& v = get(key);
  if (!v.is_number()) throw std::invalid_argument("config key '" + std::string(key) + "' is " + v.dump() + ", not a number");
  return v.get<double>();
}

int64_t Config::integer(std::string_view key) const {
  const json& v = get(key);
  if (v.is_number_integer()) return v.get<int64_t>();
  if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>()) {
    if (std::abs(v.get<double>()) >= 9.2e18)
      throw std::invalid_argument("config key '" + std::string(key) + "' is " + v.dump() + ", too large for an integer");
    return static_cast<int64_t>(v.get<double>());
  }
  throw std::invalid_argument("config key '" + std::string(key) + "' is " + v.dump() + ", not an integer");
}

std::string Config::str(std::string_view key) const {
  const json& v = get(key);
  if (!v.is_string()) throw std::invalid_argument("config key '" + std::string(key) + "' is " + v.dump() + ", not a string");
  return v.get<std::string>();
}

bool Config::flag(std::string_view key) const {
  const json& v = get(key);
  if (!v.is_boolean()) throw std::invalid_argument("config key '" + std::string(key) + "' is " + v.dump() + ", not true/false");
  return v.get<bool>();
}

bool Config::has(std::string_view key) const { return index_.find(key) != index_.end(); }

std::vector<std::string> Config::keys() const {
  std::vector<std::string> out;
  for (const auto& k : schema_) out.push_back(k.name);
  return out;
}

const ConfigKey& Config::key_info(std::string_view key) const { return schema_[index_of(key)]; }

std::vector<std::string> Config::closest_keys(std::string_view key, size_t n) const {
  std::vector<std::pair<size_t, std::string>> d;
  for (const auto& k : schema_) {
    size_t dist = std::min(edit_distance(key, k.name), edit_distance(key, last_segment(k.name)) + 1);
    d.emplace_back(dist, k.name);
  }
  std::stable_sort(d.begin(), d.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> out;
  for (size_t i = 0; i < d.size() && i < n; ++i) out.push_back(d[i].second);
  return out;
}

json Config::resolved() const {
  json out = json::object();
  for (size_t i = 0; i < schema_.size(); ++i) {
    json* node = &out;
    std::string_view name = schema_[i].name;
    for (size_t dot; (dot = name.find('.')) != std::string_view::npos; name.remove_prefix(dot + 1))
      node = &(*node)[std::string(name.substr(0, dot))];
    (*node)[std::string(name)] = values_[i];
  }
  return out;
}

std::string Config::help_text() const {
  size_t width = 0;
  for (const auto& k : schema_) width = std::max(width, k.name.size());
  std::string out;
  for (const auto& k : schema_) {
    std::string line = "  " + k.name + std::string(width - k.name.size() + 2, ' ');
    std::string info = std::string(type_word(k.default_value)) + ", default " + k.default_value.dump();
    if (k.min) info += std::string(", ") + (k.min_exclusive ? "> " : ">= ") + fmt_bound(*k.min);
    if (k.max) info += ", <= " + fmt_bound(*k.max);
    if (!k.choices.empty()) {
      info += ", one of";
      for (size_t i = 0; i < k.choices.size(); ++i) info += (i ? ", " : " ") + k.choices[i];
    }
    line += "(" + info + ")";
    if (!k.help.empty()) line += "  " + k.help;
    out += line + "\n";
  }
  return out;
}

std::vector<std::string> split_comma_list(std::string_view s) {
  std::vector<std::string> out;
  for (size_t p = 0; p <= s.size();) {
    size_t q = std::min(s.find(',', p), s.size());
    std::string_view x = s.substr(p, q - p);
    while (!x.empty() && x.front() == ' ') x.remove_prefix(1);
    while (!x.empty() && x.back() == ' ') x.remove_suffix(1);
    if (!x.empty()) out.emplace_back(x);
    p = q + 1;
  }
  return out;
}

void apply_key_flags(Config& config, const std::vector<std::string> &args, const std::string &command) {
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string &a = args[i];
    if (a.rfind("--", 0) != 0 || a.size() == 2)
      throw std::invalid_argument("unexpected argument '" + a + "'; config keys are flags (--key value) of `nanorlhf " +
                                  command + "`");
    std::string key = a.substr(2), value;
    bool has_value = false;
    if (auto eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      has_value = true;
    }
    if (!config.has(key)) {  // --max-new-tokens for max_new_tokens
      std::string underscored = key;
      for (char &ch : underscored) ch = ch == '-' ? '_' : ch;
      if (config.has(underscored)) key = underscored;
    }
    if (!config.has(key)) {
      std::string hint;
      for (const auto &k : config.closest_keys(key)) hint += (hint.empty() ? "--" : ", --") + k;
      throw std::invalid_argument("unknown option '--" + key + "' for `nanorlhf " + command + "`; closest config keys: " +
                                  hint + " (`nanorlhf " + command + " --list-keys` lists them all)");
    }
    if (!has_value) {
      const bool next_is_value = i + 1 < args.size() && args[i + 1].rfind("--", 0) != 0;
      if (next_is_value) {
        value = args[++i];
      } else if (config.key_info(key).default_value.is_boolean()) {
        value = "true";  // a bare --flag
      } else if (key == "resume") {
        value = "latest";  // a bare --resume, as TRL's resume_from_checkpoint=True
      } else {
        throw std::invalid_argument("option '--" + key + "' needs a value: --" + key + " VALUE or --" + key + "=VALUE");
      }
    }
    config.set(key + "=" + value);
  }
}

}  // namespace nanorlhf::rlhf
