// Checkpoint save/load on top of safetensors.h: Module state_dict <-> model.safetensors, the model
// config as config.json beside it, every error naming the file.
#include "nn/checkpoint.h"

#include <cstring>
#include <filesystem>

#include "nn/atomic_file.h"
#include "nn/safetensors.h"

namespace nanorlhf::nn {

namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const char *safetensors_dtype(DType dt) {
  switch (dt) {
    case DType::Float32: return "F32";
    case DType::Float64: return "F64";
    case DType::Int32: return "I32";
    case DType::Int64: return "I64";
    case DType::Bool: return "BOOL";
  }
  return "?";
}

RawTensor to_raw(const Tensor &t) {
  Tensor c = t.detach().cpu().contiguous();
  RawTensor r;
  r.dtype = safetensors_dtype(c.dtype());
  r.shape = c.shape();
  const size_t nbytes = size_t(c.numel()) * itemsize(c.dtype());
  r.data.resize(nbytes);
  if (nbytes) std::memcpy(r.data.data(), c.raw_data(), nbytes);  // x86/ARM are little-endian, as the format
  return r;
}

Tensor from_raw(const RawTensor &r) {
  DType dt;
  if (r.dtype == "F32") dt = DType::Float32;
  else if (r.dtype == "F64") dt = DType::Float64;
  else if (r.dtype == "I32") dt = DType::Int32;
  else if (r.dtype == "I64") dt = DType::Int64;
  else if (r.dtype == "BOOL") dt = DType::Bool;
  else throw Error("dtype " + r.dtype + " is not supported by nanorlhf tensors (F32, F64, I32, I64, BOOL)");
  Tensor t = empty(r.shape, {.dtype = dt});
  NR_CHECK(r.data.size() == size_t(t.numel()) * itemsize(dt), "tensor data holds {} bytes, expected {}", r.data.size(),
           size_t(t.numel()) * itemsize(dt));
  if (!r.data.empty()) std::memcpy(t.raw_data(), r.data.data(), r.data.size());
  return t;
}

std::string strip_prefix(std::string msg, const std::string &prefix) {
  if (msg.rfind(prefix, 0) == 0) msg.erase(0, prefix.size());
  return msg;
}

}  // namespace

std::string checkpoint_file(const std::string &dir_or_path) {
  if (ends_with(dir_or_path, ".safetensors")) return dir_or_path;
  return (fs::path(dir_or_path) / "model.safetensors").string();
}

static std::string config_file(const std::string &dir_or_path) {
  return (fs::path(checkpoint_file(dir_or_path)).parent_path() / "config.json").string();
}

void save_checkpoint(const std::string &dir_or_path, const Module &m, const nlohmann::json &config,
                     const nlohmann::json &metadata) {
  const std::string file = checkpoint_file(dir_or_path);
  NR_CHECK(metadata.is_null() || metadata.is_object(), "save_checkpoint {}: metadata must be a JSON object, got {}", file,
           metadata.dump());
  std::map<std::string, RawTensor> raw;
  for (const auto &[name, t] : m.state_dict()) raw.emplace(name, to_raw(t));
  std::map<std::string, std::string> meta{{"format", "nanorlhf"}};
  if (metadata.is_object())
    for (const auto &[k, v] : metadata.items()) meta[k] = v.is_string() ? v.get<std::string>() : v.dump();
  const fs::path dir = fs::path(file).parent_path();
  std::error_code ec;
  if (!dir.empty()) fs::create_directories(dir, ec);
  NR_CHECK(!ec, "save_checkpoint: cannot create folder '{}': {}", dir.string(), ec.message());
  try {
    save_safetensors(file, raw, meta);
    write_file_atomic(config_file(dir_or_path), config.dump(2) + "\n");
  } catch (const Error &) {
    throw;
  } catch (const std::exception &e) {
    throw Error(std::string("save_checkpoint: ") + e.what());
  }
}

void save_tensors(const std::string &path, const std::map<std::string, Tensor> &tensors) {
  std::map<std::string, RawTensor> raw;
  for (const auto &[name, t] : tensors) raw.emplace(name, to_raw(t));
  save_safetensors(path, raw, {{"format", "nanorlhf"}});
}

std::map<std::string, Tensor> load_tensors(const std::string &dir_or_path) {
  const std::string file = checkpoint_file(dir_or_path);
  NR_CHECK(fs::exists(file), "checkpoint {}: no such file{}", file,
           fs::is_directory(dir_or_path) ? " (the folder holds no model.safetensors; is it a run directory?)" : "");
  SafetensorsFile st;
  try {
    st = load_safetensors(file);
  } catch (const std::exception &e) {
    // The loader's message already names the file ("safetensors file '<path>': truncated ...").
    throw Error(std::string("checkpoint: ") + e.what());
  }
  std::map<std::string, Tensor> out;
  for (const auto &[name, r] : st.tensors) {
    try {
      out.emplace(name, from_raw(r));
    } catch (const std::exception &e) {
      throw Error(fmt::format("checkpoint {}: tensor '{}': {}", file, name, e.what()));
    }
  }
  return out;
}

void load_checkpoint(const std::string &dir_or_path, Module &m) {
  const std::string file = checkpoint_file(dir_or_path);
  std::map<std::string, Tensor> tensors = load_tensors(dir_or_path);
  // Convert to each parameter's dtype (a float64 test model can read a float32 checkpoint).
  for (const auto &[name, p] : m.named_parameters()) {
    auto it = tensors.find(name);
    if (it != tensors.end() && it->second.dtype() != p.dtype()) {
      NR_CHECK(is_floating(it->second.dtype()) && is_floating(p.dtype()),
               "checkpoint {}: parameter '{}' is {} in the model but {} in the checkpoint", file, name,
               dtype_name(p.dtype()), dtype_name(it->second.dtype()));
      it->second = it->second.to(p.dtype());
    }
  }
  try {
    m.load_state_dict(tensors, /*strict=*/true);
  } catch (const std::exception &e) {
    throw Error(fmt::format("checkpoint {}: {}", file, strip_prefix(e.what(), "load_state_dict: ")));
  }
}

nlohmann::json load_checkpoint_config(const std::string &dir_or_path) {
  const std::string path = config_file(dir_or_path);
  std::string text;
  try {
    text = read_file(path);
  } catch (const std::exception &e) {
    throw Error(fmt::format("checkpoint config: {}", e.what()));
  }
  try {
    return nlohmann::json::parse(text);
  } catch (const std::exception &e) {
    throw Error(fmt::format("checkpoint config {}: invalid JSON: {}", path, e.what()));
  }
}

}  // namespace nanorlhf::nn
