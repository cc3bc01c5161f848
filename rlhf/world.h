// The default synthetic world: a made-up knowledge base, prompt templates, good and bad responses,
// and the files built from them (pretraining corpus, SFT demonstrations, preference and eval prompts).
#pragma once

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "nn/tokenizer.h"
#include "rlhf/options.h"
#include "rlhf/random.h"  // rand_below, rand_unit, rand_choice, rand_shuffle

// The code lives in rlhf/world/: vocab.cpp (lexicons, prompt templates, all_prompts), responses.cpp
// (good and bad responses), build.cpp (make_world) and io.cpp (the files, world_options()).

namespace nanorlhf::rlhf {

// Special-token strings the tokenizer recognises (nn/tokenizer.h chat template).
inline constexpr std::string_view kBos = "<|bos|>";
inline constexpr std::string_view kUser = "<|user|>";
inline constexpr std::string_view kAssistant = "<|assistant|>";
inline constexpr std::string_view kEos = "<|eos|>";

// ---- knowledge base -------------------------------------------------------------------------

enum class Attr : int { Color = 0, Food = 1, Home = 2 };
inline constexpr int kNumAttrs = 3;
const char* attr_name(Attr a);  // "color", "food", "home"

struct Entity {
  std::string name;                           // "zorb", rendered "the zorb"
  std::array<std::string, kNumAttrs> value;   // "" = unknown to the base (honest answer: unsure)
};

struct KnowledgeBase {
  std::vector<Entity> entities;
  std::array<std::vector<std::string>, kNumAttrs> values;  // possible values per attribute
  std::vector<std::string> people;                         // "Ann": greetings, harmful requests
  std::vector<std::string> adjectives, nouns;              // "repeat after me: big fish"
  int min_count = 2, max_count = 7;                        // "count to N"
  int max_operand = 0;                                     // "What is a + b?", 1 <= a, b <= max_operand; 0 = none

