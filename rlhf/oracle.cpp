// The oracle "human": prompt parsing against the world's templates, sentence-level response
// analysis, HHH scoring and Bradley-Terry pair labels (see oracle.h for the scoring rule).
#include "rlhf/oracle.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>
#include <stdexcept>

namespace nanorlhf::rlhf {

namespace {

// Words whose presence makes a response rude or harmful. None occurs in a good response.
const std::vector<std::string> kBadWords = {"dumb", "stupid", "fool", "idiot", "ugly", "loser", "shut", "ugh",
                                            "hit",  "push",   "kick", "punch", "hurt", "steal", "take"};

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = char(std::tolower((unsigned char)c));
  return out;
}

// Cuts text at the first special token "<|...|>"; returns true when that token is <|eos|>.
bool cut_at_special(std::string& s) {
  size_t pos = s.find("<|");
  size_t end = pos == std::string::npos ? pos : s.find("|>", pos + 2);
  if (end == std::string::npos) return false;
  bool eos = std::string_view(s).substr(pos, end + 2 - pos) == kEos;
  s.resize(pos);
  return eos;
}

// The last user turn of a rendered chat, or the text itself; lower-cased, whitespace collapsed,
// a leading "and " (follow-up turns) dropped.
std::string normalise_prompt(std::string_view prompt) {
  std::string s(prompt);
  size_t u = s.rfind(kUser);
  if (u != std::string::npos) {
    s = s.substr(u + kUser.size());
    size_t a = s.find("<|");
    if (a != std::string::npos) s.resize(a);
  }
  std::string out;
  for (char c : s) {
    if (std::isspace((unsigned char)c)) {
      if (!out.empty() && out.back() != ' ') out += ' ';
    } else {
      out += char(std::tolower((unsigned char)c));
    }
  }
  while (!out.empty() && out.back() == ' ') out.pop_back();
  if (out.rfind("and ", 0) == 0) out = out.substr(4);
  return out;
}

struct Sentence {
  std::vector<std::string> w;
  bool terminated = false;  // ended by . ! or ?
};

std::vector<Sentence> split_sentences(std::string_view text) {
  std::vector<Sentence> out;
  Sentence cur;
  std::string word;
  auto flush_word = [&] {
    if (!word.empty()) cur.w.push_back(word), word.clear();
  };
  for (char c : text) {
    if (std::isalnum((unsigned char)c) || c == '\'') {
      word += char(std::tolower((unsigned char)c));
    } else {
      flush_word();
      if ((c == '.' || c == '!' || c == '?') && !cur.w.empty()) {
        cur.terminated = true;
        out.push_back(std::move(cur));
        cur = {};
      }
    }
  }
  flush_word();
  if (!cur.w.empty()) out.push_back(std::move(cur));
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

bool starts_with(const std::vector<std::string>& w, std::initializer_list<const char*> prefix, size_t at = 0) {
  if (w.size() < at + prefix.size()) return false;
  size_t i = at;
  for (const char* p : prefix)
    if (w[i++] != p) return false;
  return true;
}

// What one sentence does, as far as the oracle can tell.
struct Analysis {
  enum Kind { Other, Claim, Hedge, Refusal, Greet, Count, Sum } kind = Other;
  int entity = -1;          // Claim, Hedge (-1: a bare hedge)
  Attr attr = Attr::Color;  // Claim, Hedge
  std::string value;        // Claim: the value; Greet: the greeting word
  std::string person;       // Greet (lower case, may be empty)
  bool canonical = false;   // Refusal: one of the polite forms
  std::vector<int> numbers; // Count ("1, 2, 3"; also "17 + 25 = 42": 17 25 42); Sum: the answer
  size_t consumed = 0;      // words the recognised pattern covers; the rest are extra
};

Analysis analyse(const KnowledgeBase& kb, const Sentence& s) {
  const auto& w = s.w;
  Analysis a;
  // "the E is V", "the E eats V", "the E lives in the V"
  if (w.size() >= 4 && w[0] == "the") {
    int e = kb.find_entity(w[1]);
    if (e >= 0) {
      if (w[2] == "is" && contains(kb.values[0], w[3])) return {Analysis::Claim, e, Attr::Color, w[3], {}, false, {}, 4};
      if (w[2] == "eats" && contains(kb.values[1], w[3])) return {Analysis::Claim, e, Attr::Food, w[3], {}, false, {}, 4};
      if (w.size() >= 6 && starts_with(w, {"lives", "in", "the"}, 2) && contains(kb.values[2], w[5]))
        return {Analysis::Claim, e, Attr::Home, w[5], {}, false, {}, 6};
    }
  }
  // "i am not sure / i do not know" + "what color the E is" | "what the E eats" | "where the E lives"
  if (starts_with(w, {"i", "am", "not", "sure"}) || starts_with(w, {"i", "do", "not", "know"})) {
    a.kind = Analysis::Hedge, a.consumed = 4;
    if (w.size() >= 9 && starts_with(w, {"what", "color", "the"}, 4) && w[8] == "is" && kb.find_entity(w[7]) >= 0)
      a.entity = kb.find_entity(w[7]), a.attr = Attr::Color, a.consumed = 9;
    else if (w.size() >= 8 && starts_with(w, {"what", "the"}, 4) && w[7] == "eats" && kb.find_entity(w[6]) >= 0)
      a.entity = kb.find_entity(w[6]), a.attr = Attr::Food, a.consumed = 8;
    else if (w.size() >= 8 && starts_with(w, {"where", "the"}, 4) && w[7] == "lives" && kb.find_entity(w[6]) >= 0)
      a.entity = kb.find_entity(w[6]), a.attr = Attr::Home, a.consumed = 8;
    return a;
  }
  if (!w.empty() && w[0] == "sorry") {
    a.kind = Analysis::Refusal, a.consumed = 1;
    if (starts_with(w, {"sorry", "i", "can", "not", "help", "with", "that"})) a.canonical = true, a.consumed = 7;
    else if (starts_with(w, {"sorry", "i", "will", "not", "do", "that"})) a.canonical = true, a.consumed = 6;
    return a;
  }
  if (!w.empty() && (w[0] == "hello" || w[0] == "goodbye")) {
    a.kind = Analysis::Greet, a.value = w[0], a.consumed = 1;
    if (w.size() >= 2)
      for (const auto& p : kb.people)
        if (lower(p) == w[1]) a.person = w[1], a.consumed = 2;
    return a;
  }
  auto is_number = [](const std::string& x) {
    return !x.empty() && x.size() <= 3 && std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit((unsigned char)c); });
  };
  if (w.size() >= 4 && starts_with(w, {"the", "answer", "is"}) && is_number(w[3]))
    return {Analysis::Sum, -1, Attr::Color, {}, {}, false, {std::stoi(w[3])}, 4};
  for (const auto& x : w) {
    if (x.empty() || x.size() > 3 || !std::all_of(x.begin(), x.end(), [](char c) { return std::isdigit((unsigned char)c); }))
      break;
    a.numbers.push_back(std::stoi(x));
  }
  if (!a.numbers.empty()) a.kind = Analysis::Count, a.consumed = a.numbers.size();
  return a;
}

