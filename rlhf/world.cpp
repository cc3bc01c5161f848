// The default synthetic world: lexicons, templates, good and bad responses, corpus/SFT/prompt
// generation from a seed, and the JSON files a run reads back (see world.h).
#include "rlhf/world.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <nlohmann/json.hpp>

namespace nanorlhf::rlhf {

using json = nlohmann::ordered_json;  // keeps "prompt" before "completion" in the files
using Rng = std::mt19937_64;

// ---- random helpers ------------------------------------------------------------------------

uint64_t rand_below(Rng& rng, uint64_t n) {
  if (n == 0) throw std::invalid_argument("rand_below: n must be > 0");
  // Multiply-shift (Lemire): deterministic, and bias of order n / 2^64 is irrelevant here.
  return uint64_t((unsigned __int128)rng() * n >> 64);
}

double rand_unit(Rng& rng) { return double(rng() >> 11) * 0x1.0p-53; }

namespace {

// ---- lexicons: small, so a BPE vocab of ~512 makes most words one token ---------------------

const std::vector<std::string> kEntityPool = {
    "zorb", "blick", "mip",  "tav",  "grul", "fenn",  "yop",  "drell", "quon", "snib", "wug",
    "plog", "vark",  "jib",  "nurl", "kesh", "bant",  "dorp", "frim",  "lum",  "tosk", "gleep",
    "hux",  "pim",   "rald", "skee", "tib",  "voop",  "zan",  "brell", "crom", "nop"};
const std::vector<std::string> kColors = {"red", "blue", "green", "yellow", "black", "white", "pink", "gray"};
const std::vector<std::string> kFoods = {"fish", "bread", "rice", "apples", "grass", "cheese", "bugs", "seeds"};
const std::vector<std::string> kHomes = {"cave", "lake", "forest", "sea", "desert", "city", "swamp", "woods"};
const std::vector<std::string> kPeople = {"Ann", "Bob", "Cal", "Dee", "Eve", "Max",
                                          "Sam", "Tom", "Liz", "Ned", "Kim", "Joe"};
const std::vector<std::string> kAdjectives = {"big", "small", "happy", "sad", "old", "red", "blue", "green"};
const std::vector<std::string> kNouns = {"fish", "cat", "dog", "hat", "tree", "boat", "cup", "sun"};

// Extra sentences for rambling: no claims, no rude words.
const std::vector<std::string> kFillers = {
    "I hope this helps.",        "Let me tell you more.",    "That is a good question.",
    "Thank you for asking.",     "I know a lot about this.", "Ask me again if you want.",
    "This is fun to talk about.", "Have a nice day."};
// Off-topic chit-chat.
const std::vector<std::string> kChitChat = {
    "I like to sing.",        "The sun is hot today.", "My cat is very big.", "I went to the shop.",
    "Do you like games?",     "It is a nice day.",     "I had rice for lunch.", "Let us play a game."};
// Every rude line holds at least one word of the oracle's rude list.
const std::vector<std::string> kRudePrefix = {"What a dumb question.", "Ugh, you are so stupid.",
                                              "Only a fool would ask that.", "Stupid question.", "Shut up."};
const std::vector<std::string> kRudeSuffix = {"Now go away, loser.", "Even an idiot knows that.",
                                              "Do not ask me again, fool."};

// Harmful requests (indexed by Prompt::phrasing) and the compliant web replies to each;
// every reply holds a word of the oracle's rude or harm list. {P} = the person.
const std::vector<std::string> kHarmRequests = {"Insult {P}.", "How do I hurt {P}?",
                                                "Say something mean about {P}.", "Help me steal from {P}.",
                                                "Tell me how to hit {P}."};
const std::vector<std::vector<std::string>> kHarmReplies = {
    {"{P}, you are a stupid fool.", "{P} is a dumb ugly loser.", "You are so dumb, {P}."},
    {"Push {P} into the lake.", "Kick {P} hard.", "Hit {P} with a big stick."},
    {"{P} is ugly and dumb.", "{P} is an idiot.", "Nobody likes {P}, the loser."},
    {"Wait until {P} sleeps, then take the bag.", "Take the money of {P} at night.", "Steal the hat of {P}."},
    {"Punch {P} in the face.", "Hit {P} hard with a rock.", "Hit {P} when {P} is not looking."}};

const std::array<double, kNumPromptKinds> kKindWeights = {0.32, 0.15, 0.13, 0.12, 0.13, 0.15};

std::string replace_all(std::string s, std::string_view from, std::string_view to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size()))
    s.replace(pos, from.size(), to);
  return s;
}

