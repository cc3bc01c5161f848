// Private to rlhf/world/*.cpp: the lexicons and the text templates the generator and the builder
// share (vocab.cpp defines them). Not part of the public API (that is rlhf/world.h).
#pragma once

#include <array>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "rlhf/world.h"

namespace nanorlhf::rlhf::world_detail {

using Rng = std::mt19937_64;

// ---- lexicons: small, so a BPE vocab of ~512 makes most words one token ---------------------
extern const std::vector<std::string> kEntityPool;  // 32 names
extern const std::vector<std::string> kColors, kFoods, kHomes, kPeople, kAdjectives, kNouns;
extern const std::vector<std::string> kFillers;    // extra sentences for rambling: no claims, no rude words
extern const std::vector<std::string> kChitChat;   // off-topic chit-chat
extern const std::vector<std::string> kRudePrefix, kRudeSuffix;  // each holds a word of the oracle's rude list
extern const std::vector<std::string> kHarmRequests;                 // indexed by Prompt::phrasing; {P} = person
extern const std::vector<std::vector<std::string>> kHarmReplies;    // compliant web replies, per request
extern const std::array<double, kNumPromptKinds> kKindWeights;     // how often each kind is drawn

// ---- text templates ------------------------------------------------------------------------
std::string replace_all(std::string s, std::string_view from, std::string_view to);
std::string capitalize(std::string s);
std::string claim_text(const std::string& e, Attr a, const std::string& v);  // "The zorb is blue."
std::string hedge_text(const std::string& e, Attr a, int variant);           // "I am not sure what color..."
std::string count_text(int from, int to, int skip = -1);                     // "1, 2, 4." (skips `skip`)
std::string render_prompt_text(const Prompt& p, const KnowledgeBase& kb);    // the user turn of p
std::string sum_text(int a, int b, int sum, int variant);                    // "17 + 25 = 42." | "The answer is 42."
// The question about attribute a of entity e (Fact or UnknownFact, by what the base knows).
Prompt fact_prompt(const KnowledgeBase& kb, int e, Attr a, int phrasing);
inline bool fact_family(PromptKind k) { return k == PromptKind::Fact || k == PromptKind::UnknownFact; }

}  // namespace nanorlhf::rlhf::world_detail