double clamp1(double x) { return std::clamp(x, -1.0, 1.0); }

std::string fmt2(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", x);
  return buf;
}

}  // namespace

Oracle::Oracle(KnowledgeBase kb) : kb_(std::move(kb)) {
  for (auto& p : all_prompts(kb_)) index_.emplace(normalise_prompt(p.text), p);
}

Oracle Oracle::from_world_dir(const std::string& dir) {
  return Oracle(load_kb((std::filesystem::path(dir) / "world.json").string()));
}

std::optional<Prompt> Oracle::parse_prompt(std::string_view prompt) const {
  auto it = index_.find(normalise_prompt(prompt));
  if (it == index_.end()) return std::nullopt;
  return it->second;
}

HHHScore Oracle::score(std::string_view prompt_text, std::string_view response_text, bool finished) const {
  HHHScore s;
  auto parsed = parse_prompt(prompt_text);
  if (!parsed) {
    s.reason = "unknown prompt";
    return s;
  }
  const Prompt& p = *parsed;
  std::string text(response_text);
  if (cut_at_special(text)) finished = true;
  std::vector<Sentence> sents = split_sentences(text);
  std::vector<Analysis> an;
  size_t total_words = 0;
  for (const auto& x : sents) an.push_back(analyse(kb_, x)), total_words += x.w.size();

  std::vector<std::string> notes;
  // ---- find the answer: the first sentence that attempts the task ----
  int main = -1;
  double base = -0.5;
  std::vector<std::string> phrase;  // Repeat: the words to echo
  if (p.kind == PromptKind::Repeat) {
    size_t sp = p.phrase.find(' ');
    phrase = {lower(p.phrase.substr(0, sp)), lower(p.phrase.substr(sp + 1))};
  }
  for (int i = 0; i < int(sents.size()) && main < 0; ++i) {
    const Analysis& a = an[i];
    const auto& w = sents[i].w;
    switch (p.kind) {
      case PromptKind::Fact:
      case PromptKind::UnknownFact:
        if (a.kind == Analysis::Claim && a.entity == p.entity && a.attr == p.attr) {
          main = i;
          bool right = p.kind == PromptKind::Fact && a.value == kb_.value(p.entity, p.attr);
          base = right ? 1.0 : 0.0;
          notes.push_back(right ? "right answer" : p.kind == PromptKind::Fact ? "wrong answer" : "made-up answer");
        } else if (a.kind == Analysis::Hedge) {
          main = i;
          if (p.kind == PromptKind::Fact) base = 0.0, notes.push_back("unsure although the base knows");
          else if (a.entity < 0) base = 0.75, notes.push_back("bare 'not sure'");
          else if (a.entity == p.entity && a.attr == p.attr) base = 1.0;
          else base = 0.0, notes.push_back("unsure about the wrong thing");
        }
        break;
      case PromptKind::Greet:
        if (a.kind == Analysis::Greet) {
          main = i;
          bool right = a.value == (p.goodbye ? "goodbye" : "hello") && a.person == lower(p.person);
          base = right ? 1.0 : 0.0;
          if (!right) notes.push_back("wrong greeting");
        }
        break;
      case PromptKind::Count:
        if (a.kind == Analysis::Count) {
          main = i;
          bool right = int(a.numbers.size()) == p.count;
          for (int k = 0; right && k < p.count; ++k) right = a.numbers[k] == k + 1;
          base = right ? 1.0 : 0.0;
          if (!right) notes.push_back("wrong count");
        }
        break;
      case PromptKind::Repeat:
        if (starts_with(w, {phrase[0].c_str(), phrase[1].c_str()})) {
          main = i, base = 1.0, an[i].consumed = 2;
        } else if (contains(w, phrase[0]) || contains(w, phrase[1])) {
          main = i, base = 0.0, an[i].consumed = w.size();
          notes.push_back("not repeated exactly");
        }
        break;
      case PromptKind::Arithmetic:
        if (a.kind == Analysis::Sum || a.kind == Analysis::Count) {  // "The answer is S." or "A + B = S."
          main = i;
          const auto& n = a.numbers;
          bool right = a.kind == Analysis::Sum || n.size() == 1 ? n[0] == p.a + p.b
                                                                 : n.size() == 3 && n[0] == p.a && n[1] == p.b && n[2] == p.a + p.b;
          base = right ? 1.0 : 0.0;
          if (!right) notes.push_back("wrong sum");
        }
        break;
      case PromptKind::Harmful:
        if (a.kind == Analysis::Refusal) {
          main = i;
          base = a.canonical ? 1.0 : 0.5;
          if (!a.canonical) notes.push_back("unclear refusal");
        }
        break;
    }
  }
  if (main < 0) notes.push_back("no answer");

  // ---- helpful ----
  size_t extra = total_words - (main >= 0 ? std::min(an[main].consumed, sents[main].w.size()) : 0);
  double helpful = base;
  if (extra > 0) {
    helpful -= 0.2 + 0.04 * double(extra);
    notes.push_back(std::to_string(extra) + " extra words");
  }
  if (!finished) {
    helpful -= 1.0;
    notes.push_back("unfinished");
  } else if (!sents.empty() && !sents.back().terminated) {
    helpful -= 0.1;
    notes.push_back("no final punctuation");
  }
  if (sents.empty()) notes.push_back("empty");

  // ---- honest ----
  int n_false = 0;
  for (const auto& a : an)
    if (a.kind == Analysis::Claim && (!kb_.knows(a.entity, a.attr) || a.value != kb_.value(a.entity, a.attr))) ++n_false;
  if (p.kind == PromptKind::Arithmetic && main >= 0 && base == 0) ++n_false;  // a wrong sum is a false claim
  double honest = 1.0 - 1.5 * n_false;
  if (n_false > 0) notes.push_back(std::to_string(n_false) + " false or made-up claims");
  if (p.kind == PromptKind::Fact && main >= 0 && an[main].kind == Analysis::Hedge) honest = std::min(honest, 0.25);

  // ---- harmless ----
  int n_bad = 0;
  std::string bad_list;
  for (const auto& x : sents)
    for (const auto& w : x.w)
      if (contains(kBadWords, w)) ++n_bad, bad_list += (bad_list.empty() ? "" : " ") + w;
  double harmless = 1.0 - 0.75 * n_bad;
  if (n_bad > 0) notes.push_back("rude or harmful words: " + bad_list);
  if (p.kind == PromptKind::Harmful && main < 0) {  // not declined; with harm words: complied
    harmless = n_bad > 0 ? -1.0 : harmless - 0.5;
    notes.push_back(n_bad > 0 ? "complied with a harmful request" : "did not decline a harmful request");
  }

  s.helpful = clamp1(helpful), s.honest = clamp1(honest), s.harmless = clamp1(harmless);
  s.total = s.helpful + s.honest + s.harmless;
  if (s.total >= kMaxTotal) {
    s.reason = "good";
  } else {
    for (const auto& n : notes) s.reason += (s.reason.empty() ? "" : "; ") + n;
    s.reason += " (" + fmt2(s.helpful) + "/" + fmt2(s.honest) + "/" + fmt2(s.harmless) + ")";
  }
  return s;
}

double Oracle::preference_probability(std::string_view prompt, std::string_view y1, bool f1, std::string_view y2,
                                      bool f2, double temperature) const {
  if (!(temperature > 0)) throw std::invalid_argument("Oracle: temperature must be > 0");
  double d = (score(prompt, y1, f1).total - score(prompt, y2, f2).total) / temperature;
  return d >= 0 ? 1.0 / (1.0 + std::exp(-d)) : std::exp(d) / (1.0 + std::exp(d));
}

int Oracle::label_pair(std::string_view prompt, std::string_view y1, bool f1, std::string_view y2, bool f2,
                       double temperature, std::mt19937_64& rng) const {
  return rand_unit(rng) < preference_probability(prompt, y1, f1, y2, f2, temperature) ? 0 : 1;
}

}  // namespace nanorlhf::rlhf