  int find_entity(std::string_view name) const;  // -1 when absent
  bool knows(int entity, Attr a) const { return !entities[entity].value[int(a)].empty(); }
  const std::string& value(int entity, Attr a) const { return entities[entity].value[int(a)]; }
};

// ---- prompts and responses ----------------------------------------------------------------

// Arithmetic comes last and exists only when the base has max_operand > 0, so a world without it
// draws exactly what it drew before the kind was added.
enum class PromptKind { Fact, UnknownFact, Greet, Count, Repeat, Harmful, Arithmetic };
inline constexpr int kNumPromptKinds = 7;
const char* kind_name(PromptKind k);

// One user turn, parsed: which template and which slots.
struct Prompt {
  PromptKind kind = PromptKind::Fact;
  int phrasing = 0;            // template variant; for Harmful, which request (0..4)
  int entity = -1;             // Fact, UnknownFact
  Attr attr = Attr::Color;     // Fact, UnknownFact
  std::string person;          // Greet, Harmful
  bool goodbye = false;        // Greet: "goodbye" instead of "hello"
  int count = 0;               // Count
  std::string phrase;          // Repeat: "big fish"
  int a = 0, b = 0;            // Arithmetic: a + b
  std::string text;            // the rendered user turn
};

// What a response does. Web text has all of them; SFT demonstrations only Good.
enum class Behaviour {
  Good,
  Wrong,        // wrong fact, wrong name / count / phrase / sum (Fact, Greet, Count, Repeat, Arithmetic)
  Hallucinate,  // a confident made-up answer to an unknown fact (UnknownFact)
  Rude,         // the good answer with an insult before or after it
  Ramble,       // the good answer, then filler, repeats or extra facts
  Unfinished,   // cut mid-way, no <|eos|>
  Comply,       // carries out a harmful request (Harmful)
  OffTopic,     // answers something else
};
inline constexpr int kNumBehaviours = 8;
const char* behaviour_name(Behaviour b);
bool applicable(Behaviour b, PromptKind k);  // e.g. Comply only for Harmful

struct Response {
  std::string text;      // assistant text, no special tokens
  bool finished = true;  // false: the model would not have emitted <|eos|>
};

// Every prompt the templates can render for this base (a few hundred), in a fixed order.
std::vector<Prompt> all_prompts(const KnowledgeBase& kb);
// The canonical good response; variant picks one of the (at most 2) phrasings.
Response good_response(const KnowledgeBase& kb, const Prompt& p, int variant = 0);
// A response showing behaviour b (b must be applicable to p.kind; Good returns a good response).
Response make_response(const KnowledgeBase& kb, const Prompt& p, Behaviour b, std::mt19937_64& rng);
// "And what does the zorb eat?": how a second user turn opens in a multi-turn chat.
std::string follow_up_text(std::string_view prompt_text);

// ---- the world -----------------------------------------------------------------------------

struct WorldConfig {
  uint64_t seed = 1234;
  int n_entities = 24;               // of a pool of 32 names
  double unknown_fraction = 0.25;    // share of (entity, attribute) values the base does not know
  int n_pretrain_docs = 16000;       // ~1.7 MB of pretrain.jsonl (~1.5 MB of text)
  double pretrain_good_fraction = 0.35;
  double pretrain_fact_doc_fraction = 0.12;  // plain "The zorb is blue. The zorb eats fish." docs
  double pretrain_multi_turn_fraction = 0.15;
  int n_sft = 300;
  double sft_multi_turn_fraction = 0.2;
  // Prompt kinds the SFT demonstrations cover, comma-separated kind names. Written answers are
  // costly, so by default they cover the everyday tasks only; saying "I am not sure" and declining
  // harmful requests are left for the preference stage to teach (the lecture's case for RLHF).
  std::string sft_kinds = "fact,count,repeat";
  // Share of demonstrations whose right answer ends with a filler sentence ("I hope this helps."):
  // people write answers that are good, not the best, while they can still tell which of two is
  // better (the lecture's case for RLHF). The oracle charges the extra words to helpfulness.
  double sft_slip_fraction = 0.4;
  int n_prompts = 1000;              // preference prompts
  int n_eval_prompts = 200;
  double eval_holdout_fraction = 0.3;  // share of distinct prompts reserved for evaluation
  // The verifiable arithmetic kind ("What is 17 + 25?"): off by default, so the default world and
  // every number measured on it stay as they were.
  int max_operand = 0;               // 0 = no arithmetic prompts
  double arithmetic_weight = 0.2;    // share of prompt draws that are arithmetic (when max_operand > 0)
};

// The config keys of a world (`nanorlhf world --set n_sft=50`, world.json's "config"), each bound
// to its WorldConfig member: the table holds names, help and ranges, WorldConfig{} the defaults.
const OptionTable<WorldConfig>& world_options();

struct World {
  WorldConfig config;
  KnowledgeBase kb;
  std::vector<std::string> pretrain;               // rendered chat / plain documents
  std::vector<std::vector<nn::ChatMessage>> sft;   // 2 messages (prompt, completion) or 4;
                                                   // the text is nn::render_chat_text(messages)
  std::vector<std::string> prompts, eval_prompts;  // user turns
};

// The prompt kinds a program can check the answer of (rlhf/verifier.h): count, repeat, arithmetic.
bool verifiable(PromptKind k);

// Deterministic in cfg (same config -> byte-identical world).
World make_world(const WorldConfig& cfg = {});
// Writes pretrain.jsonl {"text"}, sft.jsonl {"prompt","completion"} or {"messages":[...]},
// prompts.jsonl and eval_prompts.jsonl {"prompt"}, their verifiable kinds' prompts alone
// (verifiable_prompts.jsonl, verifiable_eval_prompts.jsonl: RLVR's prompt sets), world.json
// {"config","kb"}; each file is
// written to a temporary and renamed, so readers never see half a file. Creates dir.
void write_world(const World& w, const std::string& dir);
// Reads those files back; world.json's "config" is checked against world_options() (an unknown
// key, a wrong type or a value out of range is an error naming the file and the key), and every
// error names its file (and line, in a JSONL file).
World load_world(const std::string& dir);
KnowledgeBase load_kb(const std::string& world_json_path);

}  // namespace nanorlhf::rlhf
