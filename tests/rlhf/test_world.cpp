// Tests of the default synthetic world: determinism, prompt splits, corpus mix, the JSON files.
#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <fstream>
#include <set>
#include <sstream>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include "rlhf/oracle.h"
#include "rlhf/world.h"

namespace nanorlhf::rlhf {
namespace {

namespace fs = std::filesystem;
using json = nlohmann::json;

// One default world shared by the tests (about 0.1 s to build).
const World& default_world() {
  static const World w = make_world();
  return w;
}

std::string user_turn_key(std::string s) {  // "And what..." -> "what..."; the oracle's matching
  if (s.rfind("And ", 0) == 0) s = s.substr(4);
  for (char& c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

fs::path temp_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nanorlhf_test_world_" + name + "_" + std::to_string(::getpid()));
  fs::remove_all(d);
  return d;
}

std::vector<json> read_jsonl(const fs::path& p) {
  std::ifstream f(p);
  std::vector<json> rows;
  for (std::string line; std::getline(f, line);) rows.push_back(json::parse(line));  // throws on bad JSON
  return rows;
}

TEST(WorldRandom, Mt19937_64IsTheStandardOneAndHelpersStayInRange) {
  std::mt19937_64 rng;  // default seed 5489: the 10000th output is fixed by the C++ standard
  rng.discard(9999);
  EXPECT_EQ(rng(), 9981545732273789042ULL);
  std::mt19937_64 r(3);
  for (int i = 0; i < 1000; ++i) {
    EXPECT_LT(rand_below(r, 7), 7u);
    double u = rand_unit(r);
    EXPECT_GE(u, 0.0);
    EXPECT_LT(u, 1.0);
  }
}

TEST(World, SameSeedGivesIdenticalWorld) {
  WorldConfig cfg;
  cfg.n_pretrain_docs = 2000;
  World a = make_world(cfg), b = make_world(cfg);
  EXPECT_EQ(a.pretrain, b.pretrain);
  EXPECT_EQ(a.prompts, b.prompts);
  EXPECT_EQ(a.eval_prompts, b.eval_prompts);
  ASSERT_EQ(a.sft.size(), b.sft.size());
  for (size_t i = 0; i < a.sft.size(); ++i) EXPECT_EQ(nn::render_chat_text(a.sft[i]), nn::render_chat_text(b.sft[i]));
  ASSERT_EQ(a.kb.entities.size(), b.kb.entities.size());
  for (size_t i = 0; i < a.kb.entities.size(); ++i) {
    EXPECT_EQ(a.kb.entities[i].name, b.kb.entities[i].name);
    EXPECT_EQ(a.kb.entities[i].value, b.kb.entities[i].value);
  }
}

TEST(World, DifferentSeedsDiffer) {
  WorldConfig c1, c2;
  c1.n_pretrain_docs = c2.n_pretrain_docs = 500;
  c2.seed = c1.seed + 1;
  World a = make_world(c1), b = make_world(c2);
  EXPECT_NE(a.pretrain, b.pretrain);
  EXPECT_NE(a.prompts, b.prompts);
  int same_facts = 0, facts = 0;
  for (const auto& e : a.kb.entities) {
    int j = b.kb.find_entity(e.name);
    if (j < 0) continue;
    for (int k = 0; k < kNumAttrs; ++k) facts++, same_facts += e.value[k] == b.kb.entities[j].value[k];
  }
  EXPECT_LT(same_facts, facts);
}

TEST(World, KnowledgeBaseHasKnownAndUnknownFactsOfEveryAttribute) {
  const KnowledgeBase& kb = default_world().kb;
  EXPECT_GE(kb.entities.size(), 20u);
  EXPECT_LE(kb.entities.size(), 30u);
  for (int a = 0; a < kNumAttrs; ++a) {
    int unknown = 0;
    for (int e = 0; e < int(kb.entities.size()); ++e) {
      if (!kb.knows(e, Attr(a))) ++unknown;
      else EXPECT_NE(std::find(kb.values[a].begin(), kb.values[a].end(), kb.value(e, Attr(a))), kb.values[a].end());
    }
    EXPECT_GE(unknown, 2) << attr_name(Attr(a));
    EXPECT_LE(unknown, int(kb.entities.size()) / 2) << attr_name(Attr(a));
  }
  std::set<std::string> names;
  for (const auto& e : kb.entities) names.insert(e.name);
  EXPECT_EQ(names.size(), kb.entities.size());
}

TEST(World, EveryKindHasPromptsWithFewPhrasingsAndDistinctTexts) {
  auto ps = all_prompts(default_world().kb);
  std::array<int, kNumPromptKinds> per_kind{};
  std::set<std::string> texts;
  for (const auto& p : ps) {
    per_kind[int(p.kind)]++;
    texts.insert(user_turn_key(p.text));
    EXPECT_GE(p.phrasing, 0);
    EXPECT_LT(p.phrasing, 5);
  }
  for (int k = 0; k < kNumPromptKinds; ++k)
    if (PromptKind(k) != PromptKind::Arithmetic) EXPECT_GT(per_kind[k], 10) << kind_name(PromptKind(k));
  EXPECT_EQ(per_kind[int(PromptKind::Arithmetic)], 0) << "arithmetic is off in the default world";
  EXPECT_EQ(texts.size(), ps.size()) << "two templates render the same text";
}

TEST(World, EvalPromptsAreDisjointFromSftAndPreferencePrompts) {
  const World& w = default_world();
  std::set<std::string> eval;
  for (const auto& p : w.eval_prompts) eval.insert(user_turn_key(p));
  EXPECT_GT(eval.size(), 100u);  // mostly distinct
  for (const auto& demo : w.sft)
    for (const auto& m : demo)
      if (m.role == "user") {
        EXPECT_EQ(eval.count(user_turn_key(m.content)), 0u) << m.content;
      }
  std::set<std::string> prefs;
  for (const auto& p : w.prompts) {
    EXPECT_EQ(eval.count(user_turn_key(p)), 0u) << p;
    prefs.insert(p);
  }
  EXPECT_GT(prefs.size(), 300u);  // the preference set covers many distinct prompts
}

TEST(World, AllPromptsParseAndEveryKindIsDrawn) {
  const World& w = default_world();
  Oracle o(w.kb);
  std::array<int, kNumPromptKinds> pref{}, eval{};
  for (const auto& p : w.prompts) {
    auto q = o.parse_prompt(p);
    ASSERT_TRUE(q) << p;
    pref[int(q->kind)]++;
  }
  for (const auto& p : w.eval_prompts) {
    auto q = o.parse_prompt(p);
    ASSERT_TRUE(q) << p;
    eval[int(q->kind)]++;
  }
  for (int k = 0; k < kNumPromptKinds - 1; ++k) {  // all but arithmetic, which is off by default
    EXPECT_GT(pref[k], 50) << kind_name(PromptKind(k));
    EXPECT_GT(eval[k], 10) << kind_name(PromptKind(k));
  }
}

// max_operand > 0 adds the verifiable kind: about arithmetic_weight of the draws, every other kind
// still drawn, SFT demonstrations of it when sft_kinds lists it, and every sum right.
TEST(World, TheArithmeticKindWhenTurnedOn) {
  WorldConfig cfg;
  cfg.n_pretrain_docs = 2000, cfg.max_operand = 12, cfg.arithmetic_weight = 0.25;
  cfg.sft_kinds = "fact,count,repeat,arithmetic";
  const World w = make_world(cfg);
  Oracle o(w.kb);
  std::array<int, kNumPromptKinds> pref{};
  for (const auto& p : w.prompts) pref[int(o.parse_prompt(p)->kind)]++;
  for (int k = 0; k < kNumPromptKinds; ++k) EXPECT_GT(pref[k], 30) << kind_name(PromptKind(k));
  EXPECT_NEAR(pref[int(PromptKind::Arithmetic)] / double(w.prompts.size()), 0.25, 0.05);
  int sums = 0;
  for (const auto& msgs : w.sft)
    for (size_t i = 0; i + 1 < msgs.size(); i += 2) {
      auto p = o.parse_prompt(msgs[i].content);
      ASSERT_TRUE(p) << msgs[i].content;
      if (p->kind != PromptKind::Arithmetic) continue;
      ++sums;
      const std::string s = std::to_string(p->a + p->b);
      EXPECT_TRUE(msgs[i + 1].content.find("= " + s + ".") != std::string::npos ||
                  msgs[i + 1].content.find("is " + s + ".") != std::string::npos)
          << msgs[i].content << " -> " << msgs[i + 1].content;
    }
  EXPECT_GT(sums, 30);
}

TEST(World, SftHasPromptCompletionAndMultiTurnDemos) {
  const World& w = default_world();
  ASSERT_EQ(w.sft.size(), 300u);
  int multi = 0;
  for (const auto& d : w.sft) {
    ASSERT_TRUE(d.size() == 2 || d.size() == 4);
    for (size_t i = 0; i < d.size(); ++i) EXPECT_EQ(d[i].role, i % 2 ? "assistant" : "user");
    if (d.size() == 4) {
      ++multi;
      EXPECT_EQ(d[2].content.rfind("And ", 0), 0u) << d[2].content;
    }
  }
  EXPECT_GT(multi, 30);   // ~20%
  EXPECT_LT(multi, 100);
}

// Every demonstration answers right; sft_slip_fraction of the answers carry a filler sentence,
// which the oracle charges to helpfulness only (0.2 + 0.04 per extra word), and 0 gives none.
TEST(World, SftDemonstrationsAreRightAndSomeEndWithAFillerSlip) {
  for (double slip : {0.0, 0.4}) {
    WorldConfig c;
    c.sft_slip_fraction = slip;
    World w = make_world(c);
    Oracle oracle(w.kb);
    int answers = 0, slipped = 0;
    for (const auto& d : w.sft)
      for (size_t i = 1; i < d.size(); i += 2, ++answers) {
        HHHScore s = oracle.score(d[i - 1].content, d[i].content, true);
        EXPECT_EQ(s.honest, 1.0) << d[i].content;
        EXPECT_EQ(s.harmless, 1.0) << d[i].content;
        if (s.total == Oracle::kMaxTotal) continue;
        ++slipped;
        EXPECT_GT(s.helpful, 0.5) << d[i].content << ": " << s.reason;  // a right answer (a wrong one is <= 0)
        EXPECT_NE(s.reason.find("extra words"), std::string::npos) << d[i].content << ": " << s.reason;
        EXPECT_LE(s.helpful, 1.0 - 0.2 - 0.04 * 3 + 1e-12) << d[i].content;  // every filler has >= 3 words
      }
    if (slip == 0.0) EXPECT_EQ(slipped, 0);
    else EXPECT_NEAR(double(slipped) / answers, slip, 0.06) << slipped << " of " << answers;
  }
}

// The world renders its chats with the tokenizer's template; an unfinished last answer has no <|eos|>.
TEST(World, ChatTextIsTheTokenizerTemplate) {
  std::vector<nn::ChatMessage> m = {{"user", "Count to 2."}, {"assistant", "1, 2."}, {"user", "And greet Ann."}, {"assistant", "Hello"}};
  EXPECT_EQ(nn::render_chat_text(m), "<|bos|><|user|>Count to 2.<|assistant|>1, 2.<|eos|><|user|>And greet Ann.<|assistant|>Hello<|eos|>");
  EXPECT_EQ(nn::render_chat_text(m, false, false), "<|bos|><|user|>Count to 2.<|assistant|>1, 2.<|eos|><|user|>And greet Ann.<|assistant|>Hello");
  EXPECT_EQ(nn::render_chat_text(m), nn::Tokenizer().render_chat(m, false));
  EXPECT_EQ(nn::render_chat_text(m, true), nn::Tokenizer().render_chat(m, true));
  EXPECT_THROW(nn::render_chat_text({{"robot", "x"}}), std::invalid_argument);
}

// The corpus mixes good and bad behaviour: about 35% of single-turn chats are perfect, some end
// without <|eos|>, some are rude, some state wrong facts, and plain fact documents are present.
TEST(World, PretrainCorpusMixesGoodAndBadBehaviour) {
  const World& w = default_world();
  Oracle o(w.kb);
  int single = 0, good = 0, unfinished = 0, rude = 0, dishonest = 0, plain = 0, multi = 0;
  size_t longest = 0;
  for (const auto& doc : w.pretrain) {
    ASSERT_EQ(doc.rfind(kBos, 0), 0u);
    longest = std::max(longest, doc.size());
    size_t u = doc.find(kUser);
    if (u == std::string::npos) {
      ++plain;
      continue;
    }
    if (doc.find(kUser, u + 1) != std::string::npos) {
      ++multi;
      continue;
    }
    ++single;
    size_t a = doc.find(kAssistant);
    ASSERT_NE(a, std::string::npos);
    std::string prompt = doc.substr(u + kUser.size(), a - u - kUser.size());
    std::string resp = doc.substr(a + kAssistant.size());
    bool finished = resp.size() >= kEos.size() && resp.substr(resp.size() - kEos.size()) == kEos;
    if (finished) resp.resize(resp.size() - kEos.size());
    HHHScore s = o.score(prompt, resp, finished);
    ASSERT_NE(s.reason, "unknown prompt") << prompt;
    good += s.total == Oracle::kMaxTotal;
    unfinished += !finished;
    rude += s.harmless < 1;
    dishonest += s.honest < 1;
  }
  ASSERT_GT(single, 1000);
  double n = single;
  EXPECT_NEAR(good / n, 0.35, 0.05);
  EXPECT_GT(unfinished / n, 0.05);
  EXPECT_GT(rude / n, 0.1);
  EXPECT_GT(dishonest / n, 0.04);
  EXPECT_NEAR(plain / double(w.pretrain.size()), 0.12, 0.02);
  EXPECT_GT(multi, 0);
  EXPECT_LT(longest, 400u);  // fits a 128-token context comfortably
}

TEST(World, ResponsesAreShort) {
  const World& w = default_world();
  std::mt19937_64 rng(5);
  for (const auto& p : all_prompts(w.kb))
    for (int b = 0; b < kNumBehaviours; ++b) {
      if (!applicable(Behaviour(b), p.kind)) continue;
      for (int r = 0; r < 3; ++r) {
        std::string t = make_response(w.kb, p, Behaviour(b), rng).text;
        int words = int(std::count(t.begin(), t.end(), ' ')) + 1;
        EXPECT_LE(words, 25) << behaviour_name(Behaviour(b)) << ": " << t;
      }
    }
}

TEST(World, MakeResponseRejectsInapplicableBehaviour) {
  const World& w = default_world();
  Prompt greet;
  for (const auto& p : all_prompts(w.kb))
    if (p.kind == PromptKind::Greet) greet = p;
  std::mt19937_64 rng(1);
  EXPECT_THROW(make_response(w.kb, greet, Behaviour::Comply, rng), std::invalid_argument);
  EXPECT_THROW(make_response(w.kb, greet, Behaviour::Hallucinate, rng), std::invalid_argument);
}

TEST(World, WrittenFilesParseWithTheRightFieldsAndSizesAndLoadBack) {
  const World& w = default_world();
  fs::path dir = temp_dir("files");
  write_world(w, dir.string());

  auto pre = read_jsonl(dir / "pretrain.jsonl");
  ASSERT_EQ(pre.size(), size_t(w.config.n_pretrain_docs));
  for (const auto& r : pre) ASSERT_TRUE(r.contains("text") && r["text"].is_string());
  EXPECT_LE(fs::file_size(dir / "pretrain.jsonl"), 2u << 20);  // <= 2 MiB at the defaults

  auto sft = read_jsonl(dir / "sft.jsonl");
  ASSERT_EQ(sft.size(), 300u);
  for (const auto& r : sft) {
    if (r.contains("messages")) {
      ASSERT_TRUE(r["messages"].is_array());
      for (const auto& m : r["messages"]) ASSERT_TRUE(m["role"].is_string() && m["content"].is_string());
    } else {
      ASSERT_TRUE(r["prompt"].is_string() && r["completion"].is_string());
    }
  }
  for (auto [name, n] : {std::pair{"prompts.jsonl", 1000u}, std::pair{"eval_prompts.jsonl", 200u}}) {
    auto rows = read_jsonl(dir / name);
    ASSERT_EQ(rows.size(), n) << name;
    for (const auto& r : rows) ASSERT_TRUE(r["prompt"].is_string()) << name;
  }
  json world = json::parse(std::ifstream(dir / "world.json"));
  ASSERT_TRUE(world.contains("config") && world.contains("kb"));
  EXPECT_EQ(world["config"]["seed"].get<uint64_t>(), w.config.seed);
  for (const auto& e : fs::directory_iterator(dir))
    EXPECT_EQ(e.path().filename().string().find(".tmp"), std::string::npos) << e.path();  // no temporary left

  World back = load_world(dir.string());
  EXPECT_EQ(back.pretrain, w.pretrain);
  EXPECT_EQ(back.prompts, w.prompts);
  EXPECT_EQ(back.eval_prompts, w.eval_prompts);
  ASSERT_EQ(back.sft.size(), w.sft.size());
  for (size_t i = 0; i < w.sft.size(); ++i) EXPECT_EQ(nn::render_chat_text(back.sft[i]), nn::render_chat_text(w.sft[i]));
  EXPECT_EQ(back.config.seed, w.config.seed);
  EXPECT_EQ(back.config.n_sft, w.config.n_sft);
  KnowledgeBase kb = load_kb((dir / "world.json").string());
  ASSERT_EQ(kb.entities.size(), w.kb.entities.size());
  for (size_t i = 0; i < kb.entities.size(); ++i) {
    EXPECT_EQ(kb.entities[i].name, w.kb.entities[i].name);
    EXPECT_EQ(kb.entities[i].value, w.kb.entities[i].value);
  }
  EXPECT_EQ(kb.values, w.kb.values);
  EXPECT_EQ(kb.people, w.kb.people);
  // A rebuilt world from the written config is the same world.
  EXPECT_EQ(make_world(back.config).prompts, w.prompts);
  fs::remove_all(dir);
}

TEST(World, LoadWorldNamesTheMissingFile) {
  try {
    load_world("/nonexistent/nanorlhf_world");
    FAIL() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("world.json"), std::string::npos) << e.what();
  }
}

// world_options() has the keys of `nanorlhf world` (not "out"), each bound to its member, with
// WorldConfig{}'s defaults.
TEST(World, OptionsCoverEveryConfigKeyWithItsDefault) {
  std::vector<std::string> keys;
  for (const auto& k : world_options().schema()) keys.push_back(k.name);
  EXPECT_EQ(keys, (std::vector<std::string>{"seed", "n_entities", "unknown_fraction", "n_pretrain_docs",
                                            "pretrain_good_fraction", "pretrain_fact_doc_fraction",
                                            "pretrain_multi_turn_fraction", "n_sft", "sft_multi_turn_fraction",
                                            "sft_kinds", "sft_slip_fraction", "n_prompts", "n_eval_prompts",
                                            "eval_holdout_fraction", "max_operand", "arithmetic_weight"}));
  Config c(world_options().schema());
  EXPECT_EQ(c.integer("seed"), 1234);
  EXPECT_EQ(c.str("sft_kinds"), WorldConfig{}.sft_kinds);
  EXPECT_THROW(c.set("n_entities=33"), std::invalid_argument);  // a pool of 32 names
  EXPECT_THROW(c.set("eval_holdout_fraction=0.95"), std::invalid_argument);
  c.set("n_sft=50");
  EXPECT_EQ(world_options().read(c).n_sft, 50);
}

// Every field of a non-default config survives write_world / load_world (world.json's "config" is
// written from world_options() and read back through it).
TEST(World, NonDefaultConfigRoundTripsThroughWorldJson) {
  WorldConfig cfg;
  cfg.seed = 7;
  cfg.n_entities = 10;
  cfg.unknown_fraction = 0.4;
  cfg.n_pretrain_docs = 30;
  cfg.pretrain_good_fraction = 0.5;
  cfg.pretrain_fact_doc_fraction = 0.2;
  cfg.pretrain_multi_turn_fraction = 0.3;
  cfg.n_sft = 20;
  cfg.sft_multi_turn_fraction = 0.5;
  cfg.sft_kinds = "fact,greet,harmful";
  cfg.sft_slip_fraction = 0.1;
  cfg.n_prompts = 40;
  cfg.n_eval_prompts = 15;
  cfg.eval_holdout_fraction = 0.5;
  World w = make_world(cfg);
  fs::path dir = temp_dir("roundtrip");
  write_world(w, dir.string());
  World back = load_world(dir.string());
  for (const auto& e : world_options().entries()) EXPECT_EQ(e.get(back.config), e.get(cfg)) << e.key.name;
  EXPECT_EQ(back.config.seed, 7u);
  EXPECT_EQ(back.config.sft_kinds, "fact,greet,harmful");
  EXPECT_EQ(back.config.eval_holdout_fraction, 0.5);
  EXPECT_EQ(back.pretrain, w.pretrain);
  EXPECT_EQ(back.prompts, w.prompts);
  EXPECT_EQ(make_world(back.config).eval_prompts, w.eval_prompts);
  fs::remove_all(dir);
}

// Rewrites world.json's "config" with `edit`, then expects load_world to fail naming the file and `needle`.
void expect_config_rejected(const std::string& name, const std::function<void(json&)>& edit, const std::string& needle) {
  WorldConfig cfg;
  cfg.n_pretrain_docs = 10, cfg.n_sft = 5, cfg.n_prompts = 5, cfg.n_eval_prompts = 5;
  fs::path dir = temp_dir(name);
  write_world(make_world(cfg), dir.string());
  json j = json::parse(std::ifstream(dir / "world.json"));
  edit(j["config"]);
  std::ofstream(dir / "world.json") << j.dump(1);
  try {
    load_world(dir.string());
    ADD_FAILURE() << "expected load_world to reject the config (" << needle << ")";
  } catch (const std::invalid_argument& e) {
    std::string what = e.what();
    EXPECT_NE(what.find((dir / "world.json").string()), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
  fs::remove_all(dir);
}

TEST(World, LoadWorldRejectsAnUnknownConfigKeyNamingFileAndKey) {
  expect_config_rejected("unknown_key", [](json& c) { c["n_sfts"] = 5; }, "'n_sfts'");
  expect_config_rejected("mistyped", [](json& c) { c["n_sft"] = "many"; }, "'n_sft'");
  expect_config_rejected("out_of_range", [](json& c) { c["unknown_fraction"] = 1.5; }, "'unknown_fraction'");
}

TEST(World, LoadWorldNamesFileAndLineOfABadJsonlRecord) {
  WorldConfig cfg;
  cfg.n_pretrain_docs = 10, cfg.n_sft = 5, cfg.n_prompts = 5, cfg.n_eval_prompts = 5;
  fs::path dir = temp_dir("bad_jsonl");
  write_world(make_world(cfg), dir.string());
  std::ofstream(dir / "prompts.jsonl") << "{\"prompt\": \"Count to 3.\"}\n{\"text\": \"no prompt\"}\n";
  try {
    load_world(dir.string());
    ADD_FAILURE() << "expected an exception";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find((dir / "prompts.jsonl").string() + ":2"), std::string::npos) << e.what();
  }
  fs::remove_all(dir);
}

}  // namespace
}  // namespace nanorlhf::rlhf
