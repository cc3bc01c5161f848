// nn::GPT's parameter names and layouts mapped onto GPT-2's. HF's Conv1D computes x W + b with W
// stored (in, out); our Linear stores (out, in), so those weights are transposed both ways. The
// fused c_attn holds q | k | v along its output dimension, as our qkv does along its rows.
#include "nn/hf_gpt2.h"

#include <filesystem>
#include <regex>

#include "nn/atomic_file.h"
#include "nn/half_float.h"
#include "nn/safetensors.h"

namespace nanorlhf::nn {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

struct HfName {
  std::string name;
  bool conv1d;  // stored (in, out): transposed against our (out, in)
};

// "blocks.3.attn.qkv.weight" -> {"h.3.attn.c_attn.weight", true}
HfName hf_name(const std::string &ours) {
  static const std::vector<std::pair<std::string, std::string>> block_parts = {
      {"ln1.", "ln_1."},           {"ln2.", "ln_2."},         {"attn.qkv.", "attn.c_attn."},
      {"attn.proj.", "attn.c_proj."}, {"mlp.fc.", "mlp.c_fc."}, {"mlp.proj.", "mlp.c_proj."}};
  static const std::regex block(R"(blocks\.(\d+)\.(.*))");
  std::smatch m;
  if (!std::regex_match(ours, m, block)) return {ours, false};  // wte, wpe, ln_f, lm_head keep their names
  const std::string rest = m[2];
  for (const auto &[from, to] : block_parts)
    if (rest.rfind(from, 0) == 0) {
      const std::string leaf = rest.substr(from.size());
      const bool linear = from.rfind("ln", 0) != 0;
      return {"h." + std::string(m[1]) + "." + to + leaf, linear && leaf == "weight"};
    }
  throw Error("hf_gpt2: no GPT-2 name for parameter '" + ours + "'");
}

// [r, c] row-major -> [c, r]
std::vector<float> transposed(const std::vector<float> &v, int64_t r, int64_t c) {
  std::vector<float> out(v.size());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[size_t(j * r + i)] = v[size_t(i * c + j)];
  return out;
}

bool is_mask_buffer(const std::string &name) {
  static const std::regex buffer(R"(h\.\d+\.attn\.(bias|masked_bias))");
  return std::regex_match(name, buffer);
}

}  // namespace

std::shared_ptr<GPT> load_hf_gpt2(const std::string &folder) {
  const std::string config_path = (fs::path(folder) / "config.json").string();
  const std::string file = (fs::path(folder) / "model.safetensors").string();
  NR_CHECK(fs::is_regular_file(config_path), "Hugging Face GPT-2 folder '{}' has no config.json", folder);
  NR_CHECK(fs::is_regular_file(file), "Hugging Face GPT-2 folder '{}' has no model.safetensors", folder);
  json j;
  try {
    j = json::parse(read_file(config_path));
  } catch (const json::exception &e) {
    throw Error(fmt::format("{}: not valid JSON: {}", config_path, e.what()));
  }
  const GPTConfig cfg = gpt_config_from_hf(j, config_path);

  // Names without the optional "transformer." prefix; the mask buffers dropped.
  std::map<std::string, RawTensor> tensors;
  SafetensorsFile st = load_safetensors(file);
  for (auto &[name, t] : st.tensors) {
    const std::string bare = name.rfind("transformer.", 0) == 0 ? name.substr(12) : name;
    if (is_mask_buffer(bare)) continue;
    NR_CHECK(!tensors.count(bare), "{}: tensor '{}' appears both with and without the 'transformer.' prefix", file, bare);
    tensors.emplace(bare, std::move(t));
  }

  auto model = std::make_shared<GPT>(cfg);
  NoGradGuard ng;
  // Reads one tensor in our layout, checking its shape against the one GPT-2 stores.
  auto take = [&](const std::string &name, const Shape &ours, bool conv1d) {
    const Shape want = conv1d ? Shape{ours[1], ours[0]} : ours;
    auto it = tensors.find(name);
    NR_CHECK(it != tensors.end(), "{}: tensor '{}' is missing ({} needs shape {})", file, name,
             config_path, shape_str(want));
    const RawTensor &t = it->second;
    NR_CHECK(t.shape == want,
             "{}: tensor '{}' has shape {} in the file but {} needs {}", file, name, shape_str(t.shape),
             config_path, shape_str(want));
    std::vector<float> v = floats_of(t, fmt::format("{}: tensor '{}'", file, name));
    if (conv1d) v = transposed(v, want[0], want[1]);
    tensors.erase(it);
    return v;
  };
  for (auto &[ours, p] : model->named_parameters()) {
    const HfName hf = hf_name(ours);
    p.copy_(from_vector<float>(take(hf.name, p.shape(), hf.conv1d), p.shape()));
  }
  // A tied head may still be saved (transformers writes it with the "transformer." prefix layout).
  if (cfg.tie_weights && tensors.count("lm_head.weight")) {
    const std::vector<float> head = take("lm_head.weight", model->wte->weight.shape(), false);
    NR_CHECK(head == model->wte->weight.to_vector<float>(),
             "{}: tensor 'lm_head.weight' differs from 'wte.weight', but {} ties them "
             "(tie_word_embeddings true); set it false to load a separate head",
             file, config_path);
  }
  if (!tensors.empty()) {
    std::vector<std::string> extra;
    for (const auto &[name, t] : tensors) extra.push_back(fmt::format("'{}' {}", name, shape_str(t.shape)));
    throw Error(fmt::format("{}: unexpected tensor{} {} (not part of the GPT-2 that {} describes)", file,
                            extra.size() > 1 ? "s" : "", fmt::join(extra, ", "), config_path));
  }
  return model;
}

void save_hf_gpt2(const std::string &folder, const GPT &model) {
  std::map<std::string, RawTensor> raw;
  for (const auto &[ours, p] : model.named_parameters()) {
    const HfName hf = hf_name(ours);
    const Shape s = p.shape();
    std::vector<float> v = p.detach().cpu().to_vector<float>();
    if (hf.conv1d) v = transposed(v, s[0], s[1]);
    raw.emplace(hf.name, RawTensor::from_f32(hf.conv1d ? Shape{s[1], s[0]} : s, v));
  }
  std::error_code ec;
  fs::create_directories(folder, ec);
  NR_CHECK(!ec, "save_hf_gpt2: cannot create folder '{}': {}", folder, ec.message());
  save_safetensors((fs::path(folder) / "model.safetensors").string(), raw, {{"format", "pt"}});
  write_file_atomic((fs::path(folder) / "config.json").string(), hf_config_from_gpt(model.config).dump(2) + "\n");
}

}  // namespace nanorlhf::nn
