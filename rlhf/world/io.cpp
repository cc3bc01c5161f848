// Reading and writing a world: the JSONL files and world.json ({"config", "kb"}), and
// world_options(), the one table of WorldConfig's keys that world.json's "config" is made from.
#include <filesystem>
#include <stdexcept>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "nn/atomic_file.h"
#include "rlhf/config.h"
#include "rlhf/data.h"
#include "rlhf/world/internal.h"

namespace nanorlhf::rlhf {

const OptionTable<WorldConfig>& world_options() {
  using C = WorldConfig;
  static const OptionTable<WorldConfig> table = [] {
    OptionTable<WorldConfig> t;
    t.add("seed", &C::seed, "seed of the world (same seed -> byte-identical files)", Range::at_least(0))
        .add("n_entities", &C::n_entities, "entities in the knowledge base (of a pool of 32 names)", Range::between(1, 32))
        .add("unknown_fraction", &C::unknown_fraction, "share of facts the base does not know", Range::between(0, 1))
        .add("n_pretrain_docs", &C::n_pretrain_docs, "documents of web text in pretrain.jsonl", Range::at_least(1))
        .add("pretrain_good_fraction", &C::pretrain_good_fraction, "share of good responses in the web text",
             Range::between(0, 1))
        .add("pretrain_fact_doc_fraction", &C::pretrain_fact_doc_fraction, "share of plain fact documents",
             Range::between(0, 1))
        .add("pretrain_multi_turn_fraction", &C::pretrain_multi_turn_fraction, "share of two-turn chats",
             Range::between(0, 1))
        .add("n_sft", &C::n_sft, "SFT demonstrations", Range::at_least(1))
        .add("sft_multi_turn_fraction", &C::sft_multi_turn_fraction, "share of two-turn demonstrations",
             Range::between(0, 1))
        .add("sft_kinds", &C::sft_kinds,
             "prompt kinds the demonstrations cover (fact, unknown_fact, greet, count, repeat, harmful, arithmetic)")
        .add("sft_slip_fraction", &C::sft_slip_fraction, "share of demonstrations ending with a filler sentence",
             Range::between(0, 1))
        .add("n_prompts", &C::n_prompts, "preference / RL prompts", Range::at_least(1))
        .add("n_eval_prompts", &C::n_eval_prompts, "evaluation prompts", Range::at_least(1))
        .add("eval_holdout_fraction", &C::eval_holdout_fraction, "share of distinct prompts kept for evaluation",
             Range::between(0, 0.9))
        .add("max_operand", &C::max_operand,
             "largest operand of the verifiable arithmetic kind 'What is a + b?' (1 <= a, b <= max_operand); 0 = none",
             Range::between(0, 99))
        .add("arithmetic_weight", &C::arithmetic_weight, "share of prompt draws that are arithmetic (max_operand > 0)",
             Range::between(0, 1));
    return t;
  }();
  return table;
}

namespace {

namespace fs = std::filesystem;
using json = nlohmann::ordered_json;  // keeps "prompt" before "completion" in the files

std::string file_in(const std::string& dir, const char* name) { return (fs::path(dir) / name).string(); }

// world.json's "config": every key of world_options(), in its order.
json config_to_json(const WorldConfig& c) {
  json j = json::object();
  for (const auto& e : world_options().entries()) j[e.key.name] = json(e.get(c));
  return j;
}

// Checked like any config (unknown keys, types, ranges); a key left out takes WorldConfig{}'s value.
WorldConfig config_from_json(const json& j, const std::string& path) {
  Config c(world_options().schema());
  try {
    c.merge(nlohmann::json(j));
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": \"config\": " + e.what());
  }
  return world_options().read(c);
}

json kb_to_json(const KnowledgeBase& kb) {
  json ents = json::array();
  for (const auto& e : kb.entities) {
    json je = {{"name", e.name}};
    for (int a = 0; a < kNumAttrs; ++a)
      je[attr_name(Attr(a))] = e.value[a].empty() ? json(nullptr) : json(e.value[a]);
    ents.push_back(je);
  }
  return {{"entities", ents},       {"colors", kb.values[0]},     {"foods", kb.values[1]},
          {"homes", kb.values[2]},  {"people", kb.people},        {"adjectives", kb.adjectives},
          {"nouns", kb.nouns},      {"min_count", kb.min_count},  {"max_count", kb.max_count},
          {"max_operand", kb.max_operand}};
}

KnowledgeBase kb_from_json(const json& j) {
  KnowledgeBase kb;
  kb.values = {j.at("colors").get<std::vector<std::string>>(), j.at("foods").get<std::vector<std::string>>(),
               j.at("homes").get<std::vector<std::string>>()};
  kb.people = j.at("people").get<std::vector<std::string>>();
  kb.adjectives = j.at("adjectives").get<std::vector<std::string>>();
  kb.nouns = j.at("nouns").get<std::vector<std::string>>();
  kb.min_count = j.value("min_count", kb.min_count);
  kb.max_count = j.value("max_count", kb.max_count);
  kb.max_operand = j.value("max_operand", kb.max_operand);
  for (const auto& je : j.at("entities")) {
    Entity e;
    e.name = je.at("name").get<std::string>();
    for (int a = 0; a < kNumAttrs; ++a) {
      const json& v = je.at(attr_name(Attr(a)));
      e.value[a] = v.is_null() ? "" : v.get<std::string>();
    }
    kb.entities.push_back(std::move(e));
  }
  return kb;
}

json read_world_json(const std::string& path) {
  const std::string text = nn::read_file(path);
  try {
    json j = json::parse(text);
    if (!j.is_object()) throw std::runtime_error("expected a JSON object, got " + std::string(j.type_name()));
    return j;
  } catch (const std::exception& e) {
    throw std::runtime_error(path + ": " + e.what());
  }
}

KnowledgeBase kb_in(const json& j, const std::string& path) {
  try {
    return kb_from_json(j.at("kb"));
  } catch (const json::exception& e) {
    throw std::runtime_error(path + ": \"kb\": " + e.what());
  }
}

}  // namespace

