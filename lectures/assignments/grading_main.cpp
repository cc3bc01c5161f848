// The graders' main (linked into every grade_* program): runs each part of an assignment (one
// GoogleTest suite, see grading.h) in its own child process, so that a crash or an endless loop in a
// student's code costs that part only, then prints the score of each part and the total:
//   Part1_SoftmaxForward (softmax forward): 25/25 points, 6 of 6 tests passed
//   Total: 100/100 points
// Flags (besides GoogleTest's own; a --gtest_filter runs the matching tests in one process):
//   --expect=full            exit 1 unless every available point is earned (the reference's check)
//   --expect=zero            exit 1 unless no point is earned and nothing crashed (the stubs' check)
//   --student_source=FILE    with --expect=zero: when FILE's solution blocks are no longer the
//                            untouched stubs, the check cannot apply and the program exits 77 (skip)
//   --part_timeout=SECONDS   a part still running after this is stopped and scores its finished tests
//   --grade_json=FILE        also write the scores as JSON (for a course's autograder)
//   --no_isolate             run every part in this process
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "grading.h"

namespace {

// What happened to the tests of one part.
struct Tally {
  int passed = 0, failed = 0, skipped = 0;
  std::string skip_message, first_failure, crash;  // crash: how the part's process ended, if badly
};

std::string one_line(std::string s) {
  for (char &c : s)
    if (c == '\n' || c == '\t' || c == '\r') c = ' ';
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

// Reports every test's start and end as one line on a file descriptor (a pipe to the parent, or
// memory in the in-process mode), so a part that crashes still scores the tests it finished.
class ReportListener : public testing::EmptyTestEventListener {
 public:
  explicit ReportListener(int fd) : fd_(fd) {}
  void OnTestStart(const testing::TestInfo &info) override {
    emit(std::string("START\t") + info.test_suite_name() + "\t" + info.name() + "\t\n");
  }
  void OnTestEnd(const testing::TestInfo &info) override {
    const testing::TestResult *r = info.result();
    std::string kind = r->Skipped() ? "SKIP" : r->Passed() ? "PASS" : "FAIL", msg;
    for (int i = 0; i < r->total_part_count(); ++i) {
      const testing::TestPartResult &p = r->GetTestPartResult(i);
      if ((kind == "SKIP" && p.skipped()) || (kind == "FAIL" && p.failed())) {
        msg = p.message();
        break;
      }
    }
    emit(kind + "\t" + info.test_suite_name() + "\t" + info.name() + "\t" + one_line(msg).substr(0, 300) + "\n");
  }

 private:
  void emit(const std::string &line) {
    for (size_t off = 0; off < line.size();) {
      ssize_t n = write(fd_, line.data() + off, line.size() - off);
      if (n <= 0) return;
      off += (size_t)n;
    }
  }
  int fd_;
};

// Folds the reported lines into per-suite tallies; returns the test that started and never ended.
std::string fold(const std::string &report, std::map<std::string, Tally> &tallies) {
  std::istringstream in(report);
  std::string line, running;
  while (std::getline(in, line)) {
    std::vector<std::string> f;
    std::istringstream ls(line);
    for (std::string x; std::getline(ls, x, '\t');) f.push_back(x);
    if (f.size() < 3) continue;
    const std::string test = f[1] + "." + f[2], msg = f.size() > 3 ? f[3] : "";
    Tally &t = tallies[f[1]];
    if (f[0] == "START") {
      running = test;
      continue;
    }
    running.clear();
    if (f[0] == "PASS") ++t.passed;
    if (f[0] == "SKIP") {
      ++t.skipped;
      if (t.skip_message.empty()) t.skip_message = msg.empty() ? "skipped" : msg;
    }
    if (f[0] == "FAIL") {
      ++t.failed;
      if (t.first_failure.empty()) t.first_failure = test + ": " + msg;
    }
  }
  return running;
}

// Runs the tests of `suite` in a child process and folds what it reported into `tallies`.
void run_part_isolated(const std::string &suite, int timeout_s, std::map<std::string, Tally> &tallies) {
  int fds[2];
  if (pipe(fds) != 0) {
    std::perror("pipe");
    std::exit(2);
  }
  std::fflush(stdout);
  std::fflush(stderr);
  pid_t pid = fork();
  if (pid < 0) {
    std::perror("fork");
    std::exit(2);
  }
  if (pid == 0) {  // child: this part's tests only
    close(fds[0]);
    GTEST_FLAG_SET(filter, suite + ".*");
    testing::UnitTest::GetInstance()->listeners().Append(new ReportListener(fds[1]));
    if (timeout_s > 0) alarm((unsigned)timeout_s);
    if (RUN_ALL_TESTS() != 0) {  // failures are scored, not fatal
    }
    std::fflush(stdout);
    std::fflush(stderr);
    _exit(0);
  }
  close(fds[1]);
  std::string report;
  char buf[4096];
  for (ssize_t n; (n = read(fds[0], buf, sizeof buf)) != 0;) {
    if (n < 0) {
      if (errno == EINTR) continue;
      break;
    }
    report.append(buf, (size_t)n);
  }
  close(fds[0]);
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  std::string running = fold(report, tallies);
  Tally &t = tallies[suite];
  std::string how;
  if (WIFSIGNALED(status)) {
    int sig = WTERMSIG(status);
    how = sig == SIGALRM ? "timed out after " + std::to_string(timeout_s) + " s"
                         : "crashed with signal " + std::to_string(sig) + " (" + strsignal(sig) + ")";
  } else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
    how = "exited with status " + std::to_string(WEXITSTATUS(status));
  }
  if (!how.empty()) {
    t.crash = how + (running.empty() ? "" : " in " + running);
    std::printf("[ GRADER   ] %s: %s\n", suite.c_str(), t.crash.c_str());
  }
}

std::string num(double x) {
  char b[32];
  std::snprintf(b, sizeof b, "%.2f", std::round(x * 100) / 100);
  std::string s = b;
  while (s.back() == '0') s.pop_back();
  if (s.back() == '.') s.pop_back();
  return s;
}

std::string json_str(const std::string &s) {
  std::string o = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += c;
    else if ((unsigned char)c < 0x20) o += ' ';
    else o += c;
  }
  return o + "\"";
}