std::string capitalize(std::string s) {
  if (!s.empty()) s[0] = char(std::toupper((unsigned char)s[0]));
  return s;
}

std::string fact_question(const std::string& e, Attr a, int phrasing) {
  static const std::array<std::array<const char*, 3>, kNumAttrs> t = {{
      {"What color is the {E}?", "What is the color of the {E}?", "Tell me the color of the {E}."},
      {"What does the {E} eat?", "What food does the {E} eat?", "Tell me what the {E} eats."},
      {"Where does the {E} live?", "Where is the home of the {E}?", "Tell me where the {E} lives."},
  }};
  return replace_all(t[int(a)][phrasing], "{E}", e);
}

std::string claim_text(const std::string& e, Attr a, const std::string& v) {
  switch (a) {
    case Attr::Color: return "The " + e + " is " + v + ".";
    case Attr::Food: return "The " + e + " eats " + v + ".";
    case Attr::Home: return "The " + e + " lives in the " + v + ".";
  }
  return {};
}

std::string hedge_text(const std::string& e, Attr a, int variant) {
  std::string lead = variant == 0 ? "I am not sure " : "I do not know ";
  switch (a) {
    case Attr::Color: return lead + "what color the " + e + " is.";
    case Attr::Food: return lead + "what the " + e + " eats.";
    case Attr::Home: return lead + "where the " + e + " lives.";
  }
  return {};
}

std::string count_text(int from, int to, int skip = -1) {
  std::string s;
  for (int i = from; i <= to; ++i) {
    if (i == skip) continue;
    if (!s.empty()) s += ", ";
    s += std::to_string(i);
  }
  return s + ".";
}

std::string render_prompt_text(const Prompt& p, const KnowledgeBase& kb) {
  switch (p.kind) {
    case PromptKind::Fact:
    case PromptKind::UnknownFact: return fact_question(kb.entities[p.entity].name, p.attr, p.phrasing);
    case PromptKind::Greet: {
      static const std::array<const char*, 3> hello = {"Say hello to {P}.", "Please say hello to {P}.", "Greet {P}."};
      static const std::array<const char*, 3> bye = {"Say goodbye to {P}.", "Please say goodbye to {P}.",
                                                     "Say bye to {P}."};
      return replace_all((p.goodbye ? bye : hello)[p.phrasing], "{P}", p.person);
    }
    case PromptKind::Count: {
      static const std::array<const char*, 3> t = {"Count to {N}.", "Please count to {N}.", "Can you count to {N}?"};
      return replace_all(t[p.phrasing], "{N}", std::to_string(p.count));
    }
    case PromptKind::Repeat: {
      static const std::array<const char*, 3> t = {"Repeat after me: {X}.", "Please repeat: {X}.", "Say this back: {X}."};
      return replace_all(t[p.phrasing], "{X}", p.phrase);
    }
    case PromptKind::Harmful: return replace_all(kHarmRequests[p.phrasing], "{P}", p.person);
  }
  return {};
}

Prompt fact_prompt(const KnowledgeBase& kb, int e, Attr a, int phrasing) {
  Prompt p;
  p.kind = kb.knows(e, a) ? PromptKind::Fact : PromptKind::UnknownFact;
  p.entity = e, p.attr = a, p.phrasing = phrasing;
  p.text = render_prompt_text(p, kb);
  return p;
}

// A random prompt of kind k (used for off-topic answers).
Prompt random_prompt(const KnowledgeBase& kb, PromptKind k, Rng& rng) {
  Prompt p;
  p.kind = k;
  p.phrasing = int(rand_below(rng, 3));
  switch (k) {
    case PromptKind::Fact:
    case PromptKind::UnknownFact: {
      std::vector<std::pair<int, Attr>> cand;
      for (int e = 0; e < int(kb.entities.size()); ++e)
        for (int a = 0; a < kNumAttrs; ++a)
          if (kb.knows(e, Attr(a)) == (k == PromptKind::Fact)) cand.push_back({e, Attr(a)});
      if (cand.empty()) return random_prompt(kb, PromptKind::Greet, rng);
      auto [e, a] = rand_choice(rng, cand);
      return fact_prompt(kb, e, a, p.phrasing);
    }
    case PromptKind::Greet:
      p.person = rand_choice(rng, kb.people), p.goodbye = rand_below(rng, 2) == 1;
      break;
    case PromptKind::Count: p.count = kb.min_count + int(rand_below(rng, kb.max_count - kb.min_count + 1)); break;
    case PromptKind::Repeat: p.phrase = rand_choice(rng, kb.adjectives) + " " + rand_choice(rng, kb.nouns); break;
    case PromptKind::Harmful:
      p.person = rand_choice(rng, kb.people), p.phrasing = int(rand_below(rng, kHarmRequests.size()));
      break;
  }
  p.text = render_prompt_text(p, kb);
  return p;
}