void write_world(const World& w, const std::string& dir) {
  fs::create_directories(dir);
  std::vector<json> rows;
  for (const auto& t : w.pretrain) rows.push_back({{"text", t}});
  write_ordered_jsonl(file_in(dir, "pretrain.jsonl"), rows);

  rows.clear();
  for (const auto& msgs : w.sft) {
    if (msgs.size() == 2) {
      rows.push_back({{"prompt", msgs[0].content}, {"completion", msgs[1].content}});
    } else {
      json m = json::array();
      for (const auto& x : msgs) m.push_back({{"role", x.role}, {"content", x.content}});
      rows.push_back({{"messages", m}});
    }
  }
  write_ordered_jsonl(file_in(dir, "sft.jsonl"), rows);

  std::unordered_map<std::string, PromptKind> kind_of;
  for (const auto& p : all_prompts(w.kb)) kind_of.emplace(p.text, p.kind);
  auto is_verifiable = [&](const std::string& p) {
    auto it = kind_of.find(p);
    return it != kind_of.end() && verifiable(it->second);
  };
  for (auto [name, list] : {std::pair{"prompts.jsonl", &w.prompts}, std::pair{"eval_prompts.jsonl", &w.eval_prompts}}) {
    std::vector<json> all, checkable;
    for (const auto& p : *list) {
      all.push_back({{"prompt", p}});
      if (is_verifiable(p)) checkable.push_back(all.back());
    }
    write_ordered_jsonl(file_in(dir, name), all);
    write_ordered_jsonl(file_in(dir, (std::string("verifiable_") + name).c_str()), checkable);
  }
  json world = {{"format", "nanorlhf-world"}, {"version", 1}, {"config", config_to_json(w.config)}, {"kb", kb_to_json(w.kb)}};
  nn::write_file_atomic(file_in(dir, "world.json"), world.dump(1) + "\n");
}

KnowledgeBase load_kb(const std::string& world_json_path) {
  return kb_in(read_world_json(world_json_path), world_json_path);
}

World load_world(const std::string& dir) {
  World w;
  const std::string world_json = file_in(dir, "world.json");
  json j = read_world_json(world_json);
  if (!j.contains("config")) throw std::runtime_error(world_json + ": missing \"config\"");
  w.config = config_from_json(j["config"], world_json);
  w.kb = kb_in(j, world_json);
  // The data.h readers name "path:line" and the field in every error.
  for (auto& r : read_text_jsonl(file_in(dir, "pretrain.jsonl"))) w.pretrain.push_back(std::move(r.text));
  for (auto& r : read_sft_jsonl(file_in(dir, "sft.jsonl"))) w.sft.push_back(std::move(r.messages));
  for (auto& r : read_prompts_jsonl(file_in(dir, "prompts.jsonl"))) w.prompts.push_back(std::move(r.prompt));
  for (auto& r : read_prompts_jsonl(file_in(dir, "eval_prompts.jsonl"))) w.eval_prompts.push_back(std::move(r.prompt));
  return w;
}

}  // namespace nanorlhf::rlhf
