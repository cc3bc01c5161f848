// GPT2Config's keys mapped onto GPTConfig's; every refusal names the file and the key.
#include "nn/hf_gpt2_config.h"

#include <filesystem>

#include "nn/atomic_file.h"

namespace nanorlhf::nn {

using nlohmann::json;

bool is_hf_gpt2_folder(const std::string &folder) {
  const auto path = std::filesystem::path(folder) / "config.json";
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  json j = json::parse(read_file(path.string()), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || j.contains("model")) return false;
  if (j.contains("model_type")) return j["model_type"] == "gpt2";
  return j.contains("n_embd");
}

GPTConfig gpt_config_from_hf(const json &j, const std::string &file) {
  NR_CHECK(j.is_object(), "{}: expected a JSON object, got {}", file, j.dump());
  if (j.contains("model_type"))
    NR_CHECK(j["model_type"] == "gpt2", "{}: model_type is {}; only \"gpt2\" checkpoints can be read", file,
             j["model_type"].dump());
  auto positive = [&](const char *k) -> int64_t {
    NR_CHECK(j.contains(k), "{}: missing key '{}'", file, k);
    NR_CHECK(j[k].is_number_integer() && j[k].get<int64_t>() > 0, "{}: '{}' must be a positive integer, got {}", file,
             k, j[k].dump());
    return j[k].get<int64_t>();
  };
  // GPT2Config's defaults for the optional keys.
  auto number = [&](const char *k, double dflt) -> double {
    if (!j.contains(k) || j[k].is_null()) return dflt;
    NR_CHECK(j[k].is_number(), "{}: '{}' must be a number, got {}", file, k, j[k].dump());
    return j[k].get<double>();
  };
  auto boolean = [&](const char *k, bool dflt) -> bool {
    if (!j.contains(k)) return dflt;
    NR_CHECK(j[k].is_boolean(), "{}: '{}' must be true or false, got {}", file, k, j[k].dump());
    return j[k].get<bool>();
  };
  GPTConfig c;
  c.d_model = positive("n_embd");
  c.n_layer = positive("n_layer");
  c.n_head = positive("n_head");
  c.vocab = positive("vocab_size");
  c.ctx = j.contains("n_positions") ? positive("n_positions") : positive("n_ctx");
  NR_CHECK(c.d_model % c.n_head == 0, "{}: n_embd {} must be divisible by n_head {}", file, c.d_model, c.n_head);
  c.layer_norm_eps = number("layer_norm_epsilon", 1e-5);
  NR_CHECK(c.layer_norm_eps > 0 && c.layer_norm_eps < 1, "{}: 'layer_norm_epsilon' must be in (0, 1), got {}", file,
           c.layer_norm_eps);
  c.tie_weights = boolean("tie_word_embeddings", true);

  const std::string act = j.contains("activation_function") ? j["activation_function"].dump() : "\"gelu_new\"";
  NR_CHECK(act == "\"gelu_new\"" || act == "\"gelu_pytorch_tanh\"",
           "{}: 'activation_function' is {}; nn::GPT computes the tanh GELU only, valid values: gelu_new, "
           "gelu_pytorch_tanh", file, act);
  if (j.contains("n_inner") && !j["n_inner"].is_null())
    NR_CHECK(j["n_inner"] == 4 * c.d_model, "{}: 'n_inner' is {}; nn::GPT's MLP is 4 * n_embd = {} wide", file,
             j["n_inner"].dump(), 4 * c.d_model);
  NR_CHECK(boolean("scale_attn_weights", true), "{}: 'scale_attn_weights' false is not supported (nn::GPT divides the "
           "attention scores by sqrt(head size))", file);
  NR_CHECK(!boolean("scale_attn_by_inverse_layer_idx", false),
           "{}: 'scale_attn_by_inverse_layer_idx' true is not supported by nn::GPT", file);
  NR_CHECK(!boolean("add_cross_attention", false), "{}: 'add_cross_attention' true is not supported by nn::GPT", file);

  // nn::GPT has one dropout probability for the embeddings, attention and residual stream.
  const double resid = number("resid_pdrop", 0.1), embd = number("embd_pdrop", 0.1), attn = number("attn_pdrop", 0.1);
  NR_CHECK(resid == embd && resid == attn,
           "{}: resid_pdrop {}, embd_pdrop {} and attn_pdrop {} differ; nn::GPT has one dropout for all three", file,
           resid, embd, attn);
  NR_CHECK(resid >= 0 && resid < 1, "{}: 'resid_pdrop' must be in [0, 1), got {}", file, resid);
  c.dropout = resid;
  return c;
}

json hf_config_from_gpt(const GPTConfig &c) {
  // GPT-2's <|endoftext|> is token 50256 of 50257; for another vocabulary, the last token.
  const int64_t eos = c.vocab - 1;
  return {{"model_type", "gpt2"},
          {"architectures", {"GPT2LMHeadModel"}},
          {"n_embd", c.d_model},
          {"n_layer", c.n_layer},
          {"n_head", c.n_head},
          {"n_positions", c.ctx},
          {"n_ctx", c.ctx},
          {"n_inner", nullptr},
          {"vocab_size", c.vocab},
          {"layer_norm_epsilon", c.layer_norm_eps},
          {"activation_function", "gelu_new"},
          {"resid_pdrop", c.dropout},
          {"embd_pdrop", c.dropout},
          {"attn_pdrop", c.dropout},
          {"tie_word_embeddings", c.tie_weights},
          {"scale_attn_weights", true},
          {"initializer_range", 0.02},
          {"bos_token_id", eos},
          {"eos_token_id", eos},
          {"use_cache", true},
          {"torch_dtype", "float32"}};
}

}  // namespace nanorlhf::nn