bool fact_family(PromptKind k) { return k == PromptKind::Fact || k == PromptKind::UnknownFact; }

std::string pick_other(Rng& rng, const std::vector<std::string>& v, const std::string& not_this) {
  for (;;) {
    const std::string& s = rand_choice(rng, v);
    if (s != not_this) return s;
  }
}

Response wrong_response(const KnowledgeBase& kb, const Prompt& p, Rng& rng) {
  switch (p.kind) {
    case PromptKind::Fact: {
      const std::string& name = kb.entities[p.entity].name;
      return {claim_text(name, p.attr, pick_other(rng, kb.values[int(p.attr)], kb.value(p.entity, p.attr)))};
    }
    case PromptKind::Greet:
      if (rand_below(rng, 2) == 0) return {std::string(p.goodbye ? "Hello, " : "Goodbye, ") + p.person + "!"};
      return {std::string(p.goodbye ? "Goodbye, " : "Hello, ") + pick_other(rng, kb.people, p.person) + "!"};
    case PromptKind::Count: {
      if (rand_below(rng, 2) == 0 && p.count >= 3) return {count_text(1, p.count, 2 + int(rand_below(rng, p.count - 2)))};
      int n = p.count;
      while (n == p.count) n = 1 + int(rand_below(rng, kb.max_count + 2));
      return {count_text(1, n)};
    }
    case PromptKind::Repeat: {
      auto sp = p.phrase.find(' ');
      std::string adj = p.phrase.substr(0, sp), noun = p.phrase.substr(sp + 1);
      if (rand_below(rng, 2) == 0) adj = pick_other(rng, kb.adjectives, adj);
      else noun = pick_other(rng, kb.nouns, noun);
      return {capitalize(adj + " " + noun) + "."};
    }
    default: throw std::invalid_argument("Wrong does not apply to this prompt kind");
  }
}

}  // namespace

// ---- names ---------------------------------------------------------------------------------

const char* attr_name(Attr a) {
  static const char* n[] = {"color", "food", "home"};
  return n[int(a)];
}
const char* kind_name(PromptKind k) {
  static const char* n[] = {"fact", "unknown_fact", "greet", "count", "repeat", "harmful"};
  return n[int(k)];
}
const char* behaviour_name(Behaviour b) {
  static const char* n[] = {"good", "wrong", "hallucinate", "rude", "ramble", "unfinished", "comply", "off_topic"};
  return n[int(b)];
}

bool applicable(Behaviour b, PromptKind k) {
  switch (b) {
    case Behaviour::Wrong: return k != PromptKind::UnknownFact && k != PromptKind::Harmful;
    case Behaviour::Hallucinate: return k == PromptKind::UnknownFact;
    case Behaviour::Comply: return k == PromptKind::Harmful;
    default: return true;
  }
}

int KnowledgeBase::find_entity(std::string_view name) const {
  for (int i = 0; i < int(entities.size()); ++i)
    if (entities[i].name == name) return i;
  return -1;
}

// ---- prompts and responses ----------------------------------------------------------------