// True when every BEGIN/END YOUR SOLUTION block of the file is still the stub: empty, or the single
// `throw ...("not implemented yet: ...");` the assignments ship with (comments aside).
bool untouched_stub(const std::string &path, std::string &why) {
  std::ifstream f(path);
  if (!f) {
    why = "cannot read " + path;
    return false;
  }
  static const std::regex stub(R"(^throw\s+[\w:]+\s*\(\s*"not implemented yet: [^"]*"\s*\)\s*;$)");
  std::string line, body;
  bool inside = false;
  int blocks = 0;
  for (int ln = 1; std::getline(f, line); ++ln) {
    if (line.find("BEGIN YOUR SOLUTION") != std::string::npos) {
      inside = true, body.clear(), ++blocks;
      continue;
    }
    if (line.find("END YOUR SOLUTION") != std::string::npos) {
      inside = false;
      std::string code = std::regex_replace(body, std::regex(R"(^\s+|\s+$)"), "");
      if (!code.empty() && !std::regex_match(code, stub)) {
        why = path + ": the solution block ending on line " + std::to_string(ln) + " has been edited";
        return false;
      }
      continue;
    }
    if (inside) {
      size_t c = line.find("//");
      body += (c == std::string::npos ? line : line.substr(0, c)) + " ";
    }
  }
  if (blocks == 0) {
    why = path + " has no BEGIN YOUR SOLUTION blocks";
    return false;
  }
  return true;
}

int usage(const std::string &bad) {
  std::fprintf(stderr,
               "unknown argument '%s'\nusage: grade_%s [--expect=full|zero] [--student_source=FILE]... "
               "[--part_timeout=SECONDS] [--grade_json=FILE] [--no_isolate] [GoogleTest flags]\n",
               bad.c_str(), nr_grade::assignment_name().c_str());
  return 2;
}

}  // namespace

