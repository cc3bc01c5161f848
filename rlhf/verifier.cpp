// The rule-based verifier: regular expressions for the checkable prompts and their answer formats.
#include "rlhf/verifier.h"

#include <cctype>
#include <regex>

namespace nanorlhf::rlhf {

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace((unsigned char)s[b])) ++b;
  while (e > b && std::isspace((unsigned char)s[e - 1])) --e;
  return std::string(s.substr(b, e - b));
}

std::string lower(std::string s) {
  for (char &c : s) c = char(std::tolower((unsigned char)c));
  return s;
}

// Numbers of at most three digits: no answer of these tasks is longer, and std::stoi cannot overflow.
int to_int(const std::string &s) { return std::stoi(s); }

}  // namespace

std::optional<VerifiableTask> parse_verifiable_task(std::string_view prompt) {
  static const std::regex count(R"(^(?:Count to|Please count to|Can you count to) (\d{1,3})[.?]$)");
  static const std::regex repeat(R"(^(?:Repeat after me|Please repeat|Say this back): ([a-z]+) ([a-z]+)\.$)");
  static const std::regex sum(R"(^(?:What is (\d{1,3}) (?:\+|plus) (\d{1,3})\?|Add (\d{1,3}) and (\d{1,3})\.)$)");
  const std::string p = trim(prompt);
  std::smatch m;
  VerifiableTask t;
  if (std::regex_match(p, m, count)) {
    t.kind = VerifiableTask::Count, t.count = to_int(m[1]);
  } else if (std::regex_match(p, m, repeat)) {
    t.kind = VerifiableTask::Repeat, t.phrase = m[1].str() + " " + m[2].str();
  } else if (std::regex_match(p, m, sum)) {
    t.kind = VerifiableTask::Arithmetic;
    t.a = to_int(m[1].matched ? m[1] : m[3]), t.b = to_int(m[2].matched ? m[2] : m[4]);
  } else {
    return std::nullopt;
  }
  return t;
}

Verdict verify(const VerifiableTask &task, std::string_view response, bool finished) {
  static const std::regex numbers(R"(^\d{1,3}(?:, \d{1,3})*\.$)"), number(R"(\d+)");
  static const std::regex words(R"(^([A-Za-z]+) ([A-Za-z]+)\.$)");
  static const std::regex sum(R"(^(?:(\d{1,3}) \+ (\d{1,3}) = (\d{1,3})|The answer is (\d{1,3}))\.$)");
  const std::string r = trim(response);
  Verdict v;
  std::smatch m;
  switch (task.kind) {
    case VerifiableTask::Count: {
      if (!std::regex_match(r, numbers)) break;
      v.formatted = true;
      int expect = 1;
      bool right = true;
      for (std::sregex_iterator it(r.begin(), r.end(), number), end; it != end; ++it) right = right && to_int(it->str()) == expect++;
      v.correct = right && expect == task.count + 1;
      break;
    }
    case VerifiableTask::Repeat:
      if (!std::regex_match(r, m, words)) break;
      v.formatted = true;
      v.correct = lower(m[1].str() + " " + m[2].str()) == task.phrase;
      break;
    case VerifiableTask::Arithmetic:
      if (!std::regex_match(r, m, sum)) break;
      v.formatted = true;
      v.correct = m[4].matched ? to_int(m[4]) == task.a + task.b
                               : to_int(m[1]) == task.a && to_int(m[2]) == task.b && to_int(m[3]) == task.a + task.b;
      break;
  }
  if (!finished) v.formatted = v.correct = false;  // a response cut at max_new_tokens gave no answer
  return v;
}

std::optional<double> verifier_reward(std::string_view prompt, std::string_view response, bool finished) {
  auto task = parse_verifiable_task(prompt);
  if (!task) return std::nullopt;
  return verify(*task, response, finished).correct ? 1.0 : 0.0;
}

}  // namespace nanorlhf::rlhf