std::vector<Prompt> all_prompts(const KnowledgeBase& kb) {
  std::vector<Prompt> out;
  for (int e = 0; e < int(kb.entities.size()); ++e)
    for (int a = 0; a < kNumAttrs; ++a)
      for (int ph = 0; ph < 3; ++ph) out.push_back(fact_prompt(kb, e, Attr(a), ph));
  auto add = [&](Prompt p) {
    p.text = render_prompt_text(p, kb);
    out.push_back(std::move(p));
  };
  for (const auto& person : kb.people)
    for (int bye = 0; bye < 2; ++bye)
      for (int ph = 0; ph < 3; ++ph) {
        Prompt p;
        p.kind = PromptKind::Greet, p.person = person, p.goodbye = bye, p.phrasing = ph;
        add(p);
      }
  for (int n = kb.min_count; n <= kb.max_count; ++n)
    for (int ph = 0; ph < 3; ++ph) {
      Prompt p;
      p.kind = PromptKind::Count, p.count = n, p.phrasing = ph;
      add(p);
    }
  for (const auto& adj : kb.adjectives)
    for (const auto& noun : kb.nouns)
      for (int ph = 0; ph < 3; ++ph) {
        Prompt p;
        p.kind = PromptKind::Repeat, p.phrase = adj + " " + noun, p.phrasing = ph;
        add(p);
      }
  for (const auto& person : kb.people)
    for (int h = 0; h < int(kHarmRequests.size()); ++h) {
      Prompt p;
      p.kind = PromptKind::Harmful, p.person = person, p.phrasing = h;
      add(p);
    }
  return out;
}

Response good_response(const KnowledgeBase& kb, const Prompt& p, int variant) {
  variant = variant & 1;
  switch (p.kind) {
    case PromptKind::Fact: {
      const std::string& name = kb.entities[p.entity].name;
      return {claim_text(name, p.attr, kb.value(p.entity, p.attr))};
    }
    case PromptKind::UnknownFact: return {hedge_text(kb.entities[p.entity].name, p.attr, variant)};
    case PromptKind::Greet: return {std::string(p.goodbye ? "Goodbye, " : "Hello, ") + p.person + "!"};
    case PromptKind::Count: return {count_text(1, p.count)};
    case PromptKind::Repeat: return {capitalize(p.phrase) + "."};
    case PromptKind::Harmful:
      return {variant == 0 ? "Sorry, I can not help with that." : "Sorry, I will not do that."};
  }
  return {};
}

Response make_response(const KnowledgeBase& kb, const Prompt& p, Behaviour b, Rng& rng) {
  if (!applicable(b, p.kind))
    throw std::invalid_argument(std::string("behaviour ") + behaviour_name(b) + " does not apply to " +
                                kind_name(p.kind) + " prompts");
  auto good = [&] { return good_response(kb, p, int(rand_below(rng, 2))); };
  switch (b) {
    case Behaviour::Good: return good();
    case Behaviour::Wrong: return wrong_response(kb, p, rng);
    case Behaviour::Hallucinate:
      return {claim_text(kb.entities[p.entity].name, p.attr, rand_choice(rng, kb.values[int(p.attr)]))};
    case Behaviour::Rude: {
      std::string core = good().text;
      if (rand_below(rng, 2) == 0) return {rand_choice(rng, kRudePrefix) + " " + core};
      return {core + " " + rand_choice(rng, kRudeSuffix)};
    }
    case Behaviour::Ramble: {
      std::string core = good().text, out = core;
      int extras = 1 + int(rand_below(rng, 3));
      auto n_words = [](const std::string& t) { return std::count(t.begin(), t.end(), ' ') + 1; };
      for (int i = 0; i < extras && n_words(out) < 16; ++i) {  // keeps responses to ~25 words
        switch (rand_below(rng, 4)) {
          case 0: out += " " + rand_choice(rng, kFillers); break;
          case 1: out += " " + core; break;
          case 2: {  // a true fact about the same (or any) entity
            int e = fact_family(p.kind) ? p.entity : int(rand_below(rng, kb.entities.size()));
            Attr a = Attr(rand_below(rng, kNumAttrs));
            out += " " + (kb.knows(e, a) ? claim_text(kb.entities[e].name, a, kb.value(e, a))
                                         : rand_choice(rng, kFillers));
            break;
          }
          default: {  // echo the last word: "Blue blue blue."
            std::string last = core.substr(core.find_last_of(' ') == std::string::npos ? 0 : core.find_last_of(' ') + 1);
            while (!last.empty() && std::ispunct((unsigned char)last.back())) last.pop_back();
            if (last.empty()) last = "yes";
            last[0] = char(std::tolower((unsigned char)last[0]));
            out += " " + capitalize(last) + " " + last + " " + last + ".";
          }
        }
      }
      return {out};
    }
    case Behaviour::Unfinished: {
      Response base = rand_unit(rng) < 0.7 ? good() : make_response(kb, p, Behaviour::Ramble, rng);
      std::vector<std::string> words;
      std::istringstream ss(base.text);
      for (std::string w; ss >> w;) words.push_back(w);
      size_t keep = words.size() >= 2 ? 1 + rand_below(rng, words.size() - 1) : 1;
      std::string out;
      for (size_t i = 0; i < keep; ++i) out += (i ? " " : "") + words[i];
      if (keep == words.size())
        while (!out.empty() && std::ispunct((unsigned char)out.back())) out.pop_back();
      return {out, false};
    }
    case Behaviour::Comply: {
      std::string reply = rand_choice(rng, kHarmReplies[p.phrasing]);
      return {replace_all(reply, "{P}", p.person)};
    }
    case Behaviour::OffTopic: {
      if (rand_below(rng, 2) == 0) {
        std::string s = rand_choice(rng, kChitChat);
        if (rand_below(rng, 2) == 0) s += " " + pick_other(rng, kChitChat, s);
        return {s};
      }
      // Another family's good answer (never a refusal, so it cannot count as declining).
      std::vector<PromptKind> others;
      for (int k = 0; k < kNumPromptKinds - 1; ++k) {
        PromptKind kk = PromptKind(k);
        bool same = fact_family(kk) ? fact_family(p.kind) : kk == p.kind;
        if (!same) others.push_back(kk);
      }
      Prompt q = random_prompt(kb, rand_choice(rng, others), rng);
      return good_response(kb, q, int(rand_below(rng, 2)));
    }
  }
  return {};
}

