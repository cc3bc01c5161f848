// Shared by the libFuzzer targets: the readers under test take a path, so each input is written to
// one scratch file per process (in TMPDIR), overwritten on every run.
#pragma once
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace nanorlhf::fuzz {

inline const std::string &scratch_path(const char *ext) {
  static const std::string path = (std::filesystem::temp_directory_path() /
                                   ("nanorlhf_fuzz_" + std::to_string(::getpid()) + ext)).string();
  return path;
}

// Writes the input's bytes to the scratch file and returns its path.
inline const std::string &write_scratch(const uint8_t *data, size_t size, const char *ext) {
  const std::string &path = scratch_path(ext);
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(reinterpret_cast<const char *>(data), static_cast<std::streamsize>(size));
  if (!f) { std::perror(path.c_str()); std::abort(); }
  return path;
}

}  // namespace nanorlhf::fuzz
