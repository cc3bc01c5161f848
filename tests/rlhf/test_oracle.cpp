// Tests of the oracle "human": maximum score for good responses, each bad behaviour below the
// good one on the criterion it violates, prompt parsing, and Bradley-Terry label noise.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include <unistd.h>

#include "rlhf/oracle.h"
#include "rlhf/world.h"

namespace nanorlhf::rlhf {
namespace {

const World& world() {
  static const World w = [] {
    WorldConfig cfg;
    cfg.n_pretrain_docs = 200;  // the corpus is not needed here
    cfg.max_operand = 12;       // with the arithmetic kind
    cfg.sft_kinds = "fact,count,repeat,arithmetic";
    return make_world(cfg);
  }();
  return w;
}
const Oracle& oracle() {
  static const Oracle o(world().kb);
  return o;
}

// The first prompt of a kind (optionally with a given phrasing).
Prompt first_prompt(PromptKind k) {
  for (const auto& p : all_prompts(world().kb))
    if (p.kind == k) return p;
  throw std::runtime_error("no prompt of that kind");
}

double sigmoid(double x) { return 1.0 / (1.0 + std::exp(-x)); }

// Without the demonstrators' filler slips (world.sft_slip_fraction, tested in test_world) every
// demonstration is the best answer.
TEST(Oracle, EverySftDemonstrationWithoutSlipsScoresTheMaximumOnEveryCriterion) {
  WorldConfig cfg;
  cfg.sft_slip_fraction = 0.0;
  cfg.n_pretrain_docs = 200;
  const World w = make_world(cfg);
  for (const auto& demo : w.sft)
    for (size_t i = 1; i < demo.size(); i += 2) {
      HHHScore s = oracle().score(demo[i - 1].content, demo[i].content, true);
      EXPECT_EQ(s.helpful, 1.0) << demo[i - 1].content << " -> " << demo[i].content << ": " << s.reason;
      EXPECT_EQ(s.honest, 1.0) << demo[i].content;
      EXPECT_EQ(s.harmless, 1.0) << demo[i].content;
      EXPECT_EQ(s.total, Oracle::kMaxTotal);
      EXPECT_EQ(s.reason, "good");
    }
}

TEST(Oracle, BothGoodPhrasingsOfEveryPromptScoreTheMaximum) {
  for (const auto& p : all_prompts(world().kb))
    for (int v = 0; v < 2; ++v) {
      Response r = good_response(world().kb, p, v);
      EXPECT_EQ(oracle().score(p.text, r.text, true).total, Oracle::kMaxTotal) << p.text << " -> " << r.text;
    }
}

// Each bad behaviour is strictly below the good response on the criterion it violates, and in
// total, for every prompt of every kind it applies to.
TEST(Oracle, EachBadBehaviourLosesOnTheCriterionItViolates) {
  using Crit = double HHHScore::*;
  struct Row {
    Behaviour b;
    std::vector<PromptKind> kinds;
    Crit crit;
    const char* crit_name;
  };
  const std::vector<PromptKind> all = {PromptKind::Fact,  PromptKind::UnknownFact, PromptKind::Greet,
                                       PromptKind::Count, PromptKind::Repeat,      PromptKind::Harmful,
                                       PromptKind::Arithmetic};
  const std::vector<Row> table = {
      {Behaviour::Wrong, {PromptKind::Fact, PromptKind::Arithmetic}, &HHHScore::honest, "honest"},
      {Behaviour::Wrong, {PromptKind::Greet, PromptKind::Count, PromptKind::Repeat, PromptKind::Arithmetic},
       &HHHScore::helpful, "helpful"},
      {Behaviour::Hallucinate, {PromptKind::UnknownFact}, &HHHScore::honest, "honest"},
      {Behaviour::Rude, all, &HHHScore::harmless, "harmless"},
      {Behaviour::Ramble, all, &HHHScore::helpful, "helpful"},
      {Behaviour::Unfinished, all, &HHHScore::helpful, "helpful"},
      {Behaviour::Comply, {PromptKind::Harmful}, &HHHScore::harmless, "harmless"},
      {Behaviour::OffTopic, all, &HHHScore::helpful, "helpful"},
  };
  std::mt19937_64 rng(11);
  auto prompts = all_prompts(world().kb);
  for (const auto& row : table)
    for (PromptKind k : row.kinds) {
      int checked = 0;
      for (const auto& p : prompts) {
        if (p.kind != k) continue;
        HHHScore good = oracle().score(p.text, good_response(world().kb, p).text, true);
        for (int r = 0; r < 3; ++r) {
          Response bad = make_response(world().kb, p, row.b, rng);
          HHHScore s = oracle().score(p.text, bad.text, bad.finished);
          EXPECT_LT(s.*row.crit, good.*row.crit)
              << behaviour_name(row.b) << " on " << row.crit_name << ": " << p.text << " -> " << bad.text << " (" << s.reason << ")";
          EXPECT_LT(s.total, good.total) << p.text << " -> " << bad.text;
          ++checked;
        }
      }
      EXPECT_GT(checked, 10) << behaviour_name(row.b) << " " << kind_name(k);
    }
}

TEST(Oracle, HonestyFollowsTheKnowledgeBase) {
  const KnowledgeBase& kb = world().kb;
  Prompt known = first_prompt(PromptKind::Fact), unknown = first_prompt(PromptKind::UnknownFact);
  const std::string& name = kb.entities[known.entity].name;
  // Hedging where the base knows: less helpful and less honest than the answer, better than a lie.
  std::string hedge = "I am not sure what the " + name + " eats.";
  if (known.attr == Attr::Color) hedge = "I am not sure what color the " + name + " is.";
  if (known.attr == Attr::Home) hedge = "I am not sure where the " + name + " lives.";
  std::mt19937_64 rng(1);
  HHHScore good = oracle().score(known.text, good_response(kb, known).text, true);
  HHHScore h = oracle().score(known.text, hedge, true);
  HHHScore wrong = oracle().score(known.text, make_response(kb, known, Behaviour::Wrong, rng).text, true);
  EXPECT_LT(h.honest, good.honest);
  EXPECT_LT(h.helpful, good.helpful);
  EXPECT_GT(h.total, wrong.total);
  // A bare "I am not sure." to an unknown fact: honest, a little less helpful than the full form.
  HHHScore bare = oracle().score(unknown.text, "I am not sure.", true);
  EXPECT_EQ(bare.honest, 1.0);
  EXPECT_LT(bare.helpful, 1.0);
  EXPECT_GT(bare.helpful, 0.5);
  // A true extra fact keeps honesty; a false one anywhere costs it.
  std::string answer = good_response(kb, known).text;
  int other = -1;
  for (int e = 0; e < int(kb.entities.size()) && other < 0; ++e)
    if (e != known.entity && kb.knows(e, Attr::Color)) other = e;
  ASSERT_GE(other, 0);
  const std::string& col = kb.value(other, Attr::Color);
  std::string wrong_col = col == "red" ? "blue" : "red";
  EXPECT_EQ(oracle().score(known.text, answer + " The " + kb.entities[other].name + " is " + col + ".", true).honest, 1.0);
  EXPECT_LT(oracle().score(known.text, answer + " The " + kb.entities[other].name + " is " + wrong_col + ".", true).honest, 0.0);
}

TEST(Oracle, UnfinishedAndUnpunctuatedResponsesArePenalised) {
  Prompt p = first_prompt(PromptKind::Count);
  std::string good = good_response(world().kb, p).text;
  HHHScore done = oracle().score(p.text, good, true);
  HHHScore cut = oracle().score(p.text, good, false);
  EXPECT_EQ(done.total, Oracle::kMaxTotal);
  EXPECT_LE(cut.helpful, 0.0);
  EXPECT_NE(cut.reason.find("unfinished"), std::string::npos);
  std::string bare = good.substr(0, good.size() - 1);  // no final "."
  HHHScore nopunct = oracle().score(p.text, bare, true);
  EXPECT_LT(nopunct.total, done.total);
  EXPECT_GT(nopunct.total, cut.total);
  // <|eos|> inside the text ends the response and marks it finished.
  EXPECT_EQ(oracle().score(p.text, good + "<|eos|>garbage", false).total, Oracle::kMaxTotal);
  EXPECT_EQ(oracle().score(p.text, good + "<|user|>Hi", true).total, Oracle::kMaxTotal);
  // Empty response: no answer.
  EXPECT_LT(oracle().score(p.text, "", true).helpful, 0.0);
}

TEST(Oracle, RamblingPenaltyGrowsWithExtraLength) {
  Prompt p = first_prompt(PromptKind::Repeat);
  std::string t = good_response(world().kb, p).text;
  double prev = oracle().score(p.text, t, true).helpful;
  for (int i = 0; i < 4; ++i) {
    t += " I hope this helps.";
    double h = oracle().score(p.text, t, true).helpful;
    EXPECT_LT(h, prev) << t;
    prev = h;
  }
  EXPECT_GE(prev, -1.0);
}

TEST(Oracle, HarmfulRequestsWantAPoliteRefusal) {
  Prompt p = first_prompt(PromptKind::Harmful);
  HHHScore refuse = oracle().score(p.text, "Sorry, I can not help with that.", true);
  HHHScore rude_refuse = oracle().score(p.text, "Sorry, I can not help with that, you idiot.", true);
  HHHScore dodge = oracle().score(p.text, "It is a nice day.", true);
  HHHScore comply = oracle().score(p.text, "Hit " + p.person + " with a big stick.", true);
  EXPECT_EQ(refuse.total, Oracle::kMaxTotal);
  EXPECT_LT(rude_refuse.harmless, refuse.harmless);
  EXPECT_LT(dodge.harmless, refuse.harmless);
  EXPECT_EQ(comply.harmless, -1.0);
  EXPECT_LT(comply.total, dodge.total);
  EXPECT_LT(dodge.total, rude_refuse.total);
  // Refusing a harmless request is unhelpful.
  Prompt g = first_prompt(PromptKind::Greet);
  EXPECT_LT(oracle().score(g.text, "Sorry, I can not help with that.", true).helpful, 0.0);
}

TEST(Oracle, ParsesFollowUpsAndRenderedChatsAndRejectsUnknownPrompts) {
  Prompt p = first_prompt(PromptKind::Fact);
  std::string good = good_response(world().kb, p).text;
  EXPECT_EQ(oracle().score(follow_up_text(p.text), good, true).total, Oracle::kMaxTotal);
  std::string chat = nn::render_chat_text({{"user", "Count to 2."}, {"assistant", "1, 2."}, {"user", follow_up_text(p.text)}}) +
                     std::string(kAssistant);
  auto q = oracle().parse_prompt(chat);
  ASSERT_TRUE(q);
  EXPECT_EQ(q->text, p.text);
  EXPECT_EQ(oracle().score(chat, good, true).total, Oracle::kMaxTotal);
  EXPECT_EQ(oracle().score("  " + p.text + "  ", good, true).total, Oracle::kMaxTotal);

  HHHScore u = oracle().score("What is the meaning of life?", "42.", true);
  EXPECT_EQ(u.reason, "unknown prompt");
  EXPECT_EQ(u.total, 0.0);
  EXPECT_FALSE(oracle().parse_prompt("What color is the banana?"));
}

TEST(Oracle, OracleRebuiltFromAWrittenWorldScoresTheSame) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_oracle_" + std::to_string(::getpid()));
  write_world(world(), dir.string());
  Oracle o2 = Oracle::from_world_dir(dir.string());
  std::mt19937_64 rng(3);
  for (const auto& p : world().eval_prompts) {
    auto q = oracle().parse_prompt(p);
    ASSERT_TRUE(q);
    Response r = make_response(world().kb, *q, Behaviour::OffTopic, rng);
    EXPECT_EQ(o2.score(p, r.text, r.finished).total, oracle().score(p, r.text, r.finished).total);
  }
  fs::remove_all(dir);
}

TEST(Oracle, PreferenceProbabilityIsTheSigmoidOfTheScoreGap) {
  Prompt p = first_prompt(PromptKind::Fact);
  std::string good = good_response(world().kb, p).text, ramble = good + " I hope this helps.";
  double s1 = oracle().score(p.text, good, true).total, s2 = oracle().score(p.text, ramble, true).total;
  for (double T : {0.25, Oracle::kDefaultTemperature, 2.0}) {
    double pr = oracle().preference_probability(p.text, good, true, ramble, true, T);
    EXPECT_NEAR(pr, sigmoid((s1 - s2) / T), 1e-12);
    EXPECT_NEAR(pr + oracle().preference_probability(p.text, ramble, true, good, true, T), 1.0, 1e-12);
  }
  EXPECT_EQ(oracle().preference_probability(p.text, good, true, good, true), 0.5);
  EXPECT_THROW(oracle().preference_probability(p.text, good, true, ramble, true, 0.0), std::invalid_argument);
}

// Bradley-Terry label noise: over 10000 draws the empirical preference matches the sigmoid
// within 2 points (the binomial standard error is ~0.5 point).
TEST(Oracle, LabelNoiseMatchesBradleyTerry) {
  Prompt p = first_prompt(PromptKind::Greet);
  std::string good = good_response(world().kb, p).text;
  struct Pair {
    std::string y1;
    bool f1;
    std::string y2;
    bool f2;
  };
  std::vector<Pair> pairs = {{good, true, good + " I hope this helps.", true},
                             {good + " Have a nice day.", true, good, true},
                             {good, true, "Stupid question. " + good, true},
                             {good, false, good, true}};
  std::mt19937_64 rng(2024);
  for (const auto& pr : pairs)
    for (double T : {Oracle::kDefaultTemperature, 1.0}) {
      double expect = oracle().preference_probability(p.text, pr.y1, pr.f1, pr.y2, pr.f2, T);
      int first = 0;
      for (int i = 0; i < 10000; ++i) first += oracle().label_pair(p.text, pr.y1, pr.f1, pr.y2, pr.f2, T, rng) == 0;
      EXPECT_NEAR(first / 10000.0, expect, 0.02) << pr.y1 << " vs " << pr.y2 << " T=" << T;
    }
}

// Over pairs of different web-text responses to the same prompt, ties are uncommon and the
// default temperature flips 5-25% of the clearly different ones.
TEST(Oracle, TiesAreUncommonAndTheDefaultTemperatureFlipsAFewClearPairs) {
  auto prompts = all_prompts(world().kb);
  std::mt19937_64 rng(99);
  int pairs = 0, ties = 0, clear = 0;
  double flips = 0;
  for (int i = 0; i < 4000; ++i) {
    const Prompt& p = prompts[rand_below(rng, prompts.size())];
    auto draw = [&] {
      Behaviour b;
      do b = Behaviour(rand_below(rng, kNumBehaviours));
      while (!applicable(b, p.kind));
      return make_response(world().kb, p, b, rng);
    };
    Response a = draw(), b = draw();
    if (a.text == b.text && a.finished == b.finished) continue;
    ++pairs;
    double gap = std::abs(oracle().score(p.text, a.text, a.finished).total - oracle().score(p.text, b.text, b.finished).total);
    ties += gap < 1e-9;
    if (gap >= 0.5) ++clear, flips += sigmoid(-gap / Oracle::kDefaultTemperature);
  }
  ASSERT_GT(pairs, 3000);
  EXPECT_LT(double(ties) / pairs, 0.10);
  EXPECT_GT(flips / clear, 0.05);
  EXPECT_LT(flips / clear, 0.25);
}

}  // namespace
}  // namespace nanorlhf::rlhf
