// Verifiable rewards (RLVR; Lambert et al. 2024, Tulu 3; DeepSeek-AI 2025, R1): for tasks whose
// answer a program can check, the reward is the check itself, exact and unhackable the way a
// learned reward model is not. The verifier reads the task from the prompt's text (the world's
// templates for count, repeat and arithmetic) and knows nothing else of the world: it is a
// training reward, separate from the oracle, which only evaluates.
#pragma once
#include <optional>
#include <string>
#include <string_view>

namespace nanorlhf::rlhf {

// What a checkable task asks for, parsed from its prompt.
struct VerifiableTask {
  enum Kind { Count, Repeat, Arithmetic } kind = Count;
  int count = 0;             // Count: "1, 2, ..., count."
  std::string phrase;        // Repeat: the two words to echo, lower case
  int a = 0, b = 0;          // Arithmetic: a + b
};
// nullopt when the prompt is no checkable task (a fact, a greeting, a harmful request, ...).
std::optional<VerifiableTask> parse_verifiable_task(std::string_view prompt);

struct Verdict {
  bool formatted = false;  // the response is one answer sentence in the task's format, ended with <|eos|>
  bool correct = false;    // formatted and the answer is right
};
// The rule-based check of one response (decoded text; finished = it ended with <|eos|>).
// Formats: count "1, 2, 3."; repeat "Big fish."; arithmetic "17 + 25 = 42." or "The answer is 42."
// (surrounding spaces ignored, nothing else allowed).
Verdict verify(const VerifiableTask &task, std::string_view response, bool finished);

// The verifier reward (TRL's accuracy reward): 1 when correct, else 0; nullopt for a prompt with
// no checkable task.
std::optional<double> verifier_reward(std::string_view prompt, std::string_view response, bool finished);

}  // namespace nanorlhf::rlhf
