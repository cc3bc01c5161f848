// The config system: a schema of dotted keys with defaults, help and ranges; JSON files (nested or
// flat) and `--set key=value` overrides, each checked for unknown keys, types and ranges.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace nanorlhf::rlhf {

// One config key. The default fixes the type: boolean, integer, number (an integer is accepted and
// stored as a number), string or list; a null default accepts any value. Objects are not values:
// nesting is spelled with dots ("ppo.beta" is {"ppo": {"beta": ...}} in a file).
struct ConfigKey {
  std::string name;
  nlohmann::json default_value;
  std::string help = "";
  std::optional<double> min = std::nullopt;  // bounds for numbers, inclusive...
  std::optional<double> max = std::nullopt;
  bool min_exclusive = false;  // ...unless min is strict (a learning rate > 0)
  std::vector<std::string> choices = {};  // a string key's valid values; empty = any string
};

class Config {
 public:
  // Throws std::invalid_argument on a bad schema: duplicate or empty names, a key that is also a
  // prefix of another ("a" and "a.b"), an object default, a default outside its own range.
  explicit Config(std::vector<ConfigKey> schema);

  // Reads a JSON file (nested or flat) and merges it; errors name the file.
  void load_file(const std::string& path);
  // One "key=value" override. The value is parsed as JSON when it parses (numbers, true/false,
  // lists), else taken as a string; string keys take the text as is.
  void set(std::string_view assignment);
  // Merges a JSON object, nested or flat (dotted keys). All or nothing: on error nothing changes.
  void merge(const nlohmann::json& nested_or_flat);

  const nlohmann::json& get(std::string_view key) const;
  double num(std::string_view key) const;
  int64_t integer(std::string_view key) const;
  std::string str(std::string_view key) const;
  bool flag(std::string_view key) const;

  bool has(std::string_view key) const;
  std::vector<std::string> keys() const;  // schema order
  const ConfigKey& key_info(std::string_view key) const;
  // Up to n schema keys closest to `key` by edit distance (for "did you mean" messages).
  std::vector<std::string> closest_keys(std::string_view key, size_t n = 3) const;

  // The full config as nested JSON (what a run directory's config.json holds); merge() takes it back.
  nlohmann::json resolved() const;
  // One line per key: name, type, default, range, help.
  std::string help_text() const;

 private:
  size_t index_of(std::string_view key) const;  // throws the "unknown config key" error
  nlohmann::json checked(const ConfigKey& key, const nlohmann::json& value) const;

  std::vector<ConfigKey> schema_;
  std::map<std::string, size_t, std::less<>> index_;
  std::vector<nlohmann::json> values_;  // parallel to schema_
};

// The items of a comma-separated list value ("reward_model, verifier"), spaces trimmed, empty
// items dropped.
std::vector<std::string> split_comma_list(std::string_view s);

// Applies command-line tokens that name config keys, in order: `--key value`, `--key=value`, a
// bare `--flag` for a boolean key; `--max-new-tokens` also names max_new_tokens. A flag that names
// no key is an error listing the closest keys of `nanorlhf <command>`.
void apply_key_flags(Config& config, const std::vector<std::string>& args, const std::string& command);

}  // namespace nanorlhf::rlhf
