// Atomic file writes: write a temporary beside the target, fsync, rename over it, so a crash or a
// failed write never leaves a half-written checkpoint, tokenizer or config behind.
#pragma once

#include <string>
#include <string_view>

namespace nanorlhf::nn {

// Writes `bytes` to `path.tmp.<pid>` in the same folder, fsyncs it and renames it to `path`.
// On any failure the temporary is removed, the old file (if any) is untouched, and a
// std::runtime_error naming the path and the system error is thrown.
void write_file_atomic(const std::string& path, std::string_view bytes);

// Reads a whole file; throws std::runtime_error naming the path when it cannot be opened or read.
std::string read_file(const std::string& path);

}  // namespace nanorlhf::nn
