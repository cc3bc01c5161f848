// Fault injection for the kill tests: with NANORLHF_KILL_AT=[<task>:]<point>:<step> in the
// environment the process SIGKILLs itself when it reaches that point at that step (of that task:
// "sft", "dpo", ...), as a kill -9 from outside would, but at a moment a test can name. Points:
// "step" (before step N runs), "save" (checkpoint-N half written), "final" (the final save half
// written; step 0).
#pragma once
#include <cstdint>
#include <string>

namespace nanorlhf::rlhf {

void kill_point(const char *point, int64_t step, const std::string &task = "");

}  // namespace nanorlhf::rlhf