int main(int argc, char **argv) {
  testing::InitGoogleTest(&argc, argv);  // removes GoogleTest's flags from argv
  std::string expect, json_path;
  std::vector<std::string> sources;
  int timeout_s = 300;
  bool isolate = true;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&](const char *flag) { return a.rfind(flag, 0) == 0 ? a.substr(std::strlen(flag)) : std::string(); };
    if (!value("--expect=").empty()) expect = value("--expect=");
    else if (!value("--student_source=").empty()) sources.push_back(value("--student_source="));
    else if (!value("--part_timeout=").empty()) timeout_s = std::atoi(value("--part_timeout=").c_str());
    else if (!value("--grade_json=").empty()) json_path = value("--grade_json=");
    else if (a == "--no_isolate") isolate = false;
    else return usage(a);
  }
  if (!expect.empty() && expect != "full" && expect != "zero") return usage("--expect=" + expect);

  // Every suite must be a part with points, and every part must have tests.
  const auto &parts = nr_grade::parts();
  std::set<std::string> part_names, suite_names;
  for (const auto &p : parts) part_names.insert(p.suite);
  testing::UnitTest &ut = *testing::UnitTest::GetInstance();
  bool config_ok = true;
  for (int i = 0; i < ut.total_test_suite_count(); ++i) {
    std::string s = ut.GetTestSuite(i)->name();
    suite_names.insert(s);
    if (!part_names.count(s)) {
      std::fprintf(stderr, "grader error: test suite %s has no NR_GRADE_PART (no points)\n", s.c_str());
      config_ok = false;
    }
  }
  for (const auto &p : parts)
    if (!suite_names.count(p.suite)) {
      std::fprintf(stderr, "grader error: part %s has no tests\n", p.suite.c_str());
      config_ok = false;
    }
  if (!config_ok) return 2;

  // Run: one child process per part, or everything here when a filter was given.
  std::map<std::string, Tally> tallies;
  const std::string filter = GTEST_FLAG_GET(filter);
  if (filter != "*") isolate = false;
  if (isolate) {
    for (const auto &p : parts) run_part_isolated(p.suite, timeout_s, tallies);
  } else {
    std::string tmpl = "/tmp/nr_grade_XXXXXX";
    int fd = mkstemp(tmpl.data());
    if (fd < 0) {
      std::perror("mkstemp");
      return 2;
    }
    ut.listeners().Append(new ReportListener(fd));
    if (RUN_ALL_TESTS() != 0) {  // failures are scored, not fatal
    }
    std::ifstream in(tmpl);
    std::stringstream ss;
    ss << in.rdbuf();
    fold(ss.str(), tallies);
    close(fd);
    unlink(tmpl.c_str());
  }

  // Score: a part's points are shared by its tests; skipped tests take their share out of reach.
  double total = 0, total_max = 0, bonus = 0, bonus_max = 0, skipped_points = 0;
  bool any_crash = false, any_points = false;
  std::string skip_reason;
  std::ostringstream js;
  js << "{\"assignment\": " << json_str(nr_grade::assignment_name()) << ", \"parts\": [";
  std::printf("\n==================== grade: %s ====================\n", nr_grade::assignment_name().c_str());
  for (size_t k = 0; k < parts.size(); ++k) {
    const auto &p = parts[k];
    int n = 0;
    for (int i = 0; i < ut.total_test_suite_count(); ++i)
      if (p.suite == ut.GetTestSuite(i)->name())  // (which tests a filter selects is known after a run)
        n = isolate ? ut.GetTestSuite(i)->total_test_count() : ut.GetTestSuite(i)->test_to_run_count();
    const Tally &t = tallies[p.suite];
    if (n == 0) continue;  // filtered out
    const int ran = n - t.skipped;  // tests that never reported (a crash) count as failed
    const double available = p.points * ran / n, earned = p.points * t.passed / n;
    if (earned > 0) any_points = true;
    if (!t.crash.empty()) any_crash = true;
    if (t.skipped > 0) {
      skipped_points += p.points - available;
      if (skip_reason.empty()) skip_reason = t.skip_message;
    }
    (p.bonus ? bonus : total) += earned;
    (p.bonus ? bonus_max : total_max) += available;
    std::string detail = std::to_string(t.passed) + " of " + std::to_string(ran) + " tests passed";
    if (t.skipped) detail += ", " + std::to_string(t.skipped) + " skipped (" + t.skip_message + ")";
    std::printf("%s%s (%s): %s/%s points, %s\n", p.bonus ? "Bonus " : "", p.suite.c_str(), p.title.c_str(),
                num(earned).c_str(), num(available).c_str(), detail.c_str());
    if (!t.crash.empty()) std::printf("    %s\n", t.crash.c_str());
    else if (!t.first_failure.empty()) std::printf("    first failure: %s\n", t.first_failure.substr(0, 200).c_str());
    js << (k ? ", " : "") << "{\"part\": " << json_str(p.suite) << ", \"title\": " << json_str(p.title)
       << ", \"bonus\": " << (p.bonus ? "true" : "false") << ", \"points\": " << p.points
       << ", \"available\": " << num(available) << ", \"earned\": " << num(earned) << ", \"passed\": " << t.passed
       << ", \"failed\": " << (ran - t.passed) << ", \"skipped\": " << t.skipped
       << ", \"crash\": " << json_str(t.crash) << "}";
  }
  std::printf("------------------------------------------------------------\n");
  std::printf("Total: %s/%s points", num(total).c_str(), num(total_max).c_str());
  if (skipped_points > 0)
    std::printf("  (%s points not available here: %s)", num(skipped_points).c_str(), skip_reason.c_str());
  std::printf("\n");
  if (bonus_max > 0) std::printf("Bonus: %s/%s points (on top of the total)\n", num(bonus).c_str(), num(bonus_max).c_str());
  js << "], \"total\": " << num(total) << ", \"max\": " << num(total_max) << ", \"bonus\": " << num(bonus)
     << ", \"bonus_max\": " << num(bonus_max) << ", \"unavailable\": " << num(skipped_points) << "}\n";
  if (!json_path.empty()) std::ofstream(json_path) << js.str();
  std::fflush(stdout);

  // The self-checks of the assignment machinery (ctest): the reference earns everything, the
  // untouched stubs earn nothing and crash nothing.
  if (expect == "full" && (total < total_max - 1e-9 || bonus < bonus_max - 1e-9 || any_crash)) {
    std::printf("EXPECTED every available point (the reference implementation): check failed\n");
    return 1;
  }
  if (expect == "zero") {
    for (const auto &s : sources) {
      std::string why;
      if (!untouched_stub(s, why)) {
        std::printf("%s: the zero-score check of the untouched stubs does not apply (skipped)\n", why.c_str());
        return 77;
      }
    }
    if (any_points || any_crash) {
      std::printf("EXPECTED 0 points and no crash from the untouched stubs: check failed\n");
      return 1;
    }
  }
  return 0;
}
