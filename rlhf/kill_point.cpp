// The kill points: one getenv per process, then a string compare per call.
#include "rlhf/kill_point.h"

#include <signal.h>

#include <cstdlib>
#include <string>

namespace nanorlhf::rlhf {

void kill_point(const char *point, int64_t step) {
  static const std::string at = [] {
    const char *v = std::getenv("NANORLHF_KILL_AT");
    return std::string(v ? v : "");
  }();
  if (!at.empty() && at == std::string(point) + ":" + std::to_string(step)) ::raise(SIGKILL);
}

}  // namespace nanorlhf::rlhf