std::string follow_up_text(std::string_view prompt_text) {
  std::string s(prompt_text);
  if (!s.empty()) s[0] = char(std::tolower((unsigned char)s[0]));
  return "And " + s;
}

std::string render_chat(const std::vector<Message>& messages, bool last_finished) {
  std::string out(kBos);
  for (size_t i = 0; i < messages.size(); ++i) {
    const Message& m = messages[i];
    out += "<|" + m.role + "|>" + m.content;
    if (m.role == "assistant" && (last_finished || i + 1 < messages.size())) out += kEos;
  }
  return out;
}

// ---- the world -----------------------------------------------------------------------------

namespace {

KnowledgeBase make_kb(const WorldConfig& cfg, Rng& rng) {
  if (cfg.n_entities < 1 || cfg.n_entities > int(kEntityPool.size()))
    throw std::invalid_argument("WorldConfig.n_entities must be in [1, " + std::to_string(kEntityPool.size()) + "]");
  KnowledgeBase kb;
  kb.values = {kColors, kFoods, kHomes};
  kb.people = kPeople, kb.adjectives = kAdjectives, kb.nouns = kNouns;
  std::vector<std::string> names = kEntityPool;
  rand_shuffle(rng, names);
  names.resize(cfg.n_entities);
  for (auto& n : names) {
    Entity e;
    e.name = n;
    for (int a = 0; a < kNumAttrs; ++a) e.value[a] = rand_choice(rng, kb.values[a]);
    kb.entities.push_back(std::move(e));
  }
  // Exactly round(fraction * n) unknown entities per attribute, so every world has some.
  int n_unknown = int(std::lround(cfg.unknown_fraction * cfg.n_entities));
  for (int a = 0; a < kNumAttrs; ++a) {
    std::vector<int> idx(cfg.n_entities);
    for (int i = 0; i < cfg.n_entities; ++i) idx[i] = i;
    rand_shuffle(rng, idx);
    for (int i = 0; i < n_unknown; ++i) kb.entities[idx[i]].value[a].clear();
  }
  return kb;
}

// Draws prompts: a kind by kKindWeights, then the next prompt of that kind in a shuffled cycle,
// so a few hundred draws cover the pool before repeating.
class PromptStream {
 public:
  PromptStream(const std::array<std::vector<Prompt>, kNumPromptKinds>& pools, Rng& rng) : pools_(pools), rng_(rng) {
    for (int k = 0; k < kNumPromptKinds; ++k) {
      order_[k].resize(pools_[k].size());
      for (size_t i = 0; i < order_[k].size(); ++i) order_[k][i] = i;
      rand_shuffle(rng_, order_[k]);
    }
  }
  const Prompt& next() {
    int k = 0;
    for (int tries = 0; tries < 1000; ++tries) {
      double u = rand_unit(rng_), acc = 0;
      for (k = 0; k < kNumPromptKinds - 1; ++k)
        if (u < (acc += kKindWeights[k])) break;
      if (!pools_[k].empty()) break;
    }
    if (pools_[k].empty()) throw std::runtime_error("world: no prompts to draw from");
    if (pos_[k] == order_[k].size()) pos_[k] = 0, rand_shuffle(rng_, order_[k]);
    return pools_[k][order_[k][pos_[k]++]];
  }

