// Checkpoints: a run directory's model.safetensors (parameters by dotted name, F32/F64) and the
// model config as config.json beside it, both written atomically; loading checks names and shapes.
#pragma once
#include <map>
#include <string>

#include <nlohmann/json.hpp>

#include "nn/module.h"

namespace nanorlhf::nn {

// The safetensors file a checkpoint path names: "dir" -> "dir/model.safetensors"; a path ending
// in ".safetensors" is taken as is.
std::string checkpoint_file(const std::string &dir_or_path);

// Writes model.safetensors (CPU copies of every parameter, F32 or F64 by dtype; `metadata` values
// go to the safetensors "__metadata__", strings as is, others as JSON text) and config.json beside
// it. Creates the folder. Each file is written atomically: a failed save leaves the old ones intact.
void save_checkpoint(const std::string &dir_or_path, const Module &m, const nlohmann::json &config,
                     const nlohmann::json &metadata = nlohmann::json::object());

// Writes named tensors (CPU copies, any supported dtype) to a .safetensors file, atomically.
void save_tensors(const std::string &path, const std::map<std::string, Tensor> &tensors);
// Every tensor of a checkpoint, on the CPU (F32, F64, I32, I64 and BOOL are supported).
std::map<std::string, Tensor> load_tensors(const std::string &dir_or_path);

// Loads parameters into `m` (any device, converted to the parameter's dtype). Every parameter must be
// present with its shape and nothing else may be; errors name the file:
// "checkpoint runs/x/model.safetensors: parameter 'wte.weight' has shape [..] in the model but [..] in the checkpoint".
void load_checkpoint(const std::string &dir_or_path, Module &m);

// The config.json beside a checkpoint (errors name the file).
nlohmann::json load_checkpoint_config(const std::string &dir_or_path);

}  // namespace nanorlhf::nn
