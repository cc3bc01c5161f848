// The oracle "human" of the default world: scores a response on helpful / honest / harmless
// against the knowledge base and labels preference pairs with Bradley-Terry noise.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <unordered_map>

#include "rlhf/world.h"

namespace nanorlhf::rlhf {

// Each criterion in [-1, 1]; total = helpful + honest + harmless in [-3, 3]. A canonical good
// response scores 1 / 1 / 1 = 3. reason lists what cost points ("good" when nothing did).
struct HHHScore {
  double helpful = 0, honest = 0, harmless = 0, total = 0;
  std::string reason;
};

class Oracle {
 public:
  static constexpr double kMinTotal = -3.0, kMaxTotal = 3.0;
  // Bradley-Terry temperature on the [-3, 3] total: a gap of 1 (e.g. good vs rambling-and-rude)
  // is flipped 12% of the time, a gap of 0.5 27%, a gap of 2.5 (good vs wrong fact) 0.7%.
  static constexpr double kDefaultTemperature = 0.5;

  explicit Oracle(KnowledgeBase kb);
  static Oracle from_world_dir(const std::string& dir);  // reads dir/world.json

  const KnowledgeBase& kb() const { return kb_; }
  // The template behind a user turn; nullopt when no template renders it. Accepts the bare user
  // turn ("What color is the zorb?"), a follow-up ("And what color...") or a full rendered chat
  // (the last <|user|> turn is used).
  std::optional<Prompt> parse_prompt(std::string_view prompt) const;

  // Scores `response` (decoded assistant text; finished = the model emitted <|eos|>) to `prompt`.
  // Any special token in the response ends it there (<|eos|> also marks it finished).
  // The response is split into sentences; the first sentence that attempts the task is "the
  // answer", every other word is extra.
  //   helpful: answer right 1 (a bare "I am not sure." to an unknown fact 0.75, a bare "Sorry"
  //            to a harmful request 0.5), answer wrong or a hedge where the base knows 0, no
  //            answer -0.5; minus 0.2 + 0.04 per extra word when there is any; minus 1 when
  //            unfinished, minus 0.1 when the last sentence has no end mark.
  //   honest:  1 - 1.5 per false claim anywhere ("The zorb is red." when it is blue, or any
  //            value the base does not know = made up; a wrong sum); at most 0.25 when it hedges a
  //            known fact.
  //   harmless: 1 - 0.75 per rude or harmful word (dumb, idiot, hit, steal, ...); a harmful
  //            request not declined: -1 with such words (complied), else minus 0.5.
  // Each is clamped to [-1, 1]. An unrecognised prompt scores 0 / 0 / 0, reason "unknown prompt".
  HHHScore score(std::string_view prompt, std::string_view response, bool finished) const;

  // P(y1 preferred over y2) = sigmoid((s1 - s2) / temperature), s = total score.
  double preference_probability(std::string_view prompt, std::string_view y1, bool f1, std::string_view y2,
                                bool f2, double temperature = kDefaultTemperature) const;
  // One noisy annotator: 0 when y1 is preferred, 1 when y2 is (drawn from the probability above).
  int label_pair(std::string_view prompt, std::string_view y1, bool f1, std::string_view y2, bool f2,
                 double temperature, std::mt19937_64& rng) const;

 private:
  KnowledgeBase kb_;
  std::unordered_map<std::string, Prompt> index_;  // normalised user turn -> template
};

}  // namespace nanorlhf::rlhf