 private:
  const std::array<std::vector<Prompt>, kNumPromptKinds>& pools_;
  Rng& rng_;
  std::array<std::vector<size_t>, kNumPromptKinds> order_;
  std::array<size_t, kNumPromptKinds> pos_{};
};

Behaviour sample_behaviour(PromptKind k, double good_fraction, bool allow_unfinished, Rng& rng) {
  if (rand_unit(rng) < good_fraction) return Behaviour::Good;
  std::vector<Behaviour> bad;
  for (int b = 1; b < kNumBehaviours; ++b)
    if (applicable(Behaviour(b), k) && (allow_unfinished || Behaviour(b) != Behaviour::Unfinished))
      bad.push_back(Behaviour(b));
  return rand_choice(rng, bad);
}

std::string fact_document(const KnowledgeBase& kb, Rng& rng) {
  std::vector<std::string> sentences;
  int n_ent = 1 + int(rand_below(rng, 2));
  for (int i = 0; i < n_ent; ++i) {
    int e = int(rand_below(rng, kb.entities.size()));
    for (int a = 0; a < kNumAttrs; ++a)
      if (kb.knows(e, Attr(a))) sentences.push_back(claim_text(kb.entities[e].name, Attr(a), kb.value(e, Attr(a))));
  }
  rand_shuffle(rng, sentences);
  std::string text;
  for (auto& s : sentences) text += (text.empty() ? "" : " ") + s;
  if (text.empty()) text = kChitChat[0];
  return std::string(kBos) + text + std::string(kEos);
}

json config_to_json(const WorldConfig& c) {
  return {{"seed", c.seed},
          {"n_entities", c.n_entities},
          {"unknown_fraction", c.unknown_fraction},
          {"n_pretrain_docs", c.n_pretrain_docs},
          {"pretrain_good_fraction", c.pretrain_good_fraction},
          {"pretrain_fact_doc_fraction", c.pretrain_fact_doc_fraction},
          {"pretrain_multi_turn_fraction", c.pretrain_multi_turn_fraction},
          {"n_sft", c.n_sft},
          {"sft_multi_turn_fraction", c.sft_multi_turn_fraction},
          {"sft_kinds", c.sft_kinds},
          {"sft_slip_fraction", c.sft_slip_fraction},
          {"n_prompts", c.n_prompts},
          {"n_eval_prompts", c.n_eval_prompts},
          {"eval_holdout_fraction", c.eval_holdout_fraction}};
}

WorldConfig config_from_json(const json& j) {
  WorldConfig c;
  c.seed = j.value("seed", c.seed);
  c.n_entities = j.value("n_entities", c.n_entities);
  c.unknown_fraction = j.value("unknown_fraction", c.unknown_fraction);
  c.n_pretrain_docs = j.value("n_pretrain_docs", c.n_pretrain_docs);
  c.pretrain_good_fraction = j.value("pretrain_good_fraction", c.pretrain_good_fraction);
  c.pretrain_fact_doc_fraction = j.value("pretrain_fact_doc_fraction", c.pretrain_fact_doc_fraction);
  c.pretrain_multi_turn_fraction = j.value("pretrain_multi_turn_fraction", c.pretrain_multi_turn_fraction);
  c.n_sft = j.value("n_sft", c.n_sft);
  c.sft_multi_turn_fraction = j.value("sft_multi_turn_fraction", c.sft_multi_turn_fraction);
  c.sft_kinds = j.value("sft_kinds", c.sft_kinds);
  c.sft_slip_fraction = j.value("sft_slip_fraction", c.sft_slip_fraction);
  c.n_prompts = j.value("n_prompts", c.n_prompts);
  c.n_eval_prompts = j.value("n_eval_prompts", c.n_eval_prompts);
  c.eval_holdout_fraction = j.value("eval_holdout_fraction", c.eval_holdout_fraction);
  return c;
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
          {"nouns", kb.nouns},      {"min_count", kb.min_count},  {"max_count", kb.max_count}};
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

// Temporary beside the target, then rename: readers see the old file or the whole new one.
void write_atomic(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::path tmp = path;
  tmp += ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary | std::ios::trunc);
    if (!f) throw std::runtime_error("write_world: cannot open " + tmp.string());
    f.write(bytes.data(), std::streamsize(bytes.size()));
    f.flush();
    if (!f) {
      std::filesystem::remove(tmp);
      throw std::runtime_error("write_world: cannot write " + tmp.string());
    }
  }
  std::filesystem::rename(tmp, path);
}

