// The one checking macro: user-facing mistakes throw nanorlhf::Error with a message that says what
// was expected and what came; they never abort the process.
#pragma once
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <stdexcept>
#include <string>

namespace nanorlhf {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace nanorlhf

#define NR_CHECK(cond, ...)                                                                     \
  do {                                                                                          \
    if (!(cond)) throw ::nanorlhf::Error(fmt::format(__VA_ARGS__));                             \
  } while (0)
