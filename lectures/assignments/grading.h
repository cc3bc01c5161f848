// Points per part for the assignment graders (lectures/assignments/*/grade_*.cpp). A part is one
// GoogleTest suite whose name carries the part ("Part1_SoftmaxForward"); NR_GRADE_PART gives it its
// points and a title. grading_main.cpp runs the suites and prints "Part...: p/q points" and "Total: P/Q".
// A part's points are shared equally by its tests; skipped tests (e.g. "no CUDA device") make their
// share unavailable rather than lost, so a machine without a GPU scores 0 of 0 on a CUDA part.
#pragma once
#include <string>
#include <vector>

namespace nr_grade {

struct Part {
  std::string suite;  // the GoogleTest suite name, e.g. "Part1_SoftmaxForward"
  double points;
  std::string title;
  bool bonus;  // bonus points count on top of the total, never towards its maximum
};

// The assignment's name, as the grader prints it (NR_GRADE_ASSIGNMENT in the suite sets it).
inline std::string &assignment_name() {
  static std::string name = "assignment";
  return name;
}
struct AssignmentRegistrar {
  explicit AssignmentRegistrar(const char *name) { assignment_name() = name; }
};

inline std::vector<Part> &parts() {
  static std::vector<Part> all;
  return all;
}

struct PartRegistrar {
  PartRegistrar(const char *suite, double points, const char *title, bool bonus) {
    parts().push_back({suite, points, title, bonus});
  }
};

}  // namespace nr_grade

// NR_GRADE_ASSIGNMENT("01_softmax") -- once per grading suite.
#define NR_GRADE_ASSIGNMENT(name) static ::nr_grade::AssignmentRegistrar nr_grade_assignment_name(name)
// NR_GRADE_PART(Part1_SoftmaxForward, 25, "softmax forward") -- put it above the part's tests.
#define NR_GRADE_PART(suite, points, title) \
  static ::nr_grade::PartRegistrar nr_grade_part_##suite(#suite, points, title, false)
#define NR_GRADE_BONUS_PART(suite, points, title) \
  static ::nr_grade::PartRegistrar nr_grade_part_##suite(#suite, points, title, true)