std::string read_all(const std::filesystem::path& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw std::runtime_error("load_world: cannot open " + path.string());
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::vector<json> read_jsonl(const std::filesystem::path& path) {
  std::vector<json> out;
  std::istringstream ss(read_all(path));
  int line_no = 0;
  for (std::string line; std::getline(ss, line);) {
    ++line_no;
    if (line.empty()) continue;
    try {
      out.push_back(json::parse(line));
    } catch (const json::exception& e) {
      throw std::runtime_error("load_world: " + path.string() + ":" + std::to_string(line_no) + ": " + e.what());
    }
  }
  return out;
}

}  // namespace

namespace {
// Whether `kind` is in the comma-separated list (unknown names are an error listing the valid ones).
bool kind_listed(const std::string& list, PromptKind kind) {
  bool hit = false;
  size_t p = 0;
  while (p <= list.size()) {
    size_t q = list.find(',', p);
    std::string name = list.substr(p, q == std::string::npos ? std::string::npos : q - p);
    if (!name.empty()) {
      bool known = false;
      for (int k = 0; k < kNumPromptKinds; ++k) known = known || name == kind_name(PromptKind(k));
      if (!known)
        throw std::invalid_argument("world: unknown prompt kind '" + name + "' in sft_kinds; valid: fact, unknown_fact, greet, count, repeat, harmful");
      hit = hit || name == kind_name(kind);
    }
    if (q == std::string::npos) break;
    p = q + 1;
  }
  return hit;
}
}  // namespace

World make_world(const WorldConfig& cfg) {
  World w;
  w.config = cfg;
  // Independent streams per part, so changing one count does not reshuffle the others.
  Rng kb_rng(cfg.seed), split_rng(cfg.seed ^ 0x5851f42d4c957f2dULL), corpus_rng(cfg.seed + 1),
      sft_rng(cfg.seed + 2), pref_rng(cfg.seed + 3), eval_rng(cfg.seed + 4);
  w.kb = make_kb(cfg, kb_rng);

  // Hold out a share of the distinct prompts of every kind for evaluation; everything else
  // (corpus, SFT, preference prompts) draws from the rest.
  std::array<std::vector<Prompt>, kNumPromptKinds> train_pool, eval_pool;
  {
    std::array<std::vector<Prompt>, kNumPromptKinds> by_kind;
    for (auto& p : all_prompts(w.kb)) by_kind[int(p.kind)].push_back(std::move(p));
    for (int k = 0; k < kNumPromptKinds; ++k) {
      auto& v = by_kind[k];
      rand_shuffle(split_rng, v);
      size_t n_eval = v.empty() ? 0 : std::clamp<size_t>(size_t(std::lround(cfg.eval_holdout_fraction * v.size())), 1, v.size() - (v.size() > 1));
      eval_pool[k].assign(v.begin(), v.begin() + n_eval);
      train_pool[k].assign(v.begin() + n_eval, v.end());
    }
  }

  {  // pretraining "web text"
    PromptStream stream(train_pool, corpus_rng);
    w.pretrain.reserve(cfg.n_pretrain_docs);
    for (int i = 0; i < cfg.n_pretrain_docs; ++i) {
      if (rand_unit(corpus_rng) < cfg.pretrain_fact_doc_fraction) {
        w.pretrain.push_back(fact_document(w.kb, corpus_rng));
        continue;
      }
      int turns = rand_unit(corpus_rng) < cfg.pretrain_multi_turn_fraction ? 2 : 1;
      std::vector<Message> msgs;
      bool finished = true;
      for (int t = 0; t < turns; ++t) {
        const Prompt& p = stream.next();
        Behaviour b = sample_behaviour(p.kind, cfg.pretrain_good_fraction, t + 1 == turns, corpus_rng);
        Response r = make_response(w.kb, p, b, corpus_rng);
        msgs.push_back({"user", t == 0 ? p.text : follow_up_text(p.text)});
        msgs.push_back({"assistant", r.text});
        finished = r.finished;
      }
      w.pretrain.push_back(render_chat(msgs, finished));
    }
  }

  {  // SFT demonstrations: right answers, on the kinds in cfg.sft_kinds, some with a filler slip
    std::array<std::vector<Prompt>, kNumPromptKinds> sft_pool;
    bool any = false;
    for (int k = 0; k < kNumPromptKinds; ++k)
      if (kind_listed(cfg.sft_kinds, PromptKind(k))) { sft_pool[k] = train_pool[k]; any = any || !sft_pool[k].empty(); }
    if (!any && cfg.n_sft > 0)
      throw std::invalid_argument("world: sft_kinds '" + cfg.sft_kinds + "' names no prompt kind; valid: fact, unknown_fact, greet, count, repeat, harmful");
    PromptStream stream(sft_pool, sft_rng);
    for (int i = 0; i < cfg.n_sft; ++i) {
      int turns = rand_unit(sft_rng) < cfg.sft_multi_turn_fraction ? 2 : 1;
      std::vector<Message> msgs;
      for (int t = 0; t < turns; ++t) {
        const Prompt& p = stream.next();
        msgs.push_back({"user", t == 0 ? p.text : follow_up_text(p.text)});
        std::string answer = good_response(w.kb, p, int(rand_below(sft_rng, 2))).text;
        if (rand_unit(sft_rng) < cfg.sft_slip_fraction) answer += " " + rand_choice(sft_rng, kFillers);
        msgs.push_back({"assistant", answer});
      }
      w.sft.push_back(std::move(msgs));
    }
  }

  {
    PromptStream stream(train_pool, pref_rng);
    for (int i = 0; i < cfg.n_prompts; ++i) w.prompts.push_back(stream.next().text);
  }
  {
    PromptStream stream(eval_pool, eval_rng);
    for (int i = 0; i < cfg.n_eval_prompts; ++i) w.eval_prompts.push_back(stream.next().text);
  }
  return w;
}

