// The response generator: the good answer to a prompt and the bad behaviours of web text
// (wrong, hallucinated, rude, rambling, unfinished, compliant, off-topic), from templates.
#include <algorithm>
#include <cctype>
#include <sstream>
#include <stdexcept>

#include "rlhf/world/internal.h"

namespace nanorlhf::rlhf {

using namespace world_detail;

namespace {

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
    case PromptKind::Arithmetic:
      p.a = 1 + int(rand_below(rng, kb.max_operand)), p.b = 1 + int(rand_below(rng, kb.max_operand));
      break;
  }
  p.text = render_prompt_text(p, kb);
  return p;
}

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
    case PromptKind::Arithmetic: {  // off by one to three, either way: the slips of a careless adder
      int off = 1 + int(rand_below(rng, 3)), sum = p.a + p.b;
      int wrong = rand_below(rng, 2) == 0 || sum - off < 0 ? sum + off : sum - off;
      return {sum_text(p.a, p.b, wrong, int(rand_below(rng, 2)))};
    }
    default: throw std::invalid_argument("Wrong does not apply to this prompt kind");
  }
}

}  // namespace

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
    case PromptKind::Arithmetic: return {sum_text(p.a, p.b, p.a + p.b, variant)};
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
      for (int k = 0; k < kNumPromptKinds; ++k) {
        PromptKind kk = PromptKind(k);
        if (kk == PromptKind::Harmful || (kk == PromptKind::Arithmetic && kb.max_operand == 0)) continue;
        bool same = fact_family(kk) ? fact_family(p.kind) : kk == p.kind;
        if (!same) others.push_back(kk);
      }
      Prompt q = random_prompt(kb, rand_choice(rng, others), rng);
      return good_response(kb, q, int(rand_below(rng, 2)));
    }
  }
  return {};
}

}  // namespace nanorlhf::rlhf
