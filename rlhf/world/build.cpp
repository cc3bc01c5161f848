// The builder: make_world draws a knowledge base, splits the prompts into training and held-out
// pools, and generates the web text, SFT demonstrations and preference / evaluation prompts.
#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "rlhf/world/internal.h"

namespace nanorlhf::rlhf {

using namespace world_detail;

namespace {

KnowledgeBase make_kb(const WorldConfig& cfg, Rng& rng) {
  if (cfg.n_entities < 1 || cfg.n_entities > int(kEntityPool.size()))
    throw std::invalid_argument("WorldConfig.n_entities must be in [1, " + std::to_string(kEntityPool.size()) + "]");
  KnowledgeBase kb;
  kb.values = {kColors, kFoods, kHomes};
  kb.people = kPeople, kb.adjectives = kAdjectives, kb.nouns = kNouns;
  kb.max_operand = cfg.max_operand;
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

// Draws prompts: a kind by kKindWeights (arithmetic's share arithmetic_weight when its pool is not
// empty), then the next prompt of that kind in a shuffled cycle, so a few hundred draws cover the
// pool before repeating. Without arithmetic prompts the draws are exactly those of the six kinds.
class PromptStream {
 public:
  PromptStream(const std::array<std::vector<Prompt>, kNumPromptKinds>& pools, double arithmetic_weight, Rng& rng)
      : pools_(pools), rng_(rng), weights_(kKindWeights) {
    for (int k = 0; k < kNumPromptKinds; ++k) {
      order_[k].resize(pools_[k].size());
      for (size_t i = 0; i < order_[k].size(); ++i) order_[k][i] = i;
      rand_shuffle(rng_, order_[k]);
    }
    if (pools_[int(PromptKind::Arithmetic)].empty()) {
      n_kinds_ = kNumPromptKinds - 1;
    } else {
      for (double& w : weights_) w *= 1 - arithmetic_weight;
      weights_[int(PromptKind::Arithmetic)] = arithmetic_weight;
    }
  }
  const Prompt& next() {
    int k = 0;
    for (int tries = 0; tries < 1000; ++tries) {
      double u = rand_unit(rng_), acc = 0;
      for (k = 0; k < n_kinds_ - 1; ++k)
        if (u < (acc += weights_[k])) break;
      if (!pools_[k].empty()) break;
    }
    if (pools_[k].empty()) throw std::runtime_error("world: no prompts to draw from");
    if (pos_[k] == order_[k].size()) pos_[k] = 0, rand_shuffle(rng_, order_[k]);
    return pools_[k][order_[k][pos_[k]++]];
  }

 private:
  const std::array<std::vector<Prompt>, kNumPromptKinds>& pools_;
  Rng& rng_;
  std::array<double, kNumPromptKinds> weights_;
  int n_kinds_ = kNumPromptKinds;
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

std::string kind_names() {
  std::string s;
  for (int k = 0; k < kNumPromptKinds; ++k) s += (k ? ", " : "") + std::string(kind_name(PromptKind(k)));
  return s;
}

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
        throw std::invalid_argument("world: unknown prompt kind '" + name + "' in sft_kinds; valid: " + kind_names());
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
    PromptStream stream(train_pool, cfg.arithmetic_weight, corpus_rng);
    w.pretrain.reserve(cfg.n_pretrain_docs);
    for (int i = 0; i < cfg.n_pretrain_docs; ++i) {
      if (rand_unit(corpus_rng) < cfg.pretrain_fact_doc_fraction) {
        w.pretrain.push_back(fact_document(w.kb, corpus_rng));
        continue;
      }
      int turns = rand_unit(corpus_rng) < cfg.pretrain_multi_turn_fraction ? 2 : 1;
      std::vector<nn::ChatMessage> msgs;
      bool finished = true;
      for (int t = 0; t < turns; ++t) {
        const Prompt& p = stream.next();
        Behaviour b = sample_behaviour(p.kind, cfg.pretrain_good_fraction, t + 1 == turns, corpus_rng);
        Response r = make_response(w.kb, p, b, corpus_rng);
        msgs.push_back({"user", t == 0 ? p.text : follow_up_text(p.text)});
        msgs.push_back({"assistant", r.text});
        finished = r.finished;
      }
      w.pretrain.push_back(nn::render_chat_text(msgs, false, finished));
    }
  }

  {  // SFT demonstrations: right answers, on the kinds in cfg.sft_kinds, some with a filler slip
    std::array<std::vector<Prompt>, kNumPromptKinds> sft_pool;
    bool any = false;
    for (int k = 0; k < kNumPromptKinds; ++k)
      if (kind_listed(cfg.sft_kinds, PromptKind(k))) { sft_pool[k] = train_pool[k]; any = any || !sft_pool[k].empty(); }
    if (!any && cfg.n_sft > 0)
      throw std::invalid_argument("world: sft_kinds '" + cfg.sft_kinds + "' names no prompt kind with prompts; valid: " + kind_names());
    PromptStream stream(sft_pool, cfg.arithmetic_weight, sft_rng);
    for (int i = 0; i < cfg.n_sft; ++i) {
      int turns = rand_unit(sft_rng) < cfg.sft_multi_turn_fraction ? 2 : 1;
      std::vector<nn::ChatMessage> msgs;
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
    PromptStream stream(train_pool, cfg.arithmetic_weight, pref_rng);
    for (int i = 0; i < cfg.n_prompts; ++i) w.prompts.push_back(stream.next().text);
  }
  {
    PromptStream stream(eval_pool, cfg.arithmetic_weight, eval_rng);
    for (int i = 0; i < cfg.n_eval_prompts; ++i) w.eval_prompts.push_back(stream.next().text);
  }
  return w;
}

}  // namespace nanorlhf::rlhf