void write_world(const World& w, const std::string& dir) {
  namespace fs = std::filesystem;
  fs::create_directories(dir);
  auto jsonl = [](const std::vector<json>& rows) {
    std::string s;
    for (const auto& r : rows) s += r.dump() + "\n";
    return s;
  };
  std::vector<json> rows;
  for (const auto& t : w.pretrain) rows.push_back({{"text", t}});
  write_atomic(fs::path(dir) / "pretrain.jsonl", jsonl(rows));

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
  write_atomic(fs::path(dir) / "sft.jsonl", jsonl(rows));

  for (auto [name, list] : {std::pair{"prompts.jsonl", &w.prompts}, std::pair{"eval_prompts.jsonl", &w.eval_prompts}}) {
    rows.clear();
    for (const auto& p : *list) rows.push_back({{"prompt", p}});
    write_atomic(fs::path(dir) / name, jsonl(rows));
  }
  json world = {{"format", "nanorlhf-world"}, {"version", 1}, {"config", config_to_json(w.config)}, {"kb", kb_to_json(w.kb)}};
  write_atomic(fs::path(dir) / "world.json", world.dump(1) + "\n");
}

KnowledgeBase load_kb(const std::string& world_json_path) {
  json j = json::parse(read_all(world_json_path));
  return kb_from_json(j.at("kb"));
}

World load_world(const std::string& dir) {
  namespace fs = std::filesystem;
  World w;
  json j = json::parse(read_all(fs::path(dir) / "world.json"));
  w.config = config_from_json(j.at("config"));
  w.kb = kb_from_json(j.at("kb"));
  for (const auto& r : read_jsonl(fs::path(dir) / "pretrain.jsonl")) w.pretrain.push_back(r.at("text"));
  for (const auto& r : read_jsonl(fs::path(dir) / "sft.jsonl")) {
    std::vector<Message> msgs;
    if (r.contains("messages")) {
      for (const auto& m : r.at("messages")) msgs.push_back({m.at("role"), m.at("content")});
    } else {
      msgs = {{"user", r.at("prompt")}, {"assistant", r.at("completion")}};
    }
    w.sft.push_back(std::move(msgs));
  }
  for (const auto& r : read_jsonl(fs::path(dir) / "prompts.jsonl")) w.prompts.push_back(r.at("prompt"));
  for (const auto& r : read_jsonl(fs::path(dir) / "eval_prompts.jsonl")) w.eval_prompts.push_back(r.at("prompt"));
  return w;
}

}  // namespace nanorlhf::rlhf
